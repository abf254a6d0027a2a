"""Hostile documents each kind must survive: numbers too long for Python, nesting too deep.

The documents are the real captures of `tests/fixtures/` with one value made hostile by
hand (said at each test). A hostile value in one item costs that item's field; a document
no parser can read is a `ParseError` that says so in words, never an exception from inside
the parser (`RecursionError`, `ValueError: Exceeds the limit (4300 digits)`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.errors import ParseError
from bot.ingest.sources import get_kind
from bot.ingest.sources.base import SourceOptions
from tests.httpserver import FIXTURES

URL = "http://127.0.0.1:9/feed"
#: a count with 5,000 digits: `int()` refuses it (Python's limit is 4,300)
LONG_NUMBER = "7" * 5_000


def parse(kind: str, body: bytes, **options: Any) -> Any:
    """Read `body` as `kind` would, with the options given (and a url)."""
    source = get_kind(kind)
    model: type[SourceOptions] = source.options_model
    return source.parse(body, URL, model(url=URL, **options))


def with_raw_number(document: Any, marker: int) -> bytes:
    """The JSON of `document` with the number `marker` written as `LONG_NUMBER` digits."""
    text = json.dumps(document)
    assert text.count(str(marker)) == 1
    return text.replace(str(marker), LONG_NUMBER).encode()


def load(path: str) -> Any:
    """A JSON fixture."""
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


def test_a_count_too_long_for_python_costs_only_that_field_on_hugging_face() -> None:
    items = load("huggingface/api_daily_papers_2024-10-25_first4_trimmed.json")
    items[1]["paper"]["upvotes"] = 918273645  # hand-made: replaced by 5,000 digits below
    listing = parse("huggingface", with_raw_number(items, 918273645))
    assert len(listing.papers) == 4
    [hostile] = [p for p in listing.papers if p.arxiv_id == items[1]["paper"]["id"]]
    assert hostile.votes is None
    [line] = listing.problems
    assert line.startswith(f"item 2 ({items[1]['paper']['id']}): upvotes: ")


def test_a_count_too_long_for_python_costs_only_that_field_on_alphaxiv() -> None:
    page = load("alphaxiv/feed_hot_7days_page0_handwritten.json")
    page["papers"][0]["metrics"]["public_total_votes"] = 918273645
    listing = parse("alphaxiv", with_raw_number(page, 918273645))
    assert len(listing.papers) == len(page["papers"])
    assert listing.papers[0].votes != 918273645
    assert any("public_total_votes" in line for line in listing.problems)


def test_a_page_number_too_long_for_python_is_no_page_on_biorxiv() -> None:
    page = load("biorxiv/details_2018-10-29_2018-10-31_cursor0_handwritten.json")
    page["messages"][0]["cursor"] = 918273645
    listing = parse("biorxiv", with_raw_number(page, 918273645))
    assert {p.doi for p in listing.papers} >= {"10.1101/456574"}


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("huggingface", b"[" * 100_000 + b"]" * 100_000),
        ("alphaxiv", b'{"page": 0, "papers": [' + b"[" * 50_000 + b"]" * 50_000 + b"]}"),
        ("biorxiv", b'{"messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    ],
    ids=["huggingface", "alphaxiv", "biorxiv"],
)
def test_json_nested_too_deep_is_a_parse_error_in_words(kind: str, body: bytes) -> None:
    with pytest.raises(ParseError, match="nested too deep"):
        parse(kind, body)


def test_a_hugging_face_page_whose_props_nest_too_deep_is_a_parse_error() -> None:
    props = ("[" * 50_000 + "]" * 50_000).replace('"', "&quot;")
    page = f'<div data-target="DailyPapers" data-props="{props}"></div>'.encode()
    with pytest.raises(ParseError, match="nested too deep"):
        parse("huggingface", page)
