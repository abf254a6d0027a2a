"""Source kind `arxiv-rss`: the daily announcement feeds of rss.arxiv.org (RSS or Atom).

The pre-2024 RSS 1.0 (RDF) format of `export.arxiv.org/rss`, still served by mirrors, is read
too: its descriptions are HTML, its authors links, and its titles carry the category and
the replacement mark ("(arXiv:ID [cat] UPDATED)").
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from pydantic import Field, field_validator, model_validator

from bot.errors import EntryError, ParseError
from bot.ingest.sources.base import FetchWindow, SourceKind, SourceOptions, register
from bot.ingest.sources.feeds import (
    announce_type,
    arxiv_title,
    entry_authors,
    entry_categories,
    entry_datetime,
    entry_text,
    is_replacement,
    is_rss10,
    listing_from_entries,
    read_feed,
    split_arxiv_suffix,
)
from bot.ingest.sources.links import arxiv_abs_url, arxiv_links, doi_url
from bot.ingest.sources.plaintext import collapse, html_to_text
from bot.models import Link, Listing, Paper
from bot.text.ids import arxiv_id_from, canonical_id, doi_from
from bot.text.names import split_authors
from bot.text.tex import decode_tex
from bot.timing.schedule import Schedule

FEED_BASE = "https://rss.arxiv.org/rss/"
_CATEGORY = re.compile(r"[A-Za-z-]+(?:\.[A-Za-z-]+)?")
_ERROR_TITLE = re.compile(r"Feed error for query\b")
# Description: "arXiv:2411.01234v1 Announce Type: new \nAbstract: ..."
_ABSTRACT_MARK = re.compile(r"\bAbstract:\s*")
_DESCRIPTION_HEADER = re.compile(r"^\s*arXiv:\S+\s+Announce Type:\s*[\w-]+\s*")
# arXiv lists a paper under both names of an aliased category, but only one may be asked for.
_ALIASES = {
    "cs.it": "math.it",
    "cs.na": "math.na",
    "cs.sy": "eess.sy",
    "econ.gn": "q-fin.ec",
    "math-ph": "math.mp",
    "stat.th": "math.st",
}
_ALIASES |= {alias: name for name, alias in _ALIASES.items()}


class ArxivRssOptions(SourceOptions):
    """Options of the `arxiv-rss` kind; give `categories`, or `url` for a feed elsewhere."""

    categories: list[str] = Field(
        default_factory=list,
        description="arXiv categories or archives to follow, e.g. [cs.LG, stat.ML] or [math]",
    )
    include_replacements: bool = Field(
        False, description="also list replaced papers (new versions), not only new and cross-lists"
    )

    @field_validator("categories")
    @classmethod
    def _category_names(cls, categories: list[str]) -> list[str]:
        """Reject names that cannot be an arXiv category (they would make an error feed)."""
        for category in categories:
            if not _CATEGORY.fullmatch(category):
                raise ValueError(f"{category!r} is not an arXiv category (like cs.LG or math)")
        return categories

    @model_validator(mode="after")
    def _categories_or_url(self) -> ArxivRssOptions:
        """Without categories there is nothing to ask arXiv for, unless a URL is given."""
        if not self.categories and not self.url:
            raise ValueError("give categories (e.g. [cs.LG]) or a feed url")
        return self


@register
class ArxivRssSource(SourceKind[ArxivRssOptions]):
    """arXiv's daily feed of new submissions and cross-lists for some categories."""

    name = "arxiv-rss"
    options_model = ArxivRssOptions
    # arXiv announces at 20:00 New York time and rebuilds these feeds at midnight after it;
    # daily, so that monitoring sees a run at weekends too (the feeds are empty then)
    default_schedule = Schedule("30 0 * * *", "America/New_York")

    def start_urls(self, options: ArxivRssOptions, window: FetchWindow) -> list[str]:
        """One feed for all the categories (`cs.LG+stat.ML`), or the configured URL."""
        return [options.url or feed_url(options.categories)]

    def parse(self, body: bytes, url: str, options: ArxivRssOptions) -> Listing:
        """The day's announcements; an error feed or a non-feed is a `ParseError`."""
        # Unsanitized: arXiv's text is plain, and `<think>` in an abstract is a word, not a tag.
        feed = read_feed(body, url, sanitize=False)
        _raise_for_error_feed(feed, url)
        rdf = is_rss10(feed)
        # The old feed names only the primary category: a cross-list would be filtered out.
        wanted = _category_filter([] if rdf else options.categories)

        def build(entry: Any) -> Paper | None:
            """The entry's paper, or None when it is a replacement or another category."""
            if is_replacement(announce_type(entry)) and not options.include_replacements:
                return None
            paper = paper_from_entry(entry, html_description=rdf)
            return paper if wanted(paper.categories) else None

        return listing_from_entries(feed, build, url)


def feed_url(categories: list[str]) -> str:
    """The rss.arxiv.org feed for these categories."""
    return FEED_BASE + "+".join(categories)


def _raise_for_error_feed(feed: Any, url: str) -> None:
    """arXiv answers a bad category with a normal-looking channel titled `Feed error...`."""
    title = collapse(str(feed.feed.get("title", "")))
    if not _ERROR_TITLE.match(title):
        return
    detail = collapse(str(feed.feed.get("subtitle") or feed.feed.get("description") or ""))
    raise ParseError(f"{url}: {title}" + (f" ({detail})" if detail else ""))


def _category_filter(categories: list[str]) -> Callable[[tuple[str, ...]], bool]:
    """A test for a paper's categories: any of them asked for (archives match `cs.*`)."""
    asked = {c.lower() for c in categories}
    asked |= {_ALIASES[c] for c in asked if c in _ALIASES}

    def wanted(paper_categories: tuple[str, ...]) -> bool:
        """Whether a paper with these categories belongs in the listing."""
        if not asked or not paper_categories:
            return True  # nothing to filter by: keep rather than lose a paper
        return any(_category_matches(c.lower(), asked) for c in paper_categories)

    return wanted


def _category_matches(category: str, asked: set[str]) -> bool:
    """Whether a category is asked for itself or through its archive (`cs` for `cs.LG`)."""
    return category in asked or category.split(".", 1)[0] in asked


def paper_from_entry(entry: Any, *, html_description: bool = False) -> Paper:
    """A paper from one arXiv feed entry (`EntryError` when it has no arXiv id or title).

    `html_description`: the description is HTML (the RSS 1.0 feed), not escaped text.
    """
    arxiv_id = _entry_arxiv_id(entry)
    raw_title, category, _flag = split_arxiv_suffix(collapse(_plain(entry, "title")))
    title = arxiv_title(raw_title)
    if not title:
        raise EntryError(f"{arxiv_id}: no title")
    doi = doi_from(entry_text(entry, "arxiv_doi"))
    links = arxiv_links(arxiv_id)
    if doi:
        links.append(Link("doi", doi_url(doi)))
    return Paper(
        id=canonical_id(arxiv_id=arxiv_id),
        title=title,
        authors=tuple(entry_authors(entry, split=split_creators)),
        abstract=arxiv_abstract(_description(entry, html_description)),
        url=arxiv_abs_url(arxiv_id),
        arxiv_id=arxiv_id,
        doi=doi,
        published=entry_datetime(entry),
        categories=entry_categories(entry, category),
        links=tuple(links),
        announce_type=announce_type(entry),
    )


def _entry_arxiv_id(entry: Any) -> str:
    """The arXiv id from the guid, else the link, else the description's `arXiv:` line."""
    for key in ("id", "link", "summary"):
        found = arxiv_id_from(entry_text(entry, key))
        if found:
            return found
    title = collapse(entry_text(entry, "title"))[:60]
    raise EntryError(f"no arXiv id in guid, link or description (title {title!r})")


def _description(entry: Any, html_description: bool) -> str:
    """The description as plain text: the RSS 1.0 feed's is HTML (`<p>` and escaped text)."""
    if html_description:
        return html_to_text(entry_text(entry, "summary"))
    return _plain(entry, "summary")


def _plain(entry: Any, key: str) -> str:
    """A text field as arXiv wrote it: the RSS flavour is escaped HTML, the Atom one text."""
    value = entry_text(entry, key)
    detail = entry.get(f"{key}_detail") or {}
    return html.unescape(value) if "html" in str(detail.get("type", "")) else value


def arxiv_abstract(description: str) -> str:
    """The abstract: what follows `Abstract:` in the description, TeX accents decoded."""
    mark = _ABSTRACT_MARK.search(description)
    text = description[mark.end() :] if mark else _DESCRIPTION_HEADER.sub("", description)
    return collapse(decode_tex(text))


def split_creators(creators: str) -> list[str]:
    """Names from arXiv's one `dc:creator` string: "A (Univ, X), B and C" -> [A, B, C].

    The one author-list rule (`bot.text.names`) splits it and drops the affiliations; TeX
    escapes in the names are then decoded.
    """
    return [name for name in (collapse(decode_tex(n)) for n in split_authors(creators)) if name]
