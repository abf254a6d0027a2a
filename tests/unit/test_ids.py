"""Paper identity: arXiv ids, DOIs, normalized titles, canonical ids."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.text.ids import arxiv_id_from, canonical_id, doi_from, normalize_title, title_key

ARXIV = Path(__file__).parents[1] / "fixtures" / "arxiv"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://arxiv.org/abs/2411.01234", "2411.01234"),
        ("https://arxiv.org/abs/2411.01234v2", "2411.01234"),
        ("http://export.arxiv.org/abs/2411.01234v1", "2411.01234"),
        ("https://arxiv.org/pdf/2411.01234v3", "2411.01234"),
        ("https://arxiv.org/pdf/2411.01234v3.pdf", "2411.01234"),
        ("https://arxiv.org/html/2411.01234v1#S2", "2411.01234"),
        ("arXiv:2411.01234v2", "2411.01234"),
        ("arXiv: 2411.01234", "2411.01234"),
        ("ARXIV:2411.01234", "2411.01234"),
        ("oai:arXiv.org:2411.01234v1", "2411.01234"),
        ("https://doi.org/10.48550/arXiv.2411.01234", "2411.01234"),
        ("https://huggingface.co/papers/2509.24002", "2509.24002"),
        ("see arXiv:2411.17702v1 for details", "2411.17702"),
        ("2411.01234", "2411.01234"),
        ("  2411.01234v7 ", "2411.01234"),
        ("0704.0001", "0704.0001"),  # the first new-style id
        ("1412.9999", "1412.9999"),  # four digits until 2014
        ("1501.00001", "1501.00001"),  # five from 2015
        ("hep-ph/9411242", "hep-ph/9411242"),
        ("hep-ph/9411242v1", "hep-ph/9411242"),
        ("https://arxiv.org/abs/hep-ph/9411242v3", "hep-ph/9411242"),
        ("arXiv:hep-th/9901001", "hep-th/9901001"),
        # The subject class is not part of an old-style id: arXiv redirects to math/0309136.
        ("math.GT/0309136", "math/0309136"),
        ("https://arxiv.org/abs/math.GT/0309136v2", "math/0309136"),
        ("arXiv:cond-mat.stat-mech/0601001", "cond-mat/0601001"),
        ("http://arxiv.org/abs/nucl-ex/0408020v1", "nucl-ex/0408020"),
    ],
)
def test_arxiv_id_found(text: str, expected: str) -> None:
    assert arxiv_id_from(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no id here",
        "https://arxiv.org/list/cs.LG/new",
        "https://example.com/posts/2023.12345",  # a number in some URL is not an arXiv id
        "x 2411.01234",  # bare ids only count when they are the whole string
        "0703.0001",  # before new-style ids existed
        "2413.01234",  # month 13
        "1412.12345",  # five digits before 2015
        "2411.1234",  # four digits after 2014
        "https://arxiv.org/abs/2411.012345",  # six digits
        "10.1016/j.dark.2024.101730",
    ],
)
def test_arxiv_id_not_found(text: str) -> None:
    assert arxiv_id_from(text) is None


def test_arxiv_id_skips_an_impossible_id_and_finds_the_next() -> None:
    assert arxiv_id_from("arXiv:2413.01234 and arXiv:2411.01234") == "2411.01234"


def test_every_guid_of_the_real_feed_gives_its_link_id() -> None:
    root = ET.parse(ARXIV / "rss_all-archives_2024-11-28_trimmed.xml").getroot()
    items = list(root.iter("item"))
    assert len(items) == 243
    for item in items:
        guid, link = item.findtext("guid") or "", item.findtext("link") or ""
        assert arxiv_id_from(guid) == link.removeprefix("https://arxiv.org/abs/")
        assert re.fullmatch(r"oai:arXiv\.org:\S+v\d+", guid)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://doi.org/10.1016/J.DARK.2024.101730", "10.1016/j.dark.2024.101730"),
        ("http://dx.doi.org/10.1103/PhysRevD.103.096005", "10.1103/physrevd.103.096005"),
        ("doi:10.1093/jiplp/jpaf090", "10.1093/jiplp/jpaf090"),
        ("DOI: 10.1000/xyz123.", "10.1000/xyz123"),
        ("10.7249/PEA3971-1", "10.7249/pea3971-1"),
        ("(see 10.1000/abc),", "10.1000/abc"),
        ("10.1016/S0140-6736(20)30183-5", "10.1016/s0140-6736(20)30183-5"),
        ("https://doi.org/10.1000/abc?utm_source=rss#top", "10.1000/abc"),
        ("https://doi.org/10.1000%2Fabc%3Fx", "10.1000/abc?x"),  # an encoded ? is the DOI's
        (
            "https://onlinelibrary.wiley.com/doi/10.1002/adma.202400001/full",
            "10.1002/adma.202400001",
        ),
        ("https://link.springer.com/chapter/10.1007/978-3-031-1_1", "10.1007/978-3-031-1_1"),
        (
            "https://www.biorxiv.org/content/10.1101/2024.11.25.625205v1?rss=1",
            "10.1101/2024.11.25.625205",
        ),
        (
            "https://www.medrxiv.org/content/10.1101/2024.01.02.24300001v2.full.pdf",
            "10.1101/2024.01.02.24300001",
        ),
        ("https://doi.org/10.48550/arXiv.2411.01234", "10.48550/arxiv.2411.01234"),
        ("https://example.org/cite?doi=10.1000%2Fabc&format=bib", "10.1000/abc"),
        ("https://example.org/cite?doi=10.1000/abc&format=bib#x", "10.1000/abc"),
    ],
)
def test_doi_found(text: str, expected: str) -> None:
    assert doi_from(text) == expected


@pytest.mark.parametrize(
    "text", ["", "no doi", "10.1234/", "10.12/abc", "https://arxiv.org/abs/2411.01234"]
)
def test_doi_not_found(text: str) -> None:
    assert doi_from(text) is None


def test_dois_of_the_real_feed_are_kept_as_written_but_lowercase() -> None:
    root = ET.parse(ARXIV / "rss_all-archives_2024-11-28_trimmed.xml").getroot()
    dois = [el.text or "" for el in root.iter("{http://arxiv.org/schemas/atom}DOI")]
    assert len(dois) == 11
    for doi in dois:
        assert doi_from(doi) == doi.strip().lower()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("$H^3$Fusion: Helpful, Harmless", "H³Fusion — helpful harmless"),
        ("$H^3$Fusion: Helpful, Harmless", "H<sup>3</sup>Fusion: Helpful, Harmless"),
        (
            r"Cardinal Sequences of Lindel\"of scattered P-spaces",
            "Cardinal sequences of Lindelöf scattered P‐spaces",
        ),
        (r"SoK: Mapping Attributes \& Preferences", "SoK: Mapping Attributes &amp; Preferences"),
        ("Design & Optimization", "DESIGN &amp; OPTIMIZATION"),
        (r"Robust $\alpha$-Divergence", "Robust α-divergence"),
        ("Robust  Offline\n  Learning", "robust offline learning"),
        ("Die Straße", "DIE STRASSE"),
        ("Ｆｕｌｌｗｉｄｔｈ", "fullwidth"),
        ("<i>In vivo</i> tests", "In vivo tests"),
    ],
)
def test_normalized_titles_match(a: str, b: str) -> None:
    assert normalize_title(a) == normalize_title(b)
    assert title_key(a) == title_key(b)


@pytest.mark.parametrize(
    ("title", "normalized"),
    [
        (
            "Chain-of-Agents: End-to-End Agent Foundation Models",
            "chain of agents end to end agent foundation models",
        ),
        (r"J\"org's \emph{Über} Café", "jorg s uber cafe"),
        ("  ", ""),
    ],
)
def test_normalize_title(title: str, normalized: str) -> None:
    assert normalize_title(title) == normalized


def test_different_titles_get_different_keys() -> None:
    assert title_key("Neural collapse") != title_key("Neural collapse II")


def test_title_key_is_stable() -> None:
    # Keys are stored in the database: changing the hash or the normalization re-keys papers.
    assert title_key("Neural Collapse") == "cebb98db79bba6c6"
    assert hashlib.blake2b(b"neural collapse", digest_size=8).hexdigest() == "cebb98db79bba6c6"
    assert re.fullmatch(r"[0-9a-f]{16}", title_key("anything"))


@given(st.text())
def test_normalize_title_is_idempotent(title: str) -> None:
    once = normalize_title(title)
    assert normalize_title(once) == once


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"arxiv_id": "2411.01234v2", "doi": "10.1/x", "title": "T"}, "2411.01234"),
        ({"arxiv_id": "https://arxiv.org/abs/hep-ph/9411242v1"}, "hep-ph/9411242"),
        (
            {"arxiv_id": None, "doi": "10.1016/J.DARK.2024.101730", "title": "T"},
            "doi:10.1016/j.dark.2024.101730",
        ),
        ({"doi": "https://doi.org/10.1000/ABC"}, "doi:10.1000/abc"),
        ({"arxiv_id": "", "doi": "", "title": "Neural Collapse"}, "title:cebb98db79bba6c6"),
        ({"title": "neural   collapse!"}, "title:cebb98db79bba6c6"),
    ],
)
def test_canonical_id(kwargs: dict[str, str | None], expected: str) -> None:
    assert canonical_id(**kwargs) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arxiv_id": "not-an-id"}, "not an arXiv id"),
        ({"doi": "nope"}, "not a DOI"),
        ({"title": " -- "}, "needs an arXiv id, a DOI or a title"),
        ({}, "needs an arXiv id, a DOI or a title"),
    ],
)
def test_canonical_id_refuses_what_is_no_identity(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        canonical_id(**kwargs)
