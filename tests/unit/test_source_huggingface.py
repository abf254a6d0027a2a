"""The `huggingface` source kind: the Daily Papers API and pages, on real and page-shaped data.

Expected values are read from the JSON with the `json` module, not from the parser under test.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.errors import ParseError
from bot.ingest.sources import get_kind
from bot.ingest.sources.arxiv_rss import ArxivRssOptions, ArxivRssSource
from bot.ingest.sources.base import FetchWindow
from bot.ingest.sources.huggingface import HuggingfaceOptions, HuggingfaceSource, hydration_props
from bot.models import Listing, Paper
from bot.run.pipeline import HOST_INTERVALS

HF = Path(__file__).parents[1] / "fixtures" / "huggingface"
ARXIV = Path(__file__).parents[1] / "fixtures" / "arxiv"
API_2024 = "api_daily_papers_2024-10-25_first4_trimmed.json"
API_2026 = "api_daily_papers_2026-03_single_item_from_doc.json"
API_WRITTEN = "api_daily_papers_2024-11-28_handwritten.json"
PAGE_2024 = "papers_date_2024-10-25_handwritten.html"
PAGE_WRITTEN = "papers_date_2024-11-28_handwritten.html"
PAPER_PAGE = "paper_page_2509.24002_bs4_prettified_2025-10.html"
URL = "https://huggingface.co/api/daily_papers?date=2024-10-25"
TODAY = date(2024, 11, 28)


def parse(name: str, **options: Any) -> Listing:
    """Run the real parser on a fixture with options built as the config loader builds them."""
    return parse_bytes((HF / name).read_bytes(), **options)


def parse_bytes(data: bytes, **options: Any) -> Listing:
    """Run the real parser on bytes."""
    opts = HuggingfaceOptions.model_validate(options)
    return HuggingfaceSource().parse(data, URL, opts)


def api_items(name: str) -> list[dict[str, Any]]:
    """The raw items of an API fixture."""
    items: list[dict[str, Any]] = json.loads((HF / name).read_text(encoding="utf-8"))
    return items


def words(text: str) -> str:
    """Whitespace collapsed, as a reader sees text."""
    return " ".join(text.split())


def by_id(listing: Listing) -> dict[str, Paper]:
    """The listing's papers by id, checking that no id comes twice."""
    papers = {p.id: p for p in listing.papers}
    assert len(papers) == len(listing.papers)
    return papers


def start_urls(window: FetchWindow, **options: Any) -> list[str]:
    """The URLs one fetch would ask for."""
    return HuggingfaceSource().start_urls(HuggingfaceOptions.model_validate(options), window)


def dates_of(urls: list[str]) -> list[str]:
    """The `date=` parameter of each URL."""
    return [parse_qs(urlsplit(u).query)["date"][0] for u in urls]


# --- the kind and its options -------------------------------------------------------------


def test_registered_with_every_option_described() -> None:
    assert isinstance(get_kind("huggingface"), HuggingfaceSource)
    fields = HuggingfaceOptions.model_fields
    assert {"url", "min_upvotes", "catch_up_days"} <= set(fields)
    assert all(f.description for f in fields.values())


def test_hugging_face_is_asked_politely() -> None:
    assert HOST_INTERVALS["huggingface.co"] >= 1.0


# --- which days are asked for -------------------------------------------------------------


def test_first_fetch_asks_for_yesterday_only() -> None:
    urls = start_urls(FetchWindow(today=TODAY))
    assert dates_of(urls) == ["2024-11-27"]
    assert urls[0].startswith("https://huggingface.co/api/daily_papers?")
    assert parse_qs(urlsplit(urls[0]).query)["limit"] == ["100"]


def test_missed_days_are_caught_up_from_the_day_before_the_last_success() -> None:
    window = FetchWindow(today=TODAY, last_success=date(2024, 11, 24))
    assert dates_of(start_urls(window)) == [
        "2024-11-23",
        "2024-11-24",
        "2024-11-25",
        "2024-11-26",
        "2024-11-27",
    ]


def test_daily_runs_read_each_day_twice_and_never_today() -> None:
    window = FetchWindow(today=TODAY, last_success=TODAY - timedelta(days=1))
    assert dates_of(start_urls(window)) == ["2024-11-26", "2024-11-27"]
    same_day = FetchWindow(today=TODAY, last_success=TODAY)
    assert max(dates_of(start_urls(same_day))) < TODAY.isoformat(), "never today or later"


def test_a_long_outage_is_caught_up_for_catch_up_days_only() -> None:
    window = FetchWindow(today=TODAY, last_success=date(2024, 9, 1))
    days = dates_of(start_urls(window, catch_up_days=3))
    assert days == ["2024-11-25", "2024-11-26", "2024-11-27"]


def test_a_mirror_of_the_api_is_asked_day_by_day_too() -> None:
    urls = start_urls(FetchWindow(today=TODAY), url="http://127.0.0.1:8000/api/daily_papers")
    assert dates_of(urls) == ["2024-11-27"]
    assert urls[0].startswith("http://127.0.0.1:8000/api/daily_papers?")


@pytest.mark.parametrize(
    "url",
    [
        "https://huggingface.co/papers/trending",
        "https://huggingface.co/papers/date/2024-10-25",
        "https://huggingface.co/api/daily_papers?date=2024-10-25",
        "https://huggingface.co/api/daily_papers?week=2024-W43",
    ],
)
def test_a_page_or_a_dated_url_is_fetched_as_given(url: str) -> None:
    assert start_urls(FetchWindow(today=TODAY, last_success=date(2024, 11, 1)), url=url) == [url]


# --- the API ------------------------------------------------------------------------------


def test_real_api_day_is_read_completely() -> None:
    items = api_items(API_2024)
    papers = by_id(parse(API_2024))
    assert items, "the capture has a day of papers"
    assert list(papers) == [item["paper"]["id"] for item in items]
    for item in items:
        raw = item["paper"]
        paper = papers[raw["id"]]
        assert paper.arxiv_id == raw["id"]
        assert paper.title == words(raw["title"]).replace("--", "–")  # TeX's en dash
        assert paper.authors == tuple(a["name"] for a in raw["authors"])
        assert paper.abstract == words(raw["summary"])
        assert paper.votes == raw["upvotes"]
        assert paper.link("hf") == f"https://huggingface.co/papers/{raw['id']}"
        assert paper.url == f"https://arxiv.org/abs/{raw['id']}"
        assert paper.link("pdf") == f"https://arxiv.org/pdf/{raw['id']}"
        assert paper.link("code") is None, "the 2024 items have no repository"


def test_2024_title_wraps_are_joined() -> None:
    paper = by_id(parse(API_2024))["2410.17243"]
    assert paper.title == (
        "Breaking the Memory Barrier: Near Infinite Batch Size Scaling for Contrastive Loss"
    )


def test_newer_items_keep_upvotes_code_stars_keywords_organisation_and_project() -> None:
    [raw] = api_items(API_2026)
    [paper] = parse(API_2026).papers
    assert paper.id == "2602.23229"
    assert paper.votes == raw["paper"]["upvotes"] == 10
    assert paper.stars == raw["paper"]["githubStars"]
    assert paper.link("code") == raw["paper"]["githubRepo"]
    assert paper.link("project") == raw["paper"]["projectPage"]
    assert paper.keywords == tuple(raw["paper"]["ai_keywords"])
    assert paper.organizations == ("Multimedia and Human Understanding Group",)
    assert paper.published is not None
    assert paper.published.date() == date(2026, 2, 26)
    assert paper.abstract == words(raw["paper"]["summary"])


def test_weekend_empty_array_is_an_empty_day_not_an_error() -> None:
    assert parse_bytes(b"[]").papers == ()
    assert parse("api_daily_papers_empty_weekend_handwritten.json").papers == ()


def test_min_upvotes_leaves_out_the_less_voted() -> None:
    items = api_items(API_2024)
    listing = parse(API_2024, min_upvotes=40)
    expected = {i["paper"]["id"] for i in items if i["paper"]["upvotes"] >= 40}
    assert {p.id for p in listing.papers} == expected
    assert 0 < len(expected) < len(items)


def test_an_error_document_is_a_parse_error_that_quotes_it() -> None:
    with pytest.raises(ParseError, match=r"error: Invalid date: 2099-01-01 is in the future"):
        parse("api_error_handwritten.json")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'[{"paper": {"id": "2410.17243", "title": "Brea', r"malformed JSON"),
        (b"", r"expected a Hugging Face papers page"),
        (b'{"message": "moved"}', r"expected a JSON array of daily papers"),
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", r"DailyPapers"),
    ],
    ids=["truncated-json", "empty-body", "other-json", "error-page"],
)
def test_documents_that_are_not_daily_papers_are_parse_errors(body: bytes, expected: str) -> None:
    with pytest.raises(ParseError, match=expected):
        parse_bytes(body)


def test_an_item_without_a_title_is_skipped_but_all_broken_is_an_error() -> None:
    good = api_items(API_2026)[0]
    broken = {"paper": {"id": "2410.99999", "authors": []}}
    listing = parse_bytes(json.dumps([broken, good]).encode())
    assert [p.id for p in listing.papers] == ["2602.23229"]
    with pytest.raises(ParseError, match=r"none of 2 items could be read.*no title"):
        parse_bytes(json.dumps([broken, broken]).encode())


# --- the pages ----------------------------------------------------------------------------


def test_listing_page_gives_the_same_papers_as_the_api_once_each() -> None:
    html = (HF / PAGE_2024).read_text(encoding="utf-8")
    items = api_items(API_2024)
    assert items, "the capture has a day of papers"
    for item in items:
        href = f'href="/papers/{item["paper"]["id"]}"'
        assert html.count(href) >= 4, "the page's cards repeat every paper"
    assert parse(PAGE_2024) == parse(API_2024)


def test_page_data_props_are_entity_escaped_json() -> None:
    html = (HF / PAGE_WRITTEN).read_text(encoding="utf-8")
    assert 'data-props="{&quot;canSubmit&quot;:false,&quot;dailyPapers&quot;:[' in html
    props = hydration_props(html, ["DailyPapers"])
    assert json.loads(props["DailyPapers"])["dailyPapers"] == api_items(API_WRITTEN)


def test_written_day_page_keeps_tex_titles_and_every_extra() -> None:
    papers = by_id(parse(PAGE_WRITTEN))
    assert set(papers) == {"2411.17800", "2411.17792", "2411.17807"}
    h3 = papers["2411.17792"]
    assert h3.title == "$H^3$Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs"
    assert h3.link("code") == "https://github.com/sftekin/h3fusion"
    assert h3.abstract.endswith("Code is available at github.com/sftekin/h3fusion.")
    assert papers["2411.17800"].organizations == ("Liquid AI",)
    assert papers["2411.17807"].authors == ("Indranil Halder",)


def test_page_text_equals_what_the_arxiv_feed_says_of_the_same_papers() -> None:
    feed = ArxivRssSource().parse(
        (ARXIV / "rss_all-archives_2024-11-28_trimmed.xml").read_bytes(),
        "https://rss.arxiv.org/rss/cs.LG",
        ArxivRssOptions(categories=["cs.LG"]),
    )
    arxiv = {p.id: p for p in feed.papers}
    papers = parse(PAGE_WRITTEN).papers
    assert papers, "the page lists papers"
    for paper in papers:
        same = arxiv[paper.id]
        assert (paper.title, paper.authors, paper.abstract) == (
            same.title,
            same.authors,
            same.abstract,
        )


def test_a_paper_page_gives_its_one_paper() -> None:
    [paper] = parse(PAPER_PAGE).papers
    assert paper.id == "2509.24002"
    assert (
        paper.title == "MCPMark: A Benchmark for Stress-Testing Realistic and Comprehensive MCP Use"
    )
    assert paper.votes == 118
    assert paper.link("code") == "https://github.com/eval-sys/mcpmark"
    assert "reaches only 52.56% pass@1" in paper.abstract, "TeX escapes are decoded"
    assert len(paper.authors) > 3


def test_a_page_that_lost_its_data_is_broken_not_empty() -> None:
    html = (HF / "papers_layout_changed_handwritten.html").read_text(encoding="utf-8")
    assert re.search(r"<article", html), "the cards are still there"
    with pytest.raises(ParseError, match=r'data-target="DailyPapers".*layout changed'):
        parse("papers_layout_changed_handwritten.html")
