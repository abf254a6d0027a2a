"""The outbox at scale on a real SQLite file: batched digests, batches, bounces, events."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from bot.models import Match, Paper, Reason, Subscriber
from bot.store.schema import MIGRATIONS, SCHEMA_VERSION
from bot.store.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "paperbot.db")
    yield s
    s.close()


def people(count: int) -> list[Subscriber]:
    """Subscribers reader0..reader{count-1}."""
    return [Subscriber(email=f"reader{i}@example.org", keywords=("x",)) for i in range(count)]


def matched(store: Store, count: int, papers: int = 3) -> dict[str, int]:
    """`count` subscribers, each matched with `papers` papers; their ids by address."""
    store.subscribers.sync_config(people(count))
    store.papers.record(
        "arxiv", [Paper(id=f"2501.0000{p}", title=f"Paper {p}") for p in range(papers)]
    )
    reason = (Reason("keyword", "x", ("x",)),)
    store.matches.add(
        {
            s.email: [Match(f"2501.0000{p}", reason, float(p)) for p in range(papers)]
            for s in people(count)
        }
    )
    rows = store.db.execute("SELECT email, id FROM subscribers").fetchall()
    return dict(rows)


def test_create_digests_makes_one_digest_per_subscriber_with_all_their_matches(
    store: Store,
) -> None:
    matched(store, 5, papers=3)
    assert store.outbox.create("example.org") == 5
    pending = store.outbox.pending()
    assert sorted(d.subscriber.email for d in pending) == sorted(p.email for p in people(5))
    assert all(len(d.matches) == 3 for d in pending)
    assert len({d.message_id for d in pending}) == 5
    assert all(d.message_id.endswith("@example.org>") for d in pending)
    assert store.outbox.create("example.org") == 0, "matches go into one digest only"


def test_create_digests_for_chosen_subscribers_only(store: Store) -> None:
    ids = matched(store, 4)
    chosen = [ids["reader1@example.org"], ids["reader3@example.org"]]
    assert store.outbox.create("example.org", subscriber_ids=chosen) == 2
    assert sorted(d.subscriber.email for d in store.outbox.pending()) == [
        "reader1@example.org",
        "reader3@example.org",
    ]
    assert store.outbox.create("example.org") == 2, "the others wait for their turn"


def test_pending_batches_cover_every_digest_once_in_order(store: Store) -> None:
    matched(store, 23, papers=2)
    store.outbox.create("example.org")
    batches = list(store.outbox.pending_batches(size=5))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    ids = [d.id for b in batches for d in b]
    assert ids == sorted(ids)
    assert len(set(ids)) == 23
    assert all(
        {m.paper_id for m in d.matches} == {"2501.00000", "2501.00001"} for b in batches for d in b
    )


def test_a_digest_read_ahead_is_not_sendable_once_the_web_app_unsubscribes(
    store: Store, tmp_path: Path
) -> None:
    matched(store, 3)
    store.outbox.create("example.org")
    [batch] = store.outbox.pending_batches(size=10)  # in memory, as delivery holds it
    web = Store.open(tmp_path / "paperbot.db")  # the web app's own connection
    try:
        assert web.subscribers.unsubscribe("reader1@example.org", 0)
    finally:
        web.close()
    sendable = {d.subscriber.email: store.outbox.still_sendable(d.id) for d in batch}
    assert sendable == {
        "reader0@example.org": True,
        "reader1@example.org": False,
        "reader2@example.org": True,
    }
    store.outbox.mark_sent(batch[0].id)
    assert not store.outbox.still_sendable(batch[0].id), "a sent digest is not sent again"


def test_marking_while_reading_batches_skips_nothing(store: Store) -> None:
    matched(store, 12)
    store.outbox.create("example.org")
    seen = []
    for batch in store.outbox.pending_batches(size=4):
        for digest in batch:
            seen.append(digest.id)
            store.outbox.mark_sent(digest.id)
    assert len(seen) == 12
    assert store.outbox.pending_count() == 0


def test_a_sent_mark_is_committed_at_once(store: Store, tmp_path: Path) -> None:
    matched(store, 1)
    store.outbox.create("example.org")
    [digest] = store.outbox.pending()
    store.outbox.mark_sent(digest.id)
    # another connection (a process started after a kill -9) already sees it
    with sqlite3.connect(tmp_path / "paperbot.db") as other:
        assert other.execute("SELECT status FROM digests").fetchone()[0] == "sent"


def test_hard_bounces_in_a_row_suspend_and_leave_an_event(store: Store) -> None:
    ids = matched(store, 1, papers=1)
    sid = ids["reader0@example.org"]

    def bounce() -> bool:
        store.outbox.create("example.org")
        digest = store.outbox.pending()[-1]
        return store.bounces.record(digest.id, sid, "550 no such user", suspend_after=3)

    def another_match(n: int) -> None:
        store.papers.record("arxiv", [Paper(id=f"2502.0000{n}", title=f"Later {n}")])
        store.matches.add({"reader0@example.org": [Match(f"2502.0000{n}", ())]})

    assert bounce() is False
    another_match(1)
    assert bounce() is False
    store.bounces.clear(sid)  # a delivery in between: the count starts again
    for n in (2, 3):
        another_match(n)
        assert bounce() is False
    another_match(4)
    assert bounce() is True
    assert store.subscribers.find_active("reader0@example.org") is None, (
        "suspended: no longer active"
    )
    [event] = store.notices.unnotified_events()
    assert (event.kind, event.email) == ("subscriber_suspended", "reader0@example.org")
    assert event.detail == "3 hard bounces in a row; last: 550 no such user"
    store.notices.mark_events_notified([event.id])
    assert store.notices.unnotified_events() == []
    assert [e.kind for e in store.notices.events("subscriber_suspended")] == [
        "subscriber_suspended"
    ]


def test_suspended_subscribers_pending_digests_are_dropped(store: Store) -> None:
    ids = matched(store, 2)
    store.outbox.create("example.org")
    store.db.execute(
        "UPDATE subscribers SET status = 'suspended' WHERE id = ?", (ids["reader0@example.org"],)
    )
    assert store.outbox.drop_inactive() == 1
    assert [d.subscriber.email for d in store.outbox.pending()] == ["reader1@example.org"]


def test_skip_all_pending_marks_everything_in_one_go(store: Store) -> None:
    matched(store, 7)
    store.outbox.create("example.org")
    assert store.outbox.skip_all_pending() == 7
    assert store.outbox.pending_count() == 0


def test_transmissions_are_committed_before_they_go_and_given_back_after_a_refusal(
    store: Store, tmp_path: Path
) -> None:
    matched(store, 1)
    store.outbox.create("example.org")
    [digest] = store.outbox.pending()
    assert store.outbox.begin_transmission(digest.id, limit=2) == 1
    # another connection (a run started after a kill -9) already sees the count
    with sqlite3.connect(tmp_path / "paperbot.db") as other:
        assert other.execute("SELECT transmissions FROM digests").fetchone()[0] == 1
    store.outbox.take_back_transmission(digest.id)  # the server answered 451: it does not have it
    assert store.outbox.begin_transmission(digest.id, limit=2) == 1
    assert store.outbox.begin_transmission(digest.id, limit=2) == 2
    assert store.outbox.begin_transmission(digest.id, limit=2) is None, "never a third time"
    store.outbox.take_back_transmission(digest.id)
    store.outbox.mark_sent(digest.id)
    assert store.outbox.begin_transmission(digest.id, limit=2) is None, "only pending digests go"


def test_a_digest_sent_twice_without_a_verdict_is_settled_as_unconfirmed(store: Store) -> None:
    matched(store, 2)
    store.outbox.create("example.org")
    first, second = store.outbox.pending()
    for _ in range(2):
        store.outbox.begin_transmission(first.id, limit=2)
    store.outbox.begin_transmission(second.id, limit=2)
    assert store.outbox.settle_unconfirmed(limit=2) == 1
    assert [d.id for d in store.outbox.pending()] == [second.id]
    assert store.matches.undelivered(first.subscriber.email) == [], "its papers count as sent"
    status = store.status()
    assert (status.unconfirmed_digests, status.pending_digests) == (1, 1)


def test_an_older_store_is_migrated_with_no_transmissions_counted(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path, isolation_level=None) as conn:
        db = sqlite_utils.Database(conn)
        for migration in MIGRATIONS[:6]:
            migration(db)
        conn.execute("PRAGMA user_version=6")
        conn.execute(
            "INSERT INTO subscribers (email, keywords, authors, categories, exclude, max_papers,"
            " origin, status, created, updated) VALUES ('a@example.org', '[]', '[]', '[]', '[]',"
            " 50, 'config', 'active', '2025-01-01', '2025-01-01')"
        )
        conn.execute(
            "INSERT INTO digests (subscriber_id, message_id, status, created)"
            " VALUES (1, '<m@example.org>', 'pending', '2025-01-01T00:00:00+00:00')"
        )
    store = Store.open(path)
    try:
        assert store.db.schema_version() == SCHEMA_VERSION
        assert store.db.execute("SELECT transmissions FROM digests").fetchall() == [(0,)]
        assert store.outbox.begin_transmission(1, limit=2) == 1
    finally:
        store.close()
