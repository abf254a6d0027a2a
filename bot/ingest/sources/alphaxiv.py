"""Source kind `alphaxiv`: alphaXiv's paper feed (`api.alphaxiv.org/papers/v3/feed`).

The API is undocumented and changes: fields it does not know are ignored; a paper without
one this kind needs (`universal_paper_id`, `title`) is skipped with a warning naming it, and
a page where no paper has them is a `ParseError`, so a changed API shows up as a broken
source rather than as quiet, empty days.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from bot.errors import EntryError, ParseError
from bot.ingest.sources.base import FetchWindow, SourceKind, SourceOptions, register
from bot.ingest.sources.checks import count, shown
from bot.ingest.sources.common import (
    date_field,
    int_field,
    name_list,
    query_value,
    read_json,
    replace_query,
    string_list,
    text_field,
    with_query,
)
from bot.ingest.sources.items import ItemNotes, read_items
from bot.ingest.sources.links import arxiv_abs_url, arxiv_links
from bot.ingest.sources.plaintext import collapse, entity_text
from bot.models import Link, Listing, Paper
from bot.text.ids import arxiv_id_from, canonical_id
from bot.text.tex import decode_tex

FEED_URL = "https://api.alphaxiv.org/papers/v3/feed"
PAPER_PAGE = "https://www.alphaxiv.org/abs/"
REQUIRED = ("universal_paper_id", "title")
# `topics` mixes arXiv categories (cs.LG, hep-th) with alphaXiv's own tags (agents).
_CATEGORY = re.compile(
    r"(?:cs|math|stat|eess|econ|q-bio|q-fin|physics|astro-ph|cond-mat|nlin)\.[A-Za-z-]+"
    r"|hep-th|hep-ph|hep-ex|hep-lat|gr-qc|quant-ph|math-ph|nucl-th|nucl-ex|astro-ph|cond-mat"
)

Sort = Literal["Hot", "Comments", "Views", "Likes", "GitHub", "Recent"]
Interval = Literal["3 Days", "7 Days", "30 Days", "90 Days", "All time"]


class AlphaxivOptions(SourceOptions):
    """Options of the `alphaxiv` kind: which feed, and how many pages of it."""

    url: str | None = Field(None, description=f"the feed API (default {FEED_URL})")

    sort: Sort = Field("Hot", description="Hot, Comments, Views, Likes, GitHub or Recent")
    interval: Interval = Field(
        "7 Days", description="'3 Days', '7 Days', '30 Days', '90 Days' or 'All time'"
    )
    topics: list[str] = Field(
        default_factory=list, description="only these topics, e.g. [cs.LG, agents] (any: [])"
    )
    page_size: int = Field(20, ge=1, le=100, description="papers per request")
    max_pages: int = Field(3, ge=1, le=20, description="requests per fetch, at most")


@register
class AlphaxivSource(SourceKind[AlphaxivOptions]):
    """alphaXiv's feed of discussed papers (hot, most viewed...), with votes and organisations."""

    name = "alphaxiv"
    options_model = AlphaxivOptions

    def start_urls(self, options: AlphaxivOptions, window: FetchWindow) -> list[str]:
        """The feed's first page; parameters already in a configured `url` are kept."""
        params = {
            "pageNum": "0",
            "pageSize": str(options.page_size),
            "sort": options.sort,
            "interval": options.interval,
        }
        if options.topics:
            params["topics"] = json.dumps(options.topics)
        return [with_query(options.url or FEED_URL, params)]

    def max_pages(self, options: AlphaxivOptions) -> int:
        """Pages one fetch may read."""
        return options.max_pages

    def parse(self, body: bytes, url: str, options: AlphaxivOptions) -> Listing:
        """The papers of one feed page, and the next page while this one was full."""
        data = read_json(body, url)
        if not isinstance(data, dict) or not isinstance(data.get("papers"), list):
            expected = "alphaXiv's {page, papers: [...]}"
            raise ParseError(f"{url}: expected {expected}, got {_kind(data)}")
        records = data["papers"]
        read = read_items(records, paper_from_record, url=url)
        papers: dict[str, Paper] = {}
        for paper in read.papers:
            papers.setdefault(paper.id, paper)
        return Listing(tuple(papers.values()), _next_page(url, len(records)), read.problems)


def _kind(data: Any) -> str:
    """A word on what a JSON document is, for an error line."""
    if isinstance(data, dict):
        return f"an object with keys {', '.join(list(data)[:6]) or '(none)'}"
    return f"a JSON {type(data).__name__}"


def _next_page(url: str, listed: int) -> str | None:
    """The following page while this one was full; none when the URL says no page size."""
    page_size, _ = count(query_value(url, "pageSize"))
    if not page_size or listed < page_size:
        return None
    current, _ = count(query_value(url, "pageNum"))
    following = current + 1 if current is not None else 1
    return replace_query(url, {"pageNum": str(following)})


def paper_from_record(record: Any, notes: ItemNotes) -> Paper:
    """A paper from one feed record (`EntryError` without `universal_paper_id` or title)."""
    if not isinstance(record, dict):
        raise EntryError(f"expected an object, got {shown(record)}")
    universal_id = text_field(record, "universal_paper_id", notes).strip()
    notes.named(universal_id)
    title = _text(text_field(record, "title", notes))
    for field, value in zip(REQUIRED, (universal_id, title), strict=True):
        if not value:
            raise EntryError(f"missing required field {field!r}")
    arxiv_id = arxiv_id_from(universal_id)
    topics = string_list(record, "topics", notes)
    try:
        paper_id = canonical_id(arxiv_id=arxiv_id, title=title)
    except ValueError as exc:  # a title of punctuation only, and no arXiv id
        raise EntryError(str(exc)) from None
    return Paper(
        id=paper_id,
        title=title,
        authors=tuple(_authors(record, notes)),
        abstract=_text(text_field(record, "abstract", notes, expected=True)),
        url=arxiv_abs_url(arxiv_id) if arxiv_id else f"{PAPER_PAGE}{universal_id}",
        arxiv_id=arxiv_id,
        published=date_field(record, "first_publication_date", notes)
        or date_field(record, "publication_date", notes),
        categories=tuple(t for t in topics if _CATEGORY.fullmatch(t)),
        links=_links(record, universal_id, arxiv_id, notes),
        votes=_votes(record.get("metrics"), notes),
        stars=int_field(record, "github_stars", notes),
        keywords=tuple(t for t in topics if not _CATEGORY.fullmatch(t)),
        organizations=tuple(name_list(record, "organization_info", "name", notes)),
    )


def _text(raw: str) -> str:
    """A title or abstract as arXiv wrote it: entities and TeX accents decoded, one line."""
    return collapse(decode_tex(entity_text(raw)))


def _authors(record: Mapping[str, Any], notes: ItemNotes) -> list[str]:
    """Names from `authors` (strings), else `full_authors`, else `author_info`."""
    return (
        string_list(record, "authors", notes)
        or name_list(record, "full_authors", "full_name", notes)
        or name_list(record, "author_info", "name", notes)
    )


def _votes(metrics: Any, notes: ItemNotes) -> int | None:
    """The public vote count (the number alphaXiv shows), else the raw total."""
    if not isinstance(metrics, dict):
        if metrics is not None:
            notes.note("metrics", f"expected an object, got {shown(metrics)}")
        return None
    public = int_field(metrics, "public_total_votes", notes)
    return public if public is not None else int_field(metrics, "total_votes", notes)


def _links(
    record: Mapping[str, Any], universal_id: str, arxiv_id: str | None, notes: ItemNotes
) -> tuple[Link, ...]:
    """arXiv abstract and PDF, the code repository and the alphaXiv page."""
    links = arxiv_links(arxiv_id) if arxiv_id else []
    code = text_field(record, "github_url", notes).strip()
    if code:
        links.append(Link("code", code))
    links.append(Link("alphaxiv", f"{PAPER_PAGE}{universal_id}"))
    return tuple(links)
