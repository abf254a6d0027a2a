"""The SQLite seen-store: the only module that opens the database.

Papers by canonical id, which sources listed them, subscribers, matches (a paper is
matched at most once per subscriber: that row is the "never twice" ledger), digests
as an outbox (pending until the server accepts), fetch validators, runs and fetches.
"""

from __future__ import annotations

import functools
import json
import operator
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.errors import StoreError, StoreUnusable
from bot.models import (
    DigestStatus,
    FetchStatus,
    Link,
    Match,
    Paper,
    Reason,
    RunStatus,
    Subscriber,
    SubscriberStatus,
    Validators,
)
from bot.store.file import (
    APPLICATION_ID,
    BUSY_TIMEOUT,
    Connection,
    check_file,
    check_orphans,
    connect,
    recognise,
)
from bot.store.file import create as create_file
from bot.store.identity import Identity, matching_changed, merge_papers
from bot.text.ids import normalize_title, title_key

#: shortest normalized title that may join two records with different ids
MIN_TITLE_KEY_LENGTH = 20
#: fetch outcomes that count as the source working (a quiet day is not a failure)
SUCCESS_STATUSES = ("ok", "empty", "not_modified")
#: rate-limit events older than this are forgotten (the longest window the web app uses)
RATE_HORIZON = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class RecordResult:
    """Which papers one `record` call saw for the first time, and which it enriched."""

    new: tuple[str, ...]
    changed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _StoredPaper:
    """A stored record of a paper, as `record` finds it before merging."""

    paper: Paper
    pending_match: bool
    rowid: int

    def age(self) -> tuple[datetime, int]:
        """Sort key: first seen first (the insertion order breaks ties)."""
        return (self.paper.first_seen or datetime.min.replace(tzinfo=UTC), self.rowid)


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
class PendingDigest:
    """A digest in the outbox: who it is for, its fixed Message-ID, and its matches."""

    id: int
    subscriber: Subscriber
    message_id: str
    created: datetime
    matches: tuple[Match, ...]
    subscriber_id: int = 0
    #: what the subscriber's manage/unsubscribe links must carry
    token_version: int = 0
    #: refusals in a row so far; a delivery resets them
    hard_bounces: int = 0


@dataclass(frozen=True, slots=True)
class RecentMatch:
    """A paper matched for a subscriber: why, when, and the digest it was put in (if yet)."""

    match: Match
    matched_at: datetime
    digest_id: int | None = None
    #: None: not in a digest yet
    digest_status: DigestStatus | None = None
    digest_created: datetime | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """Something the operator should hear about (e.g. `subscriber_suspended`), once."""

    id: int
    at: datetime
    kind: str
    email: str | None
    detail: str
    notified_at: datetime | None = None


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
class Bounce:
    """A subscriber whose address the mail server refused for good lately."""

    email: str
    status: SubscriberStatus  # active, or suspended after too many in a row
    in_a_row: int
    error: str


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """Counts and health for `paperbot status`."""

    papers: int
    subscribers: int
    pending_digests: int
    failed_digests: int
    sent_digests: int
    last_run: datetime | None
    last_run_status: RunStatus | None
    sources: tuple[SourceHealth, ...]
    #: start of the last run that fetched at least one source well (monitoring's heartbeat)
    last_good_run: datetime | None = None
    #: creation time of the oldest digest still waiting to be sent
    oldest_pending: datetime | None = None
    #: digests sent twice without a verdict: never sent again, counted as delivered
    unconfirmed_digests: int = 0
    #: subscribers suspended after hard bounces
    suspended_subscribers: int = 0
    #: subscribers whose last delivery was refused for good (suspended ones too)
    bounced_subscribers: int = 0
    #: the latest of them (at most 10), latest first
    bounces: tuple[Bounce, ...] = ()


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


@dataclass(frozen=True, slots=True)
class AlertState:
    """One operator problem (`source:arxiv`, `smtp`): its state and what the operator heard.

    `state` is `problem` or `ok`; `told` is the last thing mailed (`problem`, `ok` or None);
    `last_alert` when the last problem alert went out (at most one a day).
    """

    problem: str
    state: str
    message: str
    since: datetime
    told: str | None = None
    last_alert: datetime | None = None


@dataclass(frozen=True, slots=True)
class SubscriberRecord:
    """A subscriber in any status, with the token version their links must carry."""

    subscriber: Subscriber
    token_version: int
    confirmed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SignupResult:
    """What a web sign-up did: `confirm` (now pending: mail a confirmation link) or `known`
    (already active: nothing changed, mail the manage link)."""

    action: str
    record: SubscriberRecord


def utcnow() -> datetime:
    """The current time in UTC (aware)."""
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- schema ----------------------------------------------------------------------------


def _migration_1(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE papers (
            id TEXT PRIMARY KEY, title TEXT NOT NULL, title_key TEXT NOT NULL,
            authors TEXT NOT NULL, abstract TEXT NOT NULL, url TEXT NOT NULL,
            arxiv_id TEXT, doi TEXT, published TEXT, categories TEXT NOT NULL,
            links TEXT NOT NULL, sources TEXT NOT NULL, announce_type TEXT,
            votes INTEGER, stars INTEGER, keywords TEXT NOT NULL, organizations TEXT NOT NULL,
            first_seen TEXT NOT NULL, updated TEXT NOT NULL
        );
        CREATE INDEX papers_title_key ON papers(title_key);
        CREATE INDEX papers_doi ON papers(doi);
        CREATE INDEX papers_arxiv_id ON papers(arxiv_id);
        CREATE INDEX papers_first_seen ON papers(first_seen);
        CREATE TABLE paper_sources (
            paper_id TEXT NOT NULL, source TEXT NOT NULL, url TEXT NOT NULL,
            first_seen TEXT NOT NULL, PRIMARY KEY (paper_id, source)
        );
        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE COLLATE NOCASE, name TEXT,
            keywords TEXT NOT NULL, authors TEXT NOT NULL, categories TEXT NOT NULL,
            exclude TEXT NOT NULL, max_papers INTEGER NOT NULL, origin TEXT NOT NULL,
            status TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL
        );
        CREATE TABLE matches (
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
            paper_id TEXT NOT NULL, reasons TEXT NOT NULL, score REAL NOT NULL,
            matched_at TEXT NOT NULL, digest_id INTEGER REFERENCES digests(id),
            PRIMARY KEY (subscriber_id, paper_id)
        );
        CREATE INDEX matches_digest ON matches(digest_id);
        CREATE TABLE digests (
            id INTEGER PRIMARY KEY, subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
            message_id TEXT NOT NULL UNIQUE, status TEXT NOT NULL, created TEXT NOT NULL,
            sent_at TEXT, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT
        );
        CREATE INDEX digests_status ON digests(status);
        CREATE TABLE validators (
            url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, updated TEXT NOT NULL
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY, started TEXT NOT NULL, finished TEXT, status TEXT,
            summary TEXT
        );
        CREATE TABLE fetches (
            id INTEGER PRIMARY KEY, run_id INTEGER REFERENCES runs(id), source TEXT NOT NULL,
            started TEXT NOT NULL, duration REAL NOT NULL, status TEXT NOT NULL,
            items INTEGER NOT NULL, new INTEGER NOT NULL, error TEXT
        );
        CREATE INDEX fetches_source ON fetches(source, id);
        CREATE TABLE source_state (
            source TEXT PRIMARY KEY, last_attempt TEXT, last_success TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0
        );
        """
    )


def _migration_2(db: sqlite_utils.Database) -> None:
    """Cadence, web sign-up and bounce columns on subscribers."""
    db.executescript(
        """
        ALTER TABLE subscribers ADD COLUMN frequency TEXT NOT NULL DEFAULT 'daily';
        ALTER TABLE subscribers ADD COLUMN weekday INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE subscribers ADD COLUMN send_at TEXT;
        ALTER TABLE subscribers ADD COLUMN timezone TEXT;
        ALTER TABLE subscribers ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE subscribers ADD COLUMN confirmed_at TEXT;
        ALTER TABLE subscribers ADD COLUMN hard_bounces INTEGER NOT NULL DEFAULT 0;
        """
    )


def _migration_3(db: sqlite_utils.Database) -> None:
    """Papers wait for matching until their matches are committed (crash-safe matching)."""
    db.executescript(
        """
        ALTER TABLE papers ADD COLUMN pending_match INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX papers_pending_match ON papers(pending_match) WHERE pending_match = 1;
        """
    )


def _migration_4(db: sqlite_utils.Database) -> None:
    """Rate-limit events of the web app (sign-ups, link mails), kept across restarts."""
    db.executescript(
        """
        CREATE TABLE rate_events (bucket TEXT NOT NULL, at REAL NOT NULL);
        CREATE INDEX rate_events_bucket ON rate_events(bucket, at);
        CREATE INDEX rate_events_at ON rate_events(at);
        """
    )


def _migration_5(db: sqlite_utils.Database) -> None:
    """Operator events (suspensions), and digests found by subscriber."""
    db.executescript(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL,
            subscriber_id INTEGER REFERENCES subscribers(id), detail TEXT NOT NULL,
            notified_at TEXT
        );
        CREATE INDEX events_unnotified ON events(id) WHERE notified_at IS NULL;
        CREATE INDEX digests_subscriber ON digests(subscriber_id);
        """
    )


def _migration_6(db: sqlite_utils.Database) -> None:
    """Cadence: when each subscriber was last served; operator alerts, one per problem."""
    db.executescript(
        """
        ALTER TABLE subscribers ADD COLUMN served_at TEXT;
        CREATE TABLE operator_alerts (
            problem TEXT PRIMARY KEY, state TEXT NOT NULL, message TEXT NOT NULL,
            since TEXT NOT NULL, told TEXT, last_alert TEXT
        );
        """
    )


def _migration_7(db: sqlite_utils.Database) -> None:
    """Digests count the times they went out whole without a verdict (at most twice, ever)."""
    db.executescript(
        """
        ALTER TABLE digests ADD COLUMN transmissions INTEGER NOT NULL DEFAULT 0;
        """
    )


def _migration_8(db: sqlite_utils.Database) -> None:
    """Every title a paper was listed under, so that any of them finds it again."""
    db.executescript(
        """
        CREATE TABLE paper_titles (
            title_key TEXT NOT NULL, paper_id TEXT NOT NULL, PRIMARY KEY (title_key, paper_id)
        ) WITHOUT ROWID;
        CREATE INDEX paper_titles_paper ON paper_titles(paper_id);
        INSERT OR IGNORE INTO paper_titles SELECT title_key, id FROM papers;
        """
    )


def _migration_9(db: sqlite_utils.Database) -> None:
    """The file says it is paperbot's store (`PRAGMA application_id`)."""
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")


#: schema migrations, in order; the store's version is how many have run.
#: Append only: a migration that has shipped is never edited.
MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
    _migration_5,
    _migration_6,
    _migration_7,
    _migration_8,
    _migration_9,
)
SCHEMA_VERSION = len(MIGRATIONS)


class Store:
    """A connection to the seen-store, migrated to the current schema."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    @classmethod
    def open(cls, path: Path, *, busy_timeout: float = BUSY_TIMEOUT) -> Store:
        """Open the store at `path`; only when no file is there, make one (and its folder).

        A file that is not paperbot's store (empty, truncated, another application's) is
        refused with StoreUnusable; `busy_timeout` is how long a statement waits for
        another process's write.
        """
        if not path.exists():
            check_orphans(path)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{path}: cannot create its folder: {exc.strerror}") from None
            create_file(path, lambda temp: cls._build(temp, path))
        check_file(path)
        store = cls._connect(path, busy_timeout)
        try:
            store._recognise(path)  # before anything is written, WAL mode included
            store._configure()
            store._migrate()
        except sqlite3.DatabaseError as exc:
            store.close()
            raise StoreUnusable(f"{path}: not a usable paperbot database: {exc}") from None
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def _connect(cls, path: Path, busy_timeout: float, shown: Path | None = None) -> Store:
        try:
            conn = connect(path, busy_timeout=busy_timeout, shown=shown)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{shown or path}: cannot open the database: {exc}") from None
        return cls(sqlite_utils.Database(conn))

    @classmethod
    def _build(cls, temp: Path, path: Path) -> None:
        """Make a new store's whole schema in `temp` (its errors name `path`).

        The schema is written with a rollback journal, straight into the file, so that a
        full disk fails a statement here; in WAL mode it would fail only the checkpoint
        at close, which SQLite does not report, and leave a half-written file.
        """
        store = cls._connect(temp, BUSY_TIMEOUT, shown=path)
        try:
            store.db.execute("PRAGMA journal_mode=DELETE")
            store._migrate()
            store._configure()
        finally:
            store.close()

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    def file(self) -> Path | None:
        """The database file this store is connected to (None for an in-memory database)."""
        for _, name, file in self.db.execute("PRAGMA database_list"):
            if name == "main" and file:
                return Path(file)
        return None

    def _configure(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")

    def _recognise(self, path: Path) -> None:
        """StoreUnusable unless this is paperbot's store, of a version this code can read."""
        application_id = self.db.execute("PRAGMA application_id").fetchone()[0]
        tables = [
            row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        recognise(path, application_id, self.schema_version(), tables, SCHEMA_VERSION)

    def _migrate(self) -> None:
        version = self.schema_version()
        for number in range(version, SCHEMA_VERSION):
            with self.transaction():
                MIGRATIONS[number](self.db)
                self.db.execute(f"PRAGMA user_version={number + 1}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One logical step: everything inside commits together or not at all.

        A failed step is rolled back unless SQLite already did (it does on disk full), so
        that the error reported is the one that stopped the step.
        """
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, sqlite3.Error):  # raised by a cursor (a script): name it too
                named = self._named(exc)
                if named is not exc:
                    raise named from exc
            raise

    def _named(self, exc: sqlite3.Error) -> Exception:
        conn = self.db.conn
        return conn.named(exc) if isinstance(conn, Connection) else exc

    def _rollback(self) -> None:
        if self.db.conn.in_transaction:
            with suppress(sqlite3.Error, StoreError):  # the first error is the one to report
                self.db.execute("ROLLBACK")

    def schema_version(self) -> int:
        """The schema version the database is at."""
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def probe(self) -> None:
        """Read a row and take the write lock for a moment, writing nothing: a StoreError
        (busy, damaged, ...) when the store could not serve a request now."""
        self.db.execute("SELECT id FROM subscribers LIMIT 1").fetchall()
        with self.transaction():
            pass

    # --- papers --------------------------------------------------------------------------

    def record(
        self, source: str, papers: Sequence[Paper], now: datetime | None = None
    ) -> RecordResult:
        """Upsert the papers one source listed; say which were new and which enriched.

        A paper that matches several stored records (by arXiv id, DOI or title) makes them
        one, under the strongest id, whatever order the sources came in.
        """
        now = now or utcnow()
        new: list[str] = []
        changed: list[str] = []
        with self.transaction():
            for paper in papers:
                paper = replace(paper, sources=(source,), first_seen=now)
                stored = self._records_of(paper)
                if not stored:
                    self._insert_paper(paper, now)
                    new.append(paper.id)
                    stored_id = paper.id
                else:
                    stored_id, absorbed, enriched = self._merge_into(stored, paper, now)
                    if absorbed:  # ids reported earlier in this call may be gone now
                        new[:] = [stored_id if pid in absorbed else pid for pid in new]
                        changed[:] = [stored_id if pid in absorbed else pid for pid in changed]
                    if enriched:
                        changed.append(stored_id)
                self.db.execute(
                    "INSERT OR IGNORE INTO paper_sources VALUES (?, ?, ?, ?)",
                    (stored_id, source, paper.url, _iso(now)),
                )
        return RecordResult(new=tuple(dict.fromkeys(new)), changed=tuple(dict.fromkeys(changed)))

    def _merge_into(
        self, stored: Sequence[_StoredPaper], paper: Paper, now: datetime
    ) -> tuple[str, set[str], bool]:
        """Merge the arriving paper and every stored record of it into one record.

        Returns the record's id, the ids merged into it (gone now), and whether anything
        alerts look at changed (the record then waits for matching again).
        """
        # oldest record first: it keeps its spelling when ids are equally strong
        merged = functools.reduce(merge_papers, [*(s.paper for s in stored), paper])
        keeper = next((s for s in stored if s.paper.id == merged.id), stored[0])
        if keeper.paper.id != merged.id:
            self.db.execute("UPDATE papers SET id = ? WHERE id = ?", (merged.id, keeper.paper.id))
            self._move_references(keeper.paper.id, merged.id)
        for other in stored:
            if other is not keeper:
                self._move_references(other.paper.id, merged.id)
                self.db.execute("DELETE FROM papers WHERE id = ?", (other.paper.id,))
        self._add_title_key(merged.id, paper.title)
        if len(stored) > 1 or merged != keeper.paper:
            self._update_paper(merged, now)
        enriched = any(matching_changed(s.paper, merged) for s in stored)
        if enriched or (len(stored) > 1 and any(s.pending_match for s in stored)):
            self.db.execute("UPDATE papers SET pending_match = 1 WHERE id = ?", (merged.id,))
        return merged.id, {s.paper.id for s in stored} - {merged.id}, enriched

    def _records_of(self, paper: Paper) -> list[_StoredPaper]:
        """Every stored record of this paper, oldest first.

        Found by id, arXiv id, DOI or title, then by what those records carry (a journal
        record found by its DOI brings the lab page record found by its title). A record
        whose arXiv id or DOI differs from what the others say is another paper, and the
        title rule needs a title long enough to be distinctive.
        """
        found: dict[str, _StoredPaper] = {}
        identity = Identity(paper.arxiv_id, paper.doi)
        asked: set[tuple[str, str]] = set()
        probes = [paper]
        while probes:
            for row in self._candidate_rows(probes.pop(), asked):
                if row["id"] in found:
                    continue
                record = _StoredPaper(_row_paper(row), bool(row["pending_match"]), row["rowid"])
                if record.paper.id != paper.id and not identity.admits(record.paper):
                    continue
                found[record.paper.id] = record
                identity = identity.joined(record.paper)
                probes.append(record.paper)
        return sorted(found.values(), key=_StoredPaper.age)

    def _candidate_rows(self, probe: Paper, asked: set[tuple[str, str]]) -> list[dict[str, Any]]:
        """Records sharing an id, arXiv id, DOI or distinctive title with `probe` that were
        not `asked` for yet; the strongest evidence first, so that it wins over a title
        when the two disagree."""
        key, distinctive = _title_facts(probe.title)
        keys = {"id": probe.id, "arxiv": probe.arxiv_id, "doi": probe.doi}
        keys["key"] = key if distinctive else None
        wanted = {k: v for k, v in keys.items() if v is not None and (k, v) not in asked}
        if not wanted:
            return []
        asked.update(wanted.items())
        cursor = self.db.execute(
            "SELECT rowid, * FROM papers WHERE id = :id OR arxiv_id = :arxiv OR doi = :doi"
            " OR id IN (SELECT paper_id FROM paper_titles WHERE title_key = :key)"
            " ORDER BY CASE WHEN id = :id OR arxiv_id = :arxiv THEN 0"
            " WHEN doi = :doi THEN 1 ELSE 2 END, first_seen, rowid",
            {"id": None, "arxiv": None, "doi": None, "key": None, **wanted},
        )
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def _insert_paper(self, paper: Paper, now: datetime) -> None:
        row = {**_paper_to_row(paper, now), "pending_match": 1}
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.db.execute(f"INSERT INTO papers ({columns}) VALUES ({marks})", list(row.values()))
        self._add_title_key(paper.id, paper.title)

    def _add_title_key(self, paper_id: str, title: str) -> None:
        """Remember a title the paper was listed under: a later listing may use any of them."""
        self.db.execute(
            "INSERT OR IGNORE INTO paper_titles VALUES (?, ?)", (_title_facts(title)[0], paper_id)
        )

    def _update_paper(self, paper: Paper, now: datetime) -> None:
        row = _paper_to_row(paper, now)
        sets = ", ".join(f"{column} = ?" for column in row if column != "id")
        values = [value for column, value in row.items() if column != "id"]
        self.db.execute(f"UPDATE papers SET {sets} WHERE id = ?", [*values, paper.id])

    def _move_references(self, old_id: str, new_id: str) -> None:
        """What points at `old_id` (sources, titles, matches) now points at `new_id`.

        A subscriber matched under both ids keeps one match: the one already delivered
        (or in a digest being sent) before one still waiting, else the older. A pending
        digest left without any paper by this is dropped, never sent empty.
        """
        for table in ("paper_sources", "paper_titles"):
            self.db.execute(
                f"UPDATE OR IGNORE {table} SET paper_id = ? WHERE paper_id = ?", (new_id, old_id)
            )
            self.db.execute(f"DELETE FROM {table} WHERE paper_id = ?", (old_id,))
        old, new = _match_standing("o"), _match_standing("n")
        emptied = self.db.execute(
            "DELETE FROM matches WHERE rowid IN (SELECT CASE WHEN"
            f" {old} > {new} OR ({old} = {new} AND o.matched_at <= n.matched_at)"
            " THEN n.rowid ELSE o.rowid END FROM matches o JOIN matches n"
            " ON n.subscriber_id = o.subscriber_id AND n.paper_id = ? WHERE o.paper_id = ?)"
            " RETURNING digest_id",
            (new_id, old_id),
        ).fetchall()
        self.db.execute("UPDATE matches SET paper_id = ? WHERE paper_id = ?", (new_id, old_id))
        for (digest_id,) in emptied:
            self.db.execute(
                "UPDATE digests SET status = 'dropped' WHERE id = ? AND status = 'pending'"
                " AND NOT EXISTS (SELECT 1 FROM matches WHERE digest_id = ?)",
                (digest_id, digest_id),
            )

    def papers(self, ids: Iterable[str]) -> dict[str, Paper]:
        """The stored papers with these ids, by id."""
        ids = list(dict.fromkeys(ids))
        result: dict[str, Paper] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self.db.query(f"SELECT * FROM papers WHERE id IN ({marks})", chunk):
                paper = _row_paper(row)
                result[paper.id] = paper
        return result

    def papers_to_match(self) -> list[Paper]:
        """Papers recorded (or enriched) whose matches are not committed yet.

        A run that dies between recording and matching leaves them here, so the next run
        matches them: a paper is never seen-but-unmatched.
        """
        return [
            _row_paper(r) for r in self.db.query("SELECT * FROM papers WHERE pending_match = 1")
        ]

    def papers_seen_since(self, since: datetime) -> list[Paper]:
        """Papers first seen at or after `since`, newest first."""
        rows = self.db.query(
            "SELECT * FROM papers WHERE first_seen >= ? ORDER BY first_seen DESC", [_iso(since)]
        )
        return [_row_paper(row) for row in rows]

    def papers_fingerprint(self, since: datetime) -> tuple[int, str | None]:
        """(count, latest update) of the papers first seen since `since`: it changes whenever
        one of them is added, merged or re-keyed, so a copy in memory can be reused until then."""
        row = self.db.execute(
            "SELECT count(*), max(updated) FROM papers WHERE first_seen >= ?", (_iso(since),)
        ).fetchone()
        return int(row[0]), row[1]

    def paper_count(self) -> int:
        """How many distinct papers the store holds."""
        return int(self.db.execute("SELECT count(*) FROM papers").fetchone()[0])

    # --- fetch validators and source health ---------------------------------------------

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
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO validators VALUES (?, ?, ?, ?)",
                (url, validators.etag, validators.last_modified, _iso(now or utcnow())),
            )

    def start_run(self, now: datetime | None = None) -> int:
        """Open a run row and return its id."""
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO runs (started) VALUES (?)", (_iso(now or utcnow()),)
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
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET finished = ?, status = ?, summary = ? WHERE id = ?",
                (_iso(now or utcnow()), status, json.dumps(summary), run_id),
            )

    def runs(self, limit: int) -> list[RunRecord]:
        """The last `limit` runs, newest first."""
        rows = self.db.execute(
            "SELECT started, finished, status, summary FROM runs ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [_row_run(*row) for row in rows]

    def record_fetch(self, run_id: int | None, fetch: FetchRecord, started: datetime) -> None:
        """Record one source's fetch and update its health counters."""
        ok = fetch.status in SUCCESS_STATUSES
        with self.transaction():
            self.db.execute(
                "INSERT INTO fetches (run_id, source, started, duration, status, items, new, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    fetch.source,
                    _iso(started),
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
                (fetch.source, _iso(started), _iso(started) if ok else None, 0 if ok else 1, ok),
            )

    def last_success(self, source: str) -> datetime | None:
        """When this source was last fetched successfully."""
        row = self.db.execute(
            "SELECT last_success FROM source_state WHERE source = ?", (source,)
        ).fetchone()
        return _dt(row[0]) if row else None

    # --- subscribers ---------------------------------------------------------------------

    def sync_config_subscribers(
        self, subscribers: Sequence[Subscriber], now: datetime | None = None
    ) -> None:
        """Make the store's config-file subscribers exactly those of the config file."""
        stamp = _iso(now or utcnow())
        emails = [s.email for s in subscribers]
        with self.transaction():
            # one statement for all: 100,000 execute calls cost seconds
            self.db.conn.executemany(
                "INSERT INTO subscribers (email, name, keywords, authors, categories, exclude,"
                " max_papers, frequency, weekday, send_at, timezone, origin, status, created,"
                " updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'config', 'active', ?, ?)"
                " ON CONFLICT(email) DO UPDATE SET name = excluded.name,"
                " keywords = excluded.keywords, authors = excluded.authors,"
                " categories = excluded.categories, exclude = excluded.exclude,"
                " max_papers = excluded.max_papers, frequency = excluded.frequency,"
                " weekday = excluded.weekday, send_at = excluded.send_at,"
                " timezone = excluded.timezone, origin = 'config',"
                # the file wins for alerts, never over a person's own unsubscribe:
                # only a row the file had dropped comes back to life
                " status = CASE WHEN origin = 'config' AND status = 'removed'"
                " THEN 'active' ELSE status END,"
                " updated = excluded.updated",
                ((*_subscriber_values(sub), stamp, stamp) for sub in subscribers),
            )
            # the file's addresses go through a temporary table: one SQL variable each
            # would pass SQLite's limit (32,766 in a stock build) for a large list
            self._fill_temp_ids("config_emails", emails, "email TEXT PRIMARY KEY")
            self.db.execute(
                "UPDATE subscribers SET status = 'removed', updated = ? WHERE origin = 'config'"
                " AND status = 'active' AND email NOT IN (SELECT email FROM temp.config_emails)",
                [stamp],
            )

    def active_subscribers(self) -> list[Subscriber]:
        """Every subscriber who should receive digests."""
        rows = self.db.query("SELECT * FROM subscribers WHERE status = 'active' ORDER BY id")
        return [_row_subscriber(row) for row in rows]

    def subscriber(self, email: str) -> Subscriber | None:
        """The active subscriber with this address, if any."""
        rows = list(
            self.db.query(
                "SELECT * FROM subscribers WHERE email = ? AND status = 'active'", [email]
            )
        )
        return _row_subscriber(rows[0]) if rows else None

    # --- web subscribers -----------------------------------------------------------------

    def subscriber_record(self, email: str) -> SubscriberRecord | None:
        """The subscriber with this address whatever their status, with their token version."""
        rows = list(self.db.query("SELECT * FROM subscribers WHERE email = ?", [email]))
        return _row_record(rows[0]) if rows else None

    def request_subscription(self, sub: Subscriber, now: datetime | None = None) -> SignupResult:
        """A web sign-up: a new or lapsed address becomes pending, an active one is left alone.

        A config-file address keeps the file's alerts; one the file dropped becomes a web
        subscriber with the submitted alerts.
        """
        stamp = _iso(now or utcnow())
        with self.transaction():
            record = self.subscriber_record(sub.email)
            if record is None:
                self.db.execute(
                    "INSERT INTO subscribers (email, name, keywords, authors, categories, exclude,"
                    " max_papers, frequency, weekday, send_at, timezone, origin, status, created,"
                    " updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'web', 'pending', ?, ?)",
                    (*_subscriber_values(sub), stamp, stamp),
                )
            elif record.subscriber.status == "active":
                return SignupResult("known", record)
            elif record.subscriber.origin == "config" and record.subscriber.status != "removed":
                self.db.execute(
                    "UPDATE subscribers SET status = 'pending', updated = ? WHERE email = ?",
                    (stamp, sub.email),
                )
            else:
                self._write_alerts(sub, stamp, sets="origin = 'web', status = 'pending'")
            fresh = self.subscriber_record(sub.email)
        assert fresh is not None
        return SignupResult("confirm", fresh)

    def confirm_subscription(
        self, email: str, version: int, now: datetime | None = None
    ) -> SubscriberRecord | None:
        """Activate a pending subscriber; None when the link's version or status no longer fit."""
        stamp = _iso(now or utcnow())
        with self.transaction():
            self.db.execute(
                "UPDATE subscribers SET status = 'active', confirmed_at = coalesce(confirmed_at,"
                " ?), updated = ? WHERE email = ? AND token_version = ? AND status = 'pending'",
                (stamp, stamp, email, version),
            )
            record = self.subscriber_record(email)
        if record is None or record.token_version != version:
            return None
        return record if record.subscriber.status == "active" else None

    def update_alerts(
        self, sub: Subscriber, version: int, now: datetime | None = None
    ) -> SubscriberRecord | None:
        """Save a web subscriber's alerts and cadence; None when the link or origin do not allow."""
        stamp = _iso(now or utcnow())
        with self.transaction():
            changed = self._write_alerts(
                sub,
                stamp,
                where="token_version = ? AND origin = 'web' AND status IN ('active', 'pending')",
                params=(version,),
            )
            record = self.subscriber_record(sub.email)
        return record if changed else None

    def _write_alerts(
        self,
        sub: Subscriber,
        stamp: str | None,
        *,
        sets: str = "",
        where: str = "1",
        params: tuple[Any, ...] = (),
    ) -> bool:
        """Overwrite the alert and cadence columns of `sub.email` (where `where` holds)."""
        extra = f", {sets}" if sets else ""
        cursor = self.db.execute(
            "UPDATE subscribers SET name = ?, keywords = ?, authors = ?, categories = ?,"
            " exclude = ?, max_papers = ?, frequency = ?, weekday = ?, send_at = ?,"
            f" timezone = ?, updated = ?{extra} WHERE email = ? AND {where}",
            (*_subscriber_values(sub)[1:], stamp, sub.email, *params),
        )
        return cursor.rowcount == 1

    def unsubscribe(self, email: str, version: int, now: datetime | None = None) -> bool:
        """Stop all mail now: unsubscribed, every earlier link void, pending digests dropped."""
        stamp = _iso(now or utcnow())
        with self.transaction():
            row = self.db.execute(
                "SELECT id FROM subscribers WHERE email = ? AND token_version = ?"
                " AND status != 'unsubscribed'",
                (email, version),
            ).fetchone()
            if row is None:
                return False
            self.db.execute(
                "UPDATE subscribers SET status = 'unsubscribed', token_version = token_version + 1,"
                " updated = ? WHERE id = ?",
                (stamp, row[0]),
            )
            self.db.execute(
                "UPDATE digests SET status = 'dropped' WHERE status = 'pending'"
                " AND subscriber_id = ?",
                (row[0],),
            )
        return True

    def take_rate_slot(
        self, bucket: str, limit: int, window: timedelta, now: datetime | None = None
    ) -> bool:
        """Count one event in `bucket` unless `limit` were counted within `window`; True if so.

        Events older than RATE_HORIZON are forgotten, so the table stays small.
        """
        moment = (now or utcnow()).timestamp()
        with self.transaction():
            self.db.execute(
                "DELETE FROM rate_events WHERE at < ?", (moment - RATE_HORIZON.total_seconds(),)
            )
            count = self.db.execute(
                "SELECT count(*) FROM rate_events WHERE bucket = ? AND at > ?",
                (bucket, moment - window.total_seconds()),
            ).fetchone()[0]
            if count >= limit:
                return False
            self.db.execute("INSERT INTO rate_events VALUES (?, ?)", (bucket, moment))
        return True

    # --- matches and the digest outbox ---------------------------------------------------

    def add_matches(
        self,
        matches: Mapping[str, Sequence[Match]],
        now: datetime | None = None,
        *,
        matched: Iterable[str] = (),
    ) -> int:
        """Record new matches, and that the `matched` papers are done, in one transaction.

        A paper already matched for a subscriber is never added again.
        """
        rows = _match_rows(
            matches, self._subscriber_ids(), (now or utcnow()).astimezone(UTC).isoformat()
        )
        with self.transaction():
            before = self.db.conn.total_changes
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO matches (subscriber_id, paper_id, reasons, score,"
                " matched_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            added = self.db.conn.total_changes - before
            self.db.conn.executemany(
                "UPDATE papers SET pending_match = 0 WHERE id = ?", [(pid,) for pid in matched]
            )
            return added

    def _subscriber_ids(self) -> dict[str, int]:
        rows = self.db.execute("SELECT email, id FROM subscribers WHERE status = 'active'")
        return dict(rows)

    def create_digests(
        self,
        domain: str,
        now: datetime | None = None,
        *,
        subscriber_ids: Iterable[int] | None = None,
        served: bool = False,
    ) -> int:
        """Put active subscribers' unassigned matches into new pending digests, one each.

        `subscriber_ids` limits this to those subscribers (e.g. the ones whose digest is
        due); `served` also records that their cadence slot was served now, digest or not.
        Set-based SQL in one transaction: a run dies before or after, never halfway.
        """
        stamp = _iso(now or utcnow())
        with self.transaction():
            chosen = ""
            if subscriber_ids is not None:
                self._fill_temp_ids("chosen_subscribers", subscriber_ids)
                chosen = " AND m.subscriber_id IN (SELECT id FROM temp.chosen_subscribers)"
            before = self.db.execute("SELECT coalesce(max(id), 0) FROM digests").fetchone()[0]
            # a 128-bit random left part, like uuid4().hex, made by SQLite in the same pass
            cursor = self.db.execute(
                "INSERT INTO digests (subscriber_id, message_id, status, created)"
                " SELECT subscriber_id, '<' || lower(hex(randomblob(16))) || '@' || ? || '>',"
                " 'pending', ? FROM (SELECT DISTINCT m.subscriber_id FROM matches m"
                " JOIN subscribers s ON s.id = m.subscriber_id"
                f" WHERE m.digest_id IS NULL AND s.status = 'active'{chosen})"
                " ORDER BY subscriber_id",
                (domain, stamp),
            )
            created = cursor.rowcount
            self.db.execute(
                "UPDATE matches SET digest_id = d.id FROM digests d"
                " WHERE d.id > ? AND d.subscriber_id = matches.subscriber_id"
                " AND matches.digest_id IS NULL",
                (before,),
            )
            if served and subscriber_ids is not None:
                self.db.execute(
                    "UPDATE subscribers SET served_at = ?"
                    " WHERE id IN (SELECT id FROM temp.chosen_subscribers)",
                    (stamp,),
                )
        return int(created)

    def cadence_marks(self) -> list[tuple[int, Subscriber, datetime | None]]:
        """Every active subscriber's id, cadence and when they were last served.

        The Subscribers carry only the address and the cadence fields (the worker asks
        this every minute; alerts are not needed to decide who is due). Never served yet
        counts from when they subscribed: the first digest comes at the first slot after
        that, not the moment they appear.
        """
        rows = self.db.execute(
            "SELECT id, email, frequency, weekday, send_at, timezone,"
            " coalesce(served_at, created) FROM subscribers WHERE status = 'active' ORDER BY id"
        )
        return [
            (
                sid,
                Subscriber(email, frequency=freq, weekday=day, send_at=at, timezone=zone),
                _dt(mark),
            )
            for sid, email, freq, day, at, zone, mark in rows
        ]

    def _fill_temp_ids(
        self, table: str, ids: Iterable[int | str], column: str = "id INTEGER PRIMARY KEY"
    ) -> None:
        """A temporary table of ids (a filter too long for `IN (?, ?, ...)`)."""
        self.db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({column})")
        self.db.execute(f"DELETE FROM temp.{table}")
        self.db.conn.executemany(
            f"INSERT OR IGNORE INTO temp.{table} VALUES (?)", ((i,) for i in ids)
        )

    def drop_inactive_pending(self) -> int:
        """Pending digests of subscribers no longer active are dropped, never sent."""
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE digests SET status = 'dropped' WHERE status = 'pending' AND"
                " subscriber_id IN (SELECT id FROM subscribers WHERE status != 'active')"
            )
        return cursor.rowcount

    def pending_digests(self) -> list[PendingDigest]:
        """Every digest waiting to be sent, oldest first, with its matches."""
        return [digest for batch in self.pending_batches() for digest in batch]

    def pending_batches(
        self, size: int = 500, *, after: int = 0, upto: int | None = None
    ) -> Iterator[list[PendingDigest]]:
        """The pending digests of active subscribers, oldest first, `size` at a time.

        Only digests with `after < id <= upto`. Each batch is
        read whole before it is handed out (two queries), so the caller may mark digests in
        between; memory stays at one batch however long the outbox is.
        """
        last = _MAX_ID if upto is None else upto
        while True:
            # plain tuples, not sqlite_utils' dicts: this runs once per digest sent
            rows = self.db.execute(
                f"SELECT {_PENDING_COLUMNS} FROM digests d"
                " JOIN subscribers s ON s.id = d.subscriber_id"
                " WHERE d.status = 'pending' AND d.id > ? AND d.id <= ? AND s.status = 'active'"
                " ORDER BY d.id LIMIT ?",
                (after, last, size),
            ).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            matches = self._matches_of_digests([row[0] for row in rows])
            yield [_row_pending(row, matches.get(row[0], ())) for row in rows]

    def pending_ids(self, after: int, limit: int) -> list[int]:
        """The ids of the next `limit` pending digests of active subscribers after id `after`."""
        rows = self.db.execute(
            "SELECT d.id FROM digests d JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.status = 'pending' AND d.id > ? AND s.status = 'active'"
            " ORDER BY d.id LIMIT ?",
            (after, limit),
        )
        return [digest_id for (digest_id,) in rows]

    def _matches_of_digests(self, digest_ids: Sequence[int]) -> dict[int, tuple[Match, ...]]:
        marks = ", ".join("?" for _ in digest_ids)
        found: dict[int, list[Match]] = {}
        rows = self.db.execute(
            f"SELECT digest_id, paper_id, reasons, score FROM matches WHERE digest_id IN ({marks})",
            list(digest_ids),
        )
        for digest_id, pid, reasons, score in rows:
            found.setdefault(digest_id, []).append(Match(pid, _reasons_from(reasons), score))
        return {digest_id: tuple(matches) for digest_id, matches in found.items()}

    def undelivered_matches(self, email: str) -> list[Match]:
        """Matches of this subscriber not yet in a sent digest (for a preview)."""
        rows = self.db.execute(
            "SELECT m.paper_id, m.reasons, m.score FROM matches m"
            " JOIN subscribers s ON s.id = m.subscriber_id"
            " LEFT JOIN digests d ON d.id = m.digest_id"
            " WHERE s.email = ? AND (m.digest_id IS NULL OR d.status = 'pending')",
            (email,),
        )
        return [Match(pid, _reasons_from(reasons), score) for pid, reasons, score in rows]

    def recent_matches(self, email: str, since: datetime, limit: int) -> list[RecentMatch]:
        """This subscriber's matches recorded since `since`, newest first, at most `limit`:
        those a digest left out for room as well as those it showed."""
        rows = self.db.execute(
            "SELECT m.paper_id, m.reasons, m.score, m.matched_at, d.id, d.status, d.created"
            " FROM matches m JOIN subscribers s ON s.id = m.subscriber_id"
            " LEFT JOIN digests d ON d.id = m.digest_id"
            " WHERE s.email = ? AND m.matched_at >= ?"
            " ORDER BY m.matched_at DESC, m.digest_id DESC LIMIT ?",
            (email, _iso(since), limit),
        )
        return [
            RecentMatch(
                Match(pid, _reasons_from(reasons), score), _dt(at) or since, did, status, _dt(made)
            )
            for pid, reasons, score, at, did, status, made in rows
        ]

    def matched_paper_ids(self, email: str) -> set[str]:
        """Every paper ever matched for this subscriber (delivered or waiting)."""
        rows = self.db.execute(
            "SELECT m.paper_id FROM matches m JOIN subscribers s ON s.id = m.subscriber_id"
            " WHERE s.email = ?",
            (email,),
        )
        return {pid for (pid,) in rows}

    def last_sent(self, email: str) -> datetime | None:
        """When this subscriber's last digest was accepted by the mail server."""
        row = self.db.execute(
            "SELECT max(d.sent_at) FROM digests d JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE s.email = ? AND d.status = 'sent'",
            (email,),
        ).fetchone()
        return _dt(row[0]) if row else None

    def still_sendable(self, digest_id: int) -> bool:
        """Whether this digest is still pending and its subscriber still active, right now.

        The outbox is read ahead a batch at a time; the web app (another process) may have
        unsubscribed someone since. One primary-key lookup, asked just before each send.
        """
        row = self.db.execute(
            "SELECT 1 FROM digests d JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.id = ? AND d.status = 'pending' AND s.status = 'active'",
            (digest_id,),
        ).fetchone()
        return row is not None

    def mark_sent(
        self, digest_id: int, now: datetime | None = None, status: DigestStatus = "sent"
    ) -> None:
        """The server accepted this digest (or `--no-send` skipped it): never send it again.

        One statement, committed at once (autocommit): called after every accepted message,
        it is what keeps a killed run from sending that message again.
        """
        self.db.execute(
            "UPDATE digests SET status = ?, sent_at = ?, attempts = attempts + 1 WHERE id = ?",
            (status, _iso(now or utcnow()), digest_id),
        )

    def begin_transmission(self, digest_id: int, limit: int) -> int | None:
        """Count one more transmission of this pending digest, committed before it goes out.

        Returns the new count, or None when the digest is no longer pending or has gone out
        `limit` times already without a verdict (then it must not go out again). Called
        right before the final dot: a run killed after it still knows the server may have it.
        """
        row = self.db.execute(
            "UPDATE digests SET transmissions = transmissions + 1"
            " WHERE id = ? AND status = 'pending' AND transmissions < ? RETURNING transmissions",
            (digest_id, limit),
        ).fetchone()
        return None if row is None else int(row[0])

    def take_back_transmission(self, digest_id: int) -> None:
        """The server answered the transmission with a refusal: it does not have the message."""
        self.db.execute(
            "UPDATE digests SET transmissions = transmissions - 1"
            " WHERE id = ? AND transmissions > 0",
            (digest_id,),
        )

    def mark_unconfirmed(self, digest_id: int, error: str) -> None:
        """Sent as often as allowed with no verdict heard: never again; its papers count as sent."""
        self.db.execute(
            "UPDATE digests SET status = 'unconfirmed', attempts = attempts + 1, last_error = ?"
            " WHERE id = ?",
            (error, digest_id),
        )

    def settle_unconfirmed(self, limit: int) -> int:
        """Pending digests that went out `limit` times with no verdict (a run was killed while
        waiting) become unconfirmed; returns how many."""
        cursor = self.db.execute(
            "UPDATE digests SET status = 'unconfirmed', last_error = ?"
            " WHERE status = 'pending' AND transmissions >= ?",
            (f"went out {limit} times with no verdict heard (a run stopped waiting for it)", limit),
        )
        return int(cursor.rowcount)

    def pending_count(self) -> int:
        """How many digests of active subscribers wait to be sent."""
        row = self.db.execute(
            "SELECT count(*) FROM digests d JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.status = 'pending' AND s.status = 'active'"
        ).fetchone()
        return int(row[0])

    def skip_all_pending(self, now: datetime | None = None) -> int:
        """`--no-send`: every pending digest of an active subscriber counts as delivered."""
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE digests SET status = 'skipped', sent_at = ? WHERE status = 'pending'"
                " AND subscriber_id IN (SELECT id FROM subscribers WHERE status = 'active')",
                (_iso(now or utcnow()),),
            )
        return int(cursor.rowcount)

    def mark_attempt_failed(self, digest_id: int, error: str, *, permanent: bool) -> None:
        """A send failed: a permanent refusal ends the digest, anything else leaves it pending."""
        with self.transaction():
            self.db.execute(
                "UPDATE digests SET attempts = attempts + 1, last_error = ?,"
                " status = CASE WHEN ? THEN 'failed' ELSE status END WHERE id = ?",
                (error, permanent, digest_id),
            )

    # --- bounces and operator events ---------------------------------------------------

    def clear_hard_bounces(self, subscriber_id: int) -> None:
        """A digest reached this subscriber: earlier refusals are no longer "in a row"."""
        self.db.execute(
            "UPDATE subscribers SET hard_bounces = 0 WHERE id = ? AND hard_bounces != 0",
            (subscriber_id,),
        )

    def record_bounce(
        self,
        digest_id: int,
        subscriber_id: int,
        error: str,
        *,
        suspend_after: int,
        now: datetime | None = None,
    ) -> bool:
        """A permanent refusal: the digest fails, and the `suspend_after`-th in a row suspends.

        Returns True when this bounce suspended the subscriber; a `subscriber_suspended`
        event then waits for the operator's notice (`unnotified_events`).
        """
        stamp = _iso(now or utcnow())
        with self.transaction():
            self.db.execute(
                "UPDATE digests SET status = 'failed', attempts = attempts + 1, last_error = ?"
                " WHERE id = ?",
                (error, digest_id),
            )
            cursor = self.db.execute(
                "UPDATE subscribers SET hard_bounces = hard_bounces + 1,"
                " status = CASE WHEN hard_bounces + 1 >= ? THEN 'suspended' ELSE status END,"
                " updated = ? WHERE id = ? AND status = 'active' RETURNING status, hard_bounces",
                (suspend_after, stamp, subscriber_id),
            )
            row = cursor.fetchone()
            suspended = row is not None and row[0] == "suspended"
            if suspended:
                self.db.execute(
                    "INSERT INTO events (at, kind, subscriber_id, detail)"
                    " VALUES (?, 'subscriber_suspended', ?, ?)",
                    (stamp, subscriber_id, f"{row[1]} hard bounces in a row; last: {error}"),
                )
        return suspended

    def unnotified_events(self) -> list[Event]:
        """Operator events not yet reported, oldest first."""
        return self._events("WHERE e.notified_at IS NULL")

    def events(self, kind: str | None = None) -> list[Event]:
        """Every operator event (of this kind), oldest first."""
        return self._events("WHERE e.kind = ?", kind) if kind else self._events("")

    def _events(self, where: str, *params: Any) -> list[Event]:
        rows = self.db.execute(
            "SELECT e.id, e.at, e.kind, s.email, e.detail, e.notified_at FROM events e"
            f" LEFT JOIN subscribers s ON s.id = e.subscriber_id {where} ORDER BY e.id",
            params,
        )
        return [
            Event(id, _dt(at) or utcnow(), kind, email, detail, _dt(notified))
            for id, at, kind, email, detail, notified in rows
        ]

    def mark_events_notified(self, ids: Iterable[int], now: datetime | None = None) -> None:
        """These events have been reported to the operator."""
        with self.transaction():
            self.db.conn.executemany(
                "UPDATE events SET notified_at = ? WHERE id = ?",
                [(_iso(now or utcnow()), i) for i in ids],
            )

    # --- operator alerts -----------------------------------------------------------------

    def alert_states(self) -> dict[str, AlertState]:
        """Every operator problem ever seen, by key."""
        rows = self.db.query("SELECT * FROM operator_alerts")
        return {
            row["problem"]: AlertState(
                problem=row["problem"],
                state=row["state"],
                message=row["message"],
                since=_dt(row["since"]) or utcnow(),
                told=row["told"],
                last_alert=_dt(row["last_alert"]),
            )
            for row in rows
        }

    def save_alert_state(self, alert: AlertState) -> None:
        """Remember an operator problem's state and what the operator was told."""
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO operator_alerts VALUES (?, ?, ?, ?, ?, ?)",
                (
                    alert.problem,
                    alert.state,
                    alert.message,
                    _iso(alert.since),
                    alert.told,
                    _iso(alert.last_alert),
                ),
            )

    # --- status --------------------------------------------------------------------------

    def status(self) -> StoreStatus:
        """Counts, last run and per-source health."""
        counts = dict(
            self.db.execute("SELECT status, count(*) FROM digests GROUP BY status").fetchall()
        )
        last_run = self.db.execute(
            "SELECT started, status FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        last_good = self.db.execute(
            "SELECT max(started) FROM runs WHERE status IN ('ok', 'partial')"
        ).fetchone()[0]
        oldest_pending = self.db.execute(
            "SELECT min(d.created) FROM digests d JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.status = 'pending' AND s.status = 'active'"
        ).fetchone()[0]
        return StoreStatus(
            papers=self.paper_count(),
            subscribers=len(self._subscriber_ids()),
            pending_digests=counts.get("pending", 0),
            failed_digests=counts.get("failed", 0),
            sent_digests=counts.get("sent", 0),
            last_run=_dt(last_run[0]) if last_run else None,
            last_run_status=last_run[1] if last_run else None,
            sources=tuple(self._source_health()),
            last_good_run=_dt(last_good),
            oldest_pending=_dt(oldest_pending),
            unconfirmed_digests=counts.get("unconfirmed", 0),
            suspended_subscribers=self.db.execute(
                "SELECT count(*) FROM subscribers WHERE status = 'suspended'"
            ).fetchone()[0],
            bounced_subscribers=self.db.execute(
                "SELECT count(*) FROM subscribers WHERE hard_bounces > 0"
            ).fetchone()[0],
            bounces=self.recent_bounces(),
        )

    def recent_bounces(self, limit: int = 10) -> tuple[Bounce, ...]:
        """Subscribers whose last delivery was a hard bounce (suspended ones too), newest first."""
        rows = self.db.execute(
            "SELECT s.email, s.status, s.hard_bounces, d.last_error FROM subscribers s"
            " JOIN digests d ON d.id = (SELECT max(id) FROM digests"
            " WHERE subscriber_id = s.id AND status = 'failed')"
            " WHERE s.hard_bounces > 0 ORDER BY d.id DESC LIMIT ?",
            (limit,),
        )
        return tuple(
            Bounce(email, status, in_a_row, error or "") for email, status, in_a_row, error in rows
        )

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
                last_attempt=_dt(row["last_attempt"]),
                last_success=_dt(row["last_success"]),
                last_status=row["status"],
                last_error=row["error"],
                consecutive_failures=row["consecutive_failures"],
                items=row["items"] or 0,
                new=row["new"] or 0,
                failing_since=_dt(row["failing_since"]) if row["consecutive_failures"] else None,
            )

    def backup_to(self, path: Path) -> Store:
        """A copy of this store at `path` (for `--dry-run`, which must change nothing here)."""
        target = connect(path)
        self.db.conn.backup(target)
        copy = Store(sqlite_utils.Database(target))
        copy._configure()
        return copy


# --- row <-> dataclass ------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def _title_facts(title: str) -> tuple[str, bool]:
    """A title's key, and whether it is long enough to join records with different ids.

    Cached: recording one paper asks for its title several times.
    """
    return title_key(title), len(normalize_title(title)) >= MIN_TITLE_KEY_LENGTH


def _paper_to_row(paper: Paper, now: datetime) -> dict[str, Any]:
    return {
        "id": paper.id,
        "title": paper.title,
        "title_key": _title_facts(paper.title)[0],
        "authors": json.dumps(paper.authors, ensure_ascii=False),
        "abstract": paper.abstract,
        "url": paper.url,
        "arxiv_id": paper.arxiv_id,
        "doi": paper.doi,
        "published": _iso(paper.published),
        "categories": json.dumps(paper.categories),
        "links": json.dumps([[lk.label, lk.url] for lk in paper.links]),
        "sources": json.dumps(paper.sources),
        "announce_type": paper.announce_type,
        "votes": paper.votes,
        "stars": paper.stars,
        "keywords": json.dumps(paper.keywords, ensure_ascii=False),
        "organizations": json.dumps(paper.organizations, ensure_ascii=False),
        "first_seen": _iso(paper.first_seen or now),
        "updated": _iso(now),
    }


def _row_paper(row: Mapping[str, Any]) -> Paper:
    return Paper(
        id=row["id"],
        title=row["title"],
        authors=tuple(json.loads(row["authors"])),
        abstract=row["abstract"],
        url=row["url"],
        arxiv_id=row["arxiv_id"],
        doi=row["doi"],
        published=_dt(row["published"]),
        categories=tuple(json.loads(row["categories"])),
        links=tuple(Link(label, url) for label, url in json.loads(row["links"])),
        sources=tuple(json.loads(row["sources"])),
        announce_type=row["announce_type"],
        votes=row["votes"],
        stars=row["stars"],
        keywords=tuple(json.loads(row["keywords"])),
        organizations=tuple(json.loads(row["organizations"])),
        first_seen=_dt(row["first_seen"]),
    )


def _row_run(
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
        started=_dt(started) or utcnow(),
        finished=_dt(finished),
        status=status,
        new_papers=_count(found.get("new_papers")),
        matched=_count(found.get("matched")),
        sent=_count(found.get("sent")),
        failed=_count(found.get("failed")),
        errors=tuple(e for e in errors if isinstance(e, str)) if isinstance(errors, list) else (),
    )


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _subscriber_values(sub: Subscriber) -> tuple[Any, ...]:
    return (
        sub.email,
        sub.name,
        json.dumps(sub.keywords, ensure_ascii=False),
        json.dumps(sub.authors, ensure_ascii=False),
        json.dumps(sub.categories),
        json.dumps(sub.exclude, ensure_ascii=False),
        sub.max_papers,
        sub.frequency,
        sub.weekday,
        sub.send_at,
        sub.timezone,
    )


#: the subscriber columns, in the order `_subscriber_of` takes them
_SUBSCRIBER_COLUMNS = (
    "email", "name", "keywords", "authors", "categories", "exclude", "max_papers",
    "frequency", "weekday", "send_at", "timezone", "origin", "status",
)  # fmt: skip
_subscriber_columns = operator.itemgetter(*_SUBSCRIBER_COLUMNS)


def _subscriber_of(values: Sequence[Any]) -> Subscriber:
    """A Subscriber from its columns' values, in `_SUBSCRIBER_COLUMNS` order."""
    email, name, keywords, authors, categories, exclude, max_papers, *cadence = values
    frequency, weekday, send_at, timezone, origin, status = cadence
    return Subscriber(
        email=email,
        name=name,
        keywords=tuple(json.loads(keywords)),
        authors=tuple(json.loads(authors)),
        categories=tuple(json.loads(categories)),
        exclude=tuple(json.loads(exclude)),
        max_papers=max_papers,
        frequency=frequency,
        weekday=weekday,
        send_at=send_at,
        timezone=timezone,
        origin=origin,
        status=status,
    )


def _row_subscriber(row: Mapping[str, Any]) -> Subscriber:
    return _subscriber_of(_subscriber_columns(row))


def _row_record(row: Mapping[str, Any]) -> SubscriberRecord:
    return SubscriberRecord(
        subscriber=_row_subscriber(row),
        token_version=row["token_version"],
        confirmed_at=_dt(row["confirmed_at"]),
    )


@functools.lru_cache(maxsize=65536)
def _reasons_json(reasons: tuple[Reason, ...]) -> str:
    return json.dumps([[r.kind, r.alert, list(r.terms)] for r in reasons], ensure_ascii=False)


def _match_rows(
    matches: Mapping[str, Sequence[Match]], ids: Mapping[str, int], stamp: str
) -> Iterator[tuple[int, str, str, float, str]]:
    """The `matches` rows to insert, one by one: a day of 100,000 subscribers has a million.

    One Match object serves every subscriber of its alert, so its reasons are turned into
    JSON once, looked up by identity (they stay alive in `matches` meanwhile).
    """
    texts: dict[int, str] = {}
    for email, found in matches.items():
        if (sid := ids.get(email)) is None:
            continue
        for match in found:
            if (text := texts.get(id(match.reasons))) is None:
                text = texts[id(match.reasons)] = _reasons_json(match.reasons)
            yield sid, match.paper_id, text, match.score, stamp


@functools.lru_cache(maxsize=65536)
def _reasons_from(text: str) -> tuple[Reason, ...]:
    # cached: a popular alert yields the same reasons text for many subscribers
    return tuple(Reason(kind, alert, tuple(terms)) for kind, alert, terms in json.loads(text))


def _match_standing(alias: str) -> str:
    """SQL ranking a match row: 2 in a digest done with (sent, skipped, failed), 1 in a
    pending digest, 0 in none yet; of two matches of one paper the higher is kept."""
    return (
        f"(CASE WHEN {alias}.digest_id IS NULL THEN 0 WHEN (SELECT status FROM digests"
        f" WHERE id = {alias}.digest_id) = 'pending' THEN 1 ELSE 2 END)"
    )


#: larger than any digest id (SQLite rowids are signed 64-bit)
_MAX_ID = 2**63 - 1

#: what `_row_pending` reads, in its order
_PENDING_COLUMNS = ", ".join(
    [
        *("d.id", "d.subscriber_id", "d.message_id", "d.created"),
        *("s.token_version", "s.hard_bounces"),
        *(f"s.{column}" for column in _SUBSCRIBER_COLUMNS),
    ]
)


def _row_pending(row: Sequence[Any], matches: tuple[Match, ...]) -> PendingDigest:
    digest_id, subscriber_id, message_id, created, token_version, hard_bounces = row[:6]
    return PendingDigest(
        id=digest_id,
        subscriber=_subscriber_of(row[6:]),
        message_id=message_id,
        created=_dt(created) or utcnow(),
        matches=matches,
        subscriber_id=subscriber_id,
        token_version=token_version,
        hard_bounces=hard_bounces,
    )


def recent_window(days: int = 7, now: datetime | None = None) -> datetime:
    """The start of the last `days` days."""
    return (now or utcnow()) - timedelta(days=days)
