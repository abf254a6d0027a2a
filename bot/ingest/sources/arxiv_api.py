"""Source kind `arxiv-api`: an arXiv search through export.arxiv.org's Atom API, newest first.

Both the old and the Nov-2025 response formats are read. In the new one links carry no
`rel`, so feedparser's `entry.link` is the PDF: the abstract page is built from the id.
An error comes back as HTTP 200 with a single entry titled `Error`; that is a broken source.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from bot.errors import EntryError, ParseError
from bot.ingest.sources.base import FetchWindow, SourceKind, SourceOptions, register
from bot.ingest.sources.common import with_query
from bot.ingest.sources.feeds import (
    arxiv_title,
    entry_categories,
    entry_datetime,
    entry_text,
    listing_from_entries,
    read_feed,
)
from bot.ingest.sources.links import arxiv_abs_url, arxiv_links, doi_url
from bot.ingest.sources.plaintext import collapse
from bot.models import Link, Listing, Paper
from bot.text.ids import arxiv_id_from, canonical_id, doi_from
from bot.text.tex import decode_tex
from bot.timing.schedule import Schedule

API_URL = "https://export.arxiv.org/api/query"
#: arXiv's documented ceiling for one request
MAX_RESULTS = 2000


class ArxivApiOptions(SourceOptions):
    """Options of the `arxiv-api` kind: an arXiv search query (or a complete `url`)."""

    url: str | None = Field(
        None, description=f"the API (default {API_URL}); a query in it is kept as is"
    )

    search_query: str | None = Field(
        None, description="arXiv search, e.g. 'au:Lajoie_G AND cat:cs.LG' (see arXiv API docs)"
    )
    max_results: int = Field(
        50, ge=1, le=MAX_RESULTS, description="how many of the newest matching papers to read"
    )

    @model_validator(mode="after")
    def _query_or_url(self) -> ArxivApiOptions:
        """Without a query there is nothing to ask, unless a URL is given."""
        if not (self.search_query or "").strip() and not self.url:
            raise ValueError("give search_query (e.g. 'au:Lajoie_G') or a url")
        return self


@register
class ArxivApiSource(SourceKind[ArxivApiOptions]):
    """An arXiv API search (authors, categories, words), newest submissions first."""

    name = "arxiv-api"
    options_model = ArxivApiOptions
    # the API has the new listing after the 20:00 New York announcement (daily: weekends
    # find nothing new, and monitoring still sees a run)
    default_schedule = Schedule("30 20 * * *", "America/New_York")

    def start_urls(self, options: ArxivApiOptions, window: FetchWindow) -> list[str]:
        """One query URL, newest first; parameters already in a configured `url` are kept."""
        params = {
            "sortBy": "submittedDate",
            "sortOrder": "descending",
            "start": "0",
            "max_results": str(options.max_results),
        }
        if options.search_query:
            params = {"search_query": options.search_query, **params}
        return [with_query(options.url or API_URL, params)]

    def parse(self, body: bytes, url: str, options: ArxivApiOptions) -> Listing:
        """The entries of one answer; an `Error` entry or a non-feed is a `ParseError`."""
        feed = read_feed(body, url, sanitize=False)
        error = _error_entry(feed)
        if error is not None:
            raise ParseError(f"{url}: {error}")
        return listing_from_entries(feed, paper_from_entry, url)

    def explain(self, body: bytes) -> str | None:
        """The API's own words on a bad query: since 2025 it answers HTTP 400 with them."""
        try:
            return _error_entry(read_feed(body, API_URL, sanitize=False))
        except ParseError:
            return None


def _error_entry(feed: Any) -> str | None:
    """`arXiv API error: ...` when the answer is arXiv's error entry (titled `Error`)."""
    for entry in feed.entries:
        if collapse(entry_text(entry, "title")) == "Error" and "/api/errors" in entry_text(
            entry, "id"
        ):
            detail = collapse(entry_text(entry, "summary")) or entry_text(entry, "id")
            return f"arXiv API error: {detail}"
    return None


def paper_from_entry(entry: Any) -> Paper:
    """A paper from one API entry (`EntryError` when it has no arXiv id or no title)."""
    arxiv_id = _entry_arxiv_id(entry)
    title = arxiv_title(entry_text(entry, "title"))
    if not title:
        raise EntryError(f"{arxiv_id}: no title")
    doi = doi_from(entry_text(entry, "arxiv_doi")) or _doi_link(entry)
    links = arxiv_links(arxiv_id)
    if doi:
        links.append(Link("doi", doi_url(doi)))
    return Paper(
        id=canonical_id(arxiv_id=arxiv_id),
        title=title,
        authors=tuple(_authors(entry)),
        abstract=collapse(decode_tex(entry_text(entry, "summary"))),
        url=arxiv_abs_url(arxiv_id),
        arxiv_id=arxiv_id,
        doi=doi,
        published=entry_datetime(entry),
        categories=_categories(entry),
        links=tuple(links),
    )


def _entry_arxiv_id(entry: Any) -> str:
    """The versionless id from `<id>` (an abs URL), else from any of the entry's links."""
    candidates = [entry_text(entry, "id")]
    candidates += [str(link.get("href", "")) for link in entry.get("links", [])]
    for candidate in candidates:
        found = arxiv_id_from(candidate)
        if found:
            return found
    title = collapse(entry_text(entry, "title"))[:60]
    raise EntryError(f"no arXiv id in <id> or links (title {title!r})")


def _doi_link(entry: Any) -> str | None:
    """The DOI of the link titled `doi`, which both formats use for the published version."""
    for link in entry.get("links", []):
        if str(link.get("title", "")).lower() == "doi":
            return doi_from(str(link.get("href", "")))
    return None


def _authors(entry: Any) -> list[str]:
    """One name per `<author>`, TeX accents decoded (affiliations are separate elements)."""
    names = (collapse(decode_tex(str(a.get("name", "")))) for a in entry.get("authors", []))
    return [name for name in names if name]


def _categories(entry: Any) -> tuple[str, ...]:
    """The primary category first, then the others."""
    primary = entry.get("arxiv_primary_category") or {}
    term = str(primary.get("term", "")).strip() if isinstance(primary, dict) else ""
    return tuple(dict.fromkeys(([term] if term else []) + list(entry_categories(entry))))
