"""Source kind `rss`: any RSS 2.0, RSS 1.0 or Atom feed, one paper per entry.

Also the feed-reading helpers that `arxiv-rss` shares: reading bytes with feedparser,
telling a feed from an HTML page or broken XML, skipping one bad entry at a time, author
elements as plain names, and what arXiv's feeds say about an entry (its announcement type,
and the pre-2024 RSS 1.0 feed's "(arXiv:ID [category] UPDATED)" title suffix).
"""

from __future__ import annotations

import io
import re
import xml.sax
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
from bs4 import BeautifulSoup
from pydantic import Field

from bot.errors import EntryError, ParseError
from bot.ingest.sources.base import FetchWindow, SourceKind, SourceOptions, register
from bot.ingest.sources.items import read_items
from bot.models import Link, Listing, Paper
from bot.text.ids import arxiv_id_from, canonical_id, doi_from
from bot.text.names import split_authors

_WHITESPACE = re.compile(r"\s+")
_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S
)
# Markup in an author element: the old arXiv feed wraps each name in `<a href=...>`.
_MARKUP = re.compile(r"<[A-Za-z/][^>]*>|&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);")
# The pre-2024 arXiv feed ended every title with ". (arXiv:2411.01234v1 [cs.LG])", and with
# "... UPDATED)" for a new version of an older paper (a replacement).
_ARXIV_TITLE_SUFFIX = re.compile(
    r"\.?\s*\(arXiv:[^\s()\[\]]+\s*(?:\[(?P<category>[^\]\s]+)\])?\s*(?P<flag>[A-Z ]*?)\s*\)\s*$"
)
# What expat says when the document stops with elements still open: a truncated download
# (a gzip stream or a Content-Length cut short), never a feed that is merely malformed.
_TRUNCATED = frozenset({"no element found", "unclosed token", "unclosed CDATA section"})
# The pre-2024 feed's title flags, as the announcement types the new feed names them by.
_OLD_FLAGS = {"UPDATED": "replace", "CROSS LISTED": "cross"}
_ANNOUNCE_TYPE = re.compile(r"Announce Type:\s*(?P<type>[\w-]+)")
# Block elements end a line of text; inline ones (`H<sub>2</sub>O`) sit inside a word.
_BLOCK_TAGS = [
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
    "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
]  # fmt: skip


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


def read_feed(body: bytes, url: str, *, sanitize: bool = True) -> Any:
    """Parse bytes with feedparser; raise `ParseError` unless they are an RSS or Atom feed.

    A feed that has entries is read even when feedparser flags it (`bozo`), since its
    loose parser recovers most real-world breakage; one without entries is only trusted
    when its XML was well formed, so a truncated download is never taken for an empty day.
    """
    # A stream, never bytes: feedparser tries `open()` on anything else, as a file name.
    feed = feedparser.parse(io.BytesIO(body), sanitize_html=sanitize, resolve_relative_uris=False)
    if not feed.get("version"):
        raise ParseError(f"{url}: expected an RSS or Atom feed, got {_describe(body, feed)}")
    if not feed.entries and _xml_error(feed) is not None:
        raise ParseError(f"{url}: expected an RSS or Atom feed, got {_describe(body, feed)}")
    if not feed.entries and not feed.feed:
        raise ParseError(f"{url}: expected an RSS channel or Atom feed element, found neither")
    return feed


def _xml_error(feed: Any) -> xml.sax.SAXException | None:
    """The XML syntax error feedparser hit, if any (encoding notices do not count)."""
    error = feed.get("bozo_exception")
    return error if isinstance(error, xml.sax.SAXException) else None


def _describe(body: bytes, feed: Any) -> str:
    """A few words on what a document that is not a feed looks like, for the error line."""
    head = body[:2048]
    if not body.strip():
        return "an empty document"
    if _HTML_START.match(head):
        return "an HTML page"
    if head.lstrip()[:1] in (b"{", b"["):
        return "JSON"
    return _xml_problem(feed) or "an XML document that is neither RSS nor Atom"


def _xml_problem(feed: Any) -> str | None:
    """The XML syntax error feedparser hit, in words, if it hit one."""
    error = _xml_error(feed)
    if isinstance(error, xml.sax.SAXParseException):
        return f"malformed XML ({error.getMessage()} at line {error.getLineNumber()})"
    return None if error is None else f"malformed XML ({error})"


def listing_from_entries(feed: Any, build: Callable[[Any], Paper | None], url: str) -> Listing:
    """The papers built from a feed's entries, one at a time (see `bot.ingest.sources.items`).

    `build` returns None for an entry it leaves out on purpose and raises `EntryError`
    for one it cannot read. When every entry was unreadable the feed itself has changed,
    so that is a `ParseError` rather than an empty day.
    """
    problem = _xml_problem(feed)
    truncated = is_truncated(feed)
    # The last entry of a truncated feed may itself be cut (an abstract half there): it
    # waits for the next fetch, which asks for the whole feed again.
    entries = feed.entries[:-1] if truncated else feed.entries
    if truncated and not entries:
        raise ParseError(
            f"{url}: the feed stops before its end ({problem}), cut short in transfer?"
        )
    read = read_items(
        entries,
        lambda entry, _notes: build(entry),
        url=url,
        noun=("entry", "entries"),
        broken=f"the feed is {problem}" if problem else "",
    )
    if not truncated:
        return Listing(read.papers, problems=read.problems)
    cut = (
        f"the feed stops before its end ({problem}), cut short in transfer? Its first"
        f" {len(entries)} entries are read; the whole feed is asked for next time"
    )
    return Listing(read.papers, problems=(*read.problems, cut), complete=False)


def is_truncated(feed: Any) -> bool:
    """Whether the XML ended with elements still open (the rest of the document is missing)."""
    error = _xml_error(feed)
    return isinstance(error, xml.sax.SAXParseException) and error.getMessage() in _TRUNCATED


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
        return _as_text(str(content.get("value", "")), str(content.get("type", "")))
    return entry_text(entry, "summary")


def _links(page: str, arxiv_id: str | None, doi: str | None) -> tuple[Link, ...]:
    """The entry's page, plus arXiv and DOI links when the paper has those ids."""
    links = [Link("page", page)] if page else []
    if arxiv_id:
        links += [Link("abs", arxiv_abs_url(arxiv_id)), Link("pdf", arxiv_pdf_url(arxiv_id))]
    if doi:
        links.append(Link("doi", f"https://doi.org/{doi}"))
    return tuple(links)


def arxiv_abs_url(arxiv_id: str) -> str:
    """The abstract page of an arXiv paper (latest version)."""
    return f"https://arxiv.org/abs/{arxiv_id}"


def arxiv_pdf_url(arxiv_id: str) -> str:
    """The PDF of an arXiv paper (latest version)."""
    return f"https://arxiv.org/pdf/{arxiv_id}"


def entry_text(entry: Any, key: str) -> str:
    """A string field of an entry, '' when missing."""
    value = entry.get(key)
    return value if isinstance(value, str) else ""


def html_text(entry: Any, key: str) -> str:
    """A text field as plain text: HTML (feedparser's `*_detail.type`) reduced to its text."""
    detail = entry.get(f"{key}_detail") or {}
    return _as_text(entry_text(entry, key), str(detail.get("type", "")))


def _as_text(value: str, content_type: str) -> str:
    """Plain text of a feed value whose declared or guessed type is `content_type`."""
    if "html" not in content_type:
        return value
    return html_to_text(value)


def html_to_text(markup: str) -> str:
    """The text of an HTML fragment: scripts dropped, block elements apart, inline ones joined."""
    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup(["script", "style", "template"]):
        tag.decompose()
    for tag in soup(_BLOCK_TAGS):
        tag.insert_before(" ")
        tag.insert_after(" ")
    return soup.get_text("")


def collapse(text: str) -> str:
    """Whitespace runs (newlines included) to single spaces, trimmed."""
    return _WHITESPACE.sub(" ", text).strip()


def entry_authors(entry: Any, *, split: Callable[[str], list[str]] = split_authors) -> list[str]:
    """Author names: every `author`/`dc:creator` element as plain text, split into names.

    A feed rewritten without its namespaces (arXiv's, passed through a serializer that
    drops prefixes) has a bare `<creator>`: it is read too.
    """
    names = [str(a.get("name", "")) for a in entry.get("authors", []) if a.get("name")]
    for key in ("author", "creator"):
        if not names and entry_text(entry, key):
            names = [entry_text(entry, key)]
    return [name for raw in names for name in split(author_text(raw)) if name]


def author_text(raw: str) -> str:
    """An author element's text: markup (`<a href=...>Name</a>`) and entities resolved."""
    return html_to_text(raw) if _MARKUP.search(raw) else raw


def entry_datetime(entry: Any) -> datetime | None:
    """When the entry was published (else updated), in UTC."""
    for key in ("published_parsed", "updated_parsed"):
        parsed = entry.get(key)
        if parsed:
            year, month, day, hour, minute, second = parsed[:6]
            try:  # a leap second (60) or a mangled date: read the entry without it
                return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
            except (TypeError, ValueError, OverflowError):
                continue
    return None


def entry_categories(entry: Any, extra: str | None = None) -> tuple[str, ...]:
    """The entry's category terms (`category`, `dc:subject`), then `extra`, without repeats."""
    terms = [str(tag.get("term") or "").strip() for tag in entry.get("tags", [])]
    return tuple(dict.fromkeys(term for term in [*terms, extra or ""] if term))


def split_arxiv_suffix(title: str) -> tuple[str, str | None, str]:
    """A title without the old arXiv feed's "(arXiv:ID [cat] UPDATED)": (title, cat, flag)."""
    found = _ARXIV_TITLE_SUFFIX.search(title)
    if found is None:
        return title, None, ""
    return title[: found.start()].rstrip(), found["category"], found["flag"].strip()


def announce_type(entry: Any) -> str | None:
    """`new`, `cross`, `replace`... from arXiv's element, its description, or an old title.

    The element may have lost its `arxiv:` prefix (a feed rewritten without namespaces).

    The pre-2024 feed marked a replacement only by "UPDATED" in the title suffix, and a
    cross-list by "CROSS LISTED".
    """
    value = entry_text(entry, "arxiv_announce_type") or entry_text(entry, "announce_type")
    value = value.strip().lower()
    if value:
        return value
    match = _ANNOUNCE_TYPE.search(entry_text(entry, "summary"))
    if match:
        return match.group("type").lower()
    _title, _category, flag = split_arxiv_suffix(collapse(entry_text(entry, "title")))
    return _OLD_FLAGS.get(flag)


def is_replacement(kind: str | None) -> bool:
    """Whether an announcement type is a new version of an older paper (`replace...`)."""
    return kind is not None and kind.startswith("replace")


def is_rss10(feed: Any) -> bool:
    """Whether the feed is RSS 1.0 (RDF), whose descriptions are HTML (`<p>...</p>`)."""
    return str(feed.get("version", "")).startswith(("rss10", "rss09"))
