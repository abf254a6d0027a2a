"""Other projects' real captures, read by `paperbot once` in a real child process.

None of these documents was written for paperbot: the pre-2024 arXiv RSS 1.0 feeds and the
old-format API answers PhysBiblio tests with, the 2026 API answers arxiv.py records
(among them the HTTP 400 error answer of today's API), a feed a scraper builds from
Nature's pages, a mirror's feed of Hugging Face Daily Papers, two arXiv feeds that other
bots filter and republish (one rewritten without its namespaces), and two publications pages
built by Hugo Academic and Wowchemy (see `tests/fixtures/PROVENANCE.md`). They are served
as they are by the real HTTP server; one subscriber follows words and authors in them.
What is stored must be plain: authors real names, abstracts without markup, no paper
twice, and the broken documents one line each.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.cli import run_paperbot
from tests.httpserver import FIXTURES, LocalHTTPServer
from tests.integration.test_deadlines import outbox_digests, text_of
from tests.integration.test_once import write_config

A = "arxiv/"
#: source name -> (kind, fixture, extra options)
SOURCES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "rdf-2021": ("arxiv-rss", A + "rss10_hep-ex_2021-07-08_physbiblio_placeholders.rdf", {}),
    "rdf-2021-holes": (
        "arxiv-rss",
        A + "rss10_hep-ex_2021-07-08_physbiblio_fields_removed.rdf",
        {},
    ),
    "rdf-2018": ("arxiv-rss", A + "rss10_hep-ex_2018-05-23_physbiblio_trimmed.rdf", {}),
    "api-2021": ("arxiv-api", A + "api_2021-07_oldformat_physbiblio_placeholders.xml", {}),
    "api-2021-holes": ("arxiv-api", A + "api_2021-07_oldformat_physbiblio_no_title.xml", {}),
    "api-2021-cut": ("arxiv-api", A + "api_2021-07_oldformat_physbiblio_cut.xml", {}),
    "api-2026": ("arxiv-api", A + "api_query_testing_s20_2026-04_arxivpy.xml", {}),
    "api-2026-ids": ("arxiv-api", A + "api_idlist_two_2026-04_arxivpy.xml", {}),
    "api-2026-old-id": ("arxiv-api", A + "api_idlist_old_style_2026-04_arxivpy.xml", {}),
    "api-2026-error": ("arxiv-api", "/api-error", {}),
    "filtered": ("arxiv-rss", A + "rss_filtered_cs_2025-08-06_dzdydx_trimmed.xml", {}),
    "no-namespaces": ("rss", A + "rss_filtered_no_namespaces_2025-10-17_toseic.xml", {}),
    "nature-scraped": ("rss", "rss/nature_research_articles_scraped_2026-01.xml", {}),
    "hf-mirror": ("rss", "rss/hf_daily_papers_mirror_2026-10-03_trimmed.xml", {}),
    "hugo-academic": (
        "html",
        "html/a2r_lab_publications_hugo_academic_2026-05.html",
        {"item": "div.pub-list-item", "title": "a[itemprop=name]", "authors": ".li-cite-author"},
    ),
    "wowchemy": (
        "html",
        "html/wowchemy_demo_publications_2023-02.html",
        {
            "item": "div.pub-list-item",
            "title": "a[href*='/publication/']",
            "authors": ".li-cite-author",
        },
    ),
}
SUBSCRIBER = {
    "email": "ada@example.org",
    "keywords": [
        "baryons",  # rdf-2021 (the LHCb paper)
        "modular representation theory",  # rdf-2021, a cross-list
        "spin asymmetries",  # rdf-2018
        "Dark Radiation",  # api-2021 (two papers of that title)
        "test input generation",  # api-2026
        "inverse kinematics",  # hugo-academic
        "Asgard archaea",  # nature-scraped
        "world models",  # hf-mirror
        "example preprint",  # wowchemy (its journal article links the same arXiv id)
        "time series forecasting",  # filtered
        "object placement",  # no-namespaces
    ],
    "authors": ["Aaij", "Weißl"],
    "max_papers": 100,
}
#: what may never be in a stored name: markup, entities, placeholders, a group's colon
NOT_IN_A_NAME = re.compile(r"[<>;:&]|et al|additional authors|more authors|\(\s*\)|^\W*$", re.I)
MARKUP = re.compile(r"<[A-Za-z/!]|&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);")


def config_for(tmp_path: Path, server: LocalHTTPServer) -> Path:
    """One source per capture, and the subscriber."""
    sources = [
        {"name": name, "kind": kind, "url": server.url(path), **options}
        for name, (kind, path, options) in SOURCES.items()
    ]
    return write_config(tmp_path, sources=sources, subscribers=[SUBSCRIBER])


def stored(database: Path) -> dict[str, dict[str, Any]]:
    """Every stored paper by id: title, authors, abstract, announce type, sources."""
    with sqlite3.connect(database) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM papers").fetchall()
    return {row["id"]: dict(row) for row in rows}


def headings(text: str) -> list[str]:
    """The title under each `--- k of n ---` heading of a digest's text part."""
    blocks = re.split(r"\r?\n--- \d+ of \d+ ---\r?\n", text)[1:]
    return [block.strip().splitlines()[0] for block in blocks]


def html_text_of(message: EmailMessage) -> str:
    """The text of the HTML part of a digest (tags dropped, entities decoded)."""
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return html.unescape(re.sub(r"<[^>]+>", "", str(part.get_content())))


def test_real_captures_of_other_projects_are_stored_plain_and_mailed_once(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    error = (FIXTURES / A / "api_error_400_bad_id_2026-04_arxivpy.xml").read_bytes()
    http_server.route("/api-error", status=400, body=error, content_type="application/atom+xml")
    config = config_for(tmp_path, http_server)

    first = run_paperbot(config, "once")

    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr
    assert "internal error" not in first.stderr
    lines = first.stderr.splitlines()
    errors = {
        name: line
        for name in SOURCES
        for line in lines
        if f"source {name}: " in line and "ok," not in line
    }
    said = "HTTP 400 Bad Request: arXiv API error: incorrect id format for abc"
    assert errors["api-2026-error"].endswith(said)
    assert "broken: " in errors["api-2021-cut"]
    assert "entry 1 skipped" in errors["rdf-2021-holes"]
    assert "entry 1 skipped" in errors["api-2021-holes"]
    papers = stored(tmp_path / "paperbot.db")
    for paper in papers.values():
        names = json.loads(paper["authors"])
        for name in names:
            assert not NOT_IN_A_NAME.search(name), (paper["id"], name)
        assert not MARKUP.search(paper["abstract"]), (paper["id"], paper["abstract"][:200])
        assert not MARKUP.search(paper["title"]), paper["title"]
        assert "(arXiv:" not in paper["title"]
    lhcb = papers["2107.03419"]
    assert json.loads(lhcb["authors"]) == ["LHCb collaboration", "R. Aaij"]
    assert papers["2106.00550"]["announce_type"] == "cross"
    assert "2007.03939" not in papers, "an UPDATED entry of the old feed is a replacement"
    assert "Oliver Weißl" in json.loads(papers["2602.15552"]["authors"])
    assert {"1707.08567", "astro-ph/0601001"} <= set(papers)  # 0808.05394 does not exist
    # a feed rewritten without namespaces: bare <creator>, and its replacements left out
    assert json.loads(papers["2510.14627"]["authors"])[0] == "Yao Zhong"
    assert not any(p["announce_type"] in ("replace", "replace-cross") for p in papers.values())
    # the filtered feed's abstract is arXiv's, after the Chinese summary the project adds
    assert papers["2508.02753"]["abstract"].startswith("Time Series Forecasting (TSF) faces")

    [digest] = outbox_digests(tmp_path / "outbox")
    listed = headings(text_of(digest))
    shown = " ".join(html_text_of(digest).split())
    expected = [
        "Observation of excited",
        "Potential applications of modular representation theory",
        "Measurement of Transverse Single Spin Asymmetries",
        "Latent Regularization in Generative Test Input Generation",
        "HJCD-IK: GPU-Accelerated Inverse Kinematics",
        "Dominant contribution of Asgard archaea to eukaryogenesis",
        "LOCI: Spatial Linear Memory for Streaming World Models",
        "An example preprint / working paper",
        "DMSC: Dynamic Multi-Scale Coordination Framework for Time Series Forecasting",
        "GOPLA: Generalizable Object Placement Learning",
    ]
    for title in expected:
        assert [t for t in listed if t.startswith(title)] != [], title
        assert title in shown, title
    assert len(listed) == len(expected) + 2, listed
    assert listed.count("Dark Radiation and Inflationary Freedom") == 2, "two papers, one title"

    again = run_paperbot(config, "once")
    assert "Traceback" not in again.stderr
    assert len(outbox_digests(tmp_path / "outbox")) == 1, "nothing is mailed twice"
