"""The seen-store on a real SQLite file: identity, merging, the match ledger, the outbox."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.models import Link, Match, Paper, Reason, Subscriber, Validators
from bot.store.health import FetchRecord
from bot.store.rows import utcnow
from bot.store.schema import SCHEMA_VERSION
from bot.store.store import Store
from bot.text.ids import canonical_id

TITLE = "Neural Collapse in Deep Classifiers Revisited"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "data" / "paperbot.db")
    yield s
    s.close()


def arxiv_paper(arxiv_id: str = "2411.01234", **fields: object) -> Paper:
    base: dict[str, object] = {
        "id": arxiv_id,
        "arxiv_id": arxiv_id,
        "title": TITLE,
        "authors": ("Ada Lovelace", "Alan Turing"),
        "abstract": "We revisit neural collapse in deep classifiers at length.",
        "url": f"https://arxiv.org/abs/{arxiv_id}",
        "categories": ("cs.LG",),
        "links": (Link("abs", f"https://arxiv.org/abs/{arxiv_id}"),),
    }
    base.update(fields)
    return Paper(**base)  # type: ignore[arg-type]


def lab_paper(title: str = TITLE) -> Paper:
    return Paper(
        id=canonical_id(title=title),
        title=title,
        authors=("Ada Lovelace",),
        abstract="We revisit neural collapse…",
        url="https://lab.example.org/pubs/42",
        links=(Link("page", "https://lab.example.org/pubs/42"),),
    )


def test_open_creates_folder_wal_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "paperbot.db"
    store = Store.open(path)
    assert store.db.schema_version() == SCHEMA_VERSION
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.db"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this paperbot"):
        Store.open(path)


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="is not a SQLite database"):
        Store.open(path)


def test_record_reports_new_once(store: Store) -> None:
    first = store.papers.record("arxiv", [arxiv_paper()])
    again = store.papers.record("arxiv", [arxiv_paper()])
    assert first.new == ("2411.01234",)
    assert again.new == ()
    assert again.changed == ()
    assert store.papers.count() == 1


def test_second_source_adds_itself_and_links(store: Store) -> None:
    store.papers.record("arxiv", [arxiv_paper()])
    hf = arxiv_paper(votes=42, links=(Link("hf", "https://huggingface.co/papers/2411.01234"),))
    result = store.papers.record("hf", [hf])
    assert result.new == ()
    assert result.changed == ("2411.01234",), "new sources and votes can change what matches"
    paper = store.papers.by_id(["2411.01234"])["2411.01234"]
    assert paper.sources == ("arxiv", "hf")
    assert paper.votes == 42
    assert {lk.label for lk in paper.links} == {"abs", "hf"}


def test_lab_page_paper_later_seen_on_arxiv_is_one_paper(store: Store) -> None:
    lab = lab_paper()
    store.papers.record("lab", [lab])
    sub = Subscriber(email="ada@example.org", keywords=("neural collapse",))
    store.subscribers.sync_config([sub])
    store.matches.add({sub.email: [Match(lab.id, (Reason("keyword", "neural collapse"),))]})

    result = store.papers.record("arxiv", [arxiv_paper()])
    assert result.new == ()
    assert store.papers.count() == 1
    paper = store.papers.by_id(["2411.01234"])["2411.01234"]
    assert paper.sources == ("lab", "arxiv")
    assert paper.abstract.startswith("We revisit neural collapse in deep classifiers")
    assert paper.authors == ("Ada Lovelace", "Alan Turing")
    assert store.matches.paper_ids(sub.email) == {"2411.01234"}, "the ledger follows the re-key"


def test_arxiv_paper_then_lab_page_merges_into_the_arxiv_id(store: Store) -> None:
    store.papers.record("arxiv", [arxiv_paper()])
    result = store.papers.record("lab", [lab_paper()])
    assert result.new == ()
    assert store.papers.count() == 1
    paper = store.papers.by_id(["2411.01234"])["2411.01234"]
    assert paper.link("page") == "https://lab.example.org/pubs/42"


def test_two_arxiv_papers_with_one_title_stay_two(store: Store) -> None:
    store.papers.record("arxiv", [arxiv_paper("2411.00001"), arxiv_paper("2411.00002")])
    assert store.papers.count() == 2


def test_a_match_is_recorded_once_per_subscriber(store: Store) -> None:
    sub = Subscriber(email="ada@example.org")
    store.subscribers.sync_config([sub])
    store.papers.record("arxiv", [arxiv_paper()])
    match = Match("2411.01234", (Reason("keyword", "neural collapse", ("neural collapse",)),))
    assert store.matches.add({sub.email: [match]}) == 1
    assert store.matches.add({sub.email: [match]}) == 0


def test_outbox_pending_until_marked_sent(store: Store) -> None:
    sub = Subscriber(email="ada@example.org")
    store.subscribers.sync_config([sub])
    store.papers.record("arxiv", [arxiv_paper()])
    store.matches.add({sub.email: [Match("2411.01234", (Reason("author", "Ada Lovelace"),))]})
    assert store.outbox.create("example.org") == 1
    [pending] = store.outbox.pending()
    assert pending.message_id.endswith("@example.org>")
    assert [m.paper_id for m in pending.matches] == ["2411.01234"]

    store.outbox.mark_attempt_failed(pending.id, "451 try later", permanent=False)
    assert [d.id for d in store.outbox.pending()] == [pending.id], "a 4xx leaves it pending"
    assert store.outbox.create("example.org") == 0, "no second digest for the same matches"

    store.outbox.mark_sent(pending.id)
    assert store.outbox.pending() == []
    assert store.matches.undelivered(sub.email) == []


def test_removed_config_subscriber_gets_nothing(store: Store) -> None:
    ada, bob = Subscriber(email="ada@example.org"), Subscriber(email="bob@example.org")
    store.subscribers.sync_config([ada, bob])
    store.papers.record("arxiv", [arxiv_paper()])
    store.matches.add({bob.email: [Match("2411.01234", (Reason("author", "x"),))]})
    store.outbox.create("example.org")
    store.subscribers.sync_config([ada])
    assert [s.email for s in store.subscribers.active()] == ["ada@example.org"]
    assert store.outbox.drop_inactive() == 1
    assert store.outbox.pending() == []


def test_a_config_file_longer_than_sqlites_variable_limit_syncs(store: Store) -> None:
    # 40,000 addresses: more than a stock SQLite build takes as variables of one statement
    store.db.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
    people = [Subscriber(email=f"reader{i}@example.org") for i in range(40_000)]
    store.subscribers.sync_config(people)
    store.subscribers.sync_config(people[1:])
    active = store.subscribers.active()
    assert len(active) == 39_999
    assert active[0].email == "reader1@example.org"


def test_validators_and_source_health(store: Store) -> None:
    url = "https://rss.arxiv.org/rss/cs.LG"
    store.health.save_validators(url, Validators(etag='"abc"', last_modified=None))
    assert store.health.validators(url) == Validators(etag='"abc"', last_modified=None)

    now = utcnow()
    store.health.record_fetch(None, FetchRecord("arxiv", "error", error="HTTP 500"), now)
    store.health.record_fetch(None, FetchRecord("arxiv", "error", error="HTTP 500"), now)
    [health] = store.health.sources()
    assert health.consecutive_failures == 2
    assert health.last_success is None
    store.health.record_fetch(None, FetchRecord("arxiv", "ok", items=3, new=3), now)
    [health] = store.health.sources()
    assert (health.consecutive_failures, health.last_status, health.items) == (0, "ok", 3)
    assert health.last_success is not None


def test_dry_run_copy_leaves_the_original_alone(store: Store, tmp_path: Path) -> None:
    copy = store.backup_to(tmp_path / "copy.db")
    copy.papers.record("arxiv", [arxiv_paper()])
    assert copy.papers.count() == 1
    assert store.papers.count() == 0
    copy.close()


def test_papers_wait_for_matching_until_their_matches_commit(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.db"
    store = Store.open(path)
    store.papers.record("arxiv", [arxiv_paper("2411.00001"), arxiv_paper("2411.00002")])
    store.close()  # the run dies before matching

    store = Store.open(path)
    assert {p.id for p in store.papers.to_match()} == {"2411.00001", "2411.00002"}
    store.matches.add({}, matched=["2411.00001", "2411.00002"])
    assert store.papers.to_match() == []

    store.papers.record("arxiv", [arxiv_paper("2411.00001")])
    assert store.papers.to_match() == [], "seeing a paper again does not re-match it"
    store.papers.record("hf", [arxiv_paper("2411.00001", votes=7)])
    assert [p.id for p in store.papers.to_match()] == ["2411.00001"], "enriched: match again"
    store.close()
