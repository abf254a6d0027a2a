"""The generic `rss` source kind: real arXiv captures, plus hand-written journal/blog feeds."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.errors import ParseError
from bot.ingest.sources import get_kind
from bot.ingest.sources.base import FetchWindow
from bot.ingest.sources.plaintext import html_to_text
from bot.ingest.sources.rss import RssOptions, RssSource
from bot.models import Listing, Paper
from bot.text.ids import title_key

FIXTURES = Path(__file__).parents[1] / "fixtures"
ARXIV = FIXTURES / "arxiv"
RSS = FIXTURES / "rss"
FEED_URL = "https://journal.example.org/feed.xml"
NS_ATOM = "{http://www.w3.org/2005/Atom}"
NS_ARXIV = "{http://arxiv.org/schemas/atom}"


def parse(path: Path, url: str = FEED_URL, **options: object) -> Listing:
    """Run the real parser on a fixture file."""
    return parse_bytes(path.read_bytes(), url, **options)


def parse_bytes(data: bytes, url: str = FEED_URL, **options: object) -> Listing:
    """Run the real parser on bytes, with options built as the config loader builds them."""
    return RssSource().parse(data, url, RssOptions.model_validate({"url": url, **options}))


def by_title(listing: Listing) -> dict[str, Paper]:
    """The listing's papers keyed by title."""
    return {p.title: p for p in listing.papers}


# --- the kind and its options ---------------------------------------------------------


def test_registered() -> None:
    kind = get_kind("rss")
    assert isinstance(kind, RssSource)
    assert kind.options_model is RssOptions


def test_url_is_required_and_described() -> None:
    with pytest.raises(ValidationError, match="url"):
        RssOptions.model_validate({})
    assert all(f.description for f in RssOptions.model_fields.values())


def test_start_url_is_the_feed() -> None:
    opts = RssOptions(url="https://example.org/feed.xml")
    window = FetchWindow(today=date(2025, 1, 1))
    assert RssSource().start_urls(opts, window) == ["https://example.org/feed.xml"]


# --- real feeds -----------------------------------------------------------------------


def test_real_arxiv_rss_feed() -> None:
    items = list(ET.parse(ARXIV / "rss_all-archives_2024-11-28_trimmed.xml").getroot().iter("item"))
    listing = parse(
        ARXIV / "rss_all-archives_2024-11-28_trimmed.xml",
        "https://rss.arxiv.org/rss/x",
        include_replacements=True,
    )
    assert len(listing.papers) == len(items) == 243  # every entry, replacements included
    for paper, item in zip(listing.papers, items, strict=True):
        link = item.findtext("link") or ""
        assert paper.id == paper.arxiv_id == link.removeprefix("https://arxiv.org/abs/")
        assert paper.url == link
        assert paper.link("abs") == link
        assert paper.categories == tuple(c.text for c in item.findall("category"))
        assert paper.published == datetime(2024, 11, 28, 5, 0, tzinfo=UTC)
    nova = max(listing.papers, key=lambda p: len(p.authors))
    assert len(nova.authors) == 207
    assert nova.authors[:2] == ("NOvA Collaboration", "M. A. Acero")


def test_real_arxiv_replacements_are_left_out_unless_asked_for() -> None:
    path = ARXIV / "rss_all-archives_2024-11-28_trimmed.xml"
    items = ET.parse(path).getroot().iter("item")
    announced = {i.findtext("link"): i.findtext(f"{NS_ARXIV}announce_type") for i in items}
    fresh = [link for link, kind in announced.items() if not (kind or "").startswith("replace")]
    listing = parse(path, "https://rss.arxiv.org/rss/x")
    assert [p.url for p in listing.papers] == fresh
    assert len(fresh) == 168
    assert {p.announce_type for p in listing.papers} == {"new", "cross"}


def test_real_arxiv_atom_feed() -> None:
    listing = parse(
        ARXIV / "rss_atom_cs.AI_2025-08-20_trimmed.xml", "https://rss.arxiv.org/atom/cs.AI"
    )
    assert len(listing.papers) == 86
    first = listing.papers[0]
    assert first.id == "2508.13167"
    assert first.url == "https://arxiv.org/abs/2508.13167"
    assert first.authors[:3] == ("Weizhen Li", "Jianbo Lin", "Zhuosong Jiang")


def test_real_arxiv_api_atom_feed() -> None:
    """The arXiv API's Atom: one `<author>` per name, DOIs only as `rel=related` links."""
    path = ARXIV / "api_query_2025-11_newformat.xml"
    entries = list(ET.parse(path).getroot().iter(f"{NS_ATOM}entry"))
    listing = parse(path, "https://export.arxiv.org/api/query")
    assert len(listing.papers) == len(entries) == 10
    for paper, entry in zip(listing.papers, entries, strict=True):
        entry_id = entry.findtext(f"{NS_ATOM}id") or ""
        assert paper.id == re.sub(r"v\d+$", "", entry_id.removeprefix("http://arxiv.org/abs/"))
        names = [a.findtext(f"{NS_ATOM}name") for a in entry.findall(f"{NS_ATOM}author")]
        assert list(paper.authors) == names
        doi = entry.findtext(f"{NS_ARXIV}doi")
        assert paper.doi == (doi.lower() if doi else None)
        assert paper.abstract == " ".join((entry.findtext(f"{NS_ATOM}summary") or "").split())
    assert sum(1 for p in listing.papers if p.doi) >= 5


def test_real_empty_channel_is_an_empty_listing() -> None:
    assert parse(ARXIV / "rss_empty_feed_2024-11-28.xml") == Listing(papers=())


# --- hand-written feeds (see tests/fixtures/rss/README.md) ----------------------------


@pytest.fixture(scope="module")
def journal() -> dict[str, Paper]:
    """The hand-written journal feed, parsed."""
    return by_title(parse(RSS / "journal_rss20_handwritten.xml"))


def test_journal_feed_entry_count(journal: dict[str, Paper]) -> None:
    assert len(journal) == 5  # six items, one without a title


def test_doi_from_prism_doi_and_html_stripped(journal: dict[str, Paper]) -> None:
    paper = journal["Neural collapse in deep classifiers & their limits"]
    assert paper.id == "doi:10.1038/s41586-024-00001-1"
    assert paper.doi == "10.1038/s41586-024-00001-1"
    assert paper.authors == ("Ada Lovelace", "Grace Hopper", "Alan Turing")
    assert paper.abstract == "We study neural collapse. It ends here."  # no <script> text
    assert paper.categories == ("Machine learning", "Physics")
    assert paper.published == datetime(2024, 11, 28, 8, 30, tzinfo=UTC)
    assert paper.link("doi") == "https://doi.org/10.1038/s41586-024-00001-1"
    assert paper.url == "https://journal.example.org/articles/s41586-024-00001-1"


def test_doi_from_dc_identifier_and_relative_link(journal: dict[str, Paper]) -> None:
    paper = journal["A review with a relative link"]
    assert paper.id == "doi:10.1093/example/rev007"
    assert paper.url == "https://journal.example.org/articles/review-7"
    assert paper.authors == ("Karen Spärck Jones",)
    assert paper.abstract == "Plain text summary with a < sign."


def test_arxiv_identity_from_guid_not_from_text(journal: dict[str, Paper]) -> None:
    paper = journal["Blog: why $H^3$Fusion matters"]
    assert paper.id == paper.arxiv_id == "2411.17792"  # the guid, not arXiv:2411.18380 in the text
    assert paper.url == "https://blog.example.org/posts/2024/h3fusion"
    assert paper.link("pdf") == "https://arxiv.org/pdf/2411.17792"


def test_biorxiv_style_link_gives_versionless_doi(journal: dict[str, Paper]) -> None:
    paper = journal["A preprint from a bioRxiv-style server"]
    assert paper.id == "doi:10.1101/2024.11.25.625205"
    assert paper.authors == ("Naka, A.", "Shababo, B.")


def test_no_identifier_falls_back_to_title(journal: dict[str, Paper]) -> None:
    paper = journal["An editorial without any identifier"]
    assert paper.id == f"title:{title_key('An editorial without any identifier')}"
    assert paper.authors == ("Smith, J.",)  # one last-first name, not two
    assert paper.url == ""
    assert paper.arxiv_id is None
    assert paper.doi is None


def test_untitled_entry_is_skipped_with_a_problem_line() -> None:
    [problem] = parse(RSS / "journal_rss20_handwritten.xml").problems
    assert problem.startswith("entry 6 skipped: no title")
    assert "articles/untitled" in problem


def test_atom_blog_feed() -> None:
    papers = parse(RSS / "blog_atom_handwritten.xml", "https://lab.example.org/feed.atom").papers
    post, cites = papers
    assert post.title == "Chain-of-Agents, explained in depth"
    assert post.id == "2508.13167"  # from the related arXiv link
    assert post.url == "https://lab.example.org/posts/42"
    assert post.authors == ("Weizhen Li", "Jianbo Lin")
    assert post.abstract == "Summary H2O and agents."  # from <content>, as text
    assert post.published == datetime(2025, 8, 20, 10, 0, tzinfo=UTC)
    assert cites.id == "doi:10.5555/example.2025.43"
    assert cites.abstract == "Short text summary."


def test_rss10_rdf_feed() -> None:
    (paper,) = parse(RSS / "rdf_rss10_handwritten.xml", "https://old.example.org/rss").papers
    assert paper.id == "hep-ph/9411242"
    assert paper.authors == ("Jane Roe",)
    assert paper.published == datetime(1994, 11, 7, tzinfo=UTC)
    assert paper.categories == ("High Energy Physics - Phenomenology", "hep-ph")  # dc:subject


# --- not feeds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ((ARXIV / "list_cs.AI_recent_2026-10-07_trimmed.html").read_bytes(), "got an HTML page"),
        (
            b"<!DOCTYPE html><html><head><title>Moved</title></head><body></body></html>",
            "HTML page",
        ),
        (b"", "got an empty document"),
        (b'{"error": "rate limited"}', "got JSON"),
        (b"Service Unavailable", "malformed XML"),
        (b'<rss version="2.0"><channel><title>x</title>', "malformed XML"),
        (b'<?xml version="1.0"?><sitemap><url>x</url></sitemap>', "neither RSS nor Atom"),
    ],
)
def test_not_a_feed(data: bytes, expected: str) -> None:
    with pytest.raises(ParseError, match=expected) as info:
        parse_bytes(data)
    assert str(info.value).startswith(f"{FEED_URL}: expected")


def test_cut_feed_whose_only_entry_is_unreadable() -> None:
    data = b'<rss version="2.0"><channel><title>x</title><item><title>a</ti'
    with pytest.raises(ParseError, match=r"stops before its end \(malformed XML \(unclosed token"):
        parse_bytes(data)


def test_every_entry_untitled_is_an_error() -> None:
    data = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><link>https://x/1</link></item><item><link>https://x/2</link></item>"
        b"</channel></rss>"
    )
    with pytest.raises(ParseError, match="none of 2 entries could be read"):
        parse_bytes(data)


def test_truncated_real_feed_keeps_what_it_has() -> None:
    data = (ARXIV / "rss_atom_cs.AI_2025-08-20_trimmed.xml").read_bytes()
    cut = data[: data.index(b"<entry>", len(data) // 2) + 200]
    complete = cut.count(b"</entry>")
    papers = parse_bytes(cut).papers
    assert complete > 30
    assert len(papers) >= complete


def test_a_truncated_feed_is_incomplete_and_its_last_entry_waits_for_the_whole() -> None:
    data = (ARXIV / "rss_atom_cs.AI_2025-08-20_trimmed.xml").read_bytes()
    cut = data[: data.index(b"</summary>", len(data) // 2)]  # inside an entry's abstract
    listing = parse_bytes(cut)
    assert not listing.complete
    assert len(listing.papers) == cut.count(b"</entry>")  # the half-read entry is not kept
    assert listing.problems[-1].startswith("the feed stops before its end (malformed XML")


@pytest.mark.parametrize(
    "damage",
    [(b"</feed>", b"</feed><junk>"), (b"<title>", b"<title>&nbsp;")],
    ids=["junk after the end", "undefined entity"],
)
def test_a_malformed_but_whole_feed_is_complete(damage: tuple[bytes, bytes]) -> None:
    data = (ARXIV / "rss_atom_cs.AI_2025-08-20_trimmed.xml").read_bytes().replace(*damage, 1)
    listing = parse_bytes(data)
    assert listing.complete
    assert len(listing.papers) == 86


# --- helpers shared with arxiv-rss ----------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>One</p><p>Two</p>", "One Two"),
        ("H<sub>2</sub>O", "H2O"),
        ("a<br>b", "a b"),
        ("x<script>evil()</script>y<style>p{}</style>", "xy"),
        ("R&amp;D &lt;3", "R&D <3"),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert " ".join(html_to_text(markup).split()) == text


# --- Toseic/Arxiv-RSS: rss.arxiv.org rewritten without its namespaces (2025-10-17) ---------

NO_NAMESPACES = ARXIV / "rss_filtered_no_namespaces_2025-10-17_toseic.xml"


@pytest.mark.parametrize("kind", ["rss", "arxiv-rss"])
def test_a_feed_that_lost_its_namespaces_still_has_authors_and_replacements(kind: str) -> None:
    source = get_kind(kind)
    options = source.options_model(url=FEED_URL)
    listing = source.parse(NO_NAMESPACES.read_bytes(), FEED_URL, options)
    # 31 items: 11 new, 11 cross, 4 replace, 5 replace-cross as bare <announce_type>
    assert len(listing.papers) == 22
    assert {p.announce_type for p in listing.papers} == {"new", "cross"}
    assert all(p.authors for p in listing.papers)  # from a bare <creator>
    first = next(p for p in listing.papers if p.arxiv_id == "2510.14369")
    assert first.authors[0] == "Joseph E. Trujillo-Falcon"
    assert len(first.authors) == 8
