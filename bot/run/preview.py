"""What a subscriber's next digest holds, rendered without sending or recording anything.

The next digest is what the store already matched for them and has not delivered: new
alerts apply to papers fetched from now on, as `paperbot once` would send them.
"""

from __future__ import annotations

from bot.config.settings import Config
from bot.mail.digest import build_digest
from bot.models import Digest, Subscriber
from bot.store.store import Store

PREVIEW_MESSAGE_ID = "<preview@paperbot.invalid>"


def preview_digest(config: Config, email: str) -> Digest | None:
    """The next digest for `email` (None when no such subscriber exists)."""
    subscriber = _config_subscriber(config, email)
    if not config.database.exists():
        return _empty(subscriber) if subscriber else None
    with Store.open(config.database, busy_timeout=config.scheduling.database_wait) as store:
        subscriber = subscriber or store.subscribers.find_active(email)
        if subscriber is None:
            return None
        matches = store.matches.undelivered(subscriber.email)
        papers = store.papers.by_id(m.paper_id for m in matches)
    return build_digest(subscriber, matches, papers, message_id=PREVIEW_MESSAGE_ID)


def _config_subscriber(config: Config, email: str) -> Subscriber | None:
    return next((s for s in config.subscribers if s.email.lower() == email.lower()), None)


def _empty(subscriber: Subscriber) -> Digest:
    return Digest(subscriber=subscriber, entries=(), message_id=PREVIEW_MESSAGE_ID)
