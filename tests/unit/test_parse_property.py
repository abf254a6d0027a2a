"""Whatever a source sends, `parse` gives valid papers or a `ParseError`, nothing else.

Hypothesis mutates the captures in tests/fixtures at random: JSON answers get keys
deleted and values replaced by arbitrary JSON (huge numbers, `"²"`, nulls, nested lists,
control characters, lone surrogates); feeds and pages get elements' text replaced or the
elements removed. Every paper that comes out must already be what the gate
(`bot.ingest.sources.checks.checked`) lets through, unchanged and unremarked, and storable by
checks written here (bounded counts, no control characters, http(s) URLs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import ParseError
from bot.ingest.sources import get_kind
from bot.ingest.sources.checks import MAX_COUNT, MAX_TITLE, checked
from bot.models import Listing, Paper

FIXTURES = Path(__file__).parents[1] / "fixtures"
URL = "https://source.test/feed/biorxiv/2018-10-29/2018-10-31/0/json?pageNum=0&pageSize=2"

# --- arbitrary JSON ---------------------------------------------------------------------------

#: values that broke parsers before: absurd numbers, digits int() refuses, wrong types
hostile = st.sampled_from(
    [2**63, 10**25, -1, 1e400, "²", "³", "1e400", "-1", "9" * 30, "NaN", True, None, [], {},
     [None], "", " ", "&amp;lt;", "javascript:x", "\x00", "\ud800", "x" * 30_000]
)  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=40),  # surrogates too
)
json_values = st.one_of(
    hostile,
    scalars,
    st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=6,
    ),
)


#: the fields of one item that the three JSON kinds read (not the envelope around them)
_READ_KEYS = {
    "id", "title", "summary", "authors", "name", "publishedAt", "upvotes", "githubStars",
    "githubRepo", "projectPage", "ai_keywords", "organization", "fullname",
    "universal_paper_id", "abstract", "metrics", "public_total_votes", "total_votes",
    "github_stars", "github_url", "topics", "full_authors", "full_name", "author_info",
    "organization_info", "first_publication_date", "publication_date", "doi", "version",
    "server", "category", "date", "published",
}  # fmt: skip


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document: the key or index path to each value."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


def _mutate(document: Any, path: tuple[Any, ...], replacement: Any, delete: bool) -> None:
    """Replace (or delete) the value at `path` in place."""
    holder = document
    for step in path[:-1]:
        holder = holder[step]
    if delete and isinstance(holder, dict):
        del holder[path[-1]]
    else:
        holder[path[-1]] = replacement


@st.composite
def mutated_json(draw: st.DrawFn, name: str) -> bytes:
    """A JSON capture with one to eight values replaced or deleted at random."""
    document = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        paths = _paths(document)
        if not paths:
            break
        # mostly a field a parser reads (each field as likely as the next): a path drawn
        # from all of them would mostly be avatars and ids
        keys = sorted({str(path[-1]) for path in paths} & _READ_KEYS)
        if keys and draw(st.integers(0, 3)) > 0:
            key = draw(st.sampled_from(keys))
            paths = [path for path in paths if path[-1] == key]
        path = draw(st.sampled_from(paths))
        _mutate(document, path, draw(json_values), draw(st.booleans()))
    # JSON as a server could send it, lone surrogates escaped as \udXXX
    return json.dumps(document).encode()


# --- arbitrary markup ---------------------------------------------------------------------------

_ELEMENT = re.compile(rb"<([a-zA-Z:]+)(?:\s[^<>]*)?>([^<]*)</\1>")
markup_text = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60),
    st.sampled_from(["&#1;", "&lt;", "javascript:alert(1)", "x" * 5000, "²", "9" * 30]),
)


@st.composite
def mutated_markup(draw: st.DrawFn, name: str, keep: int) -> bytes:
    """A feed or page (its first `keep` items) with elements' text replaced or removed."""
    body = _first_items(FIXTURES / name, keep)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        spans = [m.span() for m in _ELEMENT.finditer(body)]
        start, end = draw(st.sampled_from(spans))
        if draw(st.booleans()):
            body = body[:start] + body[end:]
        else:
            element = _ELEMENT.match(body, start)
            assert element is not None
            text = draw(markup_text)
            text = text if text.startswith("&#") else escape(text)
            open_tag = body[start : element.start(2)]
            body = (
                body[:start]
                + open_tag
                + text.encode()
                + f"</{element.group(1).decode()}>".encode()
                + body[end:]
            )
    return body


def _first_items(path: Path, keep: int) -> bytes:
    """A capture cut to its first `keep` items (entries, items or cards), still well formed."""
    body = path.read_bytes()
    for tag in (rb"entry", rb"item", rb"article"):
        blocks = list(re.finditer(rb"<%s[ >].*?</%s>" % (tag, tag), body, re.S))
        if blocks:
            return body[: blocks[keep - 1].end()] + body[blocks[-1].end() :]
    raise AssertionError(f"no items in {path}")


# --- the property ---------------------------------------------------------------------------


def _options(kind: str) -> dict[str, Any]:
    """The options a source of this kind would have in a config."""
    if kind == "html":
        return {
            "url": URL,
            "item": "article.publication-card",
            "title": ".publication-card__title",
            "authors": ".publication-card__authors a",
            "abstract": ".publication-card__abstract",
            "date": "time",
        }
    return {"url": URL, "categories": ["cs"]} if kind == "arxiv-rss" else {"url": URL}


def parse(kind: str, body: bytes) -> Listing:
    """The kind's real parser on a body."""
    source = get_kind(kind)
    return source.parse(body, URL, source.options_model.model_validate(_options(kind)))


def assert_valid_or_parse_error(kind: str, body: bytes) -> None:
    """The property: a Listing of papers the gate passes unchanged, or a ParseError."""
    try:
        listing = parse(kind, body)
    except ParseError:
        return
    for paper in listing.papers:
        assert checked(paper) == (paper, ()), paper.id
        assert_storable(paper)
    assert all("\n" not in problem and len(problem) <= 500 for problem in listing.problems)


def assert_storable(paper: Paper) -> None:
    """What the store and the digests need, checked here without the gate's own code."""
    for number in (paper.votes, paper.stars):
        assert number is None or 0 <= number <= MAX_COUNT
    texts = (paper.title, paper.abstract, paper.url, *paper.authors, *paper.keywords)
    for text in texts:
        text.encode("utf-8")  # no lone surrogates
        assert not any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in text)
    assert 0 < len(paper.title) <= MAX_TITLE
    for url in (paper.url, *(link.url for link in paper.links)):
        assert url == "" or url.startswith(("http://", "https://"))


BODIES: dict[str, Callable[[], st.SearchStrategy[bytes]]] = {
    "huggingface": lambda: mutated_json(
        "huggingface/api_daily_papers_2024-10-25_first4_trimmed.json"
    ),
    "alphaxiv": lambda: mutated_json("alphaxiv/feed_hot_7days_page0_handwritten.json"),
    "biorxiv": lambda: mutated_json(
        "biorxiv/details_2018-10-29_2018-10-31_cursor0_handwritten.json"
    ),
    "arxiv-api": lambda: mutated_markup("arxiv/api_query_2025-11_newformat.xml", 3),
    "arxiv-rss": lambda: mutated_markup("arxiv/rss_all-archives_2024-11-28_trimmed.xml", 3),
    "rss": lambda: mutated_markup("arxiv/rss_atom_cs.AI_2025-08-20_trimmed.xml", 3),
    "html": lambda: mutated_markup("html/mila_publications_page0_handwritten.html", 3),
}


# a mutated feed without dates makes feedparser warn about its own fallback
@pytest.mark.filterwarnings("ignore:To avoid breaking existing software:DeprecationWarning")
@pytest.mark.parametrize("kind", list(BODIES))
def test_mutated_captures_give_valid_papers_or_a_parse_error(kind: str) -> None:
    # JSON is read in a millisecond, feeds and pages take longer
    examples = 200 if kind in ("huggingface", "alphaxiv", "biorxiv") else 60

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=BODIES[kind]())
    def check(body: bytes) -> None:
        assert_valid_or_parse_error(kind, body)

    check()


@pytest.mark.parametrize("kind", list(BODIES))
def test_the_captures_themselves_read(kind: str) -> None:
    """The unmutated starting points are read (so the property is not vacuous)."""
    names = {
        "huggingface": "huggingface/api_daily_papers_2024-10-25_first4_trimmed.json",
        "alphaxiv": "alphaxiv/feed_hot_7days_page0_handwritten.json",
        "biorxiv": "biorxiv/details_2018-10-29_2018-10-31_cursor0_handwritten.json",
    }
    markup = {
        "arxiv-api": "arxiv/api_query_2025-11_newformat.xml",
        "arxiv-rss": "arxiv/rss_all-archives_2024-11-28_trimmed.xml",
        "rss": "arxiv/rss_atom_cs.AI_2025-08-20_trimmed.xml",
        "html": "html/mila_publications_page0_handwritten.html",
    }
    body = (
        (FIXTURES / names[kind]).read_bytes()
        if kind in names
        else _first_items(FIXTURES / markup[kind], 3)
    )
    listing = parse(kind, body)
    assert listing.papers
    assert listing.problems == ()
