"""The store's web-subscriber steps: pending, confirmed, edited, unsubscribed; rate slots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.models import Subscriber
from bot.store.store import Store

ADA = "ada@example.org"
NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "paperbot.db")
    yield opened
    opened.close()


def web(email: str = ADA, **fields: Any) -> Subscriber:
    return Subscriber(email=email, origin="web", status="pending", **fields)


def test_signup_is_pending_then_confirmed(store: Store) -> None:
    result = store.subscribers.sign_up(web(keywords=("diffusion",)))
    assert result.action == "confirm"
    assert result.record.subscriber.status == "pending"
    assert store.subscribers.active() == []
    assert store.subscribers.confirm(ADA, version=1) is None, "another version's link"
    confirmed = store.subscribers.confirm(ADA, version=0, now=NOW)
    assert confirmed is not None
    assert confirmed.confirmed_at == NOW
    assert [s.email for s in store.subscribers.active()] == [ADA]


def test_signup_of_an_active_address_changes_nothing(store: Store) -> None:
    store.subscribers.sign_up(web(keywords=("diffusion",)))
    store.subscribers.confirm(ADA, 0)
    result = store.subscribers.sign_up(web(keywords=("other",)))
    assert result.action == "known"
    [sub] = store.subscribers.active()
    assert sub.keywords == ("diffusion",)


def test_unsubscribe_rotates_and_a_new_signup_needs_the_new_version(store: Store) -> None:
    store.subscribers.sign_up(web(keywords=("diffusion",)))
    store.subscribers.confirm(ADA, 0)
    assert store.subscribers.unsubscribe(ADA, version=0)
    assert not store.subscribers.unsubscribe(ADA, version=0), "done already"
    assert store.subscribers.active() == []
    result = store.subscribers.sign_up(web(keywords=("grokking",)))
    assert (result.action, result.record.token_version) == ("confirm", 1)
    assert store.subscribers.confirm(ADA, 0) is None, "the old confirmation link is void"
    assert store.subscribers.confirm(ADA, 1) is not None
    [sub] = store.subscribers.active()
    assert sub.keywords == ("grokking",)


def test_update_alerts_only_for_web_subscribers_with_the_current_version(store: Store) -> None:
    store.subscribers.sync_config([Subscriber(email="conf@example.org", keywords=("a",))])
    assert store.subscribers.update_alerts(web("conf@example.org", keywords=("b",)), 0) is None
    store.subscribers.sign_up(web(keywords=("diffusion",)))
    assert store.subscribers.update_alerts(web(keywords=("b",)), version=7) is None
    saved = store.subscribers.update_alerts(web(keywords=("b",), frequency="weekly", weekday=2), 0)
    assert saved is not None
    assert (saved.subscriber.keywords, saved.subscriber.frequency) == (("b",), "weekly")
    assert saved.subscriber.status == "pending", "editing does not confirm"


def test_rate_slots_count_within_the_window(store: Store) -> None:
    hour = timedelta(hours=1)
    taken = [
        store.ratelimit.take_slot("k", 2, hour, now=NOW + timedelta(minutes=m)) for m in range(3)
    ]
    assert taken == [True, True, False]
    assert store.ratelimit.take_slot("other", 2, hour, now=NOW)
    assert store.ratelimit.take_slot("k", 2, hour, now=NOW + timedelta(minutes=61))
    old = store.db.execute("SELECT count(*) FROM rate_events").fetchone()[0]
    store.ratelimit.take_slot("k", 2, hour, now=NOW + timedelta(days=2))
    assert store.db.execute("SELECT count(*) FROM rate_events").fetchone()[0] == 1 < old
