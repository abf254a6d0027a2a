"""The web app's alert form: typed fields in, a Subscriber or inline errors out (pure).

Keywords are one per line (commas outside quotes also separate them); authors one per line
(a comma belongs to "Lajoie, Guillaume"); categories are separated by spaces or commas.
Every error names its field and, inside a multi-line field, its line and column.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

from bot.alerts.query import QueryError, parse_follow, parse_query
from bot.config.checks import check_email
from bot.models import Frequency, Subscriber

FREQUENCIES: tuple[Frequency, ...] = get_args(Frequency)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: most entries one field may hold, and the longest entry
MAX_ENTRIES = 50
MAX_ENTRY_CHARS = 200
MAX_EMAIL_CHARS = 254
#: the hour field's value for "no fixed time: whenever a run finds papers" (the default)
ANY_HOUR = ""
#: the address previews are computed for when the form has none yet
PREVIEW_EMAIL = "preview@paperbot.invalid"

_CATEGORY = re.compile(r"[A-Za-z][A-Za-z0-9.\-]{0,39}\*?")
_CATEGORY_SPLIT = re.compile(r"[\s,]+")
_AUTHOR_SPLIT = re.compile(";")
#: a comma outside double quotes separates two keywords written on one line
_KEYWORD_SPLIT = re.compile(r',(?=(?:[^"]*"[^"]*")*[^"]*$)')


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem in a form field; `line`/`column` (1-based) point into it, 0 when moot."""

    field: str
    message: str
    line: int = 0
    column: int = 0

    def where(self) -> str:
        """`line 2, column 7` (or `column 7`, or empty) for showing next to the field."""
        parts = []
        if self.line:
            parts.append(f"line {self.line}")
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return (
            f"{self.field}, {where}: {self.message}" if where else f"{self.field}: {self.message}"
        )


@dataclass(frozen=True, slots=True)
class AlertForm:
    """The alert fields as typed, kept as text so that a form with errors shows them again."""

    keywords: str = ""
    authors: str = ""
    categories: str = ""
    exclude: str = ""
    frequency: str = "daily"
    weekday: str = "0"
    hour: str = ANY_HOUR
    timezone: str = "UTC"

    @classmethod
    def from_fields(cls, fields: Mapping[str, str], default_timezone: str = "UTC") -> AlertForm:
        """The alert fields of a submitted form (missing ones take their defaults)."""
        defaults = cls(timezone=default_timezone)
        return cls(
            **{
                name: str(fields.get(name, getattr(defaults, name)))
                for name in cls.__dataclass_fields__
            }
        )

    @classmethod
    def from_subscriber(cls, sub: Subscriber, default_timezone: str = "UTC") -> AlertForm:
        """The form showing a stored subscriber's alerts and cadence."""
        hour = sub.send_at.partition(":")[0] if sub.send_at else ANY_HOUR
        return cls(
            keywords="\n".join(sub.keywords),
            authors="\n".join(sub.authors),
            categories=" ".join(sub.categories),
            exclude="\n".join(sub.exclude),
            frequency=sub.frequency,
            weekday=str(sub.weekday),
            hour=str(int(hour)) if hour.isascii() and hour.isdigit() else ANY_HOUR,
            timezone=sub.timezone or default_timezone,
        )


@dataclass(frozen=True, slots=True)
class ParsedAlerts:
    """The subscriber a form describes, or (subscriber None) every error found in it."""

    subscriber: Subscriber | None
    errors: tuple[FieldError, ...] = ()


def parse_email(value: str) -> tuple[str | None, FieldError | None]:
    """The normalized address, or the error to show next to the email field."""
    value = value.strip()
    if not value:
        return None, FieldError("email", "enter your email address")
    if len(value) > MAX_EMAIL_CHARS:
        return None, FieldError("email", "this address is too long")
    try:
        return check_email(value), None
    except ValueError:
        return None, FieldError("email", "this is not a valid email address")


#: the manage form's hidden field saying the subscriber has seed papers (so the live preview
#: accepts no keyword and no author)
HAS_SEEDS_FIELD = "has_seeds"


def parse_alerts(
    form: AlertForm, email: str = PREVIEW_EMAIL, *, max_papers: int = 50, need_alerts: bool = True
) -> ParsedAlerts:
    """Check every alert and cadence field; the Subscriber (pending, web) when all are valid.

    `need_alerts` False: no keyword and no author is fine (a subscriber with seed papers
    gets recommendations alone).
    """
    errors: list[FieldError] = []
    keywords = _queries("keywords", _keyword_entries(form.keywords), errors)
    exclude = _queries("exclude", _keyword_entries(form.exclude), errors)
    authors = _authors(form.authors, errors)
    categories = _categories(form.categories, errors)
    if need_alerts and not keywords and not authors and not errors:
        errors.append(FieldError("keywords", "add at least one keyword or one author"))
    frequency = form.frequency if form.frequency in FREQUENCIES else None
    if frequency is None:
        errors.append(FieldError("frequency", "choose daily or weekly"))
    weekday = number_in(form.weekday, 0, 6)
    if weekday is None:
        errors.append(FieldError("weekday", "choose a day of the week"))
    hour = number_in(form.hour, 0, 23) if form.hour.strip() != ANY_HOUR else None
    if hour is None and form.hour.strip() != ANY_HOUR:
        errors.append(FieldError("hour", "choose an hour from 0 to 23"))
    if form.timezone not in timezones():
        errors.append(FieldError("timezone", "choose a time zone from the list"))
    if errors:
        return ParsedAlerts(None, tuple(errors))
    assert frequency is not None
    assert weekday is not None
    return ParsedAlerts(
        Subscriber(
            email=email,
            keywords=keywords,
            authors=authors,
            categories=categories,
            exclude=exclude,
            max_papers=max_papers,
            frequency=frequency,
            weekday=weekday,
            send_at=None if hour is None else f"{hour:02d}:00",
            timezone=form.timezone,
            origin="web",
            status="pending",
        )
    )


def by_field(errors: Sequence[FieldError]) -> dict[str, list[FieldError]]:
    """The errors grouped by their field, for showing each next to its field."""
    grouped: dict[str, list[FieldError]] = {}
    for error in errors:
        grouped.setdefault(error.field, []).append(error)
    return grouped


@functools.cache
def timezones() -> tuple[str, ...]:
    """Every IANA time zone name this machine knows, sorted (UTC first)."""
    names = sorted(n for n in zoneinfo.available_timezones() if "/" in n or n == "UTC")
    return ("UTC", *(n for n in names if n != "UTC"))


# --- fields -------------------------------------------------------------------------------


def _entries(text: str, split: re.Pattern[str] | None) -> Iterator[tuple[str, int, int]]:
    """(entry, line, column) of every non-blank entry; columns count from 1."""
    for line_number, line in enumerate(text.splitlines(), start=1):
        start = 0
        pieces = split.split(line) if split else [line]
        for piece in pieces:
            stripped = piece.strip()
            if stripped:
                yield stripped, line_number, start + piece.index(stripped) + 1
            start += len(piece) + 1


def _keyword_entries(text: str) -> list[tuple[str, int, int]]:
    return list(_entries(text, _KEYWORD_SPLIT))


def _too_many(field: str, entries: list[tuple[str, int, int]], errors: list[FieldError]) -> bool:
    if len(entries) > MAX_ENTRIES:
        errors.append(FieldError(field, f"at most {MAX_ENTRIES} entries"))
        return True
    return False


def _queries(
    field: str, entries: list[tuple[str, int, int]], errors: list[FieldError]
) -> tuple[str, ...]:
    if _too_many(field, entries, errors):
        return ()
    kept: list[str] = []
    for text, line, column in entries:
        if len(text) > MAX_ENTRY_CHARS:
            errors.append(FieldError(field, f"longer than {MAX_ENTRY_CHARS} characters", line))
            continue
        try:
            parse_query(text)
        except QueryError as exc:
            errors.append(FieldError(field, exc.message, line, column + exc.column - 1))
            continue
        kept.append(text)
    return tuple(dict.fromkeys(kept))


def _authors(text: str, errors: list[FieldError]) -> tuple[str, ...]:
    entries = list(_entries(text, _AUTHOR_SPLIT))
    if _too_many("authors", entries, errors):
        return ()
    kept: list[str] = []
    for name, line, _column in entries:
        if len(name) > MAX_ENTRY_CHARS:
            errors.append(FieldError("authors", f"longer than {MAX_ENTRY_CHARS} characters", line))
            continue
        try:
            parse_follow(name)
        except QueryError as exc:
            errors.append(FieldError("authors", exc.message, line))
            continue
        kept.append(name)
    return tuple(dict.fromkeys(kept))


def _categories(text: str, errors: list[FieldError]) -> tuple[str, ...]:
    names = [n for n in _CATEGORY_SPLIT.split(text.strip()) if n]
    if len(names) > MAX_ENTRIES:
        errors.append(FieldError("categories", f"at most {MAX_ENTRIES} categories"))
        return ()
    errors.extend(FieldError("categories", problem) for problem in category_problems(names))
    return tuple(dict.fromkeys(names))


def category_problems(names: Sequence[str]) -> list[str]:
    """Why each of these is not an arXiv category name (cs.LG, or a prefix like cs.*)."""
    return [
        f"{name[:40]!r} is not an arXiv category like cs.LG"
        for name in names
        if not _CATEGORY.fullmatch(name)
    ]


def number_in(text: str, low: int, high: int) -> int | None:
    """The whole number `text` spells in ASCII digits, if it is from `low` to `high`."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if low <= value <= high else None
