"""What the operator should hear about and what they were told: events (a subscriber
suspended), reported once, and the state of each operator problem (a broken source, SMTP).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.store.database import Database
from bot.store.rows import Columns, from_iso, iso, marks, utcnow


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


class Notices:
    """The events and operator_alerts tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

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
            Event(id, from_iso(at) or utcnow(), kind, email, detail, from_iso(notified))
            for id, at, kind, email, detail, notified in rows
        ]

    def mark_events_notified(self, ids: Iterable[int], now: datetime | None = None) -> None:
        """These events have been reported to the operator."""
        with self.db.transaction():
            self.db.executemany(
                "UPDATE events SET notified_at = ? WHERE id = ?",
                [(iso(now or utcnow()), i) for i in ids],
            )

    def alert_states(self) -> dict[str, AlertState]:
        """Every operator problem ever seen, by key."""
        rows = self.db.execute(f"SELECT {_ALERT.select()} FROM operator_alerts")
        return {alert.problem: alert for alert in map(_ALERT.read, rows)}

    def save_alert_state(self, alert: AlertState) -> None:
        """Remember an operator problem's state and what the operator was told."""
        with self.db.transaction():
            self.db.execute(
                f"INSERT OR REPLACE INTO operator_alerts ({_ALERT.select()})"
                f" VALUES ({marks(len(_ALERT.names))})",
                _ALERT.values(alert),
            )


#: the operator_alerts table's columns: an AlertState's
_ALERT = Columns(AlertState)
