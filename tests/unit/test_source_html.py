"""The `html` source kind: a lab publications page read with CSS selectors (Mila-like pages)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.errors import ParseError
from bot.ingest.sources import get_kind
from bot.ingest.sources.arxiv_rss import ArxivRssOptions, ArxivRssSource
from bot.ingest.sources.html import HtmlOptions, HtmlSource, parse_date_text
from bot.models import Listing, Paper
from bot.text.ids import title_key

FIXTURES = Path(__file__).parents[1] / "fixtures"
LAB = FIXTURES / "html"
PAGE_URL = "https://mila.quebec/en/research/publications"
#: the Mila preset of config/example.yaml
MILA = {
    "url": PAGE_URL,
    "item": "article.publication-card",
    "title": ".publication-card__title",
    "authors": ".publication-card__authors a, .publication-card__authors .author-list",
    "abstract": ".publication-card__abstract",
    "date": "time",
    "remove": ["button.see-more"],
    "next": "a[rel=next]",
    "max_pages": 5,
}


def options(**changes: Any) -> HtmlOptions:
    """The Mila preset with some options changed (None removes one)."""
    values = {k: v for k, v in (MILA | changes).items() if v is not None}
    return HtmlOptions.model_validate(values)


def parse_page(name: str, url: str = PAGE_URL, **changes: Any) -> Listing:
    """Run the real parser on a fixture page."""
    return HtmlSource().parse((LAB / name).read_bytes(), url, options(**changes))


def parse_html(markup: str, **changes: Any) -> Listing:
    """Run the real parser on a snippet of markup."""
    return HtmlSource().parse(markup.encode(), PAGE_URL, options(**changes))


def by_title(listing: Listing) -> dict[str, Paper]:
    """The listing's papers keyed by title."""
    return {p.title: p for p in listing.papers}


@functools.cache
def arxiv_papers() -> dict[str, Paper]:
    """The real arXiv feed capture the lab pages share papers with, by id."""
    feed = ArxivRssSource().parse(
        (FIXTURES / "arxiv" / "rss_all-archives_2024-11-28_trimmed.xml").read_bytes(),
        "https://rss.arxiv.org/rss/cs.LG",
        ArxivRssOptions(categories=["cs.LG"]),
    )
    return {p.id: p for p in feed.papers}


# --- options ------------------------------------------------------------------------------


def test_registered_with_every_option_described() -> None:
    assert isinstance(get_kind("html"), HtmlSource)
    fields = HtmlOptions.model_fields
    wanted = {"url", "item", "title", "link", "authors", "abstract", "date", "remove", "next"}
    assert wanted | {"max_pages"} <= set(fields)
    assert all(f.description for f in fields.values())


def test_url_item_and_title_are_required() -> None:
    with pytest.raises(ValidationError, match="item"):
        HtmlOptions.model_validate({"url": PAGE_URL, "title": "h2"})


@pytest.mark.parametrize("field", ["item", "title", "authors", "next"])
def test_a_broken_selector_is_refused_at_load(field: str) -> None:
    with pytest.raises(ValidationError, match=r"not a valid CSS selector"):
        options(**{field: "div[class="})
    with pytest.raises(ValidationError, match=r"not a valid CSS selector"):
        options(remove=["button.see-more", "a::"])


# --- reading the page ---------------------------------------------------------------------


def test_every_entry_of_the_page_is_read() -> None:
    papers = by_title(parse_page("mila_publications_page0_handwritten.html"))
    assert list(papers) == [
        "From Memorization to Generalization: A Theoretical Framework for Diffusion-Based"
        " Generative Models",
        "H3Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs",
        "Complementary subnetworks of cortical somatostatin interneurons",
    ]


def test_teaser_cut_mid_word_comes_out_whole() -> None:
    memo = parse_page("mila_publications_page0_handwritten.html").papers[0]
    assert "defini…" not in memo.abstract
    assert "(see more)" not in memo.abstract
    assert "precise definition of this transition" in memo.abstract
    assert memo.abstract == arxiv_papers()["2411.17807"].abstract, "the whole abstract"


def test_teaser_cut_between_words_keeps_the_space() -> None:
    star = by_title(parse_page("mila_publications_page1_handwritten.html"))[
        "STAR: Synthesis of Tailored Architectures"
    ]
    assert "architectures remains challenging and expensive" in star.abstract
    assert star.abstract == arxiv_papers()["2411.17800"].abstract


def test_without_remove_the_visible_see_more_text_is_still_mended() -> None:
    memo = parse_page("mila_publications_page0_handwritten.html", remove=[]).papers[0]
    assert memo.abstract == arxiv_papers()["2411.17807"].abstract


@pytest.mark.parametrize(
    ("abstract", "expected"),
    [
        ("<p>incompat… (see more)ible parts</p>", "incompatible parts"),
        ("<p>incompat... <a href='#'>(read more)</a>ible parts</p>", "incompatible parts"),
        ("<p>the model… (see more) learns fast (see less)</p>", "the model learns fast"),
        (
            "<p>incompat<span class='dots'>…</span><span hidden>ible</span> parts</p>",
            "incompatible parts",
        ),
        ("<p>H<sub>2</sub>O and <i>in vivo</i> work.</p>", "H2O and in vivo work."),
        ("<p>Wait… what? It works.</p>", "Wait… what? It works."),
    ],
    ids=["text-control", "link-control", "word-boundary", "script-only", "inline", "real-ellipsis"],
)
def test_abstract_text(abstract: str, expected: str) -> None:
    markup = (
        "<article class='publication-card'><h2 class='publication-card__title'>A fairly long"
        f" title</h2><div class='publication-card__abstract'>{abstract}</div></article>"
    )
    [paper] = parse_html(markup, remove=[]).papers
    assert paper.abstract == expected


def test_authors_one_element_each_or_one_element_split() -> None:
    papers = by_title(parse_page("mila_publications_page0_handwritten.html"))
    assert papers["H3Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs"].authors == (
        "Sihao Hu",
        "Ling Liu",
    )
    naka = papers["Complementary subnetworks of cortical somatostatin interneurons"]
    assert naka.authors == ("Alexander Naka", "Benjamin Shababo", "Liam Paninski", "Hillel Adesnik")


def test_names_keep_their_unicode_hyphens() -> None:
    papers = by_title(parse_page("mila_publications_page1_handwritten.html"))
    lab_only = papers["Curriculum Replay for Continual Neural Field Fitting"]
    assert lab_only.authors == ("Marie\u2010\u00c8ve Gagnon", "Jean\u2010Philippe Tremblay")
    assert lab_only.abstract == "", "an entry without abstract is fine"


def test_identity_from_arxiv_and_doi_links_else_the_title() -> None:
    memo, h3, naka = parse_page("mila_publications_page0_handwritten.html").papers
    assert memo.id == f"title:{title_key(memo.title)}"
    assert memo.arxiv_id is None
    assert h3.id == h3.arxiv_id == "2411.17792", "from the versioned arXiv link"
    assert h3.link("code") == "https://github.com/sftekin/h3fusion"
    assert naka.id == "doi:10.1101/456574"
    assert naka.link("doi") == "https://doi.org/10.1101/456574"


def test_links_and_dates() -> None:
    memo = parse_page("mila_publications_page0_handwritten.html").papers[0]
    assert memo.url == (
        "https://mila.quebec/en/research/publications/"
        "from-memorization-to-generalization-a-theoretical-framework-for-diffusion-based"
    )
    assert memo.link("page") == memo.url
    assert memo.published == datetime(2024, 11, 26, tzinfo=UTC)


def test_link_option_overrides_the_title_link() -> None:
    h3 = parse_page("mila_publications_page0_handwritten.html", link="a.publication-card__link")
    assert h3.papers[1].url == "https://arxiv.org/abs/2411.17792v1"


def test_next_page_is_followed_until_there_is_none() -> None:
    first = parse_page("mila_publications_page0_handwritten.html")
    assert first.next_url == f"{PAGE_URL}?page=1"
    assert parse_page("mila_publications_page1_handwritten.html", first.next_url).next_url is None
    assert HtmlSource().max_pages(options()) == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-11-26", datetime(2024, 11, 26, tzinfo=UTC)),
        ("March 3, 2025", datetime(2025, 3, 3, tzinfo=UTC)),
        ("3 Mar 2025", datetime(2025, 3, 3, tzinfo=UTC)),
        ("Published on Sep 27, 2026", datetime(2026, 9, 27, tzinfo=UTC)),
        ("2023", datetime(2023, 1, 1, tzinfo=UTC)),
        ("2024-09", datetime(2024, 9, 1, tzinfo=UTC)),
        ("soon", None),
    ],
)
def test_dates_as_lab_pages_write_them(text: str, expected: datetime | None) -> None:
    assert parse_date_text(text) == expected


# --- a page that changed ------------------------------------------------------------------


def test_item_selector_matching_nothing_is_a_parse_error_naming_it() -> None:
    with pytest.raises(ParseError) as caught:
        parse_page("mila_publications_redesigned_handwritten.html")
    assert str(caught.value) == f"selector 'article.publication-card' matched nothing on {PAGE_URL}"


def test_entries_without_titles_are_a_parse_error() -> None:
    with pytest.raises(ParseError, match=r"none of 3 entries could be read .*'h5.title' found"):
        parse_page("mila_publications_page0_handwritten.html", title="h5.title")


def test_one_entry_without_title_is_skipped() -> None:
    markup = (
        "<article class='publication-card'><h2 class='publication-card__title'>Deep nets for"
        " lab pages</h2></article><article class='publication-card'><p>no title</p></article>"
    )
    assert [p.title for p in parse_html(markup).papers] == ["Deep nets for lab pages"]


@pytest.mark.parametrize(
    "authors",
    [
        "Ada Lovelace, Alan Turing, and Grace Hopper",
        "Ada Lovelace, Alan Turing and Grace Hopper",
        "Ada Lovelace · Alan Turing · Grace Hopper",
        "Ada Lovelace; Alan Turing; Grace Hopper",
    ],
)
def test_one_author_element_is_split_into_names(authors: str) -> None:
    markup = (
        "<article class='publication-card'><h2 class='publication-card__title'>On computing"
        " machinery</h2><p class='publication-card__authors'><span class='author-list'>"
        f"{authors}</span></p></article>"
    )
    [paper] = parse_html(markup).papers
    assert paper.authors == ("Ada Lovelace", "Alan Turing", "Grace Hopper")
