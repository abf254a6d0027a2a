"""The gate every source's paper passes before it is stored (`bot.ingest.sources.checks`).

The hostile values here are hand-made: each is one a real server could send.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import EntryError
from bot.ingest.sources.checks import (
    MAX_ABSTRACT,
    MAX_AUTHORS,
    MAX_COUNT,
    MAX_NAME,
    MAX_TERMS,
    MAX_TITLE,
    checked,
    clean_text,
    count,
    is_web_url,
)
from bot.ingest.sources.common import int_field, name_list, string_list, text_field
from bot.ingest.sources.items import ItemNotes
from bot.models import Link, Paper
from bot.text.ids import title_key

TITLE = "Grokking beyond algorithmic data"


def paper(**fields: Any) -> Paper:
    """A plain arXiv paper with these fields replaced."""
    values: dict[str, Any] = {"id": "2411.01234", "title": TITLE, "arxiv_id": "2411.01234"}
    return Paper(**(values | fields))


def problems_of(value: Paper) -> tuple[str, ...]:
    """What the gate said about a paper."""
    return checked(value)[1]


# --- counts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (42, 42),
        ("42", 42),
        (" 7 ", 7),
        ("0007", 7),
        (12.0, 12),
        (MAX_COUNT, MAX_COUNT),
        (MAX_COUNT + 1, MAX_COUNT),
        (2**63, MAX_COUNT),
        (10**25, MAX_COUNT),
        (1e20, MAX_COUNT),
        ("9" * 5000, MAX_COUNT),  # int() would refuse it (over 4,300 digits)
        ("²", None),  # str.isdigit() is True, int() raises
        ("٣", None),  # an Arabic-Indic digit: int() would read 3
        ("1e400", None),
        ("12.5", None),
        ("-1", None),
        (-1, None),
        (12.5, None),
        (math.nan, None),
        (math.inf, None),
        (True, None),
        (False, None),
        ([3], None),
        ({"n": 3}, None),
        ("", None),
    ],
)
def test_a_count_is_a_bounded_non_negative_integer_or_none(
    value: object, expected: int | None
) -> None:
    number, problem = count(value)
    assert number == expected
    assert type(number) in (int, type(None))
    assert bool(problem) == (expected is None or expected == MAX_COUNT != value)


def test_none_is_no_count_and_no_problem() -> None:
    assert count(None) == (None, "")


# --- the JSON field readers -------------------------------------------------------------------


def test_field_readers_note_what_they_could_not_use() -> None:
    record = {
        "upvotes": "²",
        "stars": 2**63,
        "title": 12,
        "summary": None,
        "keywords": ["a", 3, None, "b &amp; c"],
        "authors": [{"name": "Ada"}, {"name": None}, "Bob", {"name": "Ada"}],
        "topics": None,
    }
    notes = ItemNotes()
    assert int_field(record, "upvotes", notes) is None
    assert int_field(record, "stars", notes) == MAX_COUNT
    assert text_field(record, "title", notes) == ""
    assert text_field(record, "summary", notes) == ""  # null, and not expected: quiet
    assert text_field(record, "abstract", notes, expected=True) == ""
    assert string_list(record, "keywords", notes) == ["a", "b & c"]
    assert name_list(record, "authors", "name", notes) == ["Ada"]
    assert string_list(record, "topics", notes) == []  # null, and not expected: quiet
    assert string_list(record, "missing", notes, expected=True) == []
    assert notes.problems == [
        "upvotes: '²' is not a count",
        f"stars: {2**63} is more than {MAX_COUNT}, kept as {MAX_COUNT}",
        "title: expected text, got 12",
        "abstract: missing",
        "keywords: 2 entries that are not text left out",
        "authors: 2 entries without a text 'name' left out",
        "missing: missing",
    ]


def test_readers_without_notes_stay_quiet() -> None:
    assert int_field({"n": "²"}, "n") is None
    assert text_field({"t": []}, "t") == ""
    assert string_list({"k": "x"}, "k") == []


def test_a_field_read_in_two_places_is_noted_once() -> None:
    notes = ItemNotes()
    for _ in range(2):
        text_field({"title": 5}, "title", notes)
    assert notes.problems == ["title: expected text, got 5"]


# --- the gate --------------------------------------------------------------------------------


def test_a_clean_paper_passes_unchanged_and_unremarked() -> None:
    clean = paper(
        authors=("Ada Lovelace",),
        abstract="Short.",
        url="https://arxiv.org/abs/2411.01234",
        doi="10.1000/xyz",
        published=datetime(2024, 11, 28, tzinfo=UTC),
        categories=("cs.LG",),
        links=(Link("abs", "https://arxiv.org/abs/2411.01234"),),
        announce_type="replace-cross",
        votes=3,
        stars=0,
        keywords=("grokking",),
        organizations=("Mila",),
    )
    assert checked(clean) == (clean, ())


def test_numbers_are_clamped_or_dropped() -> None:
    result, problems = checked(paper(votes=2**63, stars=-5))
    assert (result.votes, result.stars) == (MAX_COUNT, None)
    assert len(problems) == 2


def test_text_loses_control_characters_and_lone_surrogates() -> None:
    result, problems = checked(
        paper(title="Grok\x00king\x1b \ud800beyond\r\n  algorithmic\x7f data", abstract="a\tb\x85c")
    )
    assert result.title == "Grokking beyond algorithmic data"
    assert result.abstract == "a b c"
    assert problems == ("title: control characters or lone surrogates removed",)
    (result.title + result.abstract).encode("utf-8")  # what SQLite needs


def test_long_text_is_cut_at_a_word_and_the_identity_follows_the_cut_title() -> None:
    title = "word " * 200_000  # a 1 MB title
    result, problems = checked(paper(title=title, arxiv_id=None, id="title:x", abstract=title))
    assert len(result.title) <= MAX_TITLE
    assert result.title.endswith("word…")
    assert len(result.abstract) <= MAX_ABSTRACT
    assert result.id == f"title:{title_key(result.title)}"
    assert problems == (
        f"title: {len(title.strip())} characters, cut to {MAX_TITLE}",
        f"abstract: {len(title.strip())} characters, cut to {MAX_ABSTRACT}",
    )


def test_names_too_long_are_left_out_and_too_many_are_cut() -> None:
    many = tuple(f"Author {n}" for n in range(MAX_AUTHORS + 10))
    result, problems = checked(
        paper(authors=("x" * (MAX_NAME + 1), "  ", *many), keywords=tuple(map(str, range(500))))
    )
    assert result.authors == many[:MAX_AUTHORS]
    assert len(result.keywords) == MAX_TERMS
    assert len(problems) == 3


def test_two_authors_with_one_name_are_both_kept() -> None:
    result, _ = checked(paper(authors=("Wei Wang", "Wei Wang")))
    assert result.authors == ("Wei Wang", "Wei Wang")


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://arxiv.org/abs/2411.01234", True),
        ("http://127.0.0.1:8080/x?a=1&b=2", True),
        ("https://example.org/ünïcode", True),
        ("javascript:alert(1)", False),
        ("data:text/html,<script>x</script>", False),
        ("file:///etc/passwd", False),
        ("ftp://example.org/x", False),
        ("https://", False),
        ("//example.org/x", False),
        ("http://[::1", False),  # urlsplit raises
        ("https://example.org/a b", False),
        ("https://example.org/\x00", False),
        ("https://example.org/" + "a" * 3000, False),
    ],
)
def test_only_sane_http_urls_are_kept(url: str, kept: bool) -> None:
    assert is_web_url(url) == kept
    result, problems = checked(paper(url=url, links=(Link("page", url),)))
    assert (result.url == url) == kept
    assert (result.links == (Link("page", url),)) == kept
    assert bool(problems) != kept


@pytest.mark.parametrize(
    ("when", "kept"),
    [
        (datetime(2024, 11, 28, 12, tzinfo=UTC), True),
        (datetime(1665, 3, 6, tzinfo=UTC), True),
        (datetime(1, 1, 1, tzinfo=UTC), False),
        (datetime(9999, 12, 31, tzinfo=UTC), False),
        (datetime(2100, 1, 1, tzinfo=UTC), False),
    ],
)
def test_dates_outside_a_sane_range_are_dropped(when: datetime, kept: bool) -> None:
    assert (checked(paper(published=when))[0].published == when) == kept


def test_a_naive_date_is_taken_as_utc() -> None:
    result, problems = checked(paper(published=datetime(2024, 11, 28)))
    assert result.published == datetime(2024, 11, 28, tzinfo=UTC)
    assert problems == ()


def test_ids_that_are_not_ids_are_dropped_and_the_identity_recomputed() -> None:
    result, problems = checked(paper(arxiv_id="not-an-id", doi="10.1000/" + "x" * 400))
    assert (result.arxiv_id, result.doi) == (None, None)
    assert result.id == f"title:{title_key(TITLE)}"
    assert len(problems) == 2


def test_a_paper_with_nothing_to_know_it_by_is_an_entry_error() -> None:
    with pytest.raises(EntryError, match="no title"):
        checked(paper(title="\x00\x01 "))
    with pytest.raises(EntryError, match="needs an arXiv id, a DOI or a title"):
        checked(paper(title="!!! ???", arxiv_id=None))


def test_an_odd_announce_type_is_dropped() -> None:
    assert checked(paper(announce_type="new<script>"))[0].announce_type is None


def test_problem_lines_quote_values_short_and_escaped() -> None:
    [problem] = problems_of(paper(url="javascript:" + "\n" * 5 + "x" * 500))
    assert len(problem) < 120
    assert "\n" not in problem


# --- properties -----------------------------------------------------------------------------

texts = st.text(alphabet=st.characters(exclude_categories=()), max_size=300)  # surrogates too


@given(
    title=texts,
    abstract=texts,
    authors=st.lists(texts, max_size=8),
    votes=st.one_of(st.none(), st.integers()),
    url=texts,
)
def test_the_gate_is_idempotent_and_its_papers_are_storable(
    title: str, abstract: str, authors: list[str], votes: int | None, url: str
) -> None:
    try:
        result, _ = checked(
            paper(title=title, abstract=abstract, authors=tuple(authors), votes=votes, url=url)
        )
    except EntryError:
        return
    assert checked(result) == (result, ())
    assert result.title == clean_text(result.title)
    for text in (result.title, result.abstract, result.url, *result.authors):
        text.encode("utf-8")
    assert result.votes is None or 0 <= result.votes <= MAX_COUNT
