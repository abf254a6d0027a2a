"""Rate limits of the web app, counted in the store so that they hold across restarts and
between its processes."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.store.database import Database
from bot.store.rows import utcnow

#: rate-limit events older than this are forgotten (the longest window the web app uses)
RATE_HORIZON = timedelta(days=1)


class RateLimit:
    """The rate_events table: one row per counted event, in named buckets."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def take_slot(
        self, bucket: str, limit: int, window: timedelta, now: datetime | None = None
    ) -> bool:
        """Count one event in `bucket` unless `limit` were counted within `window`; True if so.

        Events older than RATE_HORIZON are forgotten, so the table stays small.
        """
        moment = (now or utcnow()).timestamp()
        with self.db.transaction():
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
