"""Source kind `rss`: any RSS 2.0, RSS 1.0 or Atom feed, one paper per entry.

An entry's paper is known by the arXiv id or DOI it links to (else its title). Reading the
feed and its entries is `feeds`, shared with the arXiv kinds; an arXiv feed read through
this kind is understood as arXiv writes it (title suffix, announcement types).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from pydantic import Field

from bot.errors import EntryError
from bot.ingest.sources.base import FetchWindow, SourceKind, SourceOptions, register
from bot.ingest.sources.feeds import (
    announce_type,
    as_text,
    entry_authors,
    entry_categories,
    entry_datetime,
    entry_text,
    html_text,
    is_replacement,
    listing_from_entries,
    read_feed,
    split_arxiv_suffix,
)
from bot.ingest.sources.links import arxiv_links, doi_url
from bot.ingest.sources.plaintext import collapse
from bot.models import Link, Listing, Paper
from bot.text.ids import arxiv_id_from, canonical_id, doi_from


class RssOptions(SourceOptions):
    """Options of the `rss` kind: the feed's URL."""

    url: str = Field(..., description="the RSS or Atom feed to read")
    include_replacements: bool = Field(
        False, description="also list entries the feed marks as replacements (new versions)"
    )


@register
class RssSource(SourceKind[RssOptions]):
    """Any RSS/Atom feed: one paper per entry, identified by the arXiv id or DOI it links to."""

    name = "rss"
    options_model = RssOptions

    def start_urls(self, options: RssOptions, window: FetchWindow) -> list[str]:
        """The feed URL itself."""
        return [options.url]

    def parse(self, body: bytes, url: str, options: RssOptions) -> Listing:
        """One paper per entry; entries without a title are skipped and logged."""
        feed = read_feed(body, url)

        def build(entry: Any) -> Paper | None:
            """The entry's paper, or None when it is a replacement nobody asked for."""
            paper = paper_from_entry(entry, url)
            if is_replacement(paper.announce_type) and not options.include_replacements:
                return None
            return paper

        return listing_from_entries(feed, build, url)


def paper_from_entry(entry: Any, url: str) -> Paper:
    """A paper from one generic feed entry (`EntryError` when it has no title)."""
    title, category, _flag = split_arxiv_suffix(collapse(html_text(entry, "title")))
    if not title:
        where = entry_text(entry, "id") or entry_text(entry, "link")
        raise EntryError(f"no title ({where})" if where else "no title")
    link = entry_text(entry, "link")
    page = urljoin(url, link) if link else ""
    candidates = _identity_candidates(entry, url)
    arxiv_id = next(filter(None, map(arxiv_id_from, candidates)), None)
    doi = next(filter(None, map(doi_from, candidates)), None)
    try:
        paper_id = canonical_id(arxiv_id=arxiv_id, doi=doi, title=title)
    except ValueError as exc:  # a title of punctuation only
        raise EntryError(str(exc)) from exc
    return Paper(
        id=paper_id,
        title=title,
        authors=tuple(entry_authors(entry)),
        abstract=collapse(_abstract_html(entry)),
        url=page,
        arxiv_id=arxiv_id,
        doi=doi,
        published=entry_datetime(entry),
        categories=entry_categories(entry, category),
        links=_links(page, arxiv_id, doi),
        announce_type=announce_type(entry),
    )


def _identity_candidates(entry: Any, url: str) -> list[str]:
    """Where an entry may name its paper, most explicit first (never the free text)."""
    keys = ("prism_doi", "dc_identifier", "arxiv_doi", "id", "link")
    values = [entry_text(entry, key) for key in keys]
    values += [urljoin(url, str(link.get("href", ""))) for link in entry.get("links", [])]
    return [value for value in values if value]


def _abstract_html(entry: Any) -> str:
    """The entry's summary, or its content when it has no summary, as plain text."""
    # feedparser copies Atom content into `summary` without saying that it is HTML.
    if entry.get("summary_detail"):
        return html_text(entry, "summary")
    for content in entry.get("content", []):
        return as_text(str(content.get("value", "")), str(content.get("type", "")))
    return entry_text(entry, "summary")


def _links(page: str, arxiv_id: str | None, doi: str | None) -> tuple[Link, ...]:
    """The entry's page, plus arXiv and DOI links when the paper has those ids."""
    links = [Link("page", page)] if page else []
    if arxiv_id:
        links += arxiv_links(arxiv_id)
    if doi:
        links.append(Link("doi", doi_url(doi)))
    return tuple(links)
