"""Reading a document item by item: the item is where one source's bad data stops.

Every kind turns its document's items into papers through `read_items`. An item whose
field is missing or malformed is read without that field; one that cannot be a paper (no
title, no identity), or whose reading fails in any way at all, is skipped. Either way the
item gets ONE problem line (its number, its id or title when known, and each field), which
the pipeline logs with the source's name; the other items are read as if nothing happened.
Each paper then passes `checked`, the gate for every value from outside (see checks.py).
Only when every item failed is the document itself taken to have changed: a `ParseError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bot.errors import EntryError, ParseError
from bot.ingest.sources.checks import checked, clean_text
from bot.models import Paper

T = TypeVar("T")

#: how long one problem line may grow (its values are quoted short already)
_LINE = 500
#: how much of an item's id or title its problem line shows
_NAME = 60


class ItemNotes:
    """What was wrong in one item while it was read: its name once known, and each field."""

    __slots__ = ("name", "problems")

    def __init__(self) -> None:
        self.name = ""
        self.problems: list[str] = []

    def named(self, name: str) -> None:
        """Call the item by this id or title in its problem line (the first name given wins)."""
        if not self.name and name.strip():
            self.name = clean_text(name)

    def note(self, field: str, problem: str) -> None:
        """The item is read without this field (or with it bounded): say which and why."""
        line = f"{field}: {problem}"
        if line not in self.problems:  # a field looked up in two places is noted once
            self.problems.append(line)


@dataclass(frozen=True, slots=True)
class ItemsRead:
    """The papers read from a document's items, and one problem line per bad item."""

    papers: tuple[Paper, ...]
    problems: tuple[str, ...]


def read_items(
    items: Sequence[T],
    build: Callable[[T, ItemNotes], Paper | None],
    *,
    url: str,
    noun: tuple[str, str] = ("item", "items"),
    broken: str = "",
) -> ItemsRead:
    """Build and check a paper from each item; a bad item is skipped or read in part.

    `build` returns None for an item it leaves out on purpose (another category, a
    replacement) and raises `EntryError` for one that cannot be a paper; any other
    exception is caught too. When items exist and every one failed, that is a `ParseError`
    naming the first failure (and `broken`, a word on the document, if given). `noun` is
    what the lines call an item and items (`entry`, `entries`).
    """
    papers: list[Paper] = []
    problems: list[str] = []
    failures: list[str] = []
    for number, item in enumerate(items, start=1):
        notes = ItemNotes()
        try:
            paper = build(item, notes)
            if paper is not None:
                notes.named(paper.arxiv_id or paper.doi or paper.title)
                paper, changed = checked(paper)
                notes.problems.extend(changed)
        except Exception as exc:  # the item is the isolation boundary: nothing gets past it
            failure = _line(f"{_where(noun[0], number, notes)} skipped: {_reason(exc)}")
            failures.append(failure)
            problems.append(failure)
            continue
        if notes.problems:
            where = _where(noun[0], number, notes)
            problems.append(_line(f"{where}: {'; '.join(notes.problems)}"))
        if paper is not None:
            papers.append(paper)
    if failures and len(failures) == len(items):
        detail = f"; {broken}" if broken else ""
        raise ParseError(
            f"{url}: none of {len(items)} {noun[1]} could be read ({failures[0]}){detail}"
        )
    return ItemsRead(tuple(papers), tuple(problems))


def _where(noun: str, number: int, notes: ItemNotes) -> str:
    """`item 3 (2411.17800)`: the item's number, and its id or title when it is known."""
    return f"{noun} {number} ({_clip(notes.name, _NAME)})" if notes.name else f"{noun} {number}"


def _reason(exc: Exception) -> str:
    """Why an item was skipped: an `EntryError` says it; anything else is named as a surprise."""
    if isinstance(exc, EntryError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def _line(text: str) -> str:
    """One line of bounded length, control characters and surrogates removed."""
    return _clip(clean_text(text), _LINE)


def _clip(text: str, limit: int) -> str:
    """The text, cut to `limit` characters with "…" when longer."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
