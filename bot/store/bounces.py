"""Hard bounces: a mail server's permanent refusals of a subscriber's address, counted in
a row; the `suspend_after`-th suspends the subscriber and leaves an event for the operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.models import SubscriberStatus
from bot.store.database import Database
from bot.store.rows import iso, utcnow


@dataclass(frozen=True, slots=True)
class Bounce:
    """A subscriber whose address the mail server refused for good lately."""

    email: str
    status: SubscriberStatus  # active, or suspended after too many in a row
    in_a_row: int
    error: str


class Bounces:
    """Refusals in a row per subscriber (`hard_bounces`), and the suspensions they cause."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
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
        event then waits for the operator's notice (`Notices.unnotified_events`).
        """
        stamp = iso(now or utcnow())
        with self.db.transaction():
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

    def clear(self, subscriber_id: int) -> None:
        """A digest reached this subscriber: earlier refusals are no longer "in a row"."""
        self.db.execute(
            "UPDATE subscribers SET hard_bounces = 0 WHERE id = ? AND hard_bounces != 0",
            (subscriber_id,),
        )

    def recent(self, limit: int = 10) -> tuple[Bounce, ...]:
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

    def counts(self) -> tuple[int, int]:
        """(suspended, bounced): subscribers suspended after hard bounces, and those whose last
        delivery was refused for good (suspended ones too)."""
        suspended = self.db.execute(
            "SELECT count(*) FROM subscribers WHERE status = 'suspended'"
        ).fetchone()[0]
        bounced = self.db.execute(
            "SELECT count(*) FROM subscribers WHERE hard_bounces > 0"
        ).fetchone()[0]
        return int(suspended), int(bounced)


#: what became of a message read back from the bounce mailbox (`mail_read.outcome`)
MailOutcome = Literal["hard_bounce", "soft_bounce", "unsubscribed", "ignored", "reported"]


class MailRead:
    """Messages read back from the bounce mailbox, each recorded once with its effect.

    The record and the effect (a hard bounce counted, an unsubscribe) commit together, before
    the message is moved: a crash before the commit leaves the message new and uncounted, a
    crash after it leaves a message whose identity is known, skipped on the next read.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def known(self, identity: str) -> bool:
        """Whether this message was read (and dealt with, or reported) before."""
        row = self.db.execute("SELECT 1 FROM mail_read WHERE identity = ?", (identity,))
        return row.fetchone() is not None

    def outcome(self, identity: str) -> str | None:
        """What became of this message when it was read, if it was."""
        row = self.db.execute("SELECT outcome FROM mail_read WHERE identity = ?", (identity,))
        found = row.fetchone()
        return None if found is None else str(found[0])

    def is_subscriber(self, subscriber_id: int) -> bool:
        """Whether this row id is a subscriber's (a VERP tag names one by id)."""
        row = self.db.execute("SELECT 1 FROM subscribers WHERE id = ?", (subscriber_id,))
        return row.fetchone() is not None

    def outcomes(self) -> list[tuple[str, str, str | None, str]]:
        """(identity, outcome, subscriber's address, detail) of every message read, in order."""
        return list(
            self.db.execute(
                "SELECT m.identity, m.outcome, s.email, m.detail FROM mail_read m"
                " LEFT JOIN subscribers s ON s.id = m.subscriber_id ORDER BY m.at, m.identity"
            )
        )

    def counts_since(self, since: datetime) -> dict[str, int]:
        """How many messages of each outcome were read back since then."""
        rows = self.db.execute(
            "SELECT outcome, count(*) FROM mail_read WHERE at >= ? GROUP BY outcome",
            (iso(since),),
        )
        return {str(outcome): int(n) for outcome, n in rows}

    def record(
        self,
        identity: str,
        outcome: MailOutcome,
        subscriber_id: int | None,
        detail: str,
        *,
        suspend_after: int,
        now: datetime | None = None,
    ) -> bool:
        """Record one message and apply its effect in one transaction; False if it was known.

        A hard bounce counts like a 5xx at send time (the `suspend_after`-th in a row
        suspends, with a `subscriber_suspended` event); a soft one is only recorded; an
        unsubscribe stops all mail and leaves an `unsubscribed_by_mail` event.
        """
        stamp = iso(now or utcnow())
        with self.db.transaction():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO mail_read (identity, at, outcome, subscriber_id, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                (identity, stamp, outcome, subscriber_id, detail),
            )
            if cursor.rowcount == 0:
                return False
            if subscriber_id is not None and outcome == "hard_bounce":
                self._count_hard(subscriber_id, detail, suspend_after, str(stamp))
            elif subscriber_id is not None and outcome == "unsubscribed":
                self._unsubscribe(subscriber_id, detail, str(stamp))
        return True

    def _count_hard(self, subscriber_id: int, detail: str, suspend_after: int, stamp: str) -> None:
        row = self.db.execute(
            "UPDATE subscribers SET hard_bounces = hard_bounces + 1,"
            " status = CASE WHEN hard_bounces + 1 >= ? THEN 'suspended' ELSE status END,"
            " updated = ? WHERE id = ? AND status = 'active' RETURNING status, hard_bounces",
            (suspend_after, stamp, subscriber_id),
        ).fetchone()
        if row is not None and row[0] == "suspended":
            self.db.execute(
                "INSERT INTO events (at, kind, subscriber_id, detail)"
                " VALUES (?, 'subscriber_suspended', ?, ?)",
                (stamp, subscriber_id, f"{row[1]} hard bounces in a row; last: {detail}"),
            )

    def _unsubscribe(self, subscriber_id: int, detail: str, stamp: str) -> None:
        # as Subscribers.unsubscribe: every earlier link void, pending digests dropped
        changed = self.db.execute(
            "UPDATE subscribers SET status = 'unsubscribed', token_version = token_version + 1,"
            " updated = ? WHERE id = ? AND status != 'unsubscribed'",
            (stamp, subscriber_id),
        ).rowcount
        if changed:
            self.db.execute(
                "UPDATE digests SET status = 'dropped' WHERE status = 'pending'"
                " AND subscriber_id = ?",
                (subscriber_id,),
            )
            self.db.execute(
                "INSERT INTO events (at, kind, subscriber_id, detail)"
                " VALUES (?, 'unsubscribed_by_mail', ?, ?)",
                (stamp, subscriber_id, detail),
            )
