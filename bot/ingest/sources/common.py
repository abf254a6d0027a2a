"""Helpers the kinds share: query strings, JSON bodies and their fields, what a document that
is not the expected one looks like, dates and day windows."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from bot.errors import ParseError
from bot.ingest.sources.base import FetchWindow
from bot.ingest.sources.checks import count, shown
from bot.ingest.sources.items import ItemNotes
from bot.ingest.sources.plaintext import entity_text

_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S
)
_XML_START = re.compile(rb"^\s*<")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
#: the longest run of digits read as an integer; Python refuses past 4,300 (and takes
#: quadratic time before that), and no count, page or cursor of a real source comes near
_LONGEST_INT = 1_000


def with_query(url: str, params: Mapping[str, str]) -> str:
    """The URL with these query parameters added; a parameter the URL already has is kept."""
    parts = urlsplit(url)
    present = parse_qsl(parts.query, keep_blank_values=True)
    names = {name for name, _value in present}
    added = [(name, value) for name, value in params.items() if name not in names]
    return urlunsplit(parts._replace(query=urlencode([*present, *added], quote_via=quote)))


def replace_query(url: str, params: Mapping[str, str]) -> str:
    """The URL with these query parameters set (replacing values it had)."""
    parts = urlsplit(url)
    kept = [(n, v) for n, v in parse_qsl(parts.query, keep_blank_values=True) if n not in params]
    return urlunsplit(parts._replace(query=urlencode([*kept, *params.items()], quote_via=quote)))


def query_value(url: str, name: str) -> str | None:
    """The value of one query parameter of the URL, if present."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True)).get(name)


def read_json(body: bytes, url: str) -> Any:
    """The JSON document in `body`; a `ParseError` saying what came instead when it is not JSON.

    A number too long to be an integer is read as the float it spells (infinity), so that
    the item holding it is read without that field rather than the whole document lost;
    arrays or objects nested too deep for the parser are a `ParseError`, never a crash.
    """
    try:
        return json.loads(body, parse_int=_json_int)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"{url}: expected JSON, got {describe_body(body, exc)}") from None
    except RecursionError:
        raise ParseError(
            f"{url}: expected JSON, got arrays or objects nested too deep to read"
        ) from None


def _json_int(digits: str) -> int | float:
    """A JSON integer; one longer than `_LONGEST_INT` digits is infinity (no count at all)."""
    return int(digits) if len(digits) <= _LONGEST_INT else float(digits)


def describe_body(body: bytes, exc: Exception | None = None) -> str:
    """A few words on what a document is, for an error line (an HTML page, XML, empty...)."""
    if not body.strip():
        return "an empty document"
    if looks_like_html(body):
        return "an HTML page"
    if _XML_START.match(body[:2048]):
        return "an XML document"
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    return "something that is not JSON"


def looks_like_html(body: bytes) -> bool:
    """Whether a document starts as an HTML page does (after any XML declaration, comments)."""
    return _HTML_START.match(body[:2048]) is not None


def parse_datetime(value: object) -> datetime | None:
    """An aware UTC datetime from an ISO string (`Z` allowed), a date, or epoch milliseconds."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        if _DATE_ONLY.fullmatch(text):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def fetch_days(
    window: FetchWindow, *, catch_up: int, last_day: date, first_run: int = 1
) -> list[date]:
    """The days one fetch asks for: from the day before the last success up to `last_day`.

    The day before the last success is asked again because it may have been incomplete when
    it was last read; ids make the repeat harmless. A first fetch asks for the `first_run`
    days ending at `last_day`, and a long outage is caught up for at most `catch_up` days.
    """
    if window.last_success is None:
        first = last_day - timedelta(days=first_run - 1)
    else:
        first = window.last_success - timedelta(days=1)
    first = max(first, last_day - timedelta(days=catch_up - 1))
    first = min(first, last_day)
    return [first + timedelta(days=n) for n in range((last_day - first).days + 1)]


def text_field(
    record: Mapping[str, Any], key: str, notes: ItemNotes | None = None, *, expected: bool = False
) -> str:
    """A string field of a JSON record, '' when it is missing, null or not a string.

    With `notes`, a value of another type is noted, and so is a missing or null one when
    the field is `expected` (every real item has it).
    """
    value = record.get(key)
    if isinstance(value, str):
        return value
    if notes is not None:
        _note_unusable(record, key, value, "text", notes, expected=expected)
    return ""


def string_list(
    record: Mapping[str, Any], key: str, notes: ItemNotes | None = None, *, expected: bool = False
) -> list[str]:
    """The non-blank strings of a JSON list field as text (see `entity_text`), each once."""
    raw = _list_field(record, key, notes, expected=expected)
    texts = [entity_text(s) for s in raw if isinstance(s, str)]
    if notes is not None and len(texts) < len(raw):
        notes.note(key, f"{len(raw) - len(texts)} entries that are not text left out")
    return list(dict.fromkeys(text for text in texts if text))


def name_list(
    record: Mapping[str, Any],
    key: str,
    name_key: str,
    notes: ItemNotes | None = None,
    *,
    expected: bool = False,
) -> list[str]:
    """The `name_key` texts of a JSON list of objects (`authors: [{name}]`), each once."""
    raw = _list_field(record, key, notes, expected=expected)
    names = [
        entity_text(entry[name_key])
        for entry in raw
        if isinstance(entry, dict) and isinstance(entry.get(name_key), str)
    ]
    if notes is not None and len(names) < len(raw):
        unnamed = len(raw) - len(names)
        notes.note(key, f"{unnamed} entries without a text {name_key!r} left out")
    return list(dict.fromkeys(name for name in names if name))


def _list_field(
    record: Mapping[str, Any], key: str, notes: ItemNotes | None, *, expected: bool
) -> list[Any]:
    """The list at `key`, or an empty one (noted when it is there but not a list)."""
    raw = record.get(key)
    if isinstance(raw, list):
        return raw
    if notes is not None:
        _note_unusable(record, key, raw, "a list", notes, expected=expected)
    return []


def int_field(record: Mapping[str, Any], key: str, notes: ItemNotes | None = None) -> int | None:
    """A count field of a JSON record (see `checks.count`: ASCII digits, clamped), or None."""
    number, problem = count(record.get(key))
    if problem and notes is not None:
        notes.note(key, problem)
    return number


def date_field(
    record: Mapping[str, Any], key: str, notes: ItemNotes | None = None
) -> datetime | None:
    """A date field of a JSON record (see `parse_datetime`); an unreadable one is noted."""
    value = record.get(key)
    found = parse_datetime(value)
    if found is None and value is not None and notes is not None:
        notes.note(key, f"{shown(value)} is not a date")
    return found


def _note_unusable(
    record: Mapping[str, Any],
    key: str,
    value: Any,
    wanted: str,
    notes: ItemNotes,
    *,
    expected: bool,
) -> None:
    """Note a field that is not what was wanted; absent or null only when it is `expected`."""
    if value is not None:
        notes.note(key, f"expected {wanted}, got {shown(value)}")
    elif expected:
        notes.note(key, "null" if key in record else "missing")
