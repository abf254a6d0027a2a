"""Retention: forgetting what the store no longer needs, and giving the space back.

What goes: papers nobody was matched or recommended (nor gave feedback on, nor still
waiting to be matched) that have not been listed for a while, with their sources and
titles; old fetch log rows; old finished runs; rate-limit events past their window.
What never goes: the `matches` ledger and every paper it names (a paper someone was
mailed stays known, so that the same paper arriving again merges into it and is not
mailed twice), digests (they hold no bodies, and the ledger points at them), seeds,
feedback, subscribers, the last fetch of each source since its last success (its
health), and the last run and the last good run (the heartbeat `status` reads).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.store.database import Database
from bot.store.health import SUCCESS_STATUSES
from bot.store.ratelimit import RATE_HORIZON
from bot.store.rows import iso, utcnow

#: VACUUM only when at least this share of the file is free pages...
RECLAIM_SHARE = 0.25
#: ...and at least this many bytes: below that, rewriting the file is not worth it
RECLAIM_MIN_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class RetentionRules:
    """How long each kind of data is kept (None: forever)."""

    papers: timedelta | None = None
    fetches: timedelta | None = None
    runs: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one pass deleted, and the bytes the file gave back (0: no VACUUM was worth it)."""

    papers: int = 0
    fetches: int = 0
    runs: int = 0
    rate_events: int = 0
    reclaimed: int = 0

    def describe(self) -> str:
        """One line for the log and the CLI."""
        return (
            f"retention: removed {self.papers} papers, {self.fetches} fetch log rows,"
            f" {self.runs} runs, {self.rate_events} rate-limit events;"
            f" {self.reclaimed:,} bytes reclaimed"
        )


#: a paper that must stay: waiting to be matched, in the ledger, or with feedback (the
#: ledger's ids are gathered once: its key starts with the subscriber, not the paper)
_PAPER_KEPT = "p.pending_match = 1 OR p.id IN (SELECT id FROM temp.ledger_papers)"


class Retention:
    """Deletes what the retention rules let go, then reclaims space when worthwhile."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def apply(self, rules: RetentionRules, now: datetime | None = None) -> Pruned:
        """One pass: each kind in its own transaction, then VACUUM if enough was freed."""
        now = now or utcnow()
        papers = self._papers(now - rules.papers) if rules.papers else 0
        fetches = self._fetches(now - rules.fetches) if rules.fetches else 0
        runs = self._runs(now - rules.runs) if rules.runs else 0
        rate_events = self._rate_events(now - RATE_HORIZON)
        return Pruned(papers, fetches, runs, rate_events, self.reclaim())

    def _papers(self, cutoff: datetime) -> int:
        with self.db.transaction():
            for table in ("gone_papers", "ledger_papers"):
                self.db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY)")
                self.db.execute(f"DELETE FROM temp.{table}")
            self.db.execute(
                "INSERT OR IGNORE INTO temp.ledger_papers"
                " SELECT paper_id FROM matches UNION SELECT paper_id FROM feedback"
            )
            self.db.execute(
                "INSERT INTO temp.gone_papers SELECT p.id FROM papers p"
                f" WHERE p.updated < ? AND p.first_seen < ? AND NOT ({_PAPER_KEPT})",
                (iso(cutoff), iso(cutoff)),
            )
            for table in ("paper_sources", "paper_titles"):
                self.db.execute(
                    f"DELETE FROM {table} WHERE paper_id IN (SELECT id FROM temp.gone_papers)"
                )
            return self.db.execute(
                "DELETE FROM papers WHERE id IN (SELECT id FROM temp.gone_papers)"
            ).rowcount

    def _fetches(self, cutoff: datetime) -> int:
        done = ", ".join(f"'{status}'" for status in SUCCESS_STATUSES)
        with self.db.transaction():
            # each source's last success and what followed it stay: its health reads them
            return self.db.execute(
                "DELETE FROM fetches WHERE started < ? AND id < coalesce((SELECT max(f.id)"
                f" FROM fetches f WHERE f.source = fetches.source AND f.status IN ({done})), 0)",
                (iso(cutoff),),
            ).rowcount

    def _runs(self, cutoff: datetime) -> int:
        with self.db.transaction():
            return self.db.execute(
                "DELETE FROM runs WHERE finished IS NOT NULL AND finished < ?"
                " AND id < (SELECT max(id) FROM runs)"
                " AND id < coalesce((SELECT max(id) FROM runs"
                " WHERE status IN ('ok', 'partial')), 0)"
                " AND id NOT IN (SELECT run_id FROM fetches WHERE run_id IS NOT NULL)",
                (iso(cutoff),),
            ).rowcount

    def _rate_events(self, cutoff: datetime) -> int:
        with self.db.transaction():
            return self.db.execute(
                "DELETE FROM rate_events WHERE at < ?", (cutoff.timestamp(),)
            ).rowcount

    def reclaim(self) -> int:
        """VACUUM when free pages are a large share of the file; the bytes given back."""
        pages, free, size = (
            int(self.db.execute(f"PRAGMA {name}").fetchone()[0])
            for name in ("page_count", "freelist_count", "page_size")
        )
        if free * size < RECLAIM_MIN_BYTES or free < pages * RECLAIM_SHARE:
            return 0
        self.db.execute("VACUUM")
        # in WAL mode the rewritten file sits in the WAL until a checkpoint moves it back
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        after = int(self.db.execute("PRAGMA page_count").fetchone()[0])
        return max(0, pages - after) * size
