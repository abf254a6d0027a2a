"""Subscribers: those of the config file, kept in step with it, and those of the web form,
who sign up (pending), confirm, edit their alerts and unsubscribe.

A subscriber's alerts and cadence are `rows.SUBSCRIBER_SETTINGS`; every statement here
writes them all, so that a new field is stored without a change here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.models import Subscriber
from bot.store.database import Database
from bot.store.rows import (
    SUBSCRIBER,
    SUBSCRIBER_SETTINGS,
    from_iso,
    iso,
    marks,
    strings_of,
    utcnow,
)

#: what a new row is given from a Subscriber (then origin, status, created, updated)
_GIVEN = ("email", *SUBSCRIBER_SETTINGS)
_INSERT = (
    f"INSERT INTO subscribers ({', '.join(_GIVEN)}, origin, status, created, updated)"
    f" VALUES ({marks(len(_GIVEN) + 4)})"
)
#: the config file's subscribers: new ones added, known ones given the file's alerts
_SYNC = (
    f"{_INSERT} ON CONFLICT(email) DO UPDATE SET"
    f" {', '.join(f'{c} = excluded.{c}' for c in SUBSCRIBER_SETTINGS)}, origin = 'config',"
    # the file wins for alerts, never over a person's own unsubscribe:
    # only a row the file had dropped comes back to life
    " status = CASE WHEN origin = 'config' AND status = 'removed' THEN 'active' ELSE status END,"
    " updated = excluded.updated"
)
_given_values = SUBSCRIBER.writer(_GIVEN)
_settings_values = SUBSCRIBER.writer(SUBSCRIBER_SETTINGS)
_SET_SETTINGS = ", ".join(f"{c} = ?" for c in SUBSCRIBER_SETTINGS)
#: what `_record` reads, in its order
_RECORD = f"token_version, confirmed_at, {SUBSCRIBER.select()}"


@dataclass(frozen=True, slots=True)
class SubscriberRecord:
    """A subscriber in any status, with the token version their links must carry."""

    subscriber: Subscriber
    token_version: int
    confirmed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """A subscriber as the operator's list shows them: settings, bounces, last digest."""

    subscriber: Subscriber
    hard_bounces: int
    served_at: datetime | None
    created: datetime | None


@dataclass(frozen=True, slots=True)
class RosterDetails:
    """One subscriber looked up by the operator: the list entry and what waits for them."""

    entry: RosterEntry
    confirmed_at: datetime | None
    last_digest: datetime | None
    pending_digests: int
    feedback: int


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What an import did: addresses added (and which), and known ones given new alerts."""

    added: tuple[str, ...]
    updated: int


#: what `_entry` reads, in its order
_ENTRY = f"hard_bounces, served_at, created, {SUBSCRIBER.select()}"


@dataclass(frozen=True, slots=True)
class SignupResult:
    """What a web sign-up did: `confirm` (now pending: mail a confirmation link) or `known`
    (already active: nothing changed, mail the manage link)."""

    action: str
    record: SubscriberRecord


class Subscribers:
    """The subscribers table: who gets digests, with which alerts, and their web links."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def sync_config(self, subscribers: Sequence[Subscriber], now: datetime | None = None) -> None:
        """Make the store's config-file subscribers exactly those of the config file."""
        stamp = iso(now or utcnow())
        with self.db.transaction():
            # one statement for all: 100,000 execute calls cost seconds
            self.db.executemany(
                _SYNC,
                ((*_given_values(sub), "config", "active", stamp, stamp) for sub in subscribers),
            )
            self.db.fill_temp_ids(
                "config_emails", (s.email for s in subscribers), "email TEXT PRIMARY KEY"
            )
            self.db.execute(
                "UPDATE subscribers SET status = 'removed', updated = ? WHERE origin = 'config'"
                " AND status = 'active' AND email NOT IN (SELECT email FROM temp.config_emails)",
                (stamp,),
            )

    def active(self) -> list[Subscriber]:
        """Every subscriber who should receive digests."""
        rows = self.db.execute(
            f"SELECT {SUBSCRIBER.select()} FROM subscribers WHERE status = 'active' ORDER BY id"
        )
        return [SUBSCRIBER.read(row) for row in rows]

    def liked_keys(self) -> set[str]:
        """The seed keys of active subscribers who want recommendations (`recommend` > 0)."""
        rows = self.db.execute(
            "SELECT likes FROM subscribers"
            " WHERE status = 'active' AND recommend > 0 AND likes != '[]'"
        )
        return {key for (likes,) in rows for key in strings_of(likes)}

    def active_ids(self) -> dict[str, int]:
        """Every active subscriber's row id, by address."""
        return dict(self.db.execute("SELECT email, id FROM subscribers WHERE status = 'active'"))

    def find_active(self, email: str) -> Subscriber | None:
        """The active subscriber with this address, if any."""
        row = self.db.execute(
            f"SELECT {SUBSCRIBER.select()} FROM subscribers WHERE email = ? AND status = 'active'",
            (email,),
        ).fetchone()
        return SUBSCRIBER.read(row) if row else None

    def find(self, email: str) -> SubscriberRecord | None:
        """The subscriber with this address whatever their status, with their token version."""
        row = self.db.execute(
            f"SELECT {_RECORD} FROM subscribers WHERE email = ?", (email,)
        ).fetchone()
        return _record(row) if row else None

    def id_of(self, email: str) -> int | None:
        """The row id of the subscriber with this address (whatever their status), if any."""
        row = self.db.execute("SELECT id FROM subscribers WHERE email = ?", (email,)).fetchone()
        return int(row[0]) if row else None

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
                from_iso(mark),
            )
            for sid, email, freq, day, at, zone, mark in rows
        ]

    # --- the web form's subscribers --------------------------------------------------------

    def sign_up(self, sub: Subscriber, now: datetime | None = None) -> SignupResult:
        """A web sign-up: a new or lapsed address becomes pending, an active one is left alone.

        A config-file address keeps the file's alerts; one the file dropped becomes a web
        subscriber with the submitted alerts.
        """
        stamp = iso(now or utcnow())
        with self.db.transaction():
            record = self.find(sub.email)
            if record is None:
                self.db.execute(_INSERT, (*_given_values(sub), "web", "pending", stamp, stamp))
            elif record.subscriber.status == "active":
                return SignupResult("known", record)
            elif record.subscriber.origin == "config" and record.subscriber.status != "removed":
                self.db.execute(
                    "UPDATE subscribers SET status = 'pending', updated = ? WHERE email = ?",
                    (stamp, sub.email),
                )
            else:
                self._write_settings(sub, stamp, sets="origin = 'web', status = 'pending'")
            fresh = self.find(sub.email)
        assert fresh is not None
        return SignupResult("confirm", fresh)

    def confirm(
        self, email: str, version: int, now: datetime | None = None
    ) -> SubscriberRecord | None:
        """Activate a pending subscriber; None when the link's version or status no longer fit."""
        stamp = iso(now or utcnow())
        with self.db.transaction():
            self.db.execute(
                "UPDATE subscribers SET status = 'active', confirmed_at = coalesce(confirmed_at,"
                " ?), updated = ? WHERE email = ? AND token_version = ? AND status = 'pending'",
                (stamp, stamp, email, version),
            )
            record = self.find(email)
        if record is None or record.token_version != version:
            return None
        return record if record.subscriber.status == "active" else None

    def update_alerts(
        self, sub: Subscriber, version: int, now: datetime | None = None
    ) -> SubscriberRecord | None:
        """Save a web subscriber's alerts and cadence; None when the link or origin do not allow."""
        stamp = iso(now or utcnow())
        with self.db.transaction():
            changed = self._write_settings(
                sub,
                stamp,
                where="token_version = ? AND origin = 'web' AND status IN ('active', 'pending')",
                params=(version,),
            )
            record = self.find(sub.email)
        return record if changed else None

    def unsubscribe(self, email: str, version: int, now: datetime | None = None) -> bool:
        """Stop all mail now: unsubscribed, every earlier link void, pending digests dropped."""
        stamp = iso(now or utcnow())
        with self.db.transaction():
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

    # --- the operator's roster (`paperbot subscribers`) ---------------------------------------

    def roster(self, status: str | None = None, origin: str | None = None) -> list[RosterEntry]:
        """Every subscriber with this status and origin (None: any), by address."""
        rows = self.db.execute(
            f"SELECT {_ENTRY} FROM subscribers WHERE (?1 IS NULL OR status = ?1)"
            " AND (?2 IS NULL OR origin = ?2) ORDER BY email",
            (status, origin),
        )
        return [_entry(row) for row in rows]

    def counts(self) -> dict[tuple[str, str], int]:
        """How many subscribers there are of each (origin, status)."""
        rows = self.db.execute(
            "SELECT origin, status, count(*) FROM subscribers GROUP BY origin, status"
        )
        return {(origin, status): count for origin, status, count in rows}

    def details(self, email: str) -> RosterDetails | None:
        """One subscriber with their last digest, digests waiting and feedback, if known."""
        row = self.db.execute(
            f"SELECT id, confirmed_at, {_ENTRY} FROM subscribers WHERE email = ?", (email,)
        ).fetchone()
        if row is None:
            return None
        sid, confirmed_at, *entry = row
        last, pending = self.db.execute(
            "SELECT max(CASE WHEN status = 'sent' THEN sent_at END),"
            " count(CASE WHEN status = 'pending' THEN 1 END) FROM digests WHERE subscriber_id = ?",
            (sid,),
        ).fetchone()
        (feedback,) = self.db.execute(
            "SELECT count(*) FROM feedback WHERE subscriber_id = ?", (sid,)
        ).fetchone()
        return RosterDetails(
            _entry(entry), from_iso(confirmed_at), from_iso(last), pending, feedback
        )

    def set_status(
        self, email: str, status: str, *, only: Sequence[str], now: datetime | None = None
    ) -> bool:
        """Give the subscriber `status` if theirs is one of `only`; False when it is not.

        Leaving `active` voids their links (the token version moves on) and drops the
        digests waiting for them; becoming `active` again clears their bounce count.
        """
        stamp = iso(now or utcnow())
        with self.db.transaction():
            row = self.db.execute(
                f"SELECT id FROM subscribers WHERE email = ? AND status IN ({marks(len(only))})",
                (email, *only),
            ).fetchone()
            if row is None:
                return False
            stopping = status != "active"
            self.db.execute(
                "UPDATE subscribers SET status = ?, token_version = token_version + ?,"
                " hard_bounces = CASE WHEN ? THEN hard_bounces ELSE 0 END, updated = ?"
                " WHERE id = ?",
                (status, int(stopping), stopping, stamp, row[0]),
            )
            if stopping:
                self.db.execute(
                    "UPDATE digests SET status = 'dropped' WHERE status = 'pending'"
                    " AND subscriber_id = ?",
                    (row[0],),
                )
        return True

    def import_many(
        self, subscribers: Sequence[Subscriber], status: str, now: datetime | None = None
    ) -> ImportCounts:
        """Add every new address with `status`, and give known store (not config-file)
        subscribers the alerts and cadence given, keeping their status: all or nothing.

        One statement for all rows (100,000 execute calls cost seconds); the addresses
        already there are read once, inside the same transaction.
        """
        stamp = iso(now or utcnow())
        upsert = (
            f"{_INSERT} ON CONFLICT(email) DO UPDATE SET"
            f" {', '.join(f'{c} = excluded.{c}' for c in SUBSCRIBER_SETTINGS)},"
            " updated = excluded.updated WHERE origin != 'config'"
        )
        with self.db.transaction():
            known = {e.lower() for (e,) in self.db.execute("SELECT email FROM subscribers")}
            self.db.executemany(
                upsert, ((*_given_values(s), "web", status, stamp, stamp) for s in subscribers)
            )
        added = tuple(s.email for s in subscribers if s.email.lower() not in known)
        return ImportCounts(added, len(subscribers) - len(added))

    def _write_settings(
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
            f"UPDATE subscribers SET {_SET_SETTINGS}, updated = ?{extra}"
            f" WHERE email = ? AND {where}",
            (*_settings_values(sub), stamp, sub.email, *params),
        )
        return cursor.rowcount == 1


def _entry(row: Sequence[Any]) -> RosterEntry:
    """The roster entry from a row of `_ENTRY`."""
    hard_bounces, served_at, created, *subscriber = row
    return RosterEntry(
        SUBSCRIBER.read(subscriber), hard_bounces, from_iso(served_at), from_iso(created)
    )


def _record(row: Sequence[Any]) -> SubscriberRecord:
    """The record from a row of `_RECORD`."""
    token_version, confirmed_at, *subscriber = row
    return SubscriberRecord(SUBSCRIBER.read(subscriber), token_version, from_iso(confirmed_at))
