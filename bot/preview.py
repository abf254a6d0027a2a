"""What a subscriber's next digest would hold, computed without sending or recording anything."""

from __future__ import annotations

from bot.config import Config
from bot.digest import build_digest
from bot.match import AlertIndex
from bot.models import Digest, Match, Subscriber
from bot.store import Store, recent_window

PREVIEW_MESSAGE_ID = "<preview@paperbot.invalid>"


def preview_digest(config: Config, email: str) -> Digest | None:
    """The next digest for `email` (None when no such subscriber exists)."""
    subscriber = _config_subscriber(config, email)
    if not config.database.exists():
        return _empty(subscriber) if subscriber else None
    store = Store.open(config.database)
    try:
        subscriber = subscriber or store.subscriber(email)
        if subscriber is None:
            return None
        matches = [*store.undelivered_matches(subscriber.email), *_fresh(store, subscriber)]
        papers = store.papers(m.paper_id for m in matches)
    finally:
        store.close()
    return build_digest(subscriber, matches, papers, message_id=PREVIEW_MESSAGE_ID)


def _fresh(store: Store, subscriber: Subscriber) -> list[Match]:
    """Recent papers never matched for this subscriber, matched against their current alerts."""
    already = store.matched_paper_ids(subscriber.email)
    since = store.last_sent(subscriber.email) or recent_window()
    recent = [p for p in store.papers_seen_since(since) if p.id not in already]
    return AlertIndex.build([subscriber]).match(recent).get(subscriber.email, [])


def _config_subscriber(config: Config, email: str) -> Subscriber | None:
    return next((s for s in config.subscribers if s.email.lower() == email.lower()), None)


def _empty(subscriber: Subscriber) -> Digest:
    return Digest(subscriber=subscriber, entries=(), message_id=PREVIEW_MESSAGE_ID)
