"""How values are stored: times as ISO text in UTC, lists as JSON, and ONE column list per
model table, read off the model itself.

The `papers` and `subscribers` tables have a column for every field of `Paper` and
`Subscriber`, named alike: `PAPER` and `SUBSCRIBER` list them in the model's order and
convert a model to its row and back, by the field's type (`tuple[str, ...]` as a JSON list,
`tuple[Link, ...]` as JSON pairs, `datetime` as ISO text, anything else as it is). A new
field therefore needs its migration (`schema.py`) and the model, nothing here.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
import typing
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from bot.models import Link, Paper, Reason, Subscriber

M = TypeVar("M")
T = TypeVar("T", bound=Hashable)

#: a conversion of one stored value; None: stored as it is
Convert = Callable[[Any], Any] | None


def utcnow() -> datetime:
    """The current time in UTC (aware)."""
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """A time as stored: ISO text in UTC (None stays None)."""
    return value.astimezone(UTC).isoformat() if value else None


def from_iso(value: str | None) -> datetime | None:
    """A stored time back (None or empty: None)."""
    return datetime.fromisoformat(value) if value else None


#: JSON text as stored (made once: `json.dumps` with an option builds an encoder per call)
_to_json = json.JSONEncoder(ensure_ascii=False).encode


def _json_tuple(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


def strings_json(values: Sequence[str]) -> str:
    """A list of strings as stored: JSON text."""
    return _to_json(list(values))


def strings_of(text: str) -> tuple[str, ...]:
    """A stored list of strings back."""
    return _json_tuple(text)


def _links_json(links: Sequence[Link]) -> str:
    return _to_json([[link.label, link.url] for link in links])


def _links_of(text: str) -> tuple[Link, ...]:
    return tuple(Link(label, url) for label, url in json.loads(text))


#: how a field of each of these types is stored and read back; other types are stored as is
_CONVERSIONS: dict[Any, tuple[Convert, Convert]] = {
    tuple[str, ...]: (_to_json, _json_tuple),
    tuple[Link, ...]: (_links_json, _links_of),
    datetime: (iso, from_iso),
    datetime | None: (iso, from_iso),
}


def _conversion(model: type, name: str, hint: Any) -> tuple[Convert, Convert]:
    """How `model.name`, of type `hint`, is stored; a container without a rule is refused
    here, when the module loads, not when the first row is written."""
    if hint in _CONVERSIONS:
        return _CONVERSIONS[hint]
    if typing.get_origin(hint) in (tuple, list, dict, set, frozenset):
        raise TypeError(f"{model.__name__}.{name}: no rule to store a {hint} in rows.py")
    return None, None


class Columns(Generic[M]):
    """The columns of a table that hold a model's fields: named alike, in the model's order,
    with the conversion each way."""

    def __init__(self, model: type[M]) -> None:
        hints = typing.get_type_hints(model)
        fields = dataclasses.fields(model)  # type: ignore[arg-type]
        self._make: Callable[..., M] = model
        #: the column names, in the order of the model's fields (its constructor's order)
        self.names: tuple[str, ...] = tuple(field.name for field in fields)
        conversions = [_conversion(model, name, hints[name]) for name in self.names]
        self._to_sql = dict(zip(self.names, (to for to, _ in conversions), strict=True))
        self._from_sql = [(i, back) for i, (_, back) in enumerate(conversions) if back]
        #: an item's stored values, every column, in `names` order
        self.values = self.writer(self.names)

    def select(self, alias: str = "") -> str:
        """The column list for a SELECT whose row (or its tail) `read` takes: `s.email, ...`."""
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + name for name in self.names)

    def writer(self, names: Sequence[str]) -> Callable[[M], tuple[Any, ...]]:
        """A function giving an item's stored values of the fields `names`, in that order
        (`values` gives every one)."""
        fetch = operator.attrgetter(*names)
        convert = [(i, to) for i, name in enumerate(names) if (to := self._to_sql[name])]

        def values(item: M) -> tuple[Any, ...]:
            # one C call fetches the fields; only the few that need it are converted
            row = list(fetch(item)) if len(names) > 1 else [fetch(item)]
            for i, to in convert:
                row[i] = to(row[i])
            return tuple(row)

        return values

    def read(self, values: Sequence[Any]) -> M:
        """The model from its columns' values, in `names` order."""
        row = list(values)
        for i, back in self._from_sql:
            row[i] = back(row[i])
        return self._make(*row)


#: the `papers` table's columns that hold a Paper (it also has title_key, updated and
#: pending_match, which are the store's own)
PAPER = Columns(Paper)
#: the `subscribers` table's columns that hold a Subscriber (the store's own: id,
#: token_version, confirmed_at, hard_bounces, served_at, created, updated)
SUBSCRIBER = Columns(Subscriber)
#: what a subscriber's alerts and cadence are: every column the config file or the web form
#: writes, besides the address that names the row (origin and status are the store's call)
SUBSCRIBER_SETTINGS = tuple(c for c in SUBSCRIBER.names if c not in ("email", "origin", "status"))


@functools.lru_cache(maxsize=65536)
def reasons_json(reasons: tuple[Reason, ...]) -> str:
    """A match's reasons as stored (cached: one alert's reasons serve many subscribers)."""
    return _to_json([[r.kind, r.alert, list(r.terms)] for r in reasons])


@functools.lru_cache(maxsize=65536)
def reasons_of(text: str) -> tuple[Reason, ...]:
    """Stored reasons back (cached: a popular alert stores the same text for many people)."""
    return tuple(Reason(kind, alert, tuple(terms)) for kind, alert, terms in json.loads(text))


def marks(count: int) -> str:
    """`?, ?, ?` for `count` parameters."""
    return ", ".join("?" * count)


#: values one `IN (?, ?, ...)` query asks for at a time (SQLite allows 32,766 parameters;
#: 500 keeps each statement small and its plan cached)
IN_CHUNK = 500


def chunked(values: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """The values once each, in their order, in lists of at most `size` (for `IN` queries)."""
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]
