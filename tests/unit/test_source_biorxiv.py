"""The `biorxiv` source kind: the details API's envelope around a real record (PROVENANCE.md)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.errors import ParseError
from bot.ingest.sources import get_kind
from bot.ingest.sources.base import FetchWindow
from bot.ingest.sources.biorxiv import BiorxivOptions, BiorxivSource, split_authors
from bot.models import Listing
from bot.run.pipeline import HOST_INTERVALS

BX = Path(__file__).parents[1] / "fixtures" / "biorxiv"
PAGE0 = "details_2018-10-29_2018-10-31_cursor0_handwritten.json"
PAGE1 = "details_2018-10-29_2018-10-31_cursor3_handwritten.json"
REAL = "details_collection_record_10.1101_456574.json"
URL0 = "https://api.biorxiv.org/details/biorxiv/2018-10-29/2018-10-31/0/json"
TODAY = date(2018, 10, 31)


def parse(name: str, url: str = URL0, **options: Any) -> Listing:
    """Run the real parser on a fixture."""
    data = (BX / name).read_bytes()
    return BiorxivSource().parse(data, url, BiorxivOptions.model_validate(options))


def start_urls(window: FetchWindow, **options: Any) -> list[str]:
    """The URLs one fetch starts from."""
    return BiorxivSource().start_urls(BiorxivOptions.model_validate(options), window)


def test_registered_with_every_option_described() -> None:
    assert isinstance(get_kind("biorxiv"), BiorxivSource)
    assert all(f.description for f in BiorxivOptions.model_fields.values())
    assert HOST_INTERVALS["biorxiv.org"] > 0


def test_first_fetch_asks_for_yesterday_and_today() -> None:
    assert start_urls(FetchWindow(today=TODAY)) == [
        "https://api.biorxiv.org/details/biorxiv/2018-10-30/2018-10-31/0/json"
    ]


def test_later_fetches_ask_since_the_day_before_the_last_success() -> None:
    window = FetchWindow(today=TODAY, last_success=date(2018, 10, 27))
    [url] = start_urls(window, server="medrxiv")
    assert url == "https://api.biorxiv.org/details/medrxiv/2018-10-26/2018-10-31/0/json"
    long_ago = FetchWindow(today=TODAY, last_success=date(2018, 1, 1))
    [url] = start_urls(long_ago, catch_up_days=3)
    assert "/2018-10-29/2018-10-31/0/json" in url


def test_one_start_per_category_filtered_by_the_api() -> None:
    urls = start_urls(FetchWindow(today=TODAY), categories=["Neuroscience", "cell biology"])
    assert [parse_qs(urlsplit(u).query)["category"] for u in urls] == [
        ["neuroscience"],
        ["cell_biology"],
    ]


def test_the_real_record_is_read_completely() -> None:
    raw = json.loads((BX / REAL).read_text(encoding="utf-8"))
    papers = {p.id: p for p in parse(PAGE0).papers}
    paper = papers["doi:10.1101/456574"]
    assert paper.title == raw["title"]
    assert paper.doi == "10.1101/456574"
    assert paper.abstract == " ".join(raw["abstract"].split()), "double spaces collapsed"
    assert paper.authors == (
        "A. Naka",
        "B. Shababo",
        "B. Snyder",
        "A. Egladyous",
        "S. Sridharan",
        "L. Paninski",
        "H. Adesnik",
    )
    assert paper.categories == ("neuroscience",)
    assert paper.published == datetime(2018, 10, 30, tzinfo=UTC)
    assert paper.url == "https://www.biorxiv.org/content/10.1101/456574v1"
    assert paper.link("doi") == "https://doi.org/10.1101/456574"
    assert paper.link("journal") == "https://doi.org/10.7554/elife.43696"


def test_every_record_of_a_page_and_the_next_cursor() -> None:
    listing = parse(PAGE0)
    assert {p.id for p in listing.papers} == {
        "doi:10.64898/2018.10.29.112233",
        "doi:10.1101/456574",
        "doi:10.64898/2018.10.30.334455",
    }
    assert (
        listing.next_url == "https://api.biorxiv.org/details/biorxiv/2018-10-29/2018-10-31/3/json"
    )
    last = parse(PAGE1, listing.next_url)
    assert last.next_url is None, "cursor 3 + 1 record = total 4"


def test_one_paper_per_doi_the_latest_version() -> None:
    page = json.loads((BX / PAGE0).read_text(encoding="utf-8"))
    newer = json.loads((BX / PAGE1).read_text(encoding="utf-8"))["collection"][0]
    page["collection"].append(newer)
    listing = BiorxivSource().parse(json.dumps(page).encode(), URL0, BiorxivOptions())
    versions = [p for p in listing.papers if p.id == "doi:10.1101/456574"]
    assert len(versions) == 1
    assert versions[0].url.endswith("456574v2")


def test_category_filter_also_applies_to_what_comes_back() -> None:
    listing = parse(PAGE0, categories=["Cell Biology"])
    assert [p.id for p in listing.papers] == ["doi:10.64898/2018.10.30.334455"]


def test_the_query_of_a_category_url_survives_paging() -> None:
    url = f"{URL0}?category=neuroscience"
    listing = parse(PAGE0, url)
    assert listing.next_url is not None
    assert listing.next_url.endswith("/3/json?category=neuroscience")


def test_no_posts_found_is_an_empty_window() -> None:
    assert parse("details_no_posts_found_handwritten.json").papers == ()


def test_an_error_status_inside_http_200_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match=r"answered 'interval not recognised"):
        parse("details_error_status_handwritten.json")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"collection": []}', "expected bioRxiv's"),
        (b'{"messages": [{"status": "ok"}]}', "no 'collection' list"),
        (b"<html><body>Service Unavailable</body></html>", "an HTML page"),
    ],
)
def test_other_documents_are_parse_errors(body: bytes, expected: str) -> None:
    with pytest.raises(ParseError, match=expected):
        BiorxivSource().parse(body, URL0, BiorxivOptions())


@pytest.mark.parametrize(
    ("authors", "expected"),
    [
        ("Naka, A.; Shababo, B.", ["A. Naka", "B. Shababo"]),
        ("Ng, W. L.; Consortium, The", ["W. L. Ng", "The Consortium"]),
        ("The ENCODE Project Consortium", ["The ENCODE Project Consortium"]),
        ("", []),
    ],
)
def test_split_authors(authors: str, expected: list[str]) -> None:
    assert split_authors(authors) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://api.biorxiv.org/details/biorxiv/7d/0/json",
        "http://127.0.0.1:8000/details/medrxiv/2024-01-01/2024-01-07/0",
    ],
)
def test_a_whole_details_url_is_fetched_as_given(url: str) -> None:
    assert start_urls(FetchWindow(today=TODAY, last_success=date(2018, 10, 1)), url=url) == [url]
