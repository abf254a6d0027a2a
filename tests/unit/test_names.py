"""The one author-list rule (`bot.text.names`), on its own and as every kind that splits uses it.

Real lists: arXiv's `dc:creator` strings of 2024-11-28 (`arxiv/rss_all-archives_2024-11-28_
wild_items.xml`), al-folio's built publications page (`html/alfolio_demo_publications_
2023-09-25.html`), bioRxiv's `authors` field. Strings marked hand-written complement them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bot.alerts.index import AlertIndex
from bot.ingest.sources.arxiv_rss import ArxivRssOptions, ArxivRssSource
from bot.ingest.sources.html import HtmlOptions, HtmlSource
from bot.models import Paper, Subscriber
from bot.text.names import author_names, is_author_name, split_authors

FIXTURES = Path(__file__).parents[1] / "fixtures"
WILD = FIXTURES / "arxiv" / "rss_all-archives_2024-11-28_wild_items.xml"
ALFOLIO = FIXTURES / "html" / "alfolio_demo_publications_2023-09-25.html"
ALFOLIO_URL = "https://alshedivat.github.io/al-folio/publications/"
NS_DC = "{http://purl.org/dc/elements/1.1/}"


def creator(arxiv_id: str) -> str:
    """The real `dc:creator` string of one item of the capture."""
    for item in ET.parse(WILD).getroot().iter("item"):
        if item.findtext("link") == f"https://arxiv.org/abs/{arxiv_id}":
            return item.findtext(f"{NS_DC}creator") or ""
    raise LookupError(arxiv_id)


def wild_papers() -> dict[str, Paper]:
    """The capture read by the arxiv-rss kind, by id."""
    opts = ArxivRssOptions.model_validate({"url": "https://rss.arxiv.org/rss/x"})
    listing = ArxivRssSource().parse(WILD.read_bytes(), "https://rss.arxiv.org/rss/x", opts)
    return {paper.id: paper for paper in listing.papers}


# --- real arXiv lists ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arxiv_id", "raw", "names"),
    [
        (
            "2411.17952",
            "Krishna Shende, Kavita Dorai,  Arvind",
            ["Krishna Shende", "Kavita Dorai", "Arvind"],
        ),
        (
            "2411.18501",
            " Boulite, Abdellatif Elgrou, Lahcen Maniar, Omar Oukdach",
            ["Boulite", "Abdellatif Elgrou", "Lahcen Maniar", "Omar Oukdach"],
        ),
        (
            "2411.17965",
            "Shuli Jiang (Richard),  Qiuyi (Richard),  Zhang, Gauri Joshi",
            ["Shuli Jiang", "Qiuyi (Richard) Zhang", "Gauri Joshi"],
        ),
        (
            "2411.18129",
            "Yuxuan Wang (Sherman), Kaige Qu (Sherman), Wen Wu (Sherman),  Xuemin (Sherman),  Shen",
            ["Yuxuan Wang", "Kaige Qu", "Wen Wu", "Xuemin (Sherman) Shen"],
        ),
    ],
)
def test_real_arxiv_lists(arxiv_id: str, raw: str, names: list[str]) -> None:
    assert creator(arxiv_id) == raw  # the capture says exactly this
    assert split_authors(raw) == names
    assert list(wild_papers()[arxiv_id].authors) == names


def test_a_single_word_name_inside_a_long_real_list() -> None:
    raw = creator("2411.18477")
    authors = wild_papers()["2411.18477"].authors
    assert len(authors) == raw.count(",") + 1 == 17
    assert authors[8:11] == ("Konrad Jacek Drozdowski", "Nathaniel", "Cuong Dang")


def test_a_followed_mononym_matches_end_to_end() -> None:
    found = AlertIndex.build([Subscriber("ada@example.org", authors=("Arvind",))]).match(
        list(wild_papers().values())
    )
    assert [m.paper_id for m in found["ada@example.org"]] == ["2411.17952"]


# --- a lab page: al-folio's "N more authors" toggle ---------------------------------------


def alfolio(authors: str) -> dict[str, tuple[str, ...]]:
    """The al-folio page read with one author selector, authors by title."""
    opts = HtmlOptions.model_validate(
        {
            "url": ALFOLIO_URL,
            "item": "ol.bibliography > li",
            "title": "div.title",
            "authors": authors,
        }
    )
    listing = HtmlSource().parse(ALFOLIO.read_bytes(), ALFOLIO_URL, opts)
    return {paper.title: paper.authors for paper in listing.papers}


def test_alfolio_list_in_one_element() -> None:
    authors = alfolio("div.author")
    assert authors["Letters on wave mechanics"] == (
        "Albert Einstein",
        "Erwin Schrödinger",
        "Max Planck",
    )  # "..., Max Planck, and 2 more authors": the toggle is not a name
    assert authors["The meaning of relativity"] == ("Albert Einstein", "AH Taub")
    assert authors[
        "Can Quantum-Mechanical Description of Physical Reality Be Considered Complete?"
    ] == ("A. Einstein", "B. Podolsky", "N. Rosen")
    assert authors["On the electrodynamics of moving bodies"] == ("A. Einstein",)
    assert len(authors) == 7


def test_alfolio_list_one_element_per_name() -> None:
    authors = alfolio("div.author > em, div.author > a, div.author > span")
    assert authors["Letters on wave mechanics"] == (
        "Albert Einstein",
        "Erwin Schrödinger",
        "Max Planck",
    )  # the <span class="more-authors"> element is matched, and dropped


# --- the rule, string by string ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # real: bioRxiv's field (biorxiv fixture) and shapes seen in arXiv feeds
        ("Naka, A.; Shababo, B.", ["Naka, A.", "Shababo, B."]),
        ("Ng, W. L.; Consortium, The", ["Ng, W. L.", "Consortium, The"]),
        ("NOvA Collaboration,  M. A.   Acero", ["NOvA Collaboration", "M. A. Acero"]),
        # real: a reference list of arXiv:quant-ph (a single-word name before "and")
        (
            "T. S. Mahesh, Kavita Dorai, Arvind and Anil Kumar",
            ["T. S. Mahesh", "Kavita Dorai", "Arvind", "Anil Kumar"],
        ),
        # real: a README's copy of an arXiv author list cut by arXiv
        ("Wangding Zeng et al. (100 additional authors not shown)", ["Wangding Zeng"]),
        # hand-written complements
        ("A B , C D , and", ["A B", "C D"]),
        ("Jane Roe, Bob Lee and Ann Poe", ["Jane Roe", "Bob Lee", "Ann Poe"]),
        ("Jane Roe, Bob Lee, & Ann Poe", ["Jane Roe", "Bob Lee", "Ann Poe"]),
        ("Jane Roe, Bob Lee, et al.", ["Jane Roe", "Bob Lee"]),
        ("Jane Roe and 12 others", ["Jane Roe"]),
        ("Jane Roe, Bob Lee, and 3 more authors", ["Jane Roe", "Bob Lee"]),
        ("Jane Roe, PhD, Bob Lee, MD", ["Jane Roe", "Bob Lee"]),
        ("Rahman, Md.", ["Rahman, Md."]),
        ("Einstein, Albert and Taub, AH", ["Einstein, Albert", "Taub, AH"]),
        ("Naka, A., Shababo, B.", ["Naka, A.", "Shababo, B."]),
        ("Smith, John", ["Smith, John"]),
        ("van der Berg, Jan", ["van der Berg, Jan"]),
        ("Smith, John (MIT)", ["Smith, John"]),
        ("Mauricio Breternitz, Jr., Eugene John", ["Mauricio Breternitz Jr.", "Eugene John"]),
        ("A. One (Andrew and Peggy Cherng Dept.), B. Two", ["A. One", "B. Two"]),
        ("A. One (unclosed, B. Two", ["A. One unclosed", "B. Two"]),
        ("Qiuyi (Richard) Zhang, Ann Poe", ["Qiuyi (Richard) Zhang", "Ann Poe"]),
        ("et al.", []),
        ("Jane Roe", ["Jane Roe"]),
        ("", []),
    ],
)
def test_split_authors(text: str, names: list[str]) -> None:
    assert split_authors(text) == names


@pytest.mark.parametrize(
    "text",
    ["et al.", "et al", "and others", "3 more authors", "and 5 others", "+4 more", "…",
     "(25 additional authors not shown)", "25 additional authors not shown", "and", ""],
)  # fmt: skip
def test_placeholders_are_never_names(text: str) -> None:
    assert not is_author_name(text.strip("()"))
    assert split_authors(text) == []


def test_one_name_per_piece_when_the_pieces_are_given() -> None:
    pieces = ["and Bob Lee", "The Andrew and Peggy Consortium", "et al.", "Jane Roe,"]
    assert author_names(pieces) == ["Bob Lee", "The Andrew and Peggy Consortium", "Jane Roe"]
