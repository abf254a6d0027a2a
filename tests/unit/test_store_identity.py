"""One paper whatever order its sources arrive in, on a real SQLite file.

The three listings of arXiv 2411.17833 are parsed by the real parsers from real-format
files: the arXiv feed (real capture; the entry carries the journal DOI), a journal's feed
(the DOI, another title) and a lab page (the title only). Every order of the three, in one
`record` call, in one run or in runs of their own with a digest after each, ends as one
paper with every source; the subscriber gets it once, unless the first two listings share
nothing at all (a journal title and a lab page title: two papers as far as anyone can tell
until arXiv links them), and never again after that.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.ingest.sources import get_kind
from bot.models import Paper, Subscriber
from bot.run.pipeline import match_pending
from bot.store.schema import MIGRATIONS, _migration_8
from bot.store.store import Store
from bot.text.ids import canonical_id, normalize_title
from tests.httpserver import FIXTURES

ARXIV_ID = "2411.17833"
DOI = "10.1016/j.adhoc.2024.103462"
ARXIV_TITLE = (
    "Adaptive Client Selection with Personalization for Communication Efficient Federated Learning"
)
JOURNAL_TITLE = (
    "Communication-efficient federated learning through adaptive client selection and"
    " personalization"
)
LAB_TITLE = (
    "Adaptive Client Selection with Personalization for Communication-Efficient Federated Learning"
)
TITLES = {ARXIV_TITLE, JOURNAL_TITLE, LAB_TITLE}
SOURCES = ("arxiv", "journal", "lab")
ORDERS = list(itertools.permutations(SOURCES))
ADA = Subscriber(email="ada@example.org", keywords=("client selection",))
T0 = datetime(2024, 11, 28, 6, 0, tzinfo=UTC)

#: the options each source has in config/example.yaml style, and the file it reads
FEEDS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "arxiv": ("arxiv-rss", "arxiv/rss_2411.17833_with_doi_2024-11-28_trimmed.xml", {}),
    "journal": ("rss", "rss/journal_adhoc_networks_handwritten.xml", {}),
    "lab": (
        "html",
        "html/lab_federated_title_only_handwritten.html",
        {
            "item": "article.publication-card",
            "title": ".publication-card__title",
            "authors": ".publication-card__authors a",
            "abstract": ".publication-card__abstract",
            "remove": ["button.see-more"],
        },
    ),
}


def listing(source: str) -> tuple[Paper, ...]:
    """What the real parser of `source` reads from its file."""
    kind_name, path, options = FEEDS[source]
    kind = get_kind(kind_name)
    url = f"http://127.0.0.1/{path}"
    options = kind.options_model(url=url, **options)
    return kind.parse((FIXTURES / path).read_bytes(), url, options).papers


def listings(lab_title: str = LAB_TITLE) -> dict[str, tuple[Paper, ...]]:
    """Every source's papers; the lab page's entry under `lab_title`."""
    papers = {source: listing(source) for source in SOURCES}
    papers["lab"] = tuple(
        replace(p, title=lab_title, id=canonical_id(title=lab_title)) if p.title == LAB_TITLE else p
        for p in papers["lab"]
    )
    return papers


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "paperbot.db")
    s.subscribers.sync_config([ADA])
    yield s
    s.close()


def deliver(store: Store, now: datetime) -> list[str]:
    """Match, put Ada's matches in a digest and "send" it: the titles she got."""
    match_pending(store)
    store.outbox.create("example.org", now)
    titles: list[str] = []
    for digest in store.outbox.pending():
        papers = store.papers.by_id(m.paper_id for m in digest.matches)
        titles += [papers[m.paper_id].title for m in digest.matches]
        store.outbox.mark_sent(digest.id, now)
    return titles


def records_of_ours(store: Store) -> list[Paper]:
    """Every stored record that is this paper (by arXiv id, DOI or one of its titles)."""
    everything = store.papers.seen_since(datetime(2000, 1, 1, tzinfo=UTC))
    return [p for p in everything if p.arxiv_id == ARXIV_ID or p.doi == DOI or p.title in TITLES]


def assert_one_paper_with_every_source(store: Store) -> None:
    """The store holds the paper once, under its arXiv id, listed by all three sources."""
    [paper] = records_of_ours(store)
    assert paper.id == ARXIV_ID
    assert paper.doi == DOI
    assert set(paper.sources) == set(SOURCES)
    listed_by = store.db.execute(
        "SELECT source FROM paper_sources WHERE paper_id = ?", (ARXIV_ID,)
    ).fetchall()
    assert {source for (source,) in listed_by} == set(SOURCES)
    assert store.papers.count() == 3, "the journal's and the lab's other papers stay apart"


def ours(titles: Sequence[str]) -> list[str]:
    """The delivered titles that are this paper."""
    return [t for t in titles if t in TITLES]


@pytest.mark.parametrize(
    "lab_title", [LAB_TITLE, JOURNAL_TITLE], ids=["lab-arxiv-title", "lab-journal-title"]
)
@pytest.mark.parametrize("order", ORDERS, ids="-".join)
def test_every_order_in_one_run_is_one_paper_mailed_once(
    store: Store, order: tuple[str, ...], lab_title: str
) -> None:
    papers = listings(lab_title)
    for source in order:
        store.papers.record(source, papers[source], now=T0)
    assert_one_paper_with_every_source(store)
    assert ours(deliver(store, T0)) == [store.papers.by_id([ARXIV_ID])[ARXIV_ID].title]
    assert ours(deliver(store, T0 + timedelta(days=1))) == []


@pytest.mark.parametrize("order", ORDERS, ids="-".join)
def test_every_order_in_one_record_call_is_one_paper(store: Store, order: tuple[str, ...]) -> None:
    papers = listings()
    result = store.papers.record(
        "aggregator", [p for source in order for p in papers[source]], now=T0
    )
    assert ARXIV_ID in result.new, "the paper is new once, under its final id"
    assert not {f"doi:{DOI}", canonical_id(title=LAB_TITLE)} & set(result.new)
    [paper] = [p for p in store.papers.by_id(result.new).values() if p.title in TITLES]
    assert paper.id == ARXIV_ID
    assert paper.doi == DOI
    assert len(ours(deliver(store, T0))) == 1


def first_pair_shares_nothing(order: Sequence[str], lab_title: str) -> bool:
    """Whether the first two listings have neither a DOI nor a title in common (the lab
    page under one title, the other under another): until a third links them, they are
    two papers as far as anyone can tell."""
    first, second = order[:2]
    if {first, second} == {"arxiv", "journal"}:
        return False  # the DOI
    titles = {"arxiv": ARXIV_TITLE, "journal": JOURNAL_TITLE, "lab": lab_title}
    return normalize_title(titles[first]) != normalize_title(titles[second])


@pytest.mark.parametrize(
    "lab_title", [LAB_TITLE, JOURNAL_TITLE], ids=["lab-arxiv-title", "lab-journal-title"]
)
@pytest.mark.parametrize("order", ORDERS, ids="-".join)
def test_every_order_across_runs_is_one_paper_never_mailed_again(
    store: Store, order: tuple[str, ...], lab_title: str
) -> None:
    papers = listings(lab_title)
    delivered: list[str] = []
    for day, source in enumerate(order):
        now = T0 + timedelta(days=day)
        store.papers.record(source, papers[source], now=now)
        delivered += ours(deliver(store, now))
    assert_one_paper_with_every_source(store)
    expected = 2 if first_pair_shares_nothing(order, lab_title) else 1
    assert len(delivered) == expected, delivered
    # every source lists it again: still one paper, nothing more to mail
    for day, source in enumerate(order, start=len(order)):
        store.papers.record(source, papers[source], now=T0 + timedelta(days=day))
    assert ours(deliver(store, T0 + timedelta(days=9))) == []
    assert_one_paper_with_every_source(store)
    [(count,)] = store.db.execute("SELECT count(*) FROM matches").fetchall()
    assert count == 1, "one ledger row: Ada's match followed every merge"


# --- what must never merge -----------------------------------------------------------------


def arxiv(arxiv_id: str, title: str, doi: str | None = None) -> Paper:
    """An arXiv listing."""
    return Paper(id=arxiv_id, arxiv_id=arxiv_id, doi=doi, title=title)


def journal(doi: str, title: str) -> Paper:
    """A journal listing: a DOI and a title."""
    return Paper(id=canonical_id(doi=doi), doi=doi, title=title)


def lab(title: str) -> Paper:
    """A lab page listing: the title only."""
    return Paper(id=canonical_id(title=title), title=title)


def ids_in(store: Store) -> set[str]:
    """The id of every stored paper."""
    return {pid for (pid,) in store.db.execute("SELECT id FROM papers")}


def test_two_arxiv_ids_never_merge_through_a_title_and_a_doi(store: Store) -> None:
    store.papers.record("arxiv", [arxiv("2411.00001", ARXIV_TITLE)], now=T0)
    store.papers.record(
        "arxiv", [arxiv("2411.00002", "Another paper entirely, with a DOI", DOI)], now=T0
    )
    # the journal entry shares its title with one and its DOI with the other
    store.papers.record("journal", [journal(DOI, ARXIV_TITLE)], now=T0)
    assert ids_in(store) == {"2411.00001", "2411.00002"}
    assert store.papers.by_id(["2411.00002"])["2411.00002"].sources == ("arxiv", "journal")
    assert store.papers.by_id(["2411.00001"])["2411.00001"].sources == ("arxiv",)


def test_two_dois_never_merge_through_a_title(store: Store) -> None:
    other_doi = "10.1016/j.adhoc.2024.999999"
    store.papers.record("journal", [journal(DOI, JOURNAL_TITLE)], now=T0)
    store.papers.record("journal", [journal(other_doi, JOURNAL_TITLE)], now=T0)
    assert ids_in(store) == {f"doi:{DOI}", f"doi:{other_doi}"}
    # arXiv carries the first DOI and the shared title: it joins the first only
    store.papers.record("arxiv", [arxiv(ARXIV_ID, JOURNAL_TITLE, DOI)], now=T0)
    assert ids_in(store) == {ARXIV_ID, f"doi:{other_doi}"}


def test_short_titles_never_join_records(store: Store) -> None:
    store.papers.record("arxiv", [arxiv(ARXIV_ID, "Erratum")], now=T0)
    store.papers.record("journal", [journal(DOI, "Erratum")], now=T0)
    store.papers.record("lab", [lab("Erratum")], now=T0)
    assert ids_in(store) == {ARXIV_ID, f"doi:{DOI}", canonical_id(title="Erratum")}


# --- the ledger follows every merge ---------------------------------------------------------


def test_a_paper_mailed_under_two_ids_is_never_mailed_under_the_third(store: Store) -> None:
    papers = listings()
    store.papers.record("journal", papers["journal"], now=T0)
    store.papers.record("lab", papers["lab"], now=T0)
    assert sorted(ours(deliver(store, T0))) == sorted([JOURNAL_TITLE, LAB_TITLE])

    store.papers.record("arxiv", papers["arxiv"], now=T0 + timedelta(days=1))
    assert_one_paper_with_every_source(store)
    assert ours(deliver(store, T0 + timedelta(days=1))) == []
    assert store.matches.paper_ids(ADA.email) == {ARXIV_ID}


def test_a_match_waiting_in_a_digest_gives_way_to_the_delivered_one(store: Store) -> None:
    papers = listings()
    store.papers.record("journal", papers["journal"], now=T0)
    assert ours(deliver(store, T0)) == [JOURNAL_TITLE]
    # the lab page's record is matched and queued, but not sent yet
    store.papers.record("lab", papers["lab"], now=T0 + timedelta(hours=1))
    match_pending(store)
    store.outbox.create("example.org", T0 + timedelta(hours=1))
    [waiting] = store.outbox.pending()
    assert [m.paper_id for m in waiting.matches] == [canonical_id(title=LAB_TITLE)]

    store.papers.record("arxiv", papers["arxiv"], now=T0 + timedelta(hours=2))
    assert store.outbox.pending() == [], "the queued digest held only this paper: dropped"
    assert ours(deliver(store, T0 + timedelta(hours=2))) == []
    [(status,)] = store.db.execute(
        "SELECT d.status FROM matches m JOIN digests d ON d.id = m.digest_id"
    ).fetchall()
    assert status == "sent", "the match kept is the delivered one"


def test_a_store_from_before_title_keys_finds_papers_by_their_title(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.db"
    store = Store.open(path)
    store.papers.record("lab", listings()["lab"], now=T0)
    # what a store of the previous schema looks like: no table of titles
    store.db.execute("DROP TABLE paper_titles")
    store.db.execute("DROP TABLE mail_read")  # migration 11's
    for later in ("DROP TABLE feedback", "DROP TABLE seed_papers"):  # migration 10's
        store.db.execute(later)
    for column in ("likes", "recommend"):
        store.db.execute(f"ALTER TABLE subscribers DROP COLUMN {column}")
    store.db.execute(f"PRAGMA user_version = {MIGRATIONS.index(_migration_8)}")
    store.close()

    store = Store.open(path)
    store.papers.record("arxiv", listings()["arxiv"], now=T0)
    [paper] = records_of_ours(store)
    assert set(paper.sources) == {"lab", "arxiv"}
    store.close()


def test_duplicates_an_older_paperbot_left_are_merged_when_the_paper_comes_again(
    store: Store,
) -> None:
    papers = listings()
    store.papers.record("arxiv", papers["arxiv"], now=T0)
    # an older paperbot stored the journal entry beside the arXiv record with its DOI
    [journal_entry, _] = papers["journal"]
    store.papers._insert(replace(journal_entry, sources=("journal",), first_seen=T0), T0)
    assert len(records_of_ours(store)) == 2
    assert len(ours(deliver(store, T0))) == 2, "the old bug: one digest, the paper twice"

    # the lab page's title finds the arXiv record, whose DOI finds the journal's
    store.papers.record("lab", papers["lab"], now=T0 + timedelta(days=1))
    [paper] = records_of_ours(store)
    assert paper.id == ARXIV_ID
    assert set(paper.sources) == set(SOURCES)
    assert ours(deliver(store, T0 + timedelta(days=1))) == []
    assert store.matches.paper_ids(ADA.email) == {ARXIV_ID}
