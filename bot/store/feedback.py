"""Feedback: what each subscriber said of papers through a digest's "more/less like this"
links, one verdict per paper (the latest), until they remove it on the manage page."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import cast

from bot.models import Feedback, Verdict
from bot.store.database import Database
from bot.store.rows import chunked, from_iso, iso, marks, utcnow


class FeedbackTable:
    """The `feedback` table: (subscriber, paper) → verdict and when it was given."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self, subscriber_id: int, paper_id: str, verdict: Verdict, at: datetime | None = None
    ) -> None:
        """Keep this verdict on the paper, replacing an earlier one."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO feedback VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE"
                " SET verdict = excluded.verdict, at = excluded.at",
                (subscriber_id, paper_id, verdict, iso(at or utcnow())),
            )

    def remove(self, subscriber_id: int, paper_id: str) -> bool:
        """Forget the verdict on this paper; False when there was none."""
        with self.db.transaction():
            cursor = self.db.execute(
                "DELETE FROM feedback WHERE subscriber_id = ? AND paper_id = ?",
                (subscriber_id, paper_id),
            )
        return cursor.rowcount > 0

    def of_subscriber(self, subscriber_id: int) -> list[Feedback]:
        """One subscriber's verdicts, newest first."""
        return self.by_subscriber([subscriber_id]).get(subscriber_id, [])

    def by_subscriber(self, subscriber_ids: Iterable[int]) -> dict[int, list[Feedback]]:
        """The verdicts of these subscribers (those who gave any), newest first."""
        found: dict[int, list[Feedback]] = {}
        for chunk in chunked(subscriber_ids):
            rows = self.db.execute(
                "SELECT subscriber_id, paper_id, verdict, at FROM feedback"
                f" WHERE subscriber_id IN ({marks(len(chunk))}) ORDER BY at DESC, paper_id",
                chunk,
            )
            for subscriber_id, paper_id, verdict, at in rows:
                stamp = from_iso(at)
                assert stamp is not None  # NOT NULL column
                feedback = Feedback(paper_id, cast(Verdict, verdict), stamp)
                found.setdefault(subscriber_id, []).append(feedback)
        return found

    def subscriber_ids(self) -> set[int]:
        """Every subscriber who gave feedback."""
        return {row[0] for row in self.db.execute("SELECT DISTINCT subscriber_id FROM feedback")}
