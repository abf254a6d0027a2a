"""The item loop every kind reads through (`bot.ingest.sources.items.read_items`).

The items here are plain dicts and the builders small functions written for the test: what
is under test is the loop itself, that whatever one item does stays with that item.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import EntryError, ParseError
from bot.ingest.sources.checks import MAX_COUNT
from bot.ingest.sources.items import ItemNotes, read_items
from bot.models import Paper

URL = "https://source.test/feed"


def build(item: dict[str, Any], notes: ItemNotes) -> Paper | None:
    """A paper from {id, title, votes?}; `boom` raises what it names; `skip` is left out."""
    if "boom" in item:
        raise item["boom"]
    if item.get("skip"):
        return None
    notes.named(item["id"])
    if "votes" in item:
        notes.note("votes", "a made-up problem")
    return Paper(id=item["id"], title=item["title"], arxiv_id=item["id"], votes=item.get("votes"))


GOOD = [{"id": "2411.00001", "title": "First"}, {"id": "2411.00002", "title": "Second"}]


@pytest.mark.parametrize(
    "error",
    [KeyError("title"), TypeError("'NoneType' is not iterable"), RecursionError(), ValueError("x")],
    ids=lambda e: type(e).__name__,
)
def test_any_exception_skips_only_its_item_with_one_line(error: Exception) -> None:
    read = read_items([GOOD[0], {"boom": error}, GOOD[1]], build, url=URL)
    assert [p.id for p in read.papers] == ["2411.00001", "2411.00002"]
    [line] = read.problems
    assert line.startswith(f"item 2 skipped: unexpected {type(error).__name__}")


def test_an_entry_error_is_said_as_it_is() -> None:
    read = read_items(
        [{"boom": EntryError("no title")}, GOOD[0]], build, url=URL, noun=("entry", "entries")
    )
    assert read.problems == ("entry 1 skipped: no title",)


def test_a_partly_read_item_has_one_line_with_every_field_and_its_name() -> None:
    item = {"id": "2411.00003", "title": "Third\x00", "votes": 2**63}
    read = read_items([item], build, url=URL)
    [paper] = read.papers
    assert (paper.title, paper.votes) == ("Third", MAX_COUNT)
    [line] = read.problems
    assert line.startswith("item 1 (2411.00003): votes: a made-up problem; title: control")
    assert f"kept as {MAX_COUNT}" in line


def test_every_item_failing_is_a_parse_error_naming_the_first() -> None:
    bad = [{"boom": EntryError("no title")}, {"boom": KeyError("id")}]
    with pytest.raises(ParseError) as caught:
        read_items(bad, build, url=URL, broken="it moved")
    expected = f"{URL}: none of 2 items could be read (item 1 skipped: no title); it moved"
    assert str(caught.value) == expected


def test_items_left_out_on_purpose_are_not_failures() -> None:
    read = read_items([{"skip": True}, {"boom": EntryError("no title")}], build, url=URL)
    assert read.papers == ()
    assert read.problems == ("item 2 skipped: no title",)
    assert read_items([], build, url=URL).papers == ()


def test_lines_are_one_line_and_bounded() -> None:
    hostile = "x\n" * 10_000
    read = read_items(
        [{"boom": EntryError(hostile)}, {"id": hostile, "boom": KeyError(hostile)}, GOOD[0]],
        build,
        url=URL,
    )
    assert len(read.problems) == 2
    for line in read.problems:
        assert "\n" not in line
        assert len(line) <= 500
