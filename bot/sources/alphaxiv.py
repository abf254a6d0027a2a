"""Source kind `alphaxiv`: alphaXiv's paper feed (`api.alphaxiv.org/papers/v3/feed`).

The API is undocumented and changes: fields it does not know are ignored, while a paper
without one this kind needs (`universal_paper_id`, `title`) is a `ParseError` naming it,
so a changed API shows up as a broken source rather than as quiet, empty days.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from bot.errors import ParseError
from bot.ids import arxiv_id_from, canonical_id
from bot.models import Link, Listing, Paper
from bot.sources.base import FetchWindow, SourceKind, SourceOptions, register
from bot.sources.common import (
    arxiv_links,
    int_field,
    parse_datetime,
    query_value,
    read_json,
    replace_query,
    string_list,
    text_field,
    with_query,
)
from bot.sources.rss import arxiv_abs_url, collapse
from bot.tex import decode_tex

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
class AlphaxivSource(SourceKind):
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
        papers: dict[str, Paper] = {}
        for index, record in enumerate(records):
            paper = paper_from_record(record, f"{url}: papers[{index}]")
            papers.setdefault(paper.id, paper)
        return Listing(tuple(papers.values()), _next_page(url, len(records)))


def _kind(data: Any) -> str:
    """A word on what a JSON document is, for an error line."""
    if isinstance(data, dict):
        return f"an object with keys {', '.join(list(data)[:6]) or '(none)'}"
    return f"a JSON {type(data).__name__}"


def _next_page(url: str, count: int) -> str | None:
    """The following page while this one was full; none when the URL says no page size."""
    size = query_value(url, "pageSize")
    number = query_value(url, "pageNum")
    if not size or not size.isdigit() or count < int(size) or count == 0:
        return None
    following = int(number) + 1 if number and number.isdigit() else 1
    return replace_query(url, {"pageNum": str(following)})


def paper_from_record(record: Any, where: str) -> Paper:
    """A paper from one feed record; a missing or empty required field is a `ParseError`."""
    if not isinstance(record, dict):
        raise ParseError(f"{where}: expected an object, got {type(record).__name__}")
    for field in REQUIRED:
        if not text_field(record, field).strip():
            raise ParseError(f"{where}: missing required field {field!r}")
    universal_id = record["universal_paper_id"].strip()
    title = _text(record["title"])
    arxiv_id = arxiv_id_from(universal_id)
    topics = string_list(record.get("topics"))
    try:
        paper_id = canonical_id(arxiv_id=arxiv_id, title=title)
    except ValueError as exc:  # a title of punctuation only, and no arXiv id
        raise ParseError(f"{where}: {exc}") from None
    return Paper(
        id=paper_id,
        title=title,
        authors=tuple(_authors(record)),
        abstract=_text(text_field(record, "abstract")),
        url=arxiv_abs_url(arxiv_id) if arxiv_id else f"{PAPER_PAGE}{universal_id}",
        arxiv_id=arxiv_id,
        published=parse_datetime(
            record.get("first_publication_date") or record.get("publication_date")
        ),
        categories=tuple(t for t in topics if _CATEGORY.fullmatch(t)),
        links=_links(record, universal_id, arxiv_id),
        votes=_votes(record.get("metrics")),
        stars=int_field(record, "github_stars"),
        keywords=tuple(t for t in topics if not _CATEGORY.fullmatch(t)),
        organizations=tuple(_names(record.get("organization_info"), "name")),
    )


def _text(raw: str) -> str:
    """A title or abstract as arXiv wrote it: TeX accents decoded, whitespace collapsed."""
    return collapse(decode_tex(raw))


def _authors(record: Mapping[str, Any]) -> list[str]:
    """Names from `authors` (strings), else `full_authors`, else `author_info`."""
    return (
        string_list(record.get("authors"))
        or _names(record.get("full_authors"), "full_name")
        or _names(record.get("author_info"), "name")
    )


def _names(raw: Any, key: str) -> list[str]:
    """The `key` strings of a JSON list of objects, each once."""
    if not isinstance(raw, list):
        return []
    names = (collapse(text_field(entry, key)) for entry in raw if isinstance(entry, dict))
    return list(dict.fromkeys(name for name in names if name))


def _votes(metrics: Any) -> int | None:
    """The public vote count (the number alphaXiv shows), else the raw total."""
    if not isinstance(metrics, dict):
        return None
    public = int_field(metrics, "public_total_votes")
    return public if public is not None else int_field(metrics, "total_votes")


def _links(record: Mapping[str, Any], universal_id: str, arxiv_id: str | None) -> tuple[Link, ...]:
    """arXiv abstract and PDF, the code repository and the alphaXiv page."""
    links = arxiv_links(arxiv_id) if arxiv_id else []
    code = text_field(record, "github_url").strip()
    if code:
        links.append(Link("code", code))
    links.append(Link("alphaxiv", f"{PAPER_PAGE}{universal_id}"))
    return tuple(links)
