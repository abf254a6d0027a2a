"""Reading RSS and Atom feeds with feedparser, for every kind that reads one (`rss`,
`arxiv-rss`, `arxiv-api`): bytes to a feed or a `ParseError` saying what came instead,
entries to papers one at a time (a truncated feed read up to its cut), and an entry's
fields as plain values.

Also what arXiv's feeds say about an entry, wherever a feed comes from: its announcement
type (`new`, `cross`, `replace`...), the pre-2024 RSS 1.0 feed's "(arXiv:ID [category]
UPDATED)" title suffix, and arXiv's titles made plain.
"""

from __future__ import annotations

import io
import re
import xml.sax
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import feedparser

from bot.errors import ParseError
from bot.ingest.sources.common import looks_like_html
from bot.ingest.sources.items import read_items
from bot.ingest.sources.plaintext import collapse, html_to_text
from bot.models import Listing, Paper
from bot.text.names import split_authors
from bot.text.tex import decode_tex

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
    if not body.strip():
        return "an empty document"
    if looks_like_html(body):
        return "an HTML page"
    if body[:2048].lstrip()[:1] in (b"{", b"["):
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


def is_rss10(feed: Any) -> bool:
    """Whether the feed is RSS 1.0 (RDF), whose descriptions are HTML (`<p>...</p>`)."""
    return str(feed.get("version", "")).startswith(("rss10", "rss09"))


# --- an entry's fields -----------------------------------------------------------------------


def entry_text(entry: Any, key: str) -> str:
    """A string field of an entry, '' when missing."""
    value = entry.get(key)
    return value if isinstance(value, str) else ""


def html_text(entry: Any, key: str) -> str:
    """A text field as plain text: HTML (feedparser's `*_detail.type`) reduced to its text."""
    detail = entry.get(f"{key}_detail") or {}
    return as_text(entry_text(entry, key), str(detail.get("type", "")))


def as_text(value: str, content_type: str) -> str:
    """Plain text of a feed value whose declared or guessed type is `content_type`."""
    if "html" not in content_type:
        return value
    return html_to_text(value)


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


# --- what arXiv's feeds say about an entry -------------------------------------------------


def split_arxiv_suffix(title: str) -> tuple[str, str | None, str]:
    """A title without the old arXiv feed's "(arXiv:ID [cat] UPDATED)": (title, cat, flag)."""
    found = _ARXIV_TITLE_SUFFIX.search(title)
    if found is None:
        return title, None, ""
    return title[: found.start()].rstrip(), found["category"], found["flag"].strip()


def arxiv_title(raw: str) -> str:
    """A title with TeX decoded (`\\&` is &) and whitespace collapsed; math is kept."""
    return split_arxiv_suffix(collapse(decode_tex(raw)))[0]


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
