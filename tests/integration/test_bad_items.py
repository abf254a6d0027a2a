"""One bad item never costs its source, for every kind.

Each case starts from a capture in tests/fixtures (real ones where the kind has one; see
PROVENANCE.md), breaks ONE item in several ways and makes another unreadable as a paper.
The broken values are hand-made here, each said where it is made. The answer is served by
a real HTTP server, fetched, parsed and recorded in a real SQLite store through the
pipeline's fetch stage. Then: every other item is stored, the broken one is stored without
its broken fields (numbers clamped, text bounded), the unreadable one is skipped, and each
of the two has ONE warning naming the configured source, the item and the fields; no
traceback, and the source's fetch counts as `ok`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config.load import parse_config
from bot.ingest.sources.checks import MAX_ABSTRACT, MAX_COUNT, MAX_NAME, MAX_TITLE
from bot.models import Paper
from bot.run.pipeline import fetch_stage
from bot.store.store import Store
from bot.text.ids import title_key
from tests.httpserver import FIXTURES, LocalHTTPServer

NOW = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
HUGE = 2**63  # past SQLite's INTEGER: what broke every run before
LONG_TITLE_WORDS = " and more" * 30_000  # 270,000 characters
LONG_NAME = "Nomen " * 60  # 360 characters: no one's name
MEMORIZATION = (
    "From Memorization to Generalization: A Theoretical Framework for Diffusion-Based"
    " Generative Models"
)


@dataclass(frozen=True)
class Case:
    """A hostile answer for one kind, and what a run must make of it."""

    kind: str
    options: dict[str, Any]
    body: bytes
    content_type: str
    stored: tuple[str, ...]  # ids the store must hold afterwards
    damaged: str  # the id of the item read without its broken fields
    warned: dict[str, tuple[str, ...]]  # item label -> words its one warning must hold


# --- the cases, one per kind ------------------------------------------------------------------


def huggingface_case() -> Case:
    """The real 2024-10-25 API answer (4 items): item 2 broken, item 3 without a title."""
    items = json.loads(
        (FIXTURES / "huggingface/api_daily_papers_2024-10-25_first4_trimmed.json").read_text()
    )
    ids = [item["paper"]["id"] for item in items]
    bad = items[1]["paper"]
    bad["authors"] = None  # null where a list is expected
    bad["upvotes"] = "²"  # str.isdigit() says yes, int() says no
    bad["githubStars"] = 10**25  # absurdly large
    bad["publishedAt"] = HUGE  # a number where a date is; as epoch ms it overflows
    items[1]["publishedAt"] = "2024-13-45"  # the item's own date: no such day
    bad["ai_keywords"] = "not a list"  # a string where a list is
    items[2] = {"paper": {"id": ids[2], "upvotes": HUGE, "title": None}}  # no title at all
    return Case(
        kind="huggingface",
        options={},
        body=json.dumps(items).encode(),
        content_type="application/json",
        stored=(ids[0], ids[1], ids[3]),
        damaged=ids[1],
        warned={
            f"item 2 ({ids[1]})": (
                "authors",
                "upvotes",
                "githubStars",
                "publishedAt",
                "ai_keywords",
            ),
            f"item 3 ({ids[2]}) skipped": ("no title",),
        },
    )


def alphaxiv_case() -> Case:
    """The two feed pages as one (3 papers): paper 2 broken, a number where paper 3 was."""
    papers = []
    for page in ("feed_hot_7days_page0_handwritten.json", "feed_hot_7days_page1_handwritten.json"):
        papers += json.loads((FIXTURES / "alphaxiv" / page).read_text())["papers"]
    ids = [paper["universal_paper_id"] for paper in papers]
    bad = papers[1]
    bad["metrics"] = {"public_total_votes": HUGE}  # past 2**63 - 1
    bad["github_stars"] = "³"  # a superscript digit
    bad["topics"] = "cs.LG"  # a string where a list is
    bad["authors"] = {"name": "A. Person"}  # an object where a list is
    bad["full_authors"] = None
    bad["first_publication_date"] = "yesterday"
    bad["publication_date"] = None
    bad["abstract"] = "The ratio &lt; 10x, and &amp;lt; is text."  # entities, once
    papers.insert(2, 42)  # not an object at all
    return Case(
        kind="alphaxiv",
        options={},
        body=json.dumps({"page": 0, "papers": papers}).encode(),
        content_type="application/json",
        stored=tuple(ids),
        damaged=ids[1],
        warned={
            f"item 2 ({ids[1]})": (
                "public_total_votes",
                "github_stars",
                "topics",
                "authors",
                "first_publication_date",
            ),
            "item 3 skipped": ("expected an object, got 42",),
        },
    )


def biorxiv_case() -> Case:
    """The details page holding the real record: that record broken, a record without a DOI."""
    data = json.loads(
        (FIXTURES / "biorxiv/details_2018-10-29_2018-10-31_cursor0_handwritten.json").read_text()
    )
    records = data["collection"]
    dois = [record["doi"] for record in records]
    bad = records[1]  # the real record of 10.1101/456574
    assert bad["doi"] == "10.1101/456574"
    bad["version"] = "³"  # a superscript digit
    bad["authors"] = None  # null where the author string is
    bad["date"] = ["2018-10-30"]  # a list where a date is
    bad["server"] = "evil.example/x?"  # would be the host of the paper's link
    bad["title"] = "Complementary subnetworks\x00 of cortical somatostatin interneurons"
    records.append({"doi": None, "title": "A record without a DOI", "version": 10**25})
    return Case(
        kind="biorxiv",
        options={"max_pages": 1},
        body=json.dumps(data).encode(),
        content_type="application/json",
        stored=tuple(f"doi:{doi}" for doi in dois),
        damaged="doi:10.1101/456574",
        warned={
            "record 2 (10.1101/456574)": ("version", "authors", "date", "server", "title"),
            "record 4 (A record without a DOI) skipped": ("no DOI",),
        },
    )


def _xml_blocks(body: bytes, tag: bytes) -> tuple[bytes, list[bytes], bytes]:
    """A feed split into what precedes its first item, its items, and what follows the last."""
    blocks = re.findall(rb"<%s>.*?</%s>" % (tag, tag), body, re.S)
    head = body[: body.index(blocks[0])]
    tail = body[body.rindex(blocks[-1]) + len(blocks[-1]) :]
    return head, blocks, tail


def _longer_title(block: bytes) -> bytes:
    """The item with a control character and 270,000 characters more in its title."""
    return re.sub(
        rb"<title>(.*?)</title>",
        lambda m: b"<title>" + m.group(1) + b" &#1;" + LONG_TITLE_WORDS.encode() + b"</title>",
        block,
        count=1,
        flags=re.S,
    )


def arxiv_api_case() -> Case:
    """The real Nov-2025 API answer (first 4 entries): 2 broken, 3 without any arXiv id."""
    head, entries, tail = _xml_blocks(
        (FIXTURES / "arxiv/api_query_2025-11_newformat.xml").read_bytes(), b"entry"
    )
    entries = entries[:4]
    ids = [_api_id(entry) for entry in entries]
    bad = _longer_title(entries[1])
    bad = bad.replace(b"<author>", f"<author><name>{LONG_NAME}</name></author><author>".encode(), 1)
    entries[1] = bad
    entries[2] = re.sub(rb"<link[^>]*/>", b"", re.sub(rb"<id>.*?</id>", b"", entries[2]))
    return Case(
        kind="arxiv-api",
        options={},
        body=head + b"".join(entries) + tail,
        content_type="application/atom+xml",
        stored=(ids[0], ids[1], ids[3]),
        damaged=ids[1],
        warned={
            f"entry 2 ({ids[1]})": ("title", "cut to 1000", "authors"),
            "entry 3 skipped": ("no arXiv id",),
        },
    )


def _api_id(entry: bytes) -> str:
    """The versionless id in an API entry's <id>."""
    found = re.search(rb"<id>http://arxiv.org/abs/(.*?)(?:v\d+)?</id>", entry)
    assert found is not None
    return found.group(1).decode()


def arxiv_rss_case() -> Case:
    """The real 2024-11-28 feed (first 4 new items): 2 broken, 3 without any arXiv id."""
    head, items, tail = _xml_blocks(
        (FIXTURES / "arxiv/rss_all-archives_2024-11-28_trimmed.xml").read_bytes(), b"item"
    )
    items = [item for item in items if b"<arxiv:announce_type>new<" in item][:4]
    ids = [_rss_id(item) for item in items]
    bad = _longer_title(items[1])
    many = ", ".join(f"Author{n} Person{n}" for n in range(7_000))  # more than 6,000 names
    items[1] = re.sub(
        rb"<dc:creator>.*?</dc:creator>",
        f"<dc:creator>{many}</dc:creator>".encode(),
        bad,
        flags=re.S,
    )
    item = re.sub(rb"<guid[^>]*>.*?</guid>", b"", items[2])
    item = re.sub(rb"<link>.*?</link>", b"", item)
    items[2] = re.sub(rb"arXiv:\S+ Announce", b"Announce", item)
    return Case(
        kind="arxiv-rss",
        options={},
        body=head + b"".join(items) + tail,
        content_type="application/rss+xml",
        stored=(ids[0], ids[1], ids[3]),
        damaged=ids[1],
        warned={
            f"entry 2 ({ids[1]})": ("title", "cut to 1000", "authors", "first 6000"),
            "entry 3 skipped": ("no arXiv id",),
        },
    )


def _rss_id(item: bytes) -> str:
    """The versionless id in an arXiv RSS item's guid."""
    found = re.search(rb"oai:arXiv.org:(.*?)v\d+</guid>", item)
    assert found is not None
    return found.group(1).decode()


def rss_case() -> Case:
    """The real Atom flavour of arXiv's feed read as any feed: 2 broken, 3 without a title."""
    head, entries, tail = _xml_blocks(
        (FIXTURES / "arxiv/rss_atom_cs.AI_2025-08-20_trimmed.xml").read_bytes(), b"entry"
    )
    entries = entries[:4]
    ids = [re.search(rb"oai:arXiv.org:(\d+\.\d+)v", e).group(1).decode() for e in entries]  # type: ignore[union-attr]
    bad = _longer_title(entries[1])
    entries[1] = re.sub(rb'<link href="[^"]*"', b'<link href="javascript:alert(1)"', bad)
    entries[2] = re.sub(rb"<title>.*?</title>", b"", entries[2], flags=re.S)
    return Case(
        kind="rss",
        options={},
        body=head + b"".join(entries) + tail,
        content_type="application/atom+xml",
        stored=(ids[0], ids[1], ids[3]),
        damaged=ids[1],
        warned={
            f"entry 2 ({ids[1]})": ("title", "cut to 1000", "url", "javascript:", "links"),
            "entry 3 skipped": ("no title",),
        },
    )


def html_case() -> Case:
    """The hand-written lab page (3 entries): entry 2 broken, entry 3 without a title."""
    page = (FIXTURES / "html/mila_publications_page0_handwritten.html").read_text()
    cards = re.findall(r'<article class="publication-card">.*?</article>', page, re.S)
    bad = cards[1].replace(
        'href="/en/research/publications/h3fusion', 'href="javascript:alert(1)" data-x="'
    )
    bad = bad.replace("Aligned LLMs</a>", f"Aligned LLMs{LONG_TITLE_WORDS}</a>")
    bad = bad.replace(
        '<a href="/en/directory/ling-liu">',
        f'<a href="/x">{LONG_NAME}</a>, <a href="/en/directory/ling-liu">',
    )
    page = page.replace(cards[1], bad)
    page = page.replace(
        re.search(r'<h2 class="publication-card__title">.*?</h2>', cards[2], re.S).group(), ""
    )  # type: ignore[union-attr]
    return Case(
        kind="html",
        options={
            "item": "article.publication-card",
            "title": ".publication-card__title",
            "authors": ".publication-card__authors a, .publication-card__authors .author-list",
            "abstract": ".publication-card__abstract",
            "remove": ["button.see-more"],
        },
        body=page.encode(),
        content_type="text/html; charset=utf-8",
        stored=(f"title:{title_key(MEMORIZATION)}", "2411.17792"),
        damaged="2411.17792",
        warned={
            "entry 2 (2411.17792)": ("title", "cut to 1000", "authors", "url", "javascript:"),
            "entry 3 skipped": ("title selector",),
        },
    )


CASES: dict[str, Callable[[], Case]] = {
    "huggingface": huggingface_case,
    "alphaxiv": alphaxiv_case,
    "biorxiv": biorxiv_case,
    "arxiv-api": arxiv_api_case,
    "arxiv-rss": arxiv_rss_case,
    "rss": rss_case,
    "html": html_case,
}


# --- the run --------------------------------------------------------------------------------


#: bioRxiv reads a configured URL as given only when it is a whole details URL
PATH = "/hostile/biorxiv/2018-10-29/2018-10-31/0/json"


def fetch_once(tmp_path: Path, server: LocalHTTPServer, case: Case) -> tuple[Store, Any]:
    """Serve the case's answer and run the pipeline's fetch stage on one source reading it."""
    server.route(PATH, body=case.body, content_type=case.content_type)
    source = {"name": f"hostile-{case.kind}", "kind": case.kind, "url": server.url(PATH)}
    raw = {
        "database": str(tmp_path / "paperbot.db"),
        "outbox": str(tmp_path / "outbox"),
        "fetch": {"timeout": 5, "retries": 0, "backoff": 0},
        "sources": [source | case.options],
        "subscribers": [{"email": "ada@example.org", "keywords": ["neural"]}],
    }
    config = parse_config(yaml.safe_dump(raw))
    store = Store.open(config.database)
    store.subscribers.sync_config(config.subscribers)
    run_id = store.health.start_run(NOW)
    fetches, _matched = asyncio.run(fetch_stage(config, store, run_id, config.sources, now=NOW))
    return store, fetches


@pytest.mark.parametrize("kind", list(CASES))
def test_one_bad_item_is_skipped_or_read_in_part_with_one_warning(
    kind: str, tmp_path: Path, http_server: LocalHTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    case = CASES[kind]()
    caplog.set_level(logging.INFO, logger="bot")
    store, [fetch] = fetch_once(tmp_path, http_server, case)
    try:
        assert (fetch.status, fetch.error) == ("ok", None)
        stored = store.papers.by_id(case.stored)
        assert set(stored) == set(case.stored)
        assert_bounded(stored[case.damaged])
    finally:
        store.close()

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(case.warned), [r.getMessage() for r in warnings]
    for record, (label, words) in zip(warnings, case.warned.items(), strict=True):
        message = record.getMessage()
        assert message.startswith(f"source hostile-{kind}: http://127.0.0.1:")
        assert f": {label}" in message
        for word in words:
            assert word in message, (word, message)
        assert "\n" not in message
        assert len(message) < 1_000
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text


def assert_bounded(paper: Paper) -> None:
    """The damaged paper as stored: every value within the gate's bounds."""
    assert 0 < len(paper.title) <= MAX_TITLE
    assert len(paper.abstract) <= MAX_ABSTRACT
    assert all(0 < len(name) <= MAX_NAME for name in paper.authors)
    for number in (paper.votes, paper.stars):
        assert number is None or 0 <= number <= MAX_COUNT
    assert paper.url == "" or paper.url.startswith(("http://", "https://"))
    assert all(link.url.startswith(("http://", "https://")) for link in paper.links)
    assert not re.search("[\x00-\x08\x0e-\x1f\x7f]", paper.title + paper.abstract)


def test_the_broken_values_are_read_as_no_value_or_bounded(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    case = huggingface_case()
    store, _fetches = fetch_once(tmp_path, http_server, case)
    try:
        paper = store.papers.by_id([case.damaged])[case.damaged]
    finally:
        store.close()
    assert paper.authors == ()
    assert paper.votes is None  # "²"
    assert paper.stars == MAX_COUNT  # 10**25
    assert paper.published is None  # 2**63 ms
    assert paper.keywords == ()
    assert paper.title  # the rest of the item is read
