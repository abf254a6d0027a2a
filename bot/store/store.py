"""The seen-store: one SQLite connection and a part per kind of data over it.

    store = Store.open(path)              # or: with Store.open(path) as store:
    store.papers.record(source, papers)   # papers: by canonical id, merged across sources
    store.subscribers.active()            # subscribers: config file and web sign-ups
    store.matches.add(found)              # matches: the "never twice" ledger
    store.outbox.pending_batches()        # outbox: digests, pending until the server accepts
    store.feedback / store.seed_papers    # recommendations: "more/less like this", seeds
    store.bounces / store.mail_read / store.health / store.notices / store.ratelimit
    store.retention.apply(rules)          # retention: forget what is old, reclaim space
    store.close()

Each part is a small class in its own module; `db` is the connection they share
(`database`), `rows` how values are stored, `schema` the migrations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType

from bot.models import RunStatus
from bot.store.bounces import Bounce, Bounces, MailRead
from bot.store.database import Database
from bot.store.feedback import FeedbackTable
from bot.store.file import BUSY_TIMEOUT
from bot.store.health import Health, SourceHealth
from bot.store.matches import Matches
from bot.store.notices import Notices
from bot.store.outbox import Outbox
from bot.store.papers import Papers
from bot.store.ratelimit import RateLimit
from bot.store.retention import Retention
from bot.store.rows import utcnow
from bot.store.seedpapers import KnownSeeds, SeedPapers
from bot.store.subscribers import Subscribers

#: how far back `paperbot status` counts the mail read back from the bounce mailbox
READ_BACK_DAYS = 7


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
    #: messages read back from the bounce mailbox in the last READ_BACK_DAYS, by outcome
    read_back: Mapping[str, int] = field(default_factory=dict)


class Store:
    """The seen-store, migrated to the current schema: its parts share one connection."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.papers = Papers(db)
        self.subscribers = Subscribers(db)
        self.matches = Matches(db, self.subscribers)
        self.outbox = Outbox(db, self.matches)
        self.bounces = Bounces(db)
        self.mail_read = MailRead(db)
        self.health = Health(db)
        self.notices = Notices(db)
        self.ratelimit = RateLimit(db)
        self.feedback = FeedbackTable(db)
        self.seed_papers = SeedPapers(db)
        self.retention = Retention(db)

    @classmethod
    def open(cls, path: Path, *, busy_timeout: float = BUSY_TIMEOUT) -> Store:
        """Open the store at `path`; only when no file is there, make one (and its folder).

        A file that is not paperbot's store (empty, truncated, another application's) is
        refused with StoreUnusable; `busy_timeout` is how long a statement waits for
        another process's write.
        """
        return cls(Database.open(path, busy_timeout=busy_timeout))

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def backup_to(self, path: Path) -> Store:
        """A copy of this store at `path` (for `--dry-run`, which must change nothing here)."""
        return Store(self.db.backup_to(path))

    def probe(self) -> None:
        """Read a row and take the write lock for a moment, writing nothing: a StoreError
        (busy, damaged, ...) when the store could not serve a request now."""
        self.db.execute("SELECT id FROM subscribers LIMIT 1").fetchall()
        with self.db.transaction():
            pass

    def known_seeds(self, keys: Iterable[str]) -> KnownSeeds:
        """What the store knows of these seed keys: the papers table first (by arXiv id, DOI
        or title), then the answers of earlier lookups for the rest."""
        wanted = list(dict.fromkeys(keys))
        papers = self.papers.find_seed_papers(wanted)
        return KnownSeeds(papers, self.seed_papers.get(k for k in wanted if k not in papers))

    def status(self) -> StoreStatus:
        """Counts, last run and per-source health."""
        digests = self.outbox.counts()
        last_run, last_run_status = self.health.last_run()
        suspended, bounced = self.bounces.counts()
        return StoreStatus(
            papers=self.papers.count(),
            subscribers=len(self.subscribers.active_ids()),
            pending_digests=digests.get("pending", 0),
            failed_digests=digests.get("failed", 0),
            sent_digests=digests.get("sent", 0),
            last_run=last_run,
            last_run_status=last_run_status,
            sources=self.health.sources(),
            last_good_run=self.health.last_good_run(),
            oldest_pending=self.outbox.oldest_pending(),
            unconfirmed_digests=digests.get("unconfirmed", 0),
            suspended_subscribers=suspended,
            bounced_subscribers=bounced,
            bounces=self.bounces.recent(),
            read_back=self.mail_read.counts_since(utcnow() - timedelta(days=READ_BACK_DAYS)),
        )
