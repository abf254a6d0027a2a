"""Every field of a model survives the store, on a real SQLite file: the column lists are
read off the models, so a new field needs no change in the store's code.

The values are made from each field's type (not listed by hand), so that these tests cover
a field added later without being edited.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.models import Link, Match, Paper, Reason, Subscriber
from bot.store.rows import Columns
from bot.store.store import Store

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
T = TypeVar("T")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "paperbot.db")
    yield opened
    opened.close()


def sample(hint: Any, name: str, salt: int) -> Any:
    """A value of type `hint` unlike the field's default (non-ASCII where text is free)."""
    args = typing.get_args(hint)
    if type(None) in args:  # X | None: a value of X
        return sample(next(a for a in args if a is not type(None)), name, salt)
    if typing.get_origin(hint) is typing.Literal:
        return args[-1]
    if hint == tuple[str, ...]:
        return (f"{name} ü {salt}", f"second {name}")
    if hint == tuple[Link, ...]:
        return (Link("abs", f"https://example.org/{salt}"), Link("pdf", "https://example.org/ü"))
    if hint is datetime:
        return NOW - timedelta(days=salt)
    if hint is int:
        return 3 + salt
    if hint is float:
        return 0.5 + salt
    assert hint is str, f"{name}: teach sample() the type {hint}"
    return f"{name}-ü-{salt}"


def every_field_set(model: type[T], salt: int = 0, **fixed: Any) -> T:
    """An instance of `model` with every field set to a value of its type, bar `fixed`."""
    hints = typing.get_type_hints(model)
    values = {
        field.name: sample(hints[field.name], field.name, salt)
        for field in dataclasses.fields(model)  # type: ignore[arg-type]
    }
    return model(**{**values, **fixed})


def test_the_samples_set_every_field_off_its_default() -> None:
    sub = every_field_set(Subscriber)
    paper = every_field_set(Paper)
    for item in (sub, paper):
        unset = [
            f.name
            for f in dataclasses.fields(item)
            if f.default is not dataclasses.MISSING and getattr(item, f.name) == f.default
        ]
        assert unset == [], f"{type(item).__name__}: sample() leaves these at their default"


def test_every_subscriber_field_survives_the_config_file_sync(store: Store) -> None:
    sub = every_field_set(Subscriber, origin="config", status="active")
    store.subscribers.sync_config([sub], now=NOW)
    assert store.subscribers.active() == [sub]
    assert store.subscribers.find_active(sub.email) == sub
    store.matches.add({sub.email: [Match("2401.00001", (Reason("keyword", "x"),))]}, now=NOW)
    store.outbox.create("example.org", NOW)
    [pending] = store.outbox.pending()
    assert pending.subscriber == sub, "the outbox reads every field too"


def test_every_subscriber_field_survives_a_web_signup_and_an_edit(store: Store) -> None:
    first = every_field_set(Subscriber, 1, origin="web", status="pending")
    store.subscribers.sign_up(first, now=NOW)
    record = store.subscribers.find(first.email)
    assert record is not None
    assert record.subscriber == first
    edited = every_field_set(Subscriber, 2, email=first.email, origin="web", status="pending")
    assert store.subscribers.update_alerts(edited, version=0, now=NOW) is not None
    record = store.subscribers.find(first.email)
    assert record is not None
    assert record.subscriber == edited


def test_every_paper_field_survives_recording(store: Store) -> None:
    paper = every_field_set(Paper, id="2401.00001", arxiv_id="2401.00001", doi="10.1/x")
    store.papers.record("arxiv", [paper], now=NOW)
    stored = dataclasses.replace(paper, sources=("arxiv",), first_seen=NOW)
    assert store.papers.by_id([paper.id]) == {paper.id: stored}
    assert store.papers.to_match() == [stored]


@dataclasses.dataclass(frozen=True)
class Thing:
    """A model the store does not know: the column list works for any dataclass."""

    id: str
    seen: datetime | None
    tags: tuple[str, ...]
    links: tuple[Link, ...]
    count: int | None = None


def test_a_model_is_stored_by_the_types_of_its_fields(tmp_path: Path) -> None:
    columns = Columns(Thing)
    thing = every_field_set(Thing)
    with sqlite3.connect(tmp_path / "things.db") as conn:
        conn.execute(f"CREATE TABLE things ({columns.select()})")
        conn.execute("INSERT INTO things VALUES (?, ?, ?, ?, ?)", columns.values(thing))
        [row] = conn.execute(f"SELECT {columns.select()} FROM things").fetchall()
    assert row[2] == '["tags ü 0", "second tags"]', "a list is JSON text, readable in SQL"
    assert row[1] == NOW.isoformat(), "a time is ISO text in UTC"
    assert columns.read(row) == thing
    assert columns.read((thing.id, None, "[]", "[]", None)) == Thing(thing.id, None, (), ())


def test_a_field_of_a_type_without_a_rule_is_refused_when_the_module_loads() -> None:
    @dataclasses.dataclass
    class Odd:
        numbers: tuple[int, ...]

    with pytest.raises(TypeError, match=r"Odd\.numbers: no rule to store"):
        Columns(Odd)
