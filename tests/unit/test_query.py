"""The alert language: what each query means (its tree) and every error with its column."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.alerts.query import (
    MAX_NESTING,
    And,
    AtLeast,
    Atom,
    Author,
    Label,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    PhraseField,
    QueryError,
    atoms,
    evaluate,
    parse_follow,
    parse_query,
)
from bot.cli import main
from bot.text.fold import AuthorKey
from tests.cli import run_paperbot


def phrase(text: str, field: PhraseField = "text") -> Phrase:
    """A phrase atom from space-separated folded words."""
    return Phrase(tuple(text.split()), field)


A, B, C = phrase("a"), phrase("b"), phrase("c")

# ------------------------------------------------------------------------ trees


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        # words side by side are one phrase: a plain keyword keeps its meaning
        ("neural collapse", phrase("neural collapse")),
        ('"neural collapse"', phrase("neural collapse")),
        ("Neural-Collapse", phrase("neural collapse")),
        ("“neural collapse”", phrase("neural collapse")),  # typographic quotes
        # operators are capitals; lowercase and/or/not are words of a phrase
        ("vision and language", phrase("vision and language")),
        ("to be or not", phrase("to be or not")),
        ("a AND b", And((A, B))),
        ("a OR b", Or((A, B))),
        ("a AND NOT b", And((A, Not(B)))),
        ("a NOT b", And((A, Not(B)))),
        ("a -b", And((A, Not(B)))),
        ('"neural collapse" -grokking', And((phrase("neural collapse"), Not(phrase("grokking"))))),
        # AND binds tighter than OR; a group changes that
        ("a OR b AND c", Or((A, And((B, C))))),
        ("(a OR b) AND c", And((Or((A, B)), C))),
        ("a (b OR c)", And((A, Or((B, C))))),
        ('"a" "b"', And((A, B))),  # two quoted phrases side by side: both
        ("a OR b OR c", Or((A, B, C))),  # flattened
        ("a AND (b AND c)", And((A, B, C))),
        ("a -(b OR c)", And((A, Not(Or((B, C)))))),
        ("a OR b c", Or((A, phrase("b c")))),
        # prefixes
        ("transform*", phrase("transform*")),
        ("neural* colla*", phrase("neural* colla*")),
        ('"deep transform* model"', phrase("deep transform* model")),
        # field scopes
        ("title:grokking", phrase("grokking", "title")),
        ("TITLE:grokking", phrase("grokking", "title")),
        ("title:neural collapse", phrase("neural collapse", "title")),
        ('abstract:"in-context learning"', phrase("in context learning", "abstract")),
        ("title:(a OR b)", Or((phrase("a", "title"), phrase("b", "title")))),
        ("author:Lajoie", Author(AuthorKey("lajoie"))),
        ('author:"G. Lajoie"', Author(AuthorKey("lajoie", ("g",)))),
        ("author:G. Lajoie", Author(AuthorKey("lajoie", ("g",)))),
        ('author:"Lajoie, Guillaume"', Author(AuthorKey("lajoie", ("guillaume",)))),
        ("category:cs.LG", Label("category", "cs.lg")),
        ("category:cs.*", Label("category", "cs.", prefix=True)),
        ("category:math*", Label("category", "math", prefix=True)),
        (
            "category:(cs.LG OR stat.ML)",
            Or((Label("category", "cs.lg"), Label("category", "stat.ml"))),
        ),
        ("source:hf-daily", Label("source", "hf-daily")),
        ("source:arxiv*", Label("source", "arxiv", prefix=True)),
        # votes and stars
        ("votes>=10", AtLeast("votes", 10)),
        ("votes>9", AtLeast("votes", 10)),
        ("votes => 3", AtLeast("votes", 3)),
        ("votes>=0", AtLeast("votes", 0)),
        ("grokking votes>=5", And((phrase("grokking"), AtLeast("votes", 5)))),
        ("stars>=100", AtLeast("stars", 100)),
        ("Stars > 99 diffusion", And((AtLeast("stars", 100), phrase("diffusion")))),
        # organisations and AI keywords (Hugging Face): a phrase inside one of them
        ("org:deepmind", phrase("deepmind", "org")),
        ('org:"Google DeepMind"', phrase("google deepmind", "org")),
        ("ORG:(meta OR nvidia)", Or((phrase("meta", "org"), phrase("nvidia", "org")))),
        ("tag:diffusion models", phrase("diffusion models", "tag")),
        ("tag:llm* -org:meta", And((phrase("llm*", "tag"), Not(phrase("meta", "org"))))),
        # NEAR/n: two phrases of one field; plain words around it are phrases as usual
        (
            '"state space" NEAR/5 attention',
            Near(phrase("state space"), phrase("attention"), 5),
        ),
        ("state space NEAR/5 attention", Near(phrase("state space"), phrase("attention"), 5)),
        ("a NEAR/0 b", Near(A, B, 0)),
        ("title:(a NEAR/2 bb*)", Near(phrase("a", "title"), phrase("bb*", "title"), 2)),
        ("a NEAR/3 b OR c", Or((Near(A, B, 3), C))),
        ("a NEAR/3 (b) c", And((Near(A, B, 3), C))),
        ("a NEAR/3 b c", Near(A, phrase("b c"), 3)),  # words after it: one phrase
        ('c -a NEAR/3 "b"', And((C, Not(Near(A, B, 3))))),
        ("near field", phrase("near field")),  # lowercase: a word
        # words that only look like syntax
        ("12:30 meeting", phrase("12 30 meeting")),
        ("state-of-the-art", phrase("state of the art")),
    ],
)
def test_query_parses_to_its_tree(text: str, tree: Node) -> None:
    query = parse_query(text)
    assert query.root == tree
    assert query.text == text


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("", "empty query", 1),
        ("   ", "empty query", 1),
        ("(neural collapse", "unbalanced parenthesis", 1),
        ("grokking OR b)", "unbalanced parenthesis", 14),
        ("a AND (b OR c", "unbalanced parenthesis", 7),
        ("a AND b) OR c", "unbalanced parenthesis", 8),
        ("()", "empty parentheses", 1),
        ("a OR (  )", "empty parentheses", 6),
        ('"neural collapse', "unterminated quote", 1),
        ('grokking "neural', "unterminated quote", 10),
        ("“neural collapse", "unterminated quote", 1),
        ("neural collapse”", "closing quote without an opening one", 16),
        ("OR grokking", "expected a term before 'OR'", 1),
        ("a AND OR b", "expected a term before 'OR'", 7),
        ("AND a", "expected a term before 'AND'", 1),
        ("grokking OR", "expected a term after 'OR'", 10),
        ("grokking AND", "expected a term after 'AND'", 10),
        ("grokking NOT", "expected a term after 'NOT'", 10),
        ("(a OR)", "expected a term after 'OR'", 4),
        ("NOT", "expected a term after 'NOT'", 1),
        ("grokking - survey", "'-' must be written right before the term it excludes", 10),
        ("grokking -", "'-' must be written right before the term it excludes", 10),
        (
            "foo:bar",
            "unknown field 'foo:' (known: abstract, author, category, org, source, tag, title)",
            1,
        ),
        (
            "grokking AND titel:x",
            "unknown field 'titel:' (known: abstract, author, category, org, source, tag, title)",
            14,
        ),
        ("title:", "expected a term after 'title:'", 1),
        ("a AND category:", "expected a term after 'category:'", 7),
        ("title:abstract:x", "expected a term after 'title:'", 1),
        ("title:(abstract:x)", "'abstract:' inside 'title:'", 8),
        ("title:(votes>=3)", "votes cannot be scoped to 'title:'", 8),
        ("votes<3", "votes supports only '>=' and '>', not '<'", 1),
        ("a AND votes<=3", "votes supports only '>=' and '>', not '<='", 7),
        ("votes=3 a", "votes supports only '>=' and '>', not '='", 1),
        ("votes>=many", "votes must be compared with a whole number, e.g. votes>=10", 1),
        # a superscript digit is a digit to str.isdigit, not to int()
        ("votes>=²", "votes must be compared with a whole number, e.g. votes>=10", 1),
        ("a OR votes>=", "votes must be compared with a whole number, e.g. votes>=10", 6),
        ("votes>=1000000001", "votes must be compared with a number up to 1,000,000,000", 1),
        # hostile: a number int() refuses to convert (over 4,300 digits)
        ("votes>=" + "9" * 5000, "votes must be compared with a number up to 1,000,000,000", 1),
        ("a stars<5", "stars supports only '>=' and '>', not '<'", 3),
        ("stars>=lots", "stars must be compared with a whole number, e.g. stars>=10", 1),
        ("title:(stars>=3)", "stars cannot be scoped to 'title:'", 8),
        ("org:", "expected a term after 'org:'", 1),
        ("tag:(org:x)", "'org:' inside 'tag:'", 6),
        ("org:...", "a phrase needs letters or digits", 5),
        # NEAR needs its distance: `a NEAR b` is never the phrase "a near b"
        ("a NEAR b", "NEAR needs a distance of 0 to 1000 words, e.g. NEAR/5", 3),
        ("a NEAR/ b", "NEAR needs a distance of 0 to 1000 words, e.g. NEAR/5", 3),
        ("a NEAR/x b", "NEAR needs a distance of 0 to 1000 words, e.g. NEAR/5", 3),
        ("a NEAR/1001 b", "NEAR needs a distance of 0 to 1000 words, e.g. NEAR/5", 3),
        ("a NEAR/²", "NEAR needs a distance of 0 to 1000 words, e.g. NEAR/5", 3),
        ("NEAR/3 b", "expected a term before 'NEAR/3'", 1),
        ("a AND NEAR/3 b", "expected a term before 'NEAR/3'", 7),
        ("a NEAR/3", "expected a phrase after 'NEAR/3'", 3),
        ("a NEAR/3 -b", "expected a phrase after 'NEAR/3'", 3),
        ("a NEAR/3 OR b", "expected a phrase after 'NEAR/3'", 3),
        ("a NEAR/3 b NEAR/3 c", "expected a term before 'NEAR/3'", 12),
        ("(a OR b) NEAR/3 c", "'NEAR/3' needs a phrase on each side", 10),
        ("a NEAR/3 author:Lajoie", "'NEAR/3' needs a phrase on each side", 3),
        ("a NEAR/3 votes>=2", "expected a phrase after 'NEAR/3'", 3),
        (
            "title:a NEAR/3 b",
            "'NEAR/3' needs both phrases in one field, e.g. title:(a NEAR/3 b)",
            9,
        ),
        ("x*", "prefix 'x*' needs at least 2 letters", 1),
        ("grokking OR a*", "prefix 'a*' needs at least 2 letters", 13),
        ("tr*ns", "'*' is only allowed at the end of a word", 1),
        ("author:Lajoie*", "an author needs a name (no '*')", 8),
        ('author:"..."', "an author needs a name (no '*')", 8),
        ("category:*", "'category:' needs a name", 10),
        ("a OR source:*", "'source:' needs a name", 13),
        ('"..."', "a phrase needs letters or digits", 1),
        ("grokking OR ...", "a phrase needs letters or digits", 13),
        ("-survey", "the query matches papers without any of its terms: add one not negated", 1),
        ("NOT survey", "the query matches papers without any of its terms: add one not negated", 1),
        (
            "grokking OR -survey",
            "the query matches papers without any of its terms: add one not negated",
            1,
        ),
        (
            "NOT (a AND NOT b)",
            "the query matches papers without any of its terms: add one not negated",
            1,
        ),
    ],
)
def test_invalid_query_says_what_and_where(text: str, message: str, column: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(text)

    assert (caught.value.message, caught.value.column) == (message, column)
    assert str(caught.value) == f"{message} at column {column}"


@pytest.mark.parametrize("name", ["", "  ", "...", "(Mila)"])
def test_a_follow_without_a_name_is_an_error(name: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_follow(name)
    assert (caught.value.message, caught.value.column) == ("an author needs a name", 1)


def test_a_follow_parses_to_its_author_key() -> None:
    assert parse_follow("Lajoie, G.") == AuthorKey("lajoie", ("g",))


# ------------------------------------------------------------------------ grammar properties

# Texts in the commonest shapes (a run of words, a quoted phrase, `x AND (y OR z)`, `x -y`,
# `field:x`, `x NEAR/n y`), plus random token soup.
_WORD = st.sampled_from(
    [
        *("neural", "Collapse", "ab*", "ab**", "x", "a*", "_", "½", "Rémy", "ORx", "ANDROID"),
        *("AND", "OR", "NOT", "votes", "in-context", "don't", "cs.LG", "math*", "x²", "ǅ", "2d"),
        *("NEAR", "NEAR/2", "near", "NEARBY", "stars>=3", "-x", "foo:bar"),
    ]
)
_RUN = st.lists(_WORD, min_size=1, max_size=3).map(" ".join)
_QUOTED = _RUN.map(lambda run: f'"{run}"')
_TERM = st.one_of(_RUN, _QUOTED)
_SCOPE = st.sampled_from(["title:", "abstract:", "author:", "category:", "source:", "org:", "tag:"])
_SPACE = st.sampled_from([" ", "  ", "\t"])
_SHAPED = st.one_of(
    _TERM,
    st.tuples(_TERM, _RUN, _RUN, _SPACE).map(lambda t: f"{t[0]} AND{t[3]}({t[1]} OR {t[2]})"),
    st.tuples(_RUN, _RUN, _SPACE).map(lambda t: f"{t[0]}{t[2]}-{t[1]}"),
    st.tuples(_TERM, _TERM).map(lambda t: f"{t[0]} NEAR/3 {t[1]}"),
    st.tuples(_SCOPE, _TERM, st.sampled_from(["", " "])).map(lambda t: f"{t[0]}{t[2]}{t[1]}"),
    st.lists(
        st.one_of(_WORD, st.sampled_from(["(", ")", "-", '"', "title:", " "])), max_size=6
    ).map(" ".join),
)


@settings(max_examples=300)
@given(_SHAPED)
def test_a_whole_query_in_parentheses_means_the_same(text: str) -> None:
    try:
        root = parse_query(text).root
    except QueryError:
        return
    assert parse_query(f"({text})").root == root


@settings(max_examples=300)
@given(_SHAPED)
def test_any_text_parses_or_fails_with_a_column_inside_it(text: str) -> None:
    """Whatever is typed, the parser answers a tree or a QueryError, never another error."""
    column = 1
    try:
        parse_query(text)
    except QueryError as exc:
        column = exc.column
    assert 1 <= column <= len(text) + 1


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("neural collapse", ("neural", "collapse")),
        ("  Neural-Collapse ", ("neural", "collapse")),
        ('"in-context learning"', ("in", "context", "learning")),
        ("vision and language", ("vision", "and", "language")),
        ("Rémy's naïve", ("remy", "s", "naive")),
        ("neural\tcollapse  dynamics", ("neural", "collapse", "dynamics")),
    ],
)
def test_a_plain_keyword_is_one_phrase_of_its_folded_words(
    text: str, folded: tuple[str, ...]
) -> None:
    assert parse_query(text).root == Phrase(folded)


# ------------------------------------------------------------------------ evaluation


def test_atoms_lists_every_atom_with_its_polarity() -> None:
    root = parse_query("a -(b OR NOT c) author:Lajoie").root

    assert list(atoms(root)) == [
        (A, True),
        (B, False),
        (C, True),
        (Author(AuthorKey("lajoie")), True),
    ]


def test_atoms_pickled_in_another_process_are_found_in_this_ones_dicts() -> None:
    # Phrases and authors keep their hash, and strings hash differently in each process.
    text = "neural collapse OR author:Lajoie OR category:cs.LG"
    code = "import pickle, sys; from bot.alerts.query import parse_tree; " + (
        f"sys.stdout.buffer.write(pickle.dumps(parse_tree({text!r})))"
    )
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    env = {**os.environ, "PYTHONHASHSEED": seed}
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=env, timeout=60, check=True
    )
    here = dict(atoms(parse_query(text).root))

    unpickled = [atom for atom, _ in atoms(pickle.loads(child.stdout))]

    assert len(unpickled) == 3
    assert all(atom in here for atom in unpickled)


@pytest.mark.parametrize(
    ("holds", "expected"),
    [
        (set(), False),
        ({A}, True),
        ({A, B}, False),
        ({C}, True),
        ({B, C}, True),
    ],
)
def test_evaluate_gives_the_query_truth_for_the_atoms_that_hold(
    holds: set[Atom], expected: bool
) -> None:
    root = parse_query("(a -b) OR c").root
    assert evaluate(root, holds) is expected


# ------------------------------------------------------------------------ in the config file


def config_file(tmp_path: Path, subscribers: list[dict[str, Any]]) -> Path:
    """A config file whose database and outbox live in tmp_path."""
    path = tmp_path / "paperbot.yaml"
    settings = {
        "database": str(tmp_path / "paperbot.db"),
        "outbox": str(tmp_path / "outbox"),
        "subscribers": subscribers,
    }
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def test_an_invalid_keyword_is_a_one_line_config_error_from_check_config(tmp_path: Path) -> None:
    config = config_file(
        tmp_path,
        [
            {"email": "ada@example.org", "keywords": ["grokking"]},
            {"email": "bob@example.org", "keywords": ["neural collapse", "grokking OR b)"]},
        ],
    )

    result = run_paperbot(config, "check-config")

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "paperbot: config error: subscribers[1].keywords[1]: unbalanced parenthesis at column 14"
    ]
    assert not (tmp_path / "paperbot.db").exists(), "a bad config touches nothing"


def test_an_invalid_exclude_entry_is_a_config_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(
        tmp_path, [{"email": "ada@example.org", "keywords": ["grokking"], "exclude": ["-survey"]}]
    )

    assert main(["--config", str(config), "check-config"]) == 2

    assert capsys.readouterr().err.splitlines() == [
        "paperbot: config error: subscribers[0].exclude[0]: the query matches papers without"
        " any of its terms: add one not negated at column 1"
    ]


# A follow without a name is caught by check-config too, not at match time (where it
# would stop the whole run).
def test_a_follow_without_a_name_is_a_config_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(
        tmp_path, [{"email": "ada@example.org", "keywords": ["grokking"], "authors": ["(Mila)"]}]
    )

    assert main(["--config", str(config), "check-config"]) == 2

    assert capsys.readouterr().err.splitlines() == [
        "paperbot: config error: subscribers[0].authors[0]: an author needs a name at column 1"
    ]


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("(" * 300 + "grokking" + ")" * 300, 33),  # the group that goes one level too deep
        ("NOT " * 2000 + "grokking", 129),
        ("a AND (b OR " * 40 + "c" + ")" * 40, 391),
    ],
    ids=["parentheses", "nots", "groups-in-and"],
)
def test_a_query_nested_too_deeply_is_a_query_error_never_a_crash(text: str, column: int) -> None:
    # hand-made hostile alerts (a config file or a web form): Python's recursion limit
    # was an internal error in `check-config` and a 500 on the sign-up page
    with pytest.raises(QueryError) as refused:
        parse_query(text)
    assert refused.value.message == f"nested more than {MAX_NESTING} levels deep"
    assert refused.value.column == column


def test_nesting_up_to_the_limit_parses() -> None:
    text = "(" * MAX_NESTING + "grokking" + ")" * MAX_NESTING
    assert parse_query(text).root == parse_query("grokking").root
