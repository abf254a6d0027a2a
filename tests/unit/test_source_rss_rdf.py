"""RSS 1.0 (RDF) feeds: arXiv's pre-2024 format (rss and arxiv-rss kinds) and a journal's.

Real captures: `arxiv/rss10_cs_2018-08-30_trimmed.rdf` (export.arxiv.org/rss/cs, 14 items:
7 new, 7 "UPDATED") and `rss/nature_current_2024-07_trimmed.rdf` (see the PROVENANCE files).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.ingest.sources import get_kind
from bot.ingest.sources.arxiv_rss import ArxivRssOptions, ArxivRssSource
from bot.ingest.sources.rss import RssOptions, RssSource
from bot.models import Listing, Paper

FIXTURES = Path(__file__).parents[1] / "fixtures"
OLD_ARXIV = FIXTURES / "arxiv" / "rss10_cs_2018-08-30_trimmed.rdf"
NATURE = FIXTURES / "rss" / "nature_current_2024-07_trimmed.rdf"
ARXIV_URL = "http://export.arxiv.org/rss/cs"
NATURE_URL = "http://feeds.nature.com/nature/rss/current"
NS_RSS = "{http://purl.org/rss/1.0/}"
NS_DC = "{http://purl.org/dc/elements/1.1/}"

QUASARNET_ABSTRACT = (
    "We introduce QuasarNET, a deep convolutional neural network that performs classification"
    " and redshift estimation of astrophysical spectra with human-expert accuracy. We pose these"
    " two tasks as a feature detection problem: presence or absence of spectral features"
    " determines the class, and their wavelength determines the redshift, very much like"
    " human-experts proceed. When ran on BOSS data to identify quasars through their emission"
    " lines, QuasarNET defines a sample $99.51\\pm0.03$% pure and $99.52\\pm0.03$% complete, well"
    " above the requirements of many analyses using these data. QuasarNET significantly reduces"
    " the problem of line-confusion that induces catastrophic redshift failures to below 0.2%."
    " We also extend QuasarNET to classify spectra with broad absorption line (BAL) features,"
    " achieving an accuracy of $98.0\\pm0.4$% for recognizing BAL and $97.0\\pm0.2$% for"
    " rejecting non-BAL quasars. QuasarNET is trained on data of low signal-to-noise and medium"
    " resolution, typical of current and future astrophysical surveys, and could be easily"
    " applied to classify spectra from current and upcoming surveys such as eBOSS, DESI and"
    " 4MOST."
)


def rss(path: Path, url: str, **options: object) -> Listing:
    """The generic kind on a capture."""
    return RssSource().parse(
        path.read_bytes(), url, RssOptions.model_validate({"url": url, **options})
    )


def arxiv(**options: object) -> Listing:
    """The arxiv-rss kind pointed at the old-format capture."""
    opts = ArxivRssOptions.model_validate({"url": ARXIV_URL, **options})
    return ArxivRssSource().parse(OLD_ARXIV.read_bytes(), ARXIV_URL, opts)


def by_id(listing: Listing) -> dict[str, Paper]:
    """The listing's papers by id."""
    return {paper.id: paper for paper in listing.papers}


def old_items() -> list[ET.Element]:
    """The capture's items, read with the standard library."""
    return list(ET.parse(OLD_ARXIV).getroot().iter(f"{NS_RSS}item"))


def old_titles() -> dict[str, str]:
    """Each item's raw title by arXiv id."""
    return {
        (item.findtext(f"{NS_RSS}link") or "").rsplit("/abs/", 1)[1]: item.findtext(
            f"{NS_RSS}title"
        )
        or ""
        for item in old_items()
    }


Parse = Callable[..., Listing]
KINDS = [
    pytest.param(lambda **o: rss(OLD_ARXIV, ARXIV_URL, **o), id="rss"),
    pytest.param(arxiv, id="arxiv-rss"),
]

# --- both kinds on arXiv's old format ---------------------------------------------------


@pytest.mark.parametrize("parse", KINDS)
def test_updated_entries_are_replacements_left_out_by_default(parse: Parse) -> None:
    titles = old_titles()
    updated = {paper_id for paper_id, title in titles.items() if title.endswith(" UPDATED)")}
    assert len(titles) == 14
    assert len(updated) == 7
    new = parse()
    assert [p.id for p in new.papers] == [i for i in titles if i not in updated]
    assert {p.announce_type for p in new.papers} == {None}  # the old format had no "new" mark
    everything = parse(include_replacements=True)
    assert [p.id for p in everything.papers] == list(titles)
    replaced = [p for p in everything.papers if p.id in updated]
    assert {p.announce_type for p in replaced} == {"replace"}


@pytest.mark.parametrize("parse", KINDS)
def test_authors_are_plain_names(parse: Parse) -> None:
    papers = by_id(parse(include_replacements=True))
    assert papers["1808.09955"].authors == ("Nicolas Busca", "Christophe Balland")
    # escaped `&lt;a ...&gt;` markup, entities escaped twice (`Lo&amp;#xef;c`), affiliations
    assert papers["1808.10240"].authors == ("Thomas Chatain", "Stefan Haar", "Loïc Paulevé")
    assert papers["1808.10026"].authors == (
        "Andrés F. López-Lopera",
        "Nicolas Durrande",
        "Mauricio A. Alvarez",
    )
    assert len(papers["1808.10010"].authors) == 20
    for item, paper in zip(old_items(), papers.values(), strict=True):
        creator = item.findtext(f"{NS_DC}creator") or ""
        assert len(paper.authors) == creator.count("<a ")
        assert not any(re.search(r"[<>&;()]", name) for name in paper.authors)


@pytest.mark.parametrize("parse", KINDS)
def test_title_suffix_is_removed_and_gives_the_category(parse: Parse) -> None:
    papers = by_id(parse(include_replacements=True))
    first = papers["1808.09955"]
    assert first.title == (
        "QuasarNET: Human-level spectral classification and redshifting with Deep Neural Networks"
    )
    assert first.categories == ("astro-ph.IM",)  # a cross-list into cs, under its own category
    assert papers["1309.3014"].categories == ("math.PR",)
    assert papers["1806.02908"].title == (
        "Is preprocessing of text really worth your time for online comment classification?"
    )
    assert papers["1808.02933"].title == "(Sequential) Importance Sampling Bandits"
    assert papers["1803.07813"].title.startswith("Introducing higher order correlations to marg")
    for paper in papers.values():
        assert "arXiv:" not in paper.title
        assert not paper.title.endswith(".")
        assert len(paper.categories) == 1


@pytest.mark.parametrize("parse", KINDS)
def test_descriptions_are_plain_text(parse: Parse) -> None:
    papers = by_id(parse(include_replacements=True))
    assert papers["1808.09964"].abstract.startswith(
        "The dynamic time warping (dtw) distance fails to satisfy the triangle inequality"
    )
    for paper in papers.values():
        assert paper.abstract
        assert "<" not in paper.abstract.replace("$<$", "")
        assert "&lt;" not in paper.abstract


def test_arxiv_kind_decodes_the_tex_of_old_descriptions() -> None:
    papers = by_id(arxiv())
    assert papers["1808.09955"].abstract == QUASARNET_ABSTRACT
    assert papers["1808.09955"].url == "https://arxiv.org/abs/1808.09955"


def test_arxiv_kind_keeps_cross_lists_of_an_old_feed_with_categories() -> None:
    # The old feed names only the primary category: astro-ph.IM was announced in cs.
    papers = by_id(arxiv(categories=["cs"]))
    assert "1808.09955" in papers
    assert len(papers) == 7


def test_generic_kind_keeps_the_tex_as_written() -> None:
    paper = by_id(rss(OLD_ARXIV, ARXIV_URL))["1808.09955"]
    assert "a \\emph{feature detection} problem" in paper.abstract
    assert not paper.abstract.startswith("<p>")


# --- a journal's RDF feed ----------------------------------------------------------------


@pytest.fixture(scope="module")
def nature() -> dict[str, Paper]:
    """The Nature capture, read by the generic kind."""
    return by_id(rss(NATURE, NATURE_URL))


def test_journal_rdf_entries_are_known_by_doi(nature: dict[str, Paper]) -> None:
    assert list(nature) == [
        "doi:10.1038/s41586-024-07811-4",
        "doi:10.1038/d41586-024-02356-y",
        "doi:10.1038/s41586-024-07553-3",
        "doi:10.1038/d41586-024-02230-x",
        "doi:10.1038/d41586-024-02354-0",
    ]
    first = nature["doi:10.1038/s41586-024-07811-4"]
    assert first.doi == "10.1038/s41586-024-07811-4"
    assert first.url == "https://www.nature.com/articles/s41586-024-07811-4"


def test_journal_rdf_titles_and_authors(nature: dict[str, Paper]) -> None:
    sn2 = nature["doi:10.1038/s41586-024-07811-4"]
    assert sn2.title == "Catalysis of an SN2 pathway by geometric preorganization"
    assert sn2.authors == ("Gabriel J. Lovinger", "Marcus H. Sak", "Eric N. Jacobsen")
    nickelate = nature["doi:10.1038/s41586-024-07553-3"]
    assert (
        nickelate.title == "Superconductivity in pressurized trilayer La4Ni3O10−δ single crystals"
    )
    assert len(nickelate.authors) == 30
    assert nickelate.authors[-2:] == ("Jian-gang Guo", "Jun Zhao")
    # Nature escapes the ampersand inside CDATA: the reader sees "&", not "&amp;"
    briefing = nature["doi:10.1038/d41586-024-02354-0"]
    assert briefing.title == "AI & robotics briefing: What is AI, really?"
    assert briefing.authors == ("Katrina Krämer",)
    assert nature["doi:10.1038/d41586-024-02230-x"].authors == ()


# --- PhysBiblio's captures of export.arxiv.org/rss/hep-ex (2021 and 2018) --------------

PHYSBIBLIO_2021 = FIXTURES / "arxiv" / "rss10_hep-ex_2021-07-08_physbiblio_placeholders.rdf"
PHYSBIBLIO_2018 = FIXTURES / "arxiv" / "rss10_hep-ex_2018-05-23_physbiblio_trimmed.rdf"


def old_hep_ex(path: Path) -> dict[str, Paper]:
    """An old hep-ex feed read by the arxiv-rss kind, replacements included, by id."""
    source = get_kind("arxiv-rss")
    options = source.options_model(url=ARXIV_URL, include_replacements=True)
    return {p.id: p for p in source.parse(path.read_bytes(), ARXIV_URL, options).papers}


def test_the_old_feeds_flags_are_announcement_types() -> None:
    papers = old_hep_ex(PHYSBIBLIO_2021)
    assert papers["2107.03419"].announce_type is None  # a new submission had no flag
    assert papers["2106.00550"].announce_type == "cross"  # "CROSS LISTED"
    assert papers["2007.03939"].announce_type == "replace"  # "UPDATED"
    assert old_hep_ex(PHYSBIBLIO_2018)["1805.09166"].announce_type == "cross"


def test_a_collaboration_before_its_members_and_authors_not_shown_are_not_one_name() -> None:
    # dc:creator: "<a ...>LHCb collaboration</a>: <a ...>R. Aaij</a>, et al. (909
    # additional authors not shown)", and "<a ...>Christopher Dilks</a> (STAR Collaboration)"
    assert old_hep_ex(PHYSBIBLIO_2021)["2107.03419"].authors == ("LHCb collaboration", "R. Aaij")
    assert old_hep_ex(PHYSBIBLIO_2018)["1805.08875"].authors == ("Christopher Dilks",)
