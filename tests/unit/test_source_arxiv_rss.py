"""The `arxiv-rss` source kind, on real captures of rss.arxiv.org (RSS and Atom flavours).

Expected numbers are read from the XML with ElementTree, not from the parser under test.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.errors import ParseError
from bot.ingest.sources import get_kind
from bot.ingest.sources.arxiv_rss import ArxivRssOptions, ArxivRssSource, split_creators
from bot.ingest.sources.base import FetchWindow
from bot.models import Listing, Paper
from bot.run.pipeline import HOST_INTERVALS
from bot.text.tex import decode_tex

ARXIV = Path(__file__).parents[1] / "fixtures" / "arxiv"
ALL = "rss_all-archives_2024-11-28_trimmed.xml"
ATOM = "rss_atom_cs.AI_2025-08-20_trimmed.xml"
EMPTY = "rss_empty_feed_2024-11-28.xml"
ERROR = "rss_error_bad_archive_2024-11-28.xml"
HTML_PAGE = "list_cs.AI_recent_2026-10-07_trimmed.html"

NS_ARXIV = "{http://arxiv.org/schemas/atom}"
NS_DC = "{http://purl.org/dc/elements/1.1/}"
NS_ATOM = "{http://www.w3.org/2005/Atom}"
FEED_URL = "https://rss.arxiv.org/rss/cs.LG"


def body(name: str) -> bytes:
    """A fixture's bytes."""
    return (ARXIV / name).read_bytes()


def parse(data: bytes, **options: object) -> Listing:
    """Run the real parser with options built the way the config loader builds them."""
    opts = ArxivRssOptions.model_validate(options or {"url": FEED_URL})
    return ArxivRssSource().parse(data, FEED_URL, opts)


@functools.cache
def every_announcement() -> Listing:
    """The whole all-archives capture, replacements included (parsed once: it is 485 KB)."""
    return parse(body(ALL), url=FEED_URL, include_replacements=True)


def rss_items(name: str = ALL) -> list[ET.Element]:
    """The `<item>` elements of an RSS capture."""
    return list(ET.parse(ARXIV / name).getroot().iter("item"))


def item_id(item: ET.Element) -> str:
    """The versionless id of an item, from its guid `oai:arXiv.org:IDvN`."""
    guid = item.findtext("guid") or ""
    return re.sub(r"v\d+$", "", guid.removeprefix("oai:arXiv.org:"))


def item_type(item: ET.Element) -> str:
    """The item's announce type element."""
    return item.findtext(f"{NS_ARXIV}announce_type") or ""


def item_categories(item: ET.Element) -> list[str]:
    """The item's repeated `<category>` values."""
    return [c.text or "" for c in item.findall("category")]


def by_id(listing: Listing) -> dict[str, Paper]:
    """The listing's papers keyed by id (and no id twice)."""
    papers = {p.id: p for p in listing.papers}
    assert len(papers) == len(listing.papers)
    return papers


def items_block(data: bytes) -> list[bytes]:
    """The raw `<item>...</item>` blocks of a capture, byte-exact."""
    return re.findall(rb"<item>.*?</item>", data, re.S)


def block_id(block: bytes) -> str:
    """The versionless id in a raw item's guid."""
    match = re.search(rb"<guid[^>]*>oai:arXiv\.org:(\S+?)v\d+</guid>", block)
    assert match is not None
    return match.group(1).decode()


def feed_of(items: list[bytes]) -> bytes:
    """A feed made of the real channel header of the full capture and the given items."""
    data = body(ALL)
    header = data[: data.index(b"<item>")]
    return header + b"\n".join(items) + b"\n  </channel>\n</rss>\n"


# --- the kind and its options ---------------------------------------------------------


def test_registered_with_arxiv_etiquette() -> None:
    kind = get_kind("arxiv-rss")
    assert isinstance(kind, ArxivRssSource)
    assert kind.options_model is ArxivRssOptions
    assert HOST_INTERVALS["arxiv.org"] == 3.0, "one request every 3 s to arXiv hosts"


def test_every_option_is_described() -> None:
    fields = ArxivRssOptions.model_fields
    assert {"url", "categories", "include_replacements"} <= set(fields)
    assert all(f.description for f in fields.values())


@pytest.mark.parametrize(
    ("options", "urls"),
    [
        ({"categories": ["cs.LG"]}, ["https://rss.arxiv.org/rss/cs.LG"]),
        ({"categories": ["cs.LG", "stat.ML"]}, ["https://rss.arxiv.org/rss/cs.LG+stat.ML"]),
        (
            {"categories": ["math", "physics.comp-ph"]},
            ["https://rss.arxiv.org/rss/math+physics.comp-ph"],
        ),
        ({"url": "http://127.0.0.1:8000/feed.xml"}, ["http://127.0.0.1:8000/feed.xml"]),
        ({"categories": ["cs.LG"], "url": "http://mirror/x"}, ["http://mirror/x"]),
    ],
)
def test_start_urls(options: dict[str, object], urls: list[str]) -> None:
    opts = ArxivRssOptions.model_validate(options)
    assert ArxivRssSource().start_urls(opts, FetchWindow(today=date(2024, 11, 28))) == urls


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "give categories"),
        ({"categories": []}, "give categories"),
        ({"categories": ["cs.LG+stat.ML"]}, "not an arXiv category"),
        ({"categories": ["cs LG"]}, "not an arXiv category"),
        ({"categories": ["cs.LG"], "colour": "red"}, "colour"),
        ({"categories": "cs.LG"}, "categories"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ArxivRssOptions.model_validate(options)


def test_defaults() -> None:
    opts = ArxivRssOptions(categories=["cs.LG"])
    assert opts.include_replacements is False
    assert opts.url is None


# --- the all-archives RSS capture -----------------------------------------------------


def test_fixture_is_what_provenance_says() -> None:
    types = [item_type(i) for i in rss_items()]
    assert len(types) == 243
    assert (types.count("new"), types.count("replace"), types.count("cross")) == (159, 75, 9)


def test_cs_lg_new_and_cross_lists() -> None:
    expected = [
        item_id(i)
        for i in rss_items()
        if item_type(i) in {"new", "cross"} and "cs.LG" in item_categories(i)
    ]
    listing = parse(body(ALL), categories=["cs.LG"])
    assert [p.id for p in listing.papers] == expected
    assert len(expected) > 100  # most of the 218 cs.LG items of the day are new
    assert {p.announce_type for p in listing.papers} <= {"new", "cross"}


def test_cs_lg_with_replacements() -> None:
    expected = [item_id(i) for i in rss_items() if "cs.LG" in item_categories(i)]
    listing = parse(body(ALL), categories=["cs.LG"], include_replacements=True)
    assert [p.id for p in listing.papers] == expected
    assert len(expected) == 218  # PROVENANCE: every item with category cs.LG was kept
    assert "replace" in {p.announce_type for p in listing.papers}


def test_url_without_categories_keeps_every_category() -> None:
    expected = [item_id(i) for i in rss_items() if item_type(i) in {"new", "cross"}]
    listing = parse(body(ALL), url=FEED_URL)
    assert [p.id for p in listing.papers] == expected
    assert len(expected) == 159 + 9


@pytest.mark.parametrize(
    ("categories", "wanted"),
    [
        (["cs"], lambda cats: any(c.startswith("cs.") for c in cats)),
        (["math.CO", "hep-ph"], lambda cats: "math.CO" in cats or "hep-ph" in cats),
        (["stat.ML", "eess.SP"], lambda cats: "stat.ML" in cats or "eess.SP" in cats),
    ],
)
def test_category_and_archive_filter(
    categories: list[str], wanted: Callable[[list[str]], bool]
) -> None:
    expected = [
        item_id(i)
        for i in rss_items()
        if item_type(i) in {"new", "cross"} and wanted(item_categories(i))
    ]
    listing = parse(body(ALL), url=FEED_URL, categories=categories)
    assert [p.id for p in listing.papers] == expected
    assert expected


def test_aliased_categories_match_each_other() -> None:
    item = items_block(body(ALL))[0]
    item = re.sub(rb"(<category>[^<]*</category>\s*)+", b"<category>cs.IT</category>\n", item)
    assert parse(feed_of([item]), url=FEED_URL, categories=["math.IT"]).papers
    assert not parse(feed_of([item]), url=FEED_URL, categories=["math.CO"]).papers


def test_fields_of_every_paper_match_the_xml() -> None:
    items = {item_id(i): i for i in rss_items()}
    listing = every_announcement()
    assert len(listing.papers) == 243
    for paper in listing.papers:
        item = items[paper.id]
        assert paper.arxiv_id == paper.id
        assert paper.url == item.findtext("link") == f"https://arxiv.org/abs/{paper.id}"
        assert paper.link("abs") == f"https://arxiv.org/abs/{paper.id}"
        assert paper.link("pdf") == f"https://arxiv.org/pdf/{paper.id}"
        assert list(paper.categories) == item_categories(item)
        assert paper.announce_type == item_type(item)
        assert paper.published == datetime(2024, 11, 28, 5, 0, tzinfo=UTC)  # 00:00 -0500
        assert paper.title
        assert "\n" not in paper.title
        assert "  " not in paper.title
        assert paper.authors
        assert all(a == a.strip() and a for a in paper.authors)


def test_first_paper_in_full() -> None:
    paper = parse(body(ALL), url=FEED_URL).papers[0]
    assert paper.id == "2411.17702"
    assert paper.title == (
        'Finding "Good Views" of Electrocardiogram Signals for Inferring Abnormalities in '
        "Cardiac Condition"
    )
    assert paper.authors == ("Hyewon Jeong", "Suyeol Yun", "Hammaad Adam")
    assert paper.abstract.startswith("Electrocardiograms (ECGs) are an established technique")
    assert paper.abstract.endswith("https://github.com/mandiehyewon/goodviews_ecg.git")
    assert paper.categories == ("eess.SP", "cs.LG")
    assert paper.doi is None


def test_abstract_is_the_text_after_abstract_marker() -> None:
    items = {item_id(i): i for i in rss_items()}
    papers = every_announcement().papers
    assert len(papers) == 243
    for paper in papers:
        description = items[paper.id].findtext("description") or ""
        after = description.split("Abstract:", 1)[1]
        assert paper.abstract[:40] == " ".join(decode_tex(after).split())[:40]
        assert "Announce Type" not in paper.abstract


@pytest.mark.parametrize(
    ("needle", "kept"),
    [
        (r"\alpha < \omega_2", r"\alpha < \omega_2"),  # escaped `<` in math stays a `<`
        ("R&amp;D efforts", "R&D efforts"),
        ("X650-&gt;ZZ-&gt;4leptons", "X650->ZZ->4leptons"),
    ],
)
def test_abstract_entities(needle: str, kept: str) -> None:
    raw = body(ALL).decode()
    assert needle in raw or needle.replace("<", "&lt;") in raw
    abstracts = [p.abstract for p in every_announcement().papers]
    assert any(kept in a for a in abstracts)
    assert not any("&amp;" in a or "&gt;" in a or "&lt;" in a for a in abstracts)


@pytest.mark.parametrize(
    ("paper_id", "title"),
    [
        (
            "2411.18380",
            "SoK: Privacy Personalised – Mapping Personal Attributes & Preferences of Privacy "
            "Mechanisms for Shoulder Surfing",
        ),
        ("2307.10544", "Design & Optimization of the HV divider for JUNO 20-inch PMT"),
        ("2411.17792", "$H^3$Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs"),
        ("2411.17452", "From the Shastry-Sutherland model to the $J_1$-$J_2$ Heisenberg model"),
    ],
)
def test_titles(paper_id: str, title: str) -> None:
    papers = by_id(every_announcement())
    assert papers[paper_id].title == title


def test_every_ampersand_title() -> None:
    ampersand_ids = {item_id(i) for i in rss_items() if "&" in (i.findtext("title") or "")}
    assert len(ampersand_ids) >= 3
    papers = by_id(every_announcement())
    for paper_id in ampersand_ids:
        title = papers[paper_id].title
        assert "&" in title
        assert "\\&" not in title
        assert "&amp;" not in title


def test_tex_escaped_titles_are_decoded() -> None:
    papers = every_announcement().papers
    lindelof = next(p for p in papers if "Cardinal Sequences" in p.title)
    assert lindelof.title == "Cardinal Sequences of Lindelöf scattered P-spaces"


@pytest.mark.parametrize(
    ("escape", "name"),
    [
        (r"R\'emy", "Benjamin Rémy"),
        (r"Przemys{\l}aw", "Przemysław Olbratowski"),
        (r"Jaros{\l}aw \.Zygierewicz", "Jarosław Żygierewicz"),
        (r"Vavry\v{c}uk", "Václav Vavryčuk"),
        (r"Kad{\i}o\u{g}lu", "Serdar Kadıoğlu"),
        (r"N\'u\~nez", "José Fernando Núñez"),
        (r"Fran\c{c}a", "Felipe M. G. França"),
        (r"Sj{\o}rup", "Jeppe Liborius Sjørup"),
    ],
)
def test_tex_names_in_creators(escape: str, name: str) -> None:
    item = next(i for i in rss_items() if escape in (i.findtext(f"{NS_DC}creator") or ""))
    papers = by_id(every_announcement())
    authors = papers[item_id(item)].authors
    assert name in authors
    assert not any("\\" in a or "{" in a for a in authors)


def test_affiliations_with_commas_are_dropped() -> None:
    item = next(
        i for i in rss_items() if "Tianliang Yan (" in (i.findtext(f"{NS_DC}creator") or "")
    )
    paper = by_id(every_announcement())[item_id(item)]
    assert paper.authors == (
        "Tianliang Yan",
        "Yubao Liu",
        "Leonid Prokhorov",
        "Jiri Smetana",
        "Haixing Miao",
        "Yiqiu Ma",
        "Vincent Boyer",
        "Denis Martynov",
    )


def test_no_affiliation_text_survives() -> None:
    with_affiliations = [i for i in rss_items() if "(" in (i.findtext(f"{NS_DC}creator") or "")]
    assert len(with_affiliations) >= 6
    papers = by_id(every_announcement())
    # arXiv wrote "Qiuyi (Richard) Zhang" as "Qiuyi (Richard),  Zhang": a nickname, kept
    assert papers["2411.17965"].authors == ("Shuli Jiang", "Qiuyi (Richard) Zhang", "Gauri Joshi")
    for item in with_affiliations:
        creator = item.findtext(f"{NS_DC}creator") or ""
        affiliations = re.findall(r"\(([^()]*)\)", creator)
        if item_id(item) == "2411.17965":
            continue
        for author in papers[item_id(item)].authors:
            assert "(" not in author
            assert ")" not in author
            assert not any(aff and aff in author for aff in affiliations)


def test_the_207_author_paper() -> None:
    creators = {item_id(i): i.findtext(f"{NS_DC}creator") or "" for i in rss_items()}
    paper_id, raw = max(creators.items(), key=lambda kv: kv[1].count(","))
    names = [decode_tex(" ".join(n.split())) for n in raw.split(",")]
    assert len(names) == 207
    assert "(" not in raw
    paper = by_id(every_announcement())[paper_id]
    assert list(paper.authors) == names
    assert paper.authors[0] == "NOvA Collaboration"
    assert paper.authors[-1] == "R. Zwaska"
    assert "D. Dueñas Tonguino" in paper.authors
    assert "S. Sánchez Falero" in paper.authors


def test_dois() -> None:
    dois = {item_id(i): (i.findtext(f"{NS_ARXIV}DOI") or "") for i in rss_items()}
    papers = by_id(every_announcement())
    with_doi = {k: v for k, v in dois.items() if v}
    assert len(with_doi) == 11
    assert set(with_doi) <= set(papers), "every paper with a DOI was read"
    for paper_id, paper in papers.items():
        expected = with_doi.get(paper_id)
        assert paper.doi == (expected.lower() if expected else None)
        assert paper.link("doi") == (f"https://doi.org/{paper.doi}" if paper.doi else None)


# --- the Atom flavour -----------------------------------------------------------------


def atom_entries() -> list[ET.Element]:
    """The `<entry>` elements of the Atom capture."""
    return list(ET.parse(ARXIV / ATOM).getroot().iter(f"{NS_ATOM}entry"))


def test_atom_flavour() -> None:
    entries = atom_entries()
    assert len(entries) == 86
    listing = parse(body(ATOM), categories=["cs.AI"])
    assert len(listing.papers) == 86
    expected_ids = [
        re.sub(r"v\d+$", "", (e.findtext(f"{NS_ATOM}id") or "").split(":")[-1]) for e in entries
    ]
    assert [p.id for p in listing.papers] == expected_ids
    types = [p.announce_type for p in listing.papers]
    assert (types.count("new"), types.count("cross")) == (41, 45)
    first = listing.papers[0]
    assert first.title.startswith("Chain-of-Agents: End-to-End Agent Foundation Models")
    assert first.authors[:2] == ("Weizhen Li", "Jianbo Lin")
    assert first.abstract.startswith("Recent advances in large language models (LLMs)")
    assert first.categories == ("cs.AI", "cs.CL")
    assert first.published == datetime(2025, 8, 20, 4, 0, tzinfo=UTC)
    assert first.link("pdf") == "https://arxiv.org/pdf/2508.13167"


@pytest.mark.parametrize(
    "name", ["Jörg Deigmöller", "Anders Søgaard", "Hendrik Kraß", "Jan Jakubův", "Inès Blin"]
)
def test_atom_tex_names(name: str) -> None:
    authors = {a for p in parse(body(ATOM), categories=["cs.AI"]).papers for a in p.authors}
    assert name in authors


def test_atom_abstract_keeps_escaped_markup_as_text() -> None:
    # "&lt;think&gt;" in the capture is the word <think>, not a tag to strip.
    entry = next(e for e in atom_entries() if "<think>" in (e.findtext(f"{NS_ATOM}summary") or ""))
    papers = by_id(parse(body(ATOM), categories=["cs.AI"]))
    entry_id = re.sub(r"v\d+$", "", (entry.findtext(f"{NS_ATOM}id") or "").split(":")[-1])
    assert "<think> and <answer> tags" in papers[entry_id].abstract


def test_atom_doi() -> None:
    papers = parse(body(ATOM), categories=["cs.AI"]).papers
    assert [p.doi for p in papers if p.doi] == ["10.7249/pea3971-1"]


# --- empty days, error feeds, things that are not feeds -------------------------------


def test_empty_day_is_an_empty_listing() -> None:
    assert parse(body(EMPTY), categories=["cs.LG"]) == Listing(papers=())


def test_error_feed_raises_with_the_query() -> None:
    with pytest.raises(ParseError) as info:
        parse(body(ERROR), categories=["cs.LG"])
    message = str(info.value)
    assert message.startswith(f"{FEED_URL}: Feed error for query: http://rss.arxiv.org/rss/astroph")
    assert "Bad archive 'astroph'" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (body(HTML_PAGE), "expected an RSS or Atom feed, got an HTML page"),
        (b"", "got an empty document"),
        (b"   \n", "got an empty document"),
        (b'[{"paper": {"id": "2411.01234"}}]', "got JSON"),
        (b"\x00\xff\xfe garbage \x01", "malformed XML"),
        (b'<?xml version="1.0"?><root><a>1</a></root>', "neither RSS nor Atom"),
        (body(EMPTY)[:600], "malformed XML"),  # cut inside the channel header
        (body(ALL)[:1000], "malformed XML"),  # cut before the first item
        (b'<rss version="2.0"></rss>', "found neither"),
    ],
)
def test_not_a_feed(data: bytes, expected: str) -> None:
    with pytest.raises(ParseError, match=re.escape(expected)) as info:
        parse(data, categories=["cs.LG"])
    assert str(info.value).startswith(FEED_URL)


def test_truncated_feed_still_gives_its_complete_entries() -> None:
    data = body(ALL)
    cut = data.index(b"<item>", len(data) // 2) + 300  # in the middle of an item
    complete = items_block(data[:cut])
    listing = parse(data[:cut], url=FEED_URL, include_replacements=True)
    ids = [p.id for p in listing.papers]
    expected = [block_id(block) for block in complete]
    assert ids[: len(expected)] == expected
    assert len(expected) > 100


def test_well_formed_feed_with_broken_markup_inside_still_parses() -> None:
    data = body(ALL).replace(b"R&amp;D", b"R&D")  # an unescaped & makes the XML invalid
    with pytest.raises(ET.ParseError):
        ET.fromstring(data)
    listing = parse(data, url=FEED_URL)
    assert len(listing.papers) == 159 + 9


# --- one bad entry --------------------------------------------------------------------


def _without_id(item: bytes) -> bytes:
    """A real item with its guid, link and the description's `arXiv:` line removed."""
    item = re.sub(rb"<guid[^>]*>.*?</guid>", b"", item)
    item = re.sub(rb"<link>.*?</link>", b"", item)
    return re.sub(rb"arXiv:\S+ Announce", b"Announce", item)


def test_a_bad_entry_is_skipped_with_a_problem_line() -> None:
    items = items_block(body(ALL))[:3]
    listing = parse(feed_of([items[0], _without_id(items[1]), items[2]]), url=FEED_URL)
    assert [p.id for p in listing.papers] == [block_id(items[i]) for i in (0, 2)]
    [problem] = listing.problems
    assert problem.startswith("entry 2 skipped: no arXiv id")


def test_every_entry_bad_is_an_error() -> None:
    items = [_without_id(i) for i in items_block(body(ALL))[:2]]
    with pytest.raises(ParseError, match=r"none of 2 entries could be read .*no arXiv id"):
        parse(feed_of(items), url=FEED_URL)


def test_skipped_replacements_do_not_count_as_bad() -> None:
    blocks = items_block(body(ALL))
    replace = next(b for b in blocks if b"<arxiv:announce_type>replace<" in b)
    assert parse(feed_of([replace]), url=FEED_URL) == Listing(papers=())


def test_announce_type_from_description_when_the_element_is_missing() -> None:
    blocks = items_block(body(ALL))
    replace = next(b for b in blocks if b"<arxiv:announce_type>replace<" in b)
    stripped = re.sub(rb"<arxiv:announce_type>.*?</arxiv:announce_type>", b"", replace)
    assert parse(feed_of([stripped]), url=FEED_URL) == Listing(papers=())
    papers = parse(feed_of([stripped]), url=FEED_URL, include_replacements=True).papers
    assert [p.announce_type for p in papers] == ["replace"]


# --- creators strings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("creators", "names"),
    [
        ("A. One, B. Two and C. Three", ["A. One", "B. Two", "C. Three"]),
        ("A. One, B. Two, and C. Three", ["A. One", "B. Two", "C. Three"]),
        ("A. One and B. Two", ["A. One", "B. Two"]),
        ("Solo Author", ["Solo Author"]),
        ("A. One (Univ. X, Dept. Y (Lab Z), City), B. Two (W)", ["A. One", "B. Two"]),
        ("A. One (Andrew and Peggy Cherng Dept.), B. Two (Science and Tech)", ["A. One", "B. Two"]),
        ("A. One (unclosed, B. Two", ["A. One unclosed", "B. Two"]),
        ("Mauricio Breternitz, Jr., Eugene John", ["Mauricio Breternitz Jr.", "Eugene John"]),
        (r"J\"org M\"uller, {\O}ystein Ore", ["Jörg Müller", "Øystein Ore"]),
        ("  NOvA Collaboration,  M. A.   Acero ", ["NOvA Collaboration", "M. A. Acero"]),
        ("", []),
    ],
)
def test_split_creators(creators: str, names: list[str]) -> None:
    assert split_creators(creators) == names
