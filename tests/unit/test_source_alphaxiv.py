"""The `alphaxiv` source kind on feed pages written to the real API's shape (see PROVENANCE.md)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from bot.errors import ParseError
from bot.ingest.sources import get_kind
from bot.ingest.sources.alphaxiv import AlphaxivOptions, AlphaxivSource
from bot.ingest.sources.base import FetchWindow
from bot.models import Listing
from bot.run.pipeline import HOST_INTERVALS

AX = Path(__file__).parents[1] / "fixtures" / "alphaxiv"
PAGE0 = "feed_hot_7days_page0_handwritten.json"
PAGE1 = "feed_hot_7days_page1_handwritten.json"
WINDOW = FetchWindow(today=date(2024, 11, 28))


def first_url(**options: Any) -> str:
    """The first URL one fetch asks for."""
    [url] = AlphaxivSource().start_urls(AlphaxivOptions.model_validate(options), WINDOW)
    return url


def parse(name: str, url: str | None = None) -> Listing:
    """Run the real parser on a fixture, as fetched from `url` (default: page 0, size 2)."""
    data = (AX / name).read_bytes()
    return parse_bytes(data, url)


def parse_bytes(data: bytes, url: str | None = None) -> Listing:
    """Run the real parser on bytes."""
    return AlphaxivSource().parse(data, url or first_url(page_size=2), AlphaxivOptions())


def records(name: str) -> list[dict[str, Any]]:
    """The raw paper records of a fixture."""
    papers: list[dict[str, Any]] = json.loads((AX / name).read_text(encoding="utf-8"))["papers"]
    return papers


def test_registered_with_every_option_described() -> None:
    assert isinstance(get_kind("alphaxiv"), AlphaxivSource)
    fields = AlphaxivOptions.model_fields
    assert {"url", "sort", "interval", "topics", "page_size", "max_pages"} <= set(fields)
    assert all(f.description for f in fields.values())
    assert HOST_INTERVALS["alphaxiv.org"] > 0


def test_options_are_checked_at_load() -> None:
    with pytest.raises(ValidationError, match="sort"):
        AlphaxivOptions.model_validate({"sort": "Trending"})
    with pytest.raises(ValidationError, match="interval"):
        AlphaxivOptions.model_validate({"interval": "2 Days"})


def test_start_url_carries_sort_interval_topics_and_page() -> None:
    url = first_url(sort="Likes", interval="30 Days", topics=["cs.LG", "agents"], page_size=10)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://api.alphaxiv.org/papers/v3/feed?")
    assert query["sort"] == ["Likes"]
    assert query["interval"] == ["30 Days"]
    assert json.loads(query["topics"][0]) == ["cs.LG", "agents"]
    assert query["pageNum"] == ["0"]
    assert query["pageSize"] == ["10"]
    assert "topics" not in parse_qs(urlsplit(first_url()).query), "no topics: any topic"


def test_every_paper_is_read_with_its_extras() -> None:
    listing = parse(PAGE0)
    raw = records(PAGE0)
    assert [p.id for p in listing.papers] == [r["universal_paper_id"] for r in raw]
    star, h3 = listing.papers
    assert star.authors == tuple(raw[0]["authors"])
    assert h3.authors == tuple(a["full_name"] for a in raw[1]["full_authors"])
    assert star.abstract == " ".join(raw[0]["abstract"].split())
    assert star.votes == raw[0]["metrics"]["public_total_votes"]
    assert star.organizations == ("Liquid AI",)
    assert star.categories == ("cs.LG", "cs.AI", "cs.NE"), "arXiv categories from topics"
    assert "neural-architecture-search" in star.keywords, "alphaXiv's own tags"
    assert star.link("alphaxiv") == "https://www.alphaxiv.org/abs/2411.17800"
    assert star.url == "https://arxiv.org/abs/2411.17800"
    assert h3.link("code") == "https://github.com/sftekin/h3fusion"
    assert h3.stars == 12
    assert star.published is not None
    assert star.published.date() == date(2024, 11, 26)


def test_a_full_page_leads_to_the_next_and_a_short_one_ends() -> None:
    url = first_url(page_size=2)
    first = parse(PAGE0, url)
    assert first.next_url is not None
    assert parse_qs(urlsplit(first.next_url).query)["pageNum"] == ["1"]
    assert parse_qs(urlsplit(first.next_url).query)["sort"] == ["Hot"]
    assert parse(PAGE1, first.next_url).next_url is None
    assert parse(PAGE0, first_url(page_size=20)).next_url is None, "2 of 20: the last page"


def test_max_pages_bounds_the_paging() -> None:
    assert AlphaxivSource().max_pages(AlphaxivOptions(max_pages=5)) == 5


def test_unknown_fields_are_ignored() -> None:
    [record] = records(PAGE1)
    record |= {"brand_new_field": {"x": [1, 2]}, "podcast_path": "p.mp3"}
    [paper] = parse_bytes(json.dumps({"page": 0, "papers": [record]}).encode()).papers
    assert paper.id == "2411.17755"
    assert paper.authors == (
        "Dénes Berta",
        "Balduin Katzer",
        "Katrin Schulz",
        "Péter Dusán Ispánovity",
    )


def test_a_paper_without_a_required_field_is_skipped_naming_it() -> None:
    listing = parse("feed_missing_title_handwritten.json")
    assert [p.id for p in listing.papers] == [records(PAGE0)[0]["universal_paper_id"]]
    [problem] = listing.problems
    assert problem.startswith("item 2 (")
    assert problem.endswith("skipped: missing required field 'title'")


def test_a_page_where_no_paper_has_the_required_fields_is_a_parse_error() -> None:
    [record] = records(PAGE1)
    del record["universal_paper_id"]
    with pytest.raises(ParseError, match=r"none of 1 items .*'universal_paper_id'"):
        parse_bytes(json.dumps({"page": 0, "papers": [record]}).encode())


def test_an_empty_feed_page_is_empty() -> None:
    listing = parse("feed_empty_handwritten.json")
    assert listing.papers == ()
    assert listing.next_url is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error": "Not found"}', r"expected alphaXiv's \{page, papers"),
        (b"[]", r"a JSON list"),
        (b"<!doctype html><html></html>", r"an HTML page"),
    ],
)
def test_other_documents_are_parse_errors(body: bytes, expected: str) -> None:
    with pytest.raises(ParseError, match=expected):
        parse_bytes(body)
