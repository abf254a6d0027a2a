"""One paper, many sources: arXiv's feed, Hugging Face, alphaXiv and a lab page list the same
papers; `paperbot once` over a real HTTP server stores each once and mails it once, with
every source's links.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.text.ids import title_key
from tests.httpserver import FIXTURES, LocalHTTPServer
from tests.integration.test_once import mails_to, run, smtp_section, text_part, write_config

STAR = "STAR: Synthesis of Tailored Architectures"
MEMO = (
    "From memorization to generalization: a theoretical framework for diffusion-based"
    " generative models"
)
H3 = "$H^3$Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs"
H3_LAB = "H3Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs"
LAB_PATH = "/lab/en/research/publications"


def lab_source(server: LocalHTTPServer) -> dict[str, Any]:
    """The Mila preset of config/example.yaml, pointed at the served lab pages."""
    page0 = (FIXTURES / "html" / "mila_publications_page0_handwritten.html").read_bytes()
    page1 = (FIXTURES / "html" / "mila_publications_page1_handwritten.html").read_bytes()
    server.route(LAB_PATH, body=page0, content_type="text/html; charset=utf-8")
    server.route(f"{LAB_PATH}?page=1", body=page1, content_type="text/html; charset=utf-8")
    return {
        "name": "mila",
        "kind": "html",
        "url": server.url(LAB_PATH),
        "item": "article.publication-card",
        "title": ".publication-card__title",
        "authors": ".publication-card__authors a, .publication-card__authors .author-list",
        "abstract": ".publication-card__abstract",
        "date": "time",
        "remove": ["button.see-more"],
        "next": "a[rel=next]",
        "max_pages": 5,
    }


def all_sources(server: LocalHTTPServer) -> dict[str, dict[str, Any]]:
    """Every source listing the shared papers, by name."""
    return {
        "mila": lab_source(server),
        "hf": {
            "name": "hf",
            "kind": "huggingface",
            "url": server.url("huggingface/papers_date_2024-11-28_handwritten.html"),
        },
        "alphaxiv": {
            "name": "alphaxiv",
            "kind": "alphaxiv",
            "url": server.url("alphaxiv/feed_hot_7days_page0_handwritten.json"),
        },
        "arxiv": {
            "name": "arxiv",
            "kind": "arxiv-rss",
            "url": server.url("arxiv/rss_all-archives_2024-11-28_trimmed.xml"),
        },
    }


def stored_rows(config: Path, title: str) -> list[dict[str, Any]]:
    """The store's rows for a title (read straight from the SQLite file)."""
    with sqlite3.connect(tmp_database(config)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM papers WHERE title_key = ?", (title_key(title),))
        return [dict(row) for row in rows]


def tmp_database(config: Path) -> Path:
    """The database the test config points at."""
    return config.parent / "paperbot.db"


def entry_of(body: str, title: str) -> str:
    """The digest's text entry of one paper: from its title line to the next entry."""
    lines = body.splitlines()
    start = lines.index(title)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("--- ")), None)
    return "\n".join(lines[start:end])


@pytest.mark.parametrize(
    "order",
    [["mila", "hf", "alphaxiv", "arxiv"], ["arxiv", "alphaxiv", "hf", "mila"]],
    ids=["lab-page-first", "arxiv-first"],
)
def test_same_papers_from_four_sources_are_stored_and_mailed_once(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any, order: list[str]
) -> None:
    sources = all_sources(http_server)
    config = write_config(
        tmp_path,
        sources=[sources[name] for name in order],
        smtp=smtp_section(smtp_server),
        subscribers=[
            {
                "email": "ada@example.org",
                "keywords": ["tailored architectures", "memorization", "honest fusion"],
            }
        ],
    )
    assert run(config, "once") == 0

    for title in (STAR, MEMO, H3):
        [row] = stored_rows(config, title)
        assert len(json.loads(row["sources"])) >= 3, f"{title}: one row, several sources"
    [star] = stored_rows(config, STAR)
    assert star["id"] == "2411.17800", "the lab page's title-only record took the arXiv id"
    assert set(json.loads(star["sources"])) == {"mila", "hf", "alphaxiv", "arxiv"}
    assert json.loads(star["categories"])[:1] == ["cs.LG"]
    assert star["votes"] == 58, "the highest count any source gave"
    assert "Liquid AI" in json.loads(star["organizations"])
    labels = {label for label, _url in json.loads(star["links"])}
    assert {"abs", "pdf", "hf", "alphaxiv", "page", "project"} <= labels

    [digest] = mails_to(smtp_server, "ada@example.org")
    body = text_part(digest)
    lines = body.splitlines()
    for title in (STAR, MEMO):
        assert lines.count(title) == 1, f"{title!r} is in the digest once"
    # with equally strong ids the first source's spelling stays: arXiv's TeX or the lab's <sup>
    h3_titles = [line for line in lines if line in (H3, H3_LAB)]
    assert len(h3_titles) == 1, "H3Fusion is in the digest once, in one spelling"
    entry = entry_of(body, STAR)
    assert "https://arxiv.org/abs/2411.17800" in entry
    assert "https://arxiv.org/pdf/2411.17800" in entry
    assert "https://huggingface.co/papers/2411.17800" in entry
    assert "https://www.alphaxiv.org/abs/2411.17800" in entry
    assert (
        http_server.url("en/research/publications/star-synthesis-of-tailored-architectures")
        in entry
    )
    assert "https://www.liquid.ai/research/automated-architecture-synthesis-via-targeted" in entry
    assert "Armin W. Thomas" in entry
    assert "Rom Parnichkun" in entry, "the full author list, not the lab's members only"
    h3 = entry_of(body, h3_titles[0])
    assert "https://github.com/sftekin/h3fusion" in h3

    assert run(config, "once") == 0
    assert len(smtp_server.messages) == 1, "a second run mails nothing again"


def test_a_paper_mailed_from_a_lab_page_is_not_mailed_again_when_arxiv_lists_it(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any
) -> None:
    sources = all_sources(http_server)
    settings: dict[str, Any] = {
        "smtp": smtp_section(smtp_server),
        "subscribers": [{"email": "ada@example.org", "keywords": ["memorization"]}],
    }
    lab_only = write_config(tmp_path, sources=[sources["mila"]], **settings)
    assert run(lab_only, "once") == 0
    [first] = mails_to(smtp_server, "ada@example.org")
    assert (
        text_part(first)
        .splitlines()
        .count(
            "From Memorization to Generalization: A Theoretical Framework for Diffusion-Based"
            " Generative Models"
        )
        == 1
    )
    [row] = stored_rows(lab_only, MEMO)
    assert row["id"].startswith("title:"), "the lab page gives no arXiv id"

    everything = write_config(tmp_path, sources=list(sources.values()), **settings)
    assert run(everything, "once") == 0
    assert len(mails_to(smtp_server, "ada@example.org")) == 1, "never the same paper twice"
    [row] = stored_rows(everything, MEMO)
    assert row["id"] == "2411.17807", "re-keyed to its arXiv id"
    assert row["arxiv_id"] == "2411.17807"
    assert set(json.loads(row["sources"])) == {"mila", "hf", "arxiv"}
    with sqlite3.connect(tmp_database(everything)) as conn:
        matches = conn.execute("SELECT paper_id FROM matches").fetchall()
    assert matches == [("2411.17807",)], "the subscriber's one match moved with the paper"
