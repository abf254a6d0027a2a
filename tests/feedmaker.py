"""A growing RSS feed for tests that span days: each `add` is a new paper in the next fetch.

Serve it from the real test HTTP server::

    feed = GrowingFeed()
    http_server.handle("/feed.xml", feed.reply)
    feed.add("Grokking in deep networks, day one")
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from tests.httpserver import Reply, Request


@dataclass
class GrowingFeed:
    """An RSS 2.0 feed whose items the test adds as (simulated) days go by."""

    titles: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *titles: str) -> None:
        """New papers in the feed from now on (each is one item, identified by its DOI)."""
        with self._lock:
            self.titles.extend(titles)

    def xml(self) -> str:
        """The feed document as it is now."""
        with self._lock:
            titles = list(self.titles)
        items = "".join(_item(index, title) for index, title in enumerate(titles))
        return (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            "<title>test feed</title><link>https://journal.example.org/</link>"
            f"<description>papers</description>{items}</channel></rss>"
        )

    def reply(self, request: Request) -> Reply:
        """The HTTP answer (a handler for `LocalHTTPServer.handle`)."""
        return Reply(200, self.xml(), content_type="application/rss+xml")


def _item(index: int, title: str) -> str:
    doi = f"10.5555/test.{index:05d}"
    return (
        f"<item><title>{escape(title)}</title>"
        f"<link>https://journal.example.org/{doi}</link>"
        f"<description>An abstract of {escape(title)}.</description>"
        f"<guid>https://doi.org/{doi}</guid></item>"
    )
