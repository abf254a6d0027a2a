"""The `arxiv-api` source kind on real captures of export.arxiv.org (old and Nov-2025 formats).

Expected values are read from the XML with ElementTree, not from the parser under test.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from bot.errors import ParseError
from bot.ingest.fetch import Fetcher
from bot.ingest.sources import get_kind
from bot.ingest.sources.arxiv_api import ArxivApiOptions, ArxivApiSource
from bot.ingest.sources.base import FetchWindow
from bot.models import Listing
from bot.run.pipeline import HOST_INTERVALS
from bot.text.tex import decode_tex

ARXIV = Path(__file__).parents[1] / "fixtures" / "arxiv"
NEW = "api_query_2025-11_newformat.xml"
OLD = "api_query_2025-08_oldformat.xml"
ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV_NS = "{http://arxiv.org/schemas/atom}"
URL = "https://export.arxiv.org/api/query?search_query=all:electron"


def parse(name: str) -> Listing:
    """Run the real parser on a capture."""
    options = ArxivApiOptions(search_query="all:electron AND all:proton")
    return ArxivApiSource().parse((ARXIV / name).read_bytes(), URL, options)


def entries(name: str) -> list[ET.Element]:
    """The `<entry>` elements of a capture."""
    return list(ET.parse(ARXIV / name).getroot().iter(f"{ATOM}entry"))


def words(text: str | None) -> str:
    """Whitespace collapsed."""
    return " ".join((text or "").split())


def entry_id(entry: ET.Element) -> str:
    """The versionless id in an entry's `<id>`."""
    found = (entry.findtext(f"{ATOM}id") or "").split("/abs/")[1]
    return re.sub(r"v\d+$", "", found)


def test_registered_with_every_option_described() -> None:
    assert isinstance(get_kind("arxiv-api"), ArxivApiSource)
    assert all(f.description for f in ArxivApiOptions.model_fields.values())


def test_a_query_or_a_url_is_required() -> None:
    with pytest.raises(ValidationError, match="search_query"):
        ArxivApiOptions.model_validate({})
    with pytest.raises(ValidationError, match="max_results"):
        ArxivApiOptions.model_validate({"search_query": "au:x", "max_results": 5000})


def test_start_url_asks_for_the_newest_first() -> None:
    options = ArxivApiOptions(search_query="au:Lajoie_G AND cat:cs.LG", max_results=25)
    [url] = ArxivApiSource().start_urls(options, FetchWindow(today=date(2025, 11, 12)))
    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://export.arxiv.org/api/query?")
    assert query["search_query"] == ["au:Lajoie_G AND cat:cs.LG"]
    assert query["sortBy"] == ["submittedDate"]
    assert query["sortOrder"] == ["descending"]
    assert query["max_results"] == ["25"]


def test_a_url_with_its_own_query_keeps_it() -> None:
    url = "http://127.0.0.1:9/api/query?id_list=2201.13455&max_results=4"
    [got] = ArxivApiSource().start_urls(ArxivApiOptions(url=url), FetchWindow(date(2025, 1, 1)))
    query = parse_qs(urlsplit(got).query)
    assert query["id_list"] == ["2201.13455"]
    assert query["max_results"] == ["4"], "the URL's own value wins"


@pytest.mark.parametrize("name", [NEW, OLD])
def test_every_entry_is_read_completely_in_both_formats(name: str) -> None:
    listing = parse(name)
    raw = entries(name)
    assert len(listing.papers) == len(raw) == 10
    for paper, entry in zip(listing.papers, raw, strict=True):
        arxiv_id = entry_id(entry)
        assert paper.id == paper.arxiv_id == arxiv_id
        assert paper.title == words(entry.findtext(f"{ATOM}title"))
        names = [words(a.findtext(f"{ATOM}name")) for a in entry.findall(f"{ATOM}author")]
        assert list(paper.authors) == names
        # the whole abstract, with TeX accents decoded as the arXiv feed kind does
        assert paper.abstract == words(decode_tex(entry.findtext(f"{ATOM}summary") or ""))
        assert paper.url == f"https://arxiv.org/abs/{arxiv_id}", "the abs page, not the PDF"
        assert paper.link("pdf") == f"https://arxiv.org/pdf/{arxiv_id}"
        primary = entry.find(f"{ARXIV_NS}primary_category")
        assert primary is not None
        assert paper.categories[0] == primary.get("term")


def test_both_formats_agree_on_what_they_share() -> None:
    old = {p.id: p for p in parse(OLD).papers}
    new = {p.id: p for p in parse(NEW).papers}
    shared = old.keys() & new.keys()
    assert shared, "the two captures answer the same query"
    for key in shared:
        assert (old[key].title, old[key].authors, old[key].abstract) == (
            new[key].title,
            new[key].authors,
            new[key].abstract,
        )


def test_dois_are_kept() -> None:
    papers = {p.id: p for p in parse(NEW).papers}
    with_doi = [e for e in entries(NEW) if e.find(f"{ARXIV_NS}doi") is not None]
    assert with_doi
    for entry in with_doi:
        doi = (entry.findtext(f"{ARXIV_NS}doi") or "").lower()
        assert papers[entry_id(entry)].doi == doi
        assert papers[entry_id(entry)].link("doi") == f"https://doi.org/{doi}"


def test_old_style_ids_and_unicode_names() -> None:
    papers = {p.id: p for p in parse(OLD).papers}
    assert papers["hep-ph/9411242"].authors == ("Raimo Vuopionperä",)


@pytest.mark.parametrize(
    "name",
    [
        "api_empty_2025-08_oldformat.xml",
        "api_empty_2025-11_newformat.xml",
    ],
)
def test_no_result_is_an_empty_listing(name: str) -> None:
    assert parse(name).papers == ()


def test_unknown_ids_are_dropped_silently_by_arxiv() -> None:
    assert [p.id for p in parse("api_idlist_missing_ids_2025-11_newformat.xml").papers] == [
        "2201.13452"
    ]


def test_an_error_entry_is_a_broken_source() -> None:
    with pytest.raises(ParseError, match=r"arXiv API error: incorrect id format for 1234"):
        parse("api_error_handwritten.xml")


def test_an_html_page_is_not_a_feed() -> None:
    with pytest.raises(ParseError, match="HTML page"):
        ArxivApiSource().parse(
            b"<!DOCTYPE html><html><body>Maintenance</body></html>",
            URL,
            ArxivApiOptions(search_query="x"),
        )


def test_the_api_host_shares_arxivs_three_second_rule() -> None:
    fetcher = Fetcher(user_agent="test", host_intervals=HOST_INTERVALS)
    assert fetcher.interval_for("export.arxiv.org") == 3.0
    assert fetcher.interval_for("rss.arxiv.org") == 3.0


def test_todays_error_answer_of_http_400_is_explained_in_the_apis_words() -> None:
    # arxiv.py's recording of export.arxiv.org/api/query?id_list=abc: HTTP 400 and an
    # Atom feed whose one entry is the error
    body = (ARXIV / "api_error_400_bad_id_2026-04_arxivpy.xml").read_bytes()
    source = ArxivApiSource()
    assert source.explain(body) == "arXiv API error: incorrect id format for abc"
    assert source.explain(b"<html><body>Bad Request</body></html>") is None
    assert source.explain(b"\xff" * 100) is None
