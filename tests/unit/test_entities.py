"""HTML entities in the JSON sources (alphaXiv, Hugging Face, bioRxiv) are decoded exactly once.

Each case is a real capture (or, for alphaXiv, the hand-written page in the real shape; see
PROVENANCE.md) whose text is changed by hand to hold entities, as alphaXiv's abstracts
really do (`ratio &lt; 10x` reached a digest). `&amp;lt;` is the text `&lt;` (an entity
written about in the text), never `<`.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pytest

from bot.ingest.sources.alphaxiv import AlphaxivOptions, AlphaxivSource
from bot.ingest.sources.biorxiv import BiorxivOptions, BiorxivSource
from bot.ingest.sources.huggingface import HuggingfaceOptions, HuggingfaceSource
from bot.ingest.sources.plaintext import entity_text
from bot.models import Paper

FIXTURES = Path(__file__).parents[1] / "fixtures"
ESCAPED = "The ratio &lt; 10x &amp; more; the entity &amp;lt; is text, &#x3b1;&nbsp;=&#160;1"
READ = "The ratio < 10x & more; the entity &lt; is text, α = 1"


def test_the_shared_helper_decodes_once() -> None:
    assert entity_text(ESCAPED) == READ
    assert entity_text(entity_text("&amp;amp;lt;")) == "&lt;"  # two readings, two layers
    assert entity_text("AT&T R&D") == "AT&T R&D"


def huggingface_paper(field: str, value: str, *, page: bool = False) -> Paper:
    """The first item of the real 2024-10-25 API answer with one text replaced, read back."""
    items: list[dict[str, Any]] = json.loads(
        (FIXTURES / "huggingface/api_daily_papers_2024-10-25_first4_trimmed.json").read_text()
    )
    target = items[0]["paper"]
    if field == "author":
        target["authors"][0]["name"] = value
    else:
        target[field] = value
    data = json.dumps(items[:1])
    if page:  # the same item in a page's data-props: escaped once more, for the attribute
        props = json.dumps({"dailyPapers": items[:1]})
        data = f'<div data-target="DailyPapers" data-props="{html.escape(props)}"></div>'
    [paper] = (
        HuggingfaceSource().parse(data.encode(), "https://hf.test/", HuggingfaceOptions()).papers
    )
    return paper


@pytest.mark.parametrize("page", [False, True], ids=["api", "page"])
def test_huggingface_title_summary_and_names(page: bool) -> None:
    assert huggingface_paper("title", ESCAPED, page=page).title == READ
    assert huggingface_paper("summary", ESCAPED, page=page).abstract == READ
    assert huggingface_paper("author", "Ren&eacute;e O&#39;Neil", page=page).authors[0] == (
        "Renée O'Neil"
    )


def alphaxiv_paper(**changes: Any) -> Paper:
    """The first paper of the feed page with some fields replaced, read back."""
    data = json.loads((FIXTURES / "alphaxiv/feed_hot_7days_page0_handwritten.json").read_text())
    data["papers"][0].update(changes)
    listing = AlphaxivSource().parse(
        json.dumps(data).encode(), "https://ax.test/", AlphaxivOptions()
    )
    return listing.papers[0]


def test_alphaxiv_abstract_title_authors_and_organisations() -> None:
    paper = alphaxiv_paper(
        title=ESCAPED,
        abstract="Scaling at ratio &lt; 10x",
        authors=["Ren&eacute;e O&#39;Neil"],
        organization_info=[{"name": "Caf&eacute; Lab"}],
    )
    assert paper.title == READ
    assert paper.abstract == "Scaling at ratio < 10x"
    assert paper.authors == ("Renée O'Neil",)
    assert paper.organizations == ("Café Lab",)


def biorxiv_paper(**changes: Any) -> Paper:
    """The real bioRxiv record with some fields replaced, in a one-record page, read back."""
    record = json.loads(
        (FIXTURES / "biorxiv/details_collection_record_10.1101_456574.json").read_text()
    )
    record.update(changes)
    page = {
        "messages": [{"status": "ok", "cursor": 0, "count": 1, "total": 1}],
        "collection": [record],
    }
    url = "https://api.biorxiv.test/details/biorxiv/2018-10-30/2018-10-30/0/json"
    [paper] = BiorxivSource().parse(json.dumps(page).encode(), url, BiorxivOptions()).papers
    return paper


def test_biorxiv_title_abstract_and_authors_before_they_are_split() -> None:
    paper = biorxiv_paper(
        title=ESCAPED, abstract=ESCAPED, authors="Mu&#241;oz, A.; O&#39;Neil, B.; Naka, A."
    )
    assert paper.title == READ
    assert paper.abstract == READ
    # `&#241;` holds a semicolon: decoded first, the list is split where the names end
    assert paper.authors == ("A. Muñoz", "B. O'Neil", "A. Naka")
