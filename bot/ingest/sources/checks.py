"""The gate every paper from a source passes before it is stored: its outside values checked.

Everything in a `Paper` that a parser made was written by somebody else's server. `checked`
returns the paper with every number, string, date, URL and id within bounds, and says what
it changed, so that no value a source sends can break the store, the matching or a digest.
It is pure and idempotent: a paper it returns passes it again unchanged, with nothing said.

The limits are far beyond any real paper; they only bound what one hostile item can cost:

- title 1,000 characters (the longest arXiv titles are about 400); abstract 20,000 (arXiv
  stops at 1,920, journal abstracts rarely pass 5,000); both are cut at a word, with "…";
- author name 200 characters (a longer one is a list that was not split, or junk: left
  out); 6,000 authors (the largest author list on record is 5,154, the ATLAS and CMS Higgs
  mass paper of 2015);
- keywords, categories and organisations: 100 of them, 200 characters each; 20 links;
- URLs: http or https with a host, at most 2,000 characters (where browsers and search
  engines stop); anything else (`javascript:`, `data:`, `file:`) is dropped;
- counts (votes, stars): integers from 0 to 1,000,000,000, well above any real count and
  far below SQLite's 2**63; a negative, fractional, boolean or non-numeric value is none;
- dates from 1665 (the first scientific journals) to 2100, in UTC;
- text: no control characters (NUL included) and no lone surrogates (SQLite cannot store
  them as UTF-8); whitespace runs become one space. Bidi marks and emoji are text: the
  digest decides how to show them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

from bot.errors import EntryError
from bot.ingest.sources.plaintext import collapse
from bot.models import Link, Paper
from bot.text.ids import arxiv_id_from, canonical_id, doi_from

MAX_TITLE = 1_000
MAX_ABSTRACT = 20_000
MAX_NAME = 200
MAX_AUTHORS = 6_000
MAX_TERM = 200
MAX_TERMS = 100
MAX_LINKS = 20
MAX_URL = 2_000
MAX_DOI = 300
MAX_COUNT = 1_000_000_000
EARLIEST = datetime(1665, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: how much of a bad value a warning line quotes
SHOWN = 40

# Control characters that are not whitespace (whitespace ones become spaces below) and the
# surrogate code points, which are only legal in pairs and only in UTF-16.
_UNSAFE = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff]")
_DIGITS = re.compile(r"[0-9]+")
_TOKEN = re.compile(r"[a-z][a-z-]{0,19}")
_ELLIPSIS = "…"

#: says what was wrong with a field: (field, problem)
_Noter = Callable[[str, str], None]


def checked(paper: Paper) -> tuple[Paper, tuple[str, ...]]:
    """The paper with every outside value within bounds, and what was changed (field: why).

    Raises `EntryError` when nothing is left to know the paper by (no title, no valid id).
    """
    problems: list[str] = []

    def note(field: str, problem: str) -> None:
        problems.append(f"{field}: {problem}")

    title = _bounded_text(paper.title, MAX_TITLE, "title", note)
    if not title:
        raise EntryError("no title")
    arxiv_id = _arxiv_id(paper.arxiv_id, note)
    doi = _doi(paper.doi, note)
    try:
        paper_id = canonical_id(arxiv_id=arxiv_id, doi=doi, title=title)
    except ValueError as exc:  # a title of punctuation only, and no usable id
        raise EntryError(str(exc)) from None
    result = replace(
        paper,
        id=paper_id,
        title=title,
        authors=_names(paper.authors, MAX_NAME, MAX_AUTHORS, "authors", note),
        abstract=_bounded_text(paper.abstract, MAX_ABSTRACT, "abstract", note),
        url=_url(paper.url, "url", note),
        arxiv_id=arxiv_id,
        doi=doi,
        published=_date(paper.published, "published", note),
        categories=_names(paper.categories, MAX_TERM, MAX_TERMS, "categories", note),
        links=_links(paper.links, note),
        announce_type=_token(paper.announce_type, "announce_type", note),
        votes=_count_field(paper.votes, "votes", note),
        stars=_count_field(paper.stars, "stars", note),
        keywords=_names(paper.keywords, MAX_TERM, MAX_TERMS, "keywords", note),
        organizations=_names(paper.organizations, MAX_TERM, MAX_TERMS, "organizations", note),
    )
    return result, tuple(problems)


# --- values any reader may check with the same rules ---------------------------------------


def clean_text(text: str) -> str:
    """Text without control characters or lone surrogates, whitespace runs as one space."""
    if _has_unsafe(text):
        text = _UNSAFE.sub("", text)
    return collapse(text)


def _has_unsafe(text: str) -> bool:
    """Whether the text holds a control character or a lone surrogate."""
    # isprintable() is one C loop and true for nearly all text: then neither can be there
    return not text.isprintable() and _UNSAFE.search(text) is not None


def count(value: object) -> tuple[int | None, str]:
    """A count from outside (votes, stars) and what was wrong with it ('' when nothing).

    Integers, integral floats and strings of ASCII digits count; a value above `MAX_COUNT`
    is kept as `MAX_COUNT`; anything else (negative, `"²"`, `"1e400"`, NaN, a boolean) is
    no value. None is simply no value.
    """
    if value is None:
        return None, ""
    number = _integer(value)
    if number is None or number < 0:
        return None, f"{shown(value)} is not a count"
    if number > MAX_COUNT:
        return MAX_COUNT, f"{shown(value)} is more than {MAX_COUNT}, kept as {MAX_COUNT}"
    return number, ""


def _integer(value: object) -> int | None:
    """The integer a JSON value spells (an int, an integral float, ASCII digits), else None."""
    if isinstance(value, bool):  # JSON's true is not a count of 1
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        digits = value.strip().lstrip("0") or "0"
        # int() of thousands of digits is slow, and refused past 4,300: all are over the cap
        return int(digits) if len(digits) <= len(str(MAX_COUNT)) else MAX_COUNT + 1
    return None


def shown(value: object) -> str:
    """A value from outside as a warning line may quote it: repr, escaped, at most 40 chars."""
    text = repr(value) if isinstance(value, str) else _json_word(value)
    return text if len(text) <= SHOWN else f"{text[: SHOWN - 1]}…"


def _json_word(value: object) -> str:
    """A non-string value named as JSON would write it (`null`, `true`, `12`, `a list`)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# --- one field each ---------------------------------------------------------------------------


def _bounded_text(text: str, limit: int, field: str, note: _Noter) -> str:
    """Clean text cut at a word before `limit` characters (with "…") when it is longer."""
    clean = _cleaned(text, field, note)
    if len(clean) <= limit:
        return clean
    note(field, f"{len(clean)} characters, cut to {limit}")
    cut = clean[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + _ELLIPSIS


def _names(
    values: tuple[str, ...], longest: int, most: int, field: str, note: _Noter
) -> tuple[str, ...]:
    """Clean, non-empty entries no longer than `longest`, at most `most` of them.

    Repeats are kept: two authors of one paper may share a name.
    """
    cleaned = (_cleaned(value, field, note) for value in values)
    kept = [value for value in cleaned if value]
    too_long = [value for value in kept if len(value) > longest]
    if too_long:
        note(field, f"{len(too_long)} longer than {longest} characters left out")
        kept = [value for value in kept if len(value) <= longest]
    if len(kept) > most:
        note(field, f"{len(kept)} of them, only the first {most} kept")
        kept = kept[:most]
    return tuple(kept)


def _cleaned(text: str, field: str, note: _Noter) -> str:
    """`clean_text`, noting when there were control characters or surrogates to remove."""
    if _has_unsafe(text):
        note(field, "control characters or lone surrogates removed")
    return clean_text(text)


def _url(url: str, field: str, note: _Noter) -> str:
    """The URL when it is a sane http(s) one, else '' (noted unless it was '' already)."""
    if not url or is_web_url(url):
        return url
    note(field, f"{shown(url)} is not an http(s) URL")
    return ""


def is_web_url(url: str) -> bool:
    """Whether a string is an http or https URL with a host, of sane length, nothing hidden."""
    if len(url) > MAX_URL or _has_unsafe(url) or url.split() != [url]:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed IPv6 host
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _links(links: tuple[Link, ...], note: _Noter) -> tuple[Link, ...]:
    """Links whose URL is a sane http(s) one, at most `MAX_LINKS`."""
    kept = [link for link in links if is_web_url(link.url) and link.label]
    if len(kept) < len(links):
        note("links", f"{len(links) - len(kept)} without an http(s) URL left out")
    if len(kept) > MAX_LINKS:
        note("links", f"{len(kept)} of them, only the first {MAX_LINKS} kept")
    return tuple(kept[:MAX_LINKS])


def _arxiv_id(value: str | None, note: _Noter) -> str | None:
    """The arXiv id when it is one as `bot.text.ids` spells it (no version), else None."""
    if value is None or arxiv_id_from(value) == value:
        return value
    note("arxiv_id", f"{shown(value)} is not an arXiv id")
    return None


def _doi(value: str | None, note: _Noter) -> str | None:
    """The DOI when it is one as `bot.text.ids` spells it and of sane length, else None."""
    if value is None or (len(value) <= MAX_DOI and doi_from(value) == value):
        return value
    note("doi", f"{shown(value)} is not a DOI")
    return None


def _date(value: datetime | None, field: str, note: _Noter) -> datetime | None:
    """The date in UTC when it lies between 1665 and 2100, else None."""
    if value is None:
        return None
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if EARLIEST <= aware < LATEST:
        return aware
    note(field, f"{value.isoformat()} is not a plausible date")
    return None


def _token(value: str | None, field: str, note: _Noter) -> str | None:
    """A short lower-case word such as `new` or `replace-cross`, else None."""
    if value is None or _TOKEN.fullmatch(value):
        return value
    note(field, f"{shown(value)} is not a known word")
    return None


def _count_field(value: int | None, field: str, note: _Noter) -> int | None:
    """A count as `count` reads it, noting what it changed."""
    number, problem = count(value)
    if problem:
        note(field, problem)
    return number
