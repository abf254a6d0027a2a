"""Hard bounces: a mail server's permanent refusals of a subscriber's address, counted in
a row; the `suspend_after`-th suspends the subscriber and leaves an event for the operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
