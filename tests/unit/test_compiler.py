"""The build-time compiler: its shortcuts compile every alert as the general path does."""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.compiler import Compiler, Flat, walk
from bot.match import AlertIndex
from bot.models import Subscriber
from bot.query import QueryError, parse_query

# Few words, so that phrases repeat within and across alerts (shared atoms, a phrase
# written twice in one query, one shape with phrases of several lengths).
_WORD = st.sampled_from(["neural", "Collapse", "x", "NEURAL", "2d", "Rémy", "_", "½", "ab*"])
_RUN = st.lists(_WORD, min_size=1, max_size=3).map(" ".join)
_SPACE = st.sampled_from([" ", "  ", "\t"])
_QUERY = st.one_of(
    st.tuples(_RUN, _RUN, _RUN, _SPACE).map(lambda t: f"{t[0]} AND{t[3]}({t[1]} OR {t[2]})"),
    st.tuples(_RUN, _RUN, _RUN).map(lambda t: f'"{t[0]}" AND ({t[1]} OR {t[2]})'),
    st.tuples(_RUN, _RUN, _SPACE).map(lambda t: f"{t[0]}{t[2]}-{t[1]}"),
    _RUN,
    _RUN.map(lambda run: f"title:{run}"),
    _RUN.map(lambda run: f'abstract: "{run}"'),
    st.tuples(_RUN, _RUN).map(lambda t: f"({t[0]} OR {t[1]}) -x"),
)
_QUERIES = st.lists(_QUERY, max_size=8)
# the same shapes of queries, every one valid
_VALID = st.lists(
    _QUERY.filter(lambda q: "_" not in q and "½" not in q and "title:ab*" not in q), max_size=8
)


def compiled(subscribers: list[Subscriber], *, shortcuts: bool) -> Any:
    """Everything `AlertIndex` reads from a compiler, or the error; optionally no shortcut."""
    compiler = Compiler()
    try:
        if shortcuts:
            compiler.subscribers(subscribers)
        else:
            with (
                mock.patch("bot.compiler.boolean_runs", return_value=None),
                mock.patch("bot.compiler.scoped_run", return_value=None),
            ):
                compiler.subscribers(subscribers)
    except QueryError as exc:
        return str(exc)
    a = compiler.atoms
    tables = (
        a.patterns,
        compiler.positives.lists(),
        compiler.units,
        compiler.evaluates.lists(),
        compiler.evaluates_exclude.lists(),
    )
    shapes = [(t, s.number, s.width, s.alerts, s.atoms) for t, s in compiler.shapes.items()]
    return (
        *(list(table.items()) for table in tables),  # in order, too
        shapes,
        bytes(compiler.excluding),
        a.term_keys,
        a.pattern_atoms,
        compiler.kinds,
        compiler.texts,
        compiler.single,
        [flat.ids.tolist() for flat in (*compiler.orders, compiler.excludes)],
    )


@settings(max_examples=300)
@given(_QUERIES, _QUERIES, _QUERIES)
@example(['"x 2d" AND (x OR NEURAL)', "x AND (neural OR x)", "neural -Neural"], [], [])
@example(["x AND (x 2d OR neural collapse)", "x 2d AND (x OR x)"], ["x -2d"], ["x -2d"])
@example(["title:neural", "neural", "title: x 2d"], ['abstract: "x"'], [])
@example(["title:_"], [], [])
def test_boolean_alerts_of_a_common_shape_compile_as_the_general_path_compiles_them(
    first: list[str], second: list[str], excluded: list[str]
) -> None:
    subscribers = [
        Subscriber("a@example.org", keywords=tuple(first), exclude=tuple(excluded)),
        Subscriber("b@example.org", keywords=tuple(second), exclude=tuple(first)),
    ]

    assert compiled(subscribers, shortcuts=True) == compiled(subscribers, shortcuts=False)


_ENTRY = st.sampled_from(["neural collapse", "Neural-Collapse", "x", "x -y", "author:G. Lajoie"])
_ENTRIES = st.lists(_ENTRY, max_size=12)  # more than 8: the long-list path too


@given(st.lists(_ENTRIES, min_size=1, max_size=4))
def test_an_entry_written_twice_by_a_subscriber_is_one_alert_for_them(
    keywords: list[list[str]],
) -> None:
    compiler = Compiler()
    subscribers = [
        Subscriber(f"{i}@example.org", keywords=tuple(k)) for i, k in enumerate(keywords)
    ]

    compiler.subscribers(subscribers)

    for sid, written in enumerate(keywords):
        alerts = compiler.orders[1].of(sid)
        assert [compiler.texts[vid] for vid in alerts] == list(dict.fromkeys(written))


_FOLLOW = st.sampled_from(["G. Lajoie", "Guillaume Lajoie", "Lajoie, G.", "Lajoie"])
_KEYWORD = st.sampled_from(
    ["author:G. Lajoie", "author:Lajoie", "neural collapse", '"neural collapse"', "x -y", "y"]
)


@given(st.lists(st.tuples(st.lists(_FOLLOW), st.lists(_KEYWORD), st.lists(_KEYWORD))))
def test_each_atom_fires_its_one_atom_alerts_in_order_and_a_boolean_alert_itself(
    entries: list[tuple[list[str], list[str], list[str]]],
) -> None:
    compiler = Compiler()
    compiler.subscribers(
        [
            Subscriber(f"{i}@example.org", authors=tuple(a), keywords=tuple(k), exclude=tuple(e))
            for i, (a, k, e) in enumerate(entries)
        ]
    )

    units: dict[int, list[int]] = {}
    fires_exclude: dict[int, list[int]] = {}
    for vid, (kind, aid) in enumerate(zip(compiler.kinds, compiler.single, strict=True)):
        if kind == "exclude":
            if aid >= 0:
                fires_exclude.setdefault(aid, []).append(vid)
        else:
            units.setdefault(aid if aid >= 0 else -1 - vid, []).append(vid)
    assert list(compiler.units.items()) == list(units.items())
    index = AlertIndex(compiler)
    for unit, alerts in units.items():
        row = index._rows(np.array([unit]))
        assert index._unit_alerts.expand(row).tolist() == alerts
        assert index._unit_of[alerts].tolist() == [unit] * len(alerts)
        assert index._slot_of[alerts].tolist() == list(range(len(alerts)))
    for aid in range(compiler.atoms.count):
        fired = index._fires_exclude_atoms.expand(np.array([aid])).tolist()
        assert fired == fires_exclude.get(aid, [])


@settings(max_examples=200)
@given(_VALID, _VALID)
@example(['"x 2d" AND (x OR NEURAL)', "x AND (neural OR x)"], ["neural -Neural", "x -x"])
def test_the_index_holds_each_boolean_alerts_program_triggers_and_positive_atoms(
    keywords: list[str], excluded: list[str]
) -> None:
    compiler = Compiler()
    compiler.subscribers(
        [Subscriber("a@example.org", keywords=tuple(keywords), exclude=tuple(excluded))]
    )
    index = AlertIndex(compiler)

    triggers: dict[int, list[int]] = {}
    exclude_triggers: dict[int, list[int]] = {}
    for vid, (kind, text) in enumerate(zip(compiler.kinds, compiler.texts, strict=True)):
        if compiler.single[vid] >= 0:
            assert index._shape_of[vid] == -1
            continue
        # the reference: the general walk of the parsed query (its atoms exist by now)
        program: list[int] = []
        positive: dict[int, None] = {}
        found = walk(parse_query(text).root, program, positive, False, compiler.atoms.atom)[0]
        template, atoms = index._shapes[index._shape_of[vid]]
        row = atoms[index._shape_row[vid]].tolist()
        assert [row[j] if j >= 0 else j for j in _numbered(template)] == program
        assert index._positive_atoms.expand(np.array([vid])).tolist() == list(positive)
        table = exclude_triggers if kind == "exclude" else triggers
        for aid in dict.fromkeys(found or ()):
            table.setdefault(aid, []).append(vid)
    for aid in range(compiler.atoms.count):
        key = np.array([aid])
        assert index._triggers.expand(key).tolist() == triggers.get(aid, [])
        assert index._exclude_triggers.expand(key).tolist() == exclude_triggers.get(aid, [])


def _numbered(template: tuple[int, ...]) -> list[int]:
    """A shape's steps with its atoms as their column (checks atom j is written j)."""
    columns = iter(range(len(template)))
    assert [j for j in template if j >= 0] == list(range(sum(j >= 0 for j in template)))
    return [next(columns) if j >= 0 else j for j in template]


_OWNED = st.lists(st.lists(st.integers(0, 1 << 19), max_size=5), max_size=30)


@given(_OWNED, _OWNED)
def test_each_alert_lists_its_subscribers_in_subscriber_order(
    authors: list[list[int]], keywords: list[list[int]]
) -> None:
    # as in `Compiler.orders`: an alert is in one of the lists only (here even or odd ids)
    lists = [
        [[2 * i + odd for i in ids] for ids in each] for odd, each in enumerate((authors, keywords))
    ]
    flats = [Flat([i for ids in each for i in ids], list(map(len, each))) for each in lists]
    subscribers: dict[int, list[int]] = {}
    for each in lists:
        for sid, ids in enumerate(each):
            for vid in ids:
                subscribers.setdefault(vid, []).append(sid)

    table = Flat.inverted(*flats)

    for vid, expected in subscribers.items():
        found = table.get(vid)
        assert found is not None
        assert found.tolist() == sorted(expected)
    assert table.get(-1) is None
    assert table.get(1 << 21) is None
