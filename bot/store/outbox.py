"""The digest outbox: a digest is written with its matches and a fixed Message-ID (pending)
before it is sent, and marked sent only once the mail server accepted it.

A crash or a dead server leaves it pending and the next run sends it; a digest that went
out twice with no verdict heard is never sent again (`unconfirmed`). The send loop reads
the outbox a batch at a time and marks each digest with one autocommit statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.models import RECOMMENDED, DigestStatus, Match, Subscriber
from bot.store.database import Database
from bot.store.matches import Matches
from bot.store.rows import SUBSCRIBER, from_iso, iso, utcnow

#: larger than any digest id (SQLite rowids are signed 64-bit)
_MAX_ID = 2**63 - 1

#: what `_pending` reads, in its order
_PENDING_COLUMNS = (
    "d.id, d.subscriber_id, d.message_id, d.created, s.token_version, s.hard_bounces,"
    f" {SUBSCRIBER.select('s')}"
)


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


#: a stored recommendation's reasons start so (see `reasons_json`): one who turned the section
#: off (`recommend: 0`) after it was recommended gets it in no digest, nor a digest of it alone
_RECOMMENDED_LIKE = f'[["{RECOMMENDED}"%'


class Outbox:
    """The digests table: digests made, waiting, sent, failed, dropped."""

    def __init__(self, db: Database, matches: Matches) -> None:
        self.db = db
        self.matches = matches

    def create(
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
        stamp = iso(now or utcnow())
        with self.db.transaction():
            chosen = ""
            if subscriber_ids is not None:
                self.db.fill_temp_ids("chosen_subscribers", subscriber_ids)
                chosen = " AND m.subscriber_id IN (SELECT id FROM temp.chosen_subscribers)"
            before = self.db.execute("SELECT coalesce(max(id), 0) FROM digests").fetchone()[0]
            # a 128-bit random left part, like uuid4().hex, made by SQLite in the same pass
            cursor = self.db.execute(
                "INSERT INTO digests (subscriber_id, message_id, status, created)"
                " SELECT subscriber_id, '<' || lower(hex(randomblob(16))) || '@' || ? || '>',"
                " 'pending', ? FROM (SELECT DISTINCT m.subscriber_id FROM matches m"
                " JOIN subscribers s ON s.id = m.subscriber_id"
                f" WHERE m.digest_id IS NULL AND s.status = 'active'{chosen}"
                f" AND (s.recommend > 0 OR m.reasons NOT LIKE '{_RECOMMENDED_LIKE}'))"
                " ORDER BY subscriber_id",
                (domain, stamp),
            )
            created = cursor.rowcount
            self.db.execute(
                "UPDATE matches SET digest_id = d.id FROM digests d"
                " JOIN subscribers s ON s.id = d.subscriber_id"
                " WHERE d.id > ? AND d.subscriber_id = matches.subscriber_id"
                " AND matches.digest_id IS NULL"
                f" AND (s.recommend > 0 OR matches.reasons NOT LIKE '{_RECOMMENDED_LIKE}')",
                (before,),
            )
            if served and subscriber_ids is not None:
                self.db.execute(
                    "UPDATE subscribers SET served_at = ?"
                    " WHERE id IN (SELECT id FROM temp.chosen_subscribers)",
                    (stamp,),
                )
        return int(created)

    def drop_inactive(self) -> int:
        """Pending digests of subscribers no longer active are dropped, never sent."""
        with self.db.transaction():
            cursor = self.db.execute(
                "UPDATE digests SET status = 'dropped' WHERE status = 'pending' AND"
                " subscriber_id IN (SELECT id FROM subscribers WHERE status != 'active')"
            )
        return cursor.rowcount

    # --- what waits ---------------------------------------------------------------------------

    def pending(self) -> list[PendingDigest]:
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
            matches = self.matches.of_digests([row[0] for row in rows])
            yield [_pending(row, matches.get(row[0], ())) for row in rows]

    def pending_ids(self, after: int, limit: int) -> list[int]:
        """The ids of the next `limit` pending digests of active subscribers after id `after`."""
        rows = self.db.execute(
            "SELECT d.id FROM digests d JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.status = 'pending' AND d.id > ? AND s.status = 'active'"
            " ORDER BY d.id LIMIT ?",
            (after, limit),
        )
        return [digest_id for (digest_id,) in rows]

    def pending_count(self) -> int:
        """How many digests of active subscribers wait to be sent."""
        row = self.db.execute(
            "SELECT count(*) FROM digests d JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.status = 'pending' AND s.status = 'active'"
        ).fetchone()
        return int(row[0])

    def oldest_pending(self) -> datetime | None:
        """When the oldest digest of an active subscriber still waiting was made."""
        row = self.db.execute(
            "SELECT min(d.created) FROM digests d JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.status = 'pending' AND s.status = 'active'"
        ).fetchone()
        return from_iso(row[0])

    def counts(self) -> dict[str, int]:
        """How many digests there are in each status (pending, sent, failed...)."""
        return dict(self.db.execute("SELECT status, count(*) FROM digests GROUP BY status"))

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

    # --- what happened to a digest ------------------------------------------------------------

    def mark_sent(
        self, digest_id: int, now: datetime | None = None, status: DigestStatus = "sent"
    ) -> None:
        """The server accepted this digest (or `--no-send` skipped it): never send it again.

        One statement, committed at once (autocommit): called after every accepted message,
        it is what keeps a killed run from sending that message again.
        """
        self.db.execute(
            "UPDATE digests SET status = ?, sent_at = ?, attempts = attempts + 1 WHERE id = ?",
            (status, iso(now or utcnow()), digest_id),
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

    def skip_all_pending(self, now: datetime | None = None) -> int:
        """`--no-send`: every pending digest of an active subscriber counts as delivered."""
        with self.db.transaction():
            cursor = self.db.execute(
                "UPDATE digests SET status = 'skipped', sent_at = ? WHERE status = 'pending'"
                " AND subscriber_id IN (SELECT id FROM subscribers WHERE status = 'active')",
                (iso(now or utcnow()),),
            )
        return int(cursor.rowcount)

    def mark_attempt_failed(self, digest_id: int, error: str, *, permanent: bool) -> None:
        """A send failed: a permanent refusal ends the digest, anything else leaves it pending."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE digests SET attempts = attempts + 1, last_error = ?,"
                " status = CASE WHEN ? THEN 'failed' ELSE status END WHERE id = ?",
                (error, permanent, digest_id),
            )


def _pending(row: Sequence[Any], matches: tuple[Match, ...]) -> PendingDigest:
    """The digest from a row of `_PENDING_COLUMNS`."""
    digest_id, subscriber_id, message_id, created, token_version, hard_bounces = row[:6]
    return PendingDigest(
        id=digest_id,
        subscriber=SUBSCRIBER.read(row[6:]),
        message_id=message_id,
        created=from_iso(created) or utcnow(),
        matches=matches,
        subscriber_id=subscriber_id,
        token_version=token_version,
        hard_bounces=hard_bounces,
    )
