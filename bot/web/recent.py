"""The papers of the last days, kept in memory while the store's copy of them is unchanged.

Every preview runs alerts over a week of papers; reading them from SQLite costs more than
matching them, and they change only when a run records something. A cheap fingerprint
(`store.papers.fingerprint`) says when the copy must be read again.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from bot.models import Paper
from bot.store.rows import utcnow
from bot.store.store import Store


class RecentPapers:
    """The papers first seen in the last `days` days, shared by the requests of one app."""

    def __init__(self, days: int) -> None:
        self.window = timedelta(days=days)
        self._lock = threading.Lock()
        self._since: datetime | None = None
        self._fingerprint: tuple[int, str | None] | None = None
        self._papers: list[Paper] = []

    def get(self, store: Store, now: datetime | None = None) -> list[Paper]:
        """The papers first seen since `now - days`, newest first, read again only if changed."""
        since = (now or utcnow()) - self.window
        with self._lock:
            if self._since is None or store.papers.fingerprint(self._since) != self._fingerprint:
                self._since = since
                self._fingerprint = store.papers.fingerprint(since)
                self._papers = store.papers.seen_since(since)
            papers = self._papers
        # papers that aged out of the window since the copy was read are left out
        return [p for p in papers if p.first_seen is None or p.first_seen >= since]
