"""How fetching goes: each source's fetches and health, the validators of conditional GETs,
and the runs with their outcome (for `paperbot status` and the operator's notices).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.models import FetchStatus, RunStatus, Validators
from bot.store.database import Database
from bot.store.rows import from_iso, iso, utcnow

#: fetch outcomes that count as the source working (a quiet day is not a failure)
SUCCESS_STATUSES = ("ok", "empty", "not_modified")


@dataclass(frozen=True, slots=True)
class FetchRecord:
    """One source's fetch in one run: outcome and counts, for status and health."""

    source: str
    status: FetchStatus
    items: int = 0
    new: int = 0
    duration: float = 0.0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """The last known state of one source."""

    source: str
    last_attempt: datetime | None
    last_success: datetime | None
    last_status: FetchStatus | None
    last_error: str | None
    consecutive_failures: int
    items: int
    new: int
    #: the first failed fetch since the last successful one (or since the first fetch,
    #: if none ever succeeded); None while the last fetch succeeded
    failing_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as `paperbot status --runs` shows it; counts the run did not report are None.

    `status` is None for a run that never finished (killed, or still going).
    """

    started: datetime
    finished: datetime | None
    status: RunStatus | None
    new_papers: int | None = None
    matched: int | None = None
    sent: int | None = None
    failed: int | None = None
    errors: tuple[str, ...] = ()


class Health:
    """The fetches, source_state, validators and runs tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- sources ------------------------------------------------------------------------------

    def validators(self, url: str) -> Validators | None:
        """The ETag / Last-Modified last seen for this URL."""
        row = self.db.execute(
            "SELECT etag, last_modified FROM validators WHERE url = ?", (url,)
        ).fetchone()
        return Validators(etag=row[0], last_modified=row[1]) if row else None

    def save_validators(
        self, url: str, validators: Validators, now: datetime | None = None
    ) -> None:
        """Remember a URL's validators for the next conditional GET."""
        with self.db.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO validators VALUES (?, ?, ?, ?)",
                (url, validators.etag, validators.last_modified, iso(now or utcnow())),
            )

    def record_fetch(self, run_id: int | None, fetch: FetchRecord, started: datetime) -> None:
        """Record one source's fetch and update its health counters."""
        ok = fetch.status in SUCCESS_STATUSES
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO fetches (run_id, source, started, duration, status, items, new, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    fetch.source,
                    iso(started),
                    fetch.duration,
                    fetch.status,
                    fetch.items,
                    fetch.new,
                    fetch.error,
                ),
            )
            self.db.execute(
                "INSERT INTO source_state"
                " (source, last_attempt, last_success, consecutive_failures)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(source) DO UPDATE SET"
                " last_attempt = excluded.last_attempt,"
                " last_success = coalesce(excluded.last_success, last_success),"
                " consecutive_failures = CASE WHEN ? THEN 0 ELSE consecutive_failures + 1 END",
                (fetch.source, iso(started), iso(started) if ok else None, 0 if ok else 1, ok),
            )

    def last_success(self, source: str) -> datetime | None:
        """When this source was last fetched successfully."""
        row = self.db.execute(
            "SELECT last_success FROM source_state WHERE source = ?", (source,)
        ).fetchone()
        return from_iso(row[0]) if row else None

    def sources(self) -> tuple[SourceHealth, ...]:
        """Every source ever fetched, by name, with its last fetch and failures in a row."""
        return tuple(self._source_health())

    def _source_health(self) -> Iterator[SourceHealth]:
        done = ", ".join(f"'{status}'" for status in SUCCESS_STATUSES)
        rows = self.db.query(
            "SELECT s.*, f.status, f.error, f.items, f.new, (SELECT min(started) FROM fetches"
            " WHERE source = s.source AND id > coalesce((SELECT max(id) FROM fetches"
            f" WHERE source = s.source AND status IN ({done})), 0)) AS failing_since"
            " FROM source_state s"
            " LEFT JOIN fetches f ON f.id = (SELECT max(id) FROM fetches WHERE source = s.source)"
            " ORDER BY s.source"
        )
        for row in rows:
            yield SourceHealth(
                source=row["source"],
                last_attempt=from_iso(row["last_attempt"]),
                last_success=from_iso(row["last_success"]),
                last_status=row["status"],
                last_error=row["error"],
                consecutive_failures=row["consecutive_failures"],
                items=row["items"] or 0,
                new=row["new"] or 0,
                failing_since=(
                    from_iso(row["failing_since"]) if row["consecutive_failures"] else None
                ),
            )

    # --- runs ---------------------------------------------------------------------------------

    def start_run(self, now: datetime | None = None) -> int:
        """Open a run row and return its id."""
        with self.db.transaction():
            cursor = self.db.execute(
                "INSERT INTO runs (started) VALUES (?)", (iso(now or utcnow()),)
            )
        return int(cursor.lastrowid or 0)

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        summary: Mapping[str, Any],
        now: datetime | None = None,
    ) -> None:
        """Close a run row with its outcome."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE runs SET finished = ?, status = ?, summary = ? WHERE id = ?",
                (iso(now or utcnow()), status, json.dumps(summary), run_id),
            )

    def runs(self, limit: int) -> list[RunRecord]:
        """The last `limit` runs, newest first."""
        rows = self.db.execute(
            "SELECT started, finished, status, summary FROM runs ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [_run(*row) for row in rows]

    def last_run(self) -> tuple[datetime | None, RunStatus | None]:
        """When the last run started and how it ended (None while it runs, or if it died)."""
        row = self.db.execute(
            "SELECT started, status FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return (from_iso(row[0]), row[1]) if row else (None, None)

    def last_good_run(self) -> datetime | None:
        """Start of the last run that fetched at least one source well (monitoring's heartbeat)."""
        row = self.db.execute(
            "SELECT max(started) FROM runs WHERE status IN ('ok', 'partial')"
        ).fetchone()
        return from_iso(row[0])


def _run(
    started: str, finished: str | None, status: RunStatus | None, summary: str | None
) -> RunRecord:
    """A run row; a summary written by another version, or none, gives what it can."""
    try:
        found = json.loads(summary) if summary else {}
    except ValueError:
        found = {}
    if not isinstance(found, dict):
        found = {}
    errors = found.get("errors")
    return RunRecord(
        started=from_iso(started) or utcnow(),
        finished=from_iso(finished),
        status=status,
        new_papers=_count(found.get("new_papers")),
        matched=_count(found.get("matched")),
        sent=_count(found.get("sent")),
        failed=_count(found.get("failed")),
        errors=tuple(e for e in errors if isinstance(e, str)) if isinstance(errors, list) else (),
    )


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
