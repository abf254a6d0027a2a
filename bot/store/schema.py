"""The store's schema: its migrations, in order; the store's version is how many have run.

Append only: a migration that has shipped is never edited (a store of every older version
is brought up to date by running the ones it lacks, each in its own transaction). A
migration gets sqlite-utils' Database: its `executescript` stays inside the transaction,
where the stdlib's would commit first.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from bot.store.file import APPLICATION_ID


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


def _migration_10(db: sqlite_utils.Database) -> None:
    """Recommendations: seeds and their count per subscriber, feedback, looked-up seeds."""
    db.executescript(
        """
        ALTER TABLE subscribers ADD COLUMN likes TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE subscribers ADD COLUMN recommend INTEGER NOT NULL DEFAULT 5;
        CREATE TABLE feedback (
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
            paper_id TEXT NOT NULL, verdict TEXT NOT NULL, at TEXT NOT NULL,
            PRIMARY KEY (subscriber_id, paper_id)
        ) WITHOUT ROWID;
        CREATE TABLE seed_papers (
            key TEXT PRIMARY KEY, status TEXT NOT NULL, title TEXT NOT NULL,
            abstract TEXT NOT NULL, categories TEXT NOT NULL, looked_up TEXT
        ) WITHOUT ROWID;
        """
    )


def _migration_11(db: sqlite_utils.Database) -> None:
    """Mail read back (bounces, mailed unsubscribes): each message once, with its outcome."""
    db.executescript(
        """
        CREATE TABLE mail_read (
            identity TEXT PRIMARY KEY, at TEXT NOT NULL, outcome TEXT NOT NULL,
            subscriber_id INTEGER REFERENCES subscribers(id), detail TEXT NOT NULL
        ) WITHOUT ROWID;
        """
    )


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
    _migration_10,
    _migration_11,
)
SCHEMA_VERSION = len(MIGRATIONS)
