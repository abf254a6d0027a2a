"""Matching: every subscriber's alerts compiled once into one index that papers run through.

An *alert* is one distinct (kind, text) — `keyword: neural collapse`, `author: G. Lajoie`,
`exclude: survey` — shared by every subscriber who wrote it and parsed once
(`bot.compiler`). An *atom* is one distinct phrase, author name, category, source or votes
threshold, shared by alerts.

`AlertIndex.match` works on a chunk of papers (a day is usually one) at once, in numpy,
so that the Python work is per distinct thing found rather than per word or per pair:

1. atoms (`_Hits`): every phrase of every alert is found in all the titles and abstracts
   at once (`bot.phrases`); authors, categories, sources and votes are dictionary
   look-ups per paper. The result is one sorted row per (paper, atom) that hit;
2. alerts (`_Chunk`): a one-atom alert fires when its atom hit; a boolean one is
   evaluated only for the papers where one of its *trigger* atoms hit — atoms chosen so
   that the query cannot be true without one of them (`bot.compiler.walk`) — and all the
   candidates of one query shape are evaluated together (`_evaluate`);
3. reasons: what a fired alert quotes is the paper's own spelling of the words, in
   reading order; fires are grouped by (alert, spelling) with hashes, so each distinct
   quote and its `Reason` is made once. A `Match` is immutable, so one per (paper,
   alert) serves every subscriber of the alert;
4. spreading (`_Chunk.spread`): each fired alert's postings (its subscribers, back to back
   in one array, `Table`) expand into (subscriber, paper) pairs, sorted once; the few
   pairs that a `categories` restriction or an `exclude` entry rules out are dropped, and
   a subscriber whom two alerts reached for one paper gets one merged Match instead.

So the cost grows with the papers' text and the number of matches, not with subscribers x
alerts.

Scoring (`Match.score`): each distinct term that fired counts once — a phrase 2.0 when it
was found in the title, 1.0 when only in the abstract; an author, category, source or
votes term 1.0. `rank` orders a digest: followed authors first, then score, then votes.
"""

from __future__ import annotations

import ctypes
import gc
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from itertools import chain, pairwise, repeat
from operator import getitem
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.arrays import (
    U64,
    Bools,
    Ints,
    equal_runs,
    position,
    power_series,
    ramp,
    runs,
    stable_order,
)
from bot.builder import builder
from bot.compiler import AND, MASK, NOT, SHIFT, Compiler, Flat, Table, entry_error
from bot.fold import author_key, fold_label, same_author
from bot.models import Match, Paper, Reason, Subscriber
from bot.phrases import PhraseFinder
from bot.query import QueryError

TITLE_WEIGHT = 2.0
OTHER_WEIGHT = 1.0
# Where a term was found, in the order a reason lists its terms.
TITLE, ABSTRACT, AUTHORS, CATEGORIES, SOURCES = range(5)

Floats = npt.NDArray[np.float64]
Found = tuple[int, int, str]  # (section, position in it, the words as the paper writes them)
_LOW = (1 << 32) - 1  # the paper half of a (subscriber, paper) key
_SPREAD_KEY_INT = 0x9E3779B97F4A7C15  # odd: mixes a unit and a spelling into one 64-bit key
_SPREAD_KEY = np.uint64(_SPREAD_KEY_INT)
_PLACE = ("section", "position", "tie", "spelling", "source", "begin", "end")
_CHUNK = 2000  # papers matched together (bounds the memory of one pass)
_BULK = 200_000  # allocations that make a piece of work "bulk" (see _collector_paused)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk work that makes no reference cycles.

    Building the index or a day's matches allocates millions of objects; letting the
    collector walk them again and again as they are made costs more than the work itself.
    What the work leaves behind (the index, the matches) lives on without cycles, so it is
    moved out of the collector's sight (`gc.freeze`) instead of being walked once more
    the moment the collector is back (half a second for a day's matches). Small work
    (a web preview, a test) is left to the collector as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_count()[0] > _BULK:
            gc.freeze()
        if enabled:
            gc.enable()


# ------------------------------------------------------------------------ the index


class AlertIndex:
    """Every subscriber's alerts compiled into one index; `match` runs papers through it."""

    def __init__(self, c: Compiler) -> None:
        """Use `AlertIndex.build`."""
        a = c.atoms
        self._pattern_atoms = [np.array(table, dtype=np.int64) for table in a.pattern_atoms]
        self._phrases = PhraseFinder(a.patterns)
        self._author_buckets = a.author_buckets
        self._author_keys = a.author_keys
        self._first_names: dict[str, dict[str, list[int]]] = {}  # see `_by_first`
        self._labels = a.labels
        self._label_prefixes = a.label_prefixes
        self._votes = sorted(a.votes.items())
        self._vote_minimums = [m for m, _ in self._votes]
        self._kinds = c.kinds
        self._texts = c.texts
        self._single = np.array(c.single, dtype=np.int64)
        self._subscribers = Flat.inverted(*c.orders)  # alert → its subscribers
        self._subscriber_ids = np.frombuffer(self._subscribers._ids, dtype=np.int32)
        self._exclude_subscribers = Flat.inverted(c.excludes)
        self._tables(c)
        self._restricts = sorted(set(c.restrictions.values()), key=repr)
        number = {r: i for i, r in enumerate(self._restricts)}
        self._restrict_of = np.full(len(c.emails), -1, dtype=np.int64)
        for sid, restrict in c.restrictions.items():
            self._restrict_of[sid] = number[restrict]
        self._gates = bool(c.restrictions) or bool(c.excludes.counts.any())
        self._emails = c.emails
        self._orders = c.orders

    def _tables(self, c: Compiler) -> None:
        """The look-ups that a chunk of papers uses in bulk (numpy), built from the compiler's
        flat lists (not its dicts: turning those into arrays took a third of the build).

        Units by row: an atom's row is its id, a boolean alert's comes after the atoms
        (`_boolean_rows` - unit). For each alert: its unit and place in it (to find its
        Match), and its postings entry.
        """
        alerts, atoms, single = len(self._kinds), c.atoms.count, self._single
        self._boolean_rows = atoms - 1
        excluding = np.frombuffer(c.excluding, dtype=np.bool_)
        unit_of = np.where(single >= 0, single, -1 - np.arange(alerts))
        unit_of[excluding] = -1 - alerts  # exclude entries: no unit
        fired = np.flatnonzero(~excluding)  # ascending: each unit's alerts in order
        self._unit_alerts = _Csr(self._rows(unit_of[fired]), fired, atoms + alerts)
        self._is_unit = self._unit_alerts.counts[:atoms] > 0
        slot_of = np.zeros(alerts, dtype=np.int64)
        slot_of[self._unit_alerts.values] = ramp(self._unit_alerts.counts)  # place in its unit
        self._unit_of, self._slot_of = unit_of, slot_of
        self._alert_entries = _entries(self._subscribers, alerts)
        self._exclude_entries = _entries(self._exclude_subscribers, alerts)
        self._exclude_ids = np.frombuffer(self._exclude_subscribers._ids, dtype=np.int32)
        self._triggers = _Csr(c.evaluates.keys, c.evaluates.values, atoms)
        self._exclude_triggers = _Csr(c.evaluates_exclude.keys, c.evaluates_exclude.values, atoms)
        excluded = np.flatnonzero(excluding & (single >= 0))  # one-atom exclude entries
        self._fires_exclude_atoms = _Csr(single[excluded], excluded, atoms)
        self._positive_atoms = _Csr(c.positives.keys, c.positives.values, alerts)
        self._term_key_array = np.array(c.atoms.term_keys, dtype=np.int64)
        self._shapes_of(c, alerts)

    def _shapes_of(self, c: Compiler, alerts: int) -> None:
        """The boolean programs by shape (the program with atom j written j), as the compiler
        grouped them, so that a chunk evaluates every candidate of a shape at once
        (`_evaluate`): each shape's template and its alerts' atoms, a row per alert."""
        self._shape_of = np.full(alerts, -1, dtype=np.int64)
        self._shape_row = np.zeros(alerts, dtype=np.int64)
        self._shapes: list[tuple[tuple[int, ...], Ints]] = []
        for template, shapes in c.shapes.items():
            members = np.array(shapes.alerts, dtype=np.int64)
            matrix = np.array(shapes.atoms, dtype=np.int64).reshape(len(members), shapes.width)
            self._shape_of[members] = shapes.number
            self._shape_row[members] = np.arange(len(members))
            self._shapes.append((template, matrix))

    @classmethod
    def build(cls, subscribers: Sequence[Subscriber]) -> AlertIndex:
        """Compile every subscriber's keywords, authors, categories and exclude entries.

        Raises `QueryError` naming the subscriber and entry when an alert does not parse,
        and `ValueError` when two subscribers share an email.
        """
        if len({s.email for s in subscribers}) != len(subscribers):
            raise ValueError("two subscribers share an email address")
        with _collector_paused():
            compiler = Compiler()
            try:
                compiler.subscribers(subscribers)
            except QueryError as exc:
                raise entry_error(subscribers, exc) from exc
            index = cls(compiler)
            del compiler  # freed here, before the collector runs again
        return index

    def match(self, papers: Sequence[Paper]) -> dict[str, list[Match]]:
        """Each subscriber's matches among `papers` (in paper order), by email; none → absent."""
        with _collector_paused():
            run = _Run(self)
            firsts: dict[str, Paper] = {}
            for paper in papers:
                firsts.setdefault(paper.id, paper)  # a paper given twice: the first one
            unique = list(firsts.values())
            for start in range(0, len(unique), _CHUNK):
                chunk = _Chunk(run, unique[start : start + _CHUNK])
                chunk.spread()
                del chunk
            return run.found

    def _author_atoms(self, name: str) -> tuple[int, ...]:
        """The followed-name atoms that designate this paper author."""
        key = author_key(name)
        if key is None:
            return ()
        buckets = self._author_buckets
        candidates = list(buckets.get(f"{key.surname} ") or ())  # surname-only follows
        if key.given:
            first = key.given[0]
            bucket = f"{key.surname} {first[0]}"
            if len(first) == 1:  # an initial: every follow whose first name it begins
                candidates += buckets.get(bucket) or ()
            else:  # a first name: the follows that write it, or its initial
                by_first = self._by_first(bucket)
                candidates += by_first.get(first, ())
                candidates += by_first.get(first[0], ())
        keys = self._author_keys
        return tuple(aid for aid in candidates if same_author(keys[aid], key))

    def _by_first(self, bucket: str) -> dict[str, list[int]]:
        """The follows of a "surname initial" bucket by their first given name (made once:
        common surnames have dozens of follows, and a paper author agrees with few)."""
        got = self._first_names.get(bucket)
        if got is None:
            got = self._first_names[bucket] = {}
            for aid in self._author_buckets.get(bucket) or ():
                got.setdefault(self._author_keys[aid].given[0], []).append(aid)
        return got

    def _rows(self, units: Ints) -> Ints:
        """The row of each unit: an atom's is its id, a boolean alert's comes after the atoms."""
        rows: Ints = np.where(units >= 0, units, self._boolean_rows - units)
        return rows

    def _alerts_of(self, subscribers: Ints) -> tuple[Ints, Ints]:
        """(k, alert) pairs: the alerts of subscribers[k], authors first, in the order
        they wrote them; k ascending."""
        owners, alerts, parts = [], [], []
        for number, flat in enumerate(self._orders):
            counts = flat.counts[subscribers].astype(np.int64)
            owners.append(np.repeat(np.arange(len(subscribers)), counts))
            alerts.append(flat.ids[runs(flat.starts[subscribers], counts)])
            parts.append(np.full(int(counts.sum()), number))
        owner, alert, which = (np.concatenate(x) for x in (owners, alerts, parts))
        order = np.lexsort((np.arange(len(owner)), which, owner))
        return owner[order], alert[order].astype(np.int64)


# ------------------------------------------------------------------------- a day


class _Run:
    """One `match` call: the subscribers' result lists and the caches its papers share."""

    def __init__(self, index: AlertIndex) -> None:
        self.index = index
        self.found: dict[str, list[Match]] = {}  # email → matches, in paper order
        self.authors: dict[str, tuple[int, ...]] = {}  # a paper author → followed-name atoms
        # (unit, spelling of the words quoted) → one reasons tuple per alert of the unit: the
        # same alerts quote the same words in many papers, and their Reasons serve them all
        self.reasons: dict[int, list[tuple[Reason]]] = {}
        self.admits: dict[tuple[str, ...], npt.NDArray[np.bool_]] = {}  # see `_Chunk.gate`

    def add(self, spread: list[Match], subscribers: npt.NDArray[np.int64]) -> None:
        """Append matches, grouped by subscriber (`subscribers` is sorted), to their lists."""
        if not spread:
            return
        bounds = [0, *(np.flatnonzero(np.diff(subscribers)) + 1).tolist(), len(spread)]
        emails = map(self.index._emails.__getitem__, subscribers[bounds[:-1]].tolist())
        lists = map(spread.__getitem__, map(slice, bounds, bounds[1:]))
        if not self.found:  # the first chunk (a day is usually one): no list to extend
            self.found = dict(zip(emails, lists, strict=True))
            return
        found = self.found
        for email, got in zip(emails, lists, strict=True):
            if (known := found.get(email)) is None:
                found[email] = got
            else:
                known += got


class _Hits:
    """What a chunk of papers satisfies: a row per (paper, atom) that hit, sorted by paper
    then atom, with the atom's weight and where the paper has it (rows lo..hi of places).

    A *place* is a phrase occurrence (section title or abstract, position its first word,
    tie-break its last word) or an author, category or source (its section, its place in
    the list); sorted by (section, position, tie-break), places are in reading order. Each
    has a `spelling`, a hash of how the paper writes it, and is made a string (`quotes`)
    only when a reason needs it.
    """

    def __init__(self, index: AlertIndex, run: _Run, papers: Sequence[Paper]) -> None:
        self.index = index
        self.papers = papers
        self.texts = [text for paper in papers for text in (paper.title, paper.abstract)]
        self.names: list[str] = []  # the authors, categories and sources that hit
        columns: list[tuple[npt.NDArray[Any], ...]] = []  # paper, atom, places, weight
        places: list[tuple[Ints, ...]] = []  # see `_PLACE`
        with ThreadPoolExecutor(max_workers=1) as pool:
            # finding phrases is numpy work that lets the GIL go: done while authors are read
            text = pool.submit(self._read_text, columns, places)
            fields = self._read_fields(run)
            text.result()
        offset = sum(len(p[0]) for p in places)  # the fields' places come after the text's
        owner, atom, lo, hi, weight, spots = fields
        columns.append((owner, atom, lo + offset, hi + offset, weight))
        places.append(spots)
        paper, atom, lo, hi, weight = (np.concatenate([c[k] for c in columns]) for k in range(5))
        order = np.argsort(paper << 32 | atom)
        self.paper, self.atom, self.lo, self.hi = paper[order], atom[order], lo[order], hi[order]
        self.weight = weight[order].astype(np.float64)
        self.keys = self.paper << 32 | self.atom
        self.section, self.position, self.tie, spelling, source, begin, end = (
            np.concatenate([p[k] for p in places]) for k in range(len(_PLACE))
        )
        self.spelling = spelling.astype(np.uint64)
        self.source, self.begin, self.end = source, begin, end

    def quotes(self, places: Ints) -> list[str]:
        """Places as the paper writes them."""
        sources = self.source[places]
        out: list[str] = [""] * len(places)
        text = np.flatnonzero(sources >= 0)
        spans = map(slice, self.begin[places[text]].tolist(), self.end[places[text]].tolist())
        written: Iterator[str] = map(
            getitem, map(self.texts.__getitem__, sources[text].tolist()), spans
        )
        for at, quote in zip(text.tolist(), written, strict=True):
            out[at] = quote
        for at in np.flatnonzero(sources < 0).tolist():
            out[at] = self.names[-1 - int(sources[at])]
        return out

    def _read_text(
        self, columns: list[tuple[npt.NDArray[Any], ...]], places: list[tuple[Ints, ...]]
    ) -> None:
        """The phrase atoms of the titles and abstracts."""
        found = self.index._phrases.find(self.texts)
        owner, kind = found.text >> 1, found.text & 1  # texts: title, abstract, title, ...
        order = np.lexsort((found.first, kind, found.pattern, owner))  # by paper, phrase,
        owner, kind, pid = owner[order], kind[order], found.pattern[order]  # reading order
        places.append(
            (
                kind,
                found.first[order],
                found.last[order],
                found.spelling[order].view(np.int64),
                found.text[order],
                found.begin[order],
                found.end[order],
            )
        )
        key = owner << 32 | pid
        heads = np.flatnonzero(np.diff(key, prepend=-1))
        tails = np.append(heads[1:], len(key))
        titles = np.add.reduceat(kind == 0, heads, dtype=np.int64) if len(heads) else heads
        mids = heads + titles  # each group's title occurrences come first
        owner, pid = owner[heads], pid[heads]
        anywhere, in_title, in_abstract = self.index._pattern_atoms
        some = anywhere[pid] >= 0
        weight = np.where(mids > heads, TITLE_WEIGHT, OTHER_WEIGHT)
        columns.append((owner[some], anywhere[pid][some], heads[some], tails[some], weight[some]))
        some = (in_title[pid] >= 0) & (mids > heads)
        title = np.full(len(heads), TITLE_WEIGHT)
        columns.append((owner[some], in_title[pid][some], heads[some], mids[some], title[some]))
        some = (in_abstract[pid] >= 0) & (tails > mids)
        other = np.full(len(heads), OTHER_WEIGHT)
        columns.append((owner[some], in_abstract[pid][some], mids[some], tails[some], other[some]))

    def _read_fields(self, run: _Run) -> tuple[Ints, Ints, Ints, Ints, Floats, tuple[Ints, ...]]:
        """Followed authors, categories, sources and votes, paper by paper: the hit columns
        (their places numbered from 0) and the places."""
        rows: list[tuple[int, int, int, int]] = []  # paper, atom, first place, end
        spots: list[tuple[int, int, int, int, int, int, int]] = []  # see `_PLACE`
        names = self.names
        for number, paper in enumerate(self.papers):
            for aid, found in self._fields(run, paper).items():
                first = len(spots)
                for section, i, name in found:
                    names.append(name)
                    spots.append((section, i, 0, hash(name), -len(names), 0, 0))
                rows.append((number, aid, first, len(spots)))
        owner, atom, lo, hi = np.array(rows, dtype=np.int64).reshape(-1, 4).T
        places = tuple(np.array(spots, dtype=np.int64).reshape(-1, len(_PLACE)).T)
        weight: Floats = np.full(len(owner), OTHER_WEIGHT)
        return owner, atom, lo, hi, weight, places

    def _fields(self, run: _Run, paper: Paper) -> dict[int, list[Found]]:
        """One paper's non-phrase atoms, each with where the paper has it."""
        index = self.index
        found: dict[int, list[Found]] = {}
        if paper.authors:
            cache = run.authors
            for i, name in enumerate(paper.authors):
                ids = cache.get(name)
                if ids is None:
                    ids = cache[name] = index._author_atoms(name)
                for aid in ids:
                    found.setdefault(aid, []).append((AUTHORS, i, name))
        if index._labels or index._label_prefixes:
            _read_labels(index, found, "category", CATEGORIES, paper.categories)
            _read_labels(index, found, "source", SOURCES, paper.sources)
        if paper.votes is not None:
            for _, aid in index._votes[: bisect_right(index._vote_minimums, paper.votes)]:
                found[aid] = []
        return found

    def find(self, papers: Ints, atoms: Ints) -> Ints:
        """The row of each (paper, atom), or -1 where that atom did not hit that paper."""
        return position(self.keys, papers << 32 | atoms)

    def triggered(self, table: _Csr) -> tuple[Ints, Ints]:
        """(paper, alert) pairs, each once, of the alerts that the atoms that hit list in a
        table by atom (boolean alerts' triggers, exclude entries...)."""
        rows = np.repeat(np.arange(len(self.atom)), table.counts[self.atom])
        alerts = table.expand(self.atom)
        keys = np.unique(self.paper[rows] << 32 | alerts)
        return keys >> 32, keys & _LOW

    def holds(self, papers: Ints, alerts: Ints) -> Bools:
        """Which boolean alerts hold for which papers (pairwise), shape by shape."""
        index = self.index
        out = np.zeros(len(alerts), dtype=bool)
        shapes = index._shape_of[alerts]
        order = np.argsort(shapes, kind="stable")
        bounds = np.flatnonzero(np.diff(shapes[order])) + 1
        for some in np.split(order, bounds) if len(order) else ():
            template, atoms = index._shapes[int(shapes[some[0]])]
            hit = self.find(papers[some, None], atoms[index._shape_row[alerts[some]]]) >= 0
            out[some] = _evaluate(template, hit)
        return out

    def combined(self, papers: Ints, alerts: Ints) -> tuple[Ints, Ints, Floats]:
        """For each (paper, boolean alert) k: the places of its positive atoms that hit, as
        (k, place) pairs in reading order, and its score (each distinct term once, at its
        best weight)."""
        positives = self.index._positive_atoms
        owners = np.repeat(np.arange(len(alerts)), positives.counts[alerts])
        rows = self.find(papers[owners], positives.expand(alerts))
        owners, rows = owners[rows >= 0], rows[rows >= 0]
        scores = _best_sum(
            owners, self.index._term_key_array[self.atom[rows]], self.weight[rows], len(alerts)
        )
        sizes = self.hi[rows] - self.lo[rows]
        places = runs(self.lo[rows], sizes)
        owners = np.repeat(owners, sizes)
        order = np.lexsort((self.tie[places], self.position[places], self.section[places], owners))
        return owners[order], places[order], scores

    def places_of(self, rows: Ints) -> tuple[Ints, Ints]:
        """For hit rows: (k, place) pairs, the places of row k in reading order."""
        sizes = self.hi[rows] - self.lo[rows]
        return np.repeat(np.arange(len(rows)), sizes), runs(self.lo[rows], sizes)


class _Chunk:
    """Papers matched together: what they hit (`_Hits`), what fired, and the resulting
    Matches spread over the subscribers."""

    def __init__(self, run: _Run, papers: Sequence[Paper]) -> None:
        self.run = run
        self.index = index = run.index
        self.papers = papers
        self.hits = hits = _Hits(index, run, papers)
        # what fired, sorted by paper: unit, paper, score, and how its words are spelled
        single = np.flatnonzero(index._is_unit[hits.atom])
        papers_b, alerts = hits.triggered(index._triggers)
        true = hits.holds(papers_b, alerts)
        papers_b, alerts = papers_b[true], alerts[true]
        owners_a, places_a = hits.places_of(single)
        owners_b, places_b, scores = hits.combined(papers_b, alerts)
        owners = np.concatenate((owners_a, owners_b + len(single)))
        spelled, self.owners, self.places = _spelled(
            owners, np.concatenate((places_a, places_b)), hits.spelling, len(single) + len(alerts)
        )
        numbers = np.concatenate((hits.paper[single], papers_b))
        order = np.argsort(numbers, kind="stable")
        self.fires = order  # each fire's number in `owners`
        self.numbers = numbers[order]
        self.units = np.concatenate((hits.atom[single], -1 - alerts))[order]
        self.scores = np.concatenate((hits.weight[single], scores))[order]
        self.spelled = spelled[order]
        self.excluded = self._excluded() if index._gates else np.zeros(0, dtype=np.int64)
        self.match_starts: list[int] = []
        self._fire_keys: Ints | None = None  # (paper, unit row) of each fire, sorted
        self._fire_order = np.zeros(0, dtype=np.int64)

    def _excluded(self) -> Ints:
        """(subscriber << 32 | paper), sorted: the pairs that an exclude entry rules out."""
        hits, index = self.hits, self.index
        fires = index._fires_exclude_atoms
        papers = np.repeat(hits.paper, fires.counts[hits.atom])
        alerts = fires.expand(hits.atom)
        papers_b, alerts_b = hits.triggered(index._exclude_triggers)
        true = hits.holds(papers_b, alerts_b)
        papers = np.concatenate((papers, papers_b[true]))
        which, subscribers = _postings(
            index._exclude_entries[np.concatenate((alerts, alerts_b[true]))],
            index._exclude_ids,
        )
        return np.unique(subscribers << 32 | papers[which])

    def spread(self) -> None:
        """Give each fired alert's Match to the alert's subscribers, for the whole chunk.

        One stable sort of (subscriber, paper) pairs in numpy instead of a Python
        `list.append` per pair: a day has millions of pairs.
        """
        if not len(self.units):
            return
        rows = self.index._rows(self.units)
        counts = self.index._unit_alerts.counts[rows]
        with ThreadPoolExecutor(max_workers=1) as pool:
            # the pairs are numpy work that lets the GIL go: made while the Matches are
            pairs = pool.submit(self._pairs, rows, counts)
            matches = self._matches(rows, counts)
            keys, which = pairs.result()
        again = np.flatnonzero(keys[1:] == keys[:-1]) + 1  # a pair the one before repeats
        if len(again):  # subscribers reached by two alerts: one merged Match instead
            firsts = np.setdiff1d(again - 1, again)
            merged = self._merged(keys[firsts] >> 32, keys[firsts] & _LOW, matches)
            which[firsts] = len(matches) + np.arange(len(merged))
            matches = [*matches, *merged]
            keep = np.ones(len(keys), dtype=bool)
            keep[again] = False
            keys, which = keys[keep], which[keep]
        objects = np.empty(len(matches), dtype=object)
        objects[:] = matches
        self.run.add(objects[which].tolist(), keys >> 32)

    def _pairs(self, rows: Ints, counts: Ints) -> tuple[Ints, Ints]:
        """Every (subscriber << 32 | paper) that the fired alerts reach, sorted, with the
        alert it came from (`which`, in the order of `_matches`); gated."""
        index = self.index
        entries = index._alert_entries[index._unit_alerts.expand(rows)]
        which, subscribers = _postings(entries, index._subscriber_ids)
        numbers = np.repeat(self.numbers, counts)[which]
        order = stable_order(subscribers)  # by subscriber, then paper (pairs are in paper order)
        keys, which = (subscribers << 32 | numbers)[order], which[order]
        if index._gates:
            keep = self.gate(keys)
            keys, which = keys[keep], which[keep]
        return keys, which

    def _matches(self, rows: Ints, counts: Ints) -> list[Match]:
        """One Match per alert that fired, in the order of the fired units and their alerts.

        Fires of one unit that quote the same words share their Reasons: fires are grouped
        by (unit, spelling of the words) in numpy, and the words are made strings once per
        group, not once per fire.
        """
        keys = self.spelled ^ (rows.astype(np.uint64) * _SPREAD_KEY)
        distinct, firsts, groups = np.unique(keys, return_index=True, return_inverse=True)
        cache, keys_seen = self.run.reasons, distinct.tolist()
        new = [i for i, key in enumerate(keys_seen) if key not in cache]
        if new:
            cache.update(zip(distinct[new].tolist(), self._reasons(firsts[new]), strict=True))
        made = list(map(cache.__getitem__, keys_seen))
        reasons = chain.from_iterable(map(made.__getitem__, groups.tolist()))
        ids = np.array([paper.id for paper in self.papers], dtype=object)
        paper_ids = np.repeat(ids[self.numbers], counts).tolist()
        scores = np.repeat(self.scores, counts).tolist()
        self.match_starts = (np.cumsum(counts) - counts).tolist()
        return list(map(_new_match, paper_ids, reasons, scores))

    def _reasons(self, fires: Ints) -> list[list[tuple[Reason]]]:
        """For each of these fires: one (one-element) reasons tuple per alert of its unit,
        quoting the fire's words."""
        index = self.index
        table = index._unit_alerts
        rows = index._rows(self.units[fires])
        counts = table.counts[rows].tolist()
        alerts = table.expand(rows).tolist()
        terms = list(chain.from_iterable(map(repeat, self._terms(fires), counts)))
        kinds = list(map(index._kinds.__getitem__, alerts))
        texts = list(map(index._texts.__getitem__, alerts))
        reasons = list(zip(map(_new_reason, kinds, texts, terms)))  # 1-tuples
        bounds = np.concatenate(([0], np.cumsum(counts))).tolist()
        return [reasons[a:b] for a, b in pairwise(bounds)]

    def _terms(self, fires: Ints) -> list[tuple[str, ...]]:
        """The distinct words each of these fires quotes, in reading order."""
        owners = self.fires[fires]
        low, counts = equal_runs(self.owners, owners)
        quotes = self.hits.quotes(self.places[runs(low, counts)])
        bounds = np.concatenate(([0], np.cumsum(counts))).tolist()
        return [tuple(quotes[a:b]) for a, b in pairwise(bounds)]

    def gate(self, keys: Ints) -> Bools:
        """Which pairs a subscriber's `categories` restriction or `exclude` entries let through.

        Done once per chunk for all (subscriber, paper) pairs, sorted, rather than for every
        alert of every paper.
        """
        index = self.index
        keep = np.ones(len(keys), dtype=bool)
        if index._restricts:
            admits = np.stack([self._admitted(paper) for paper in self.papers], axis=1)
            restricted = index._restrict_of[keys >> 32]
            some = np.flatnonzero(restricted >= 0)
            keep[some] = admits[restricted[some], keys[some] & _LOW]
        if len(self.excluded):  # few: find them among the sorted pairs
            keep[runs(*equal_runs(keys, self.excluded))] = False
        return keep

    def _admitted(self, paper: Paper) -> Bools:
        """Which of the index's `categories` restrictions let this paper through."""
        names = tuple(map(fold_label, paper.categories))
        got = self.run.admits.get(names)
        if got is None:
            restricts = self.index._restricts
            got = np.array([any(map(r.admits, names)) for r in restricts], dtype=bool)
            self.run.admits[names] = got
        return got

    def _merged(self, subscribers: Ints, numbers: Ints, matches: list[Match]) -> list[Match]:
        """The Matches of subscribers that several alerts reached for one paper: the reasons
        of each of their alerts that fired, in their order; the score of all their terms."""
        index, hits = self.index, self.hits
        owners, alerts = index._alerts_of(subscribers)
        rows = index._rows(index._unit_of[alerts])
        fires = self._fire_at(numbers[owners], rows)
        fired = fires >= 0
        owners, alerts, fires = owners[fired], alerts[fired], fires[fired]
        chosen = np.array(self.match_starts, dtype=np.int64)[fires] + index._slot_of[alerts]
        reasons = [matches[i].reasons for i in chosen.tolist()]
        bounds = np.searchsorted(owners, np.arange(len(subscribers) + 1)).tolist()
        # the score: each distinct term of the atoms that fired, at its best weight
        single = index._single[alerts]
        positives = index._positive_atoms
        atom_owners = np.concatenate(
            (owners[single >= 0], np.repeat(owners, positives.counts[alerts]))
        )
        atoms = np.concatenate((single[single >= 0], positives.expand(alerts)))
        found = hits.find(numbers[atom_owners], atoms)
        atom_owners, atoms, found = atom_owners[found >= 0], atoms[found >= 0], found[found >= 0]
        scores = _best_sum(
            atom_owners, index._term_key_array[atoms], hits.weight[found], len(subscribers)
        )
        ids = np.array([paper.id for paper in self.papers], dtype=object)[numbers].tolist()
        merged = (tuple(chain.from_iterable(reasons[a:b])) for a, b in pairwise(bounds))
        return list(map(Match, ids, merged, scores.tolist()))

    def _fire_at(self, numbers: Ints, rows: Ints) -> Ints:
        """The fire of each (paper, unit row), or -1 where that unit did not fire for it."""
        if self._fire_keys is None:
            keys = self.numbers << 32 | self.index._rows(self.units)
            self._fire_order = np.argsort(keys)
            self._fire_keys = keys[self._fire_order]
        at = position(self._fire_keys, numbers << 32 | rows)
        found: Ints = np.where(at >= 0, self._fire_order[at], -1)
        return found


class _Csr:
    """Lists of ints by a non-negative key, back to back, so that many are gathered at once."""

    def __init__(self, keys: Sequence[int] | Ints, values: Sequence[int] | Ints, size: int) -> None:
        """`values[i]` filed under `keys[i]` (keys below `size`); each key's in their order."""
        keyed = np.asarray(keys, dtype=np.int64)
        self.counts = np.bincount(keyed, minlength=size).astype(np.int64)
        self.starts = np.cumsum(self.counts) - self.counts
        self.values: Ints = np.asarray(values, dtype=np.int64)[stable_order(keyed)]

    def expand(self, keys: Ints) -> Ints:
        """The lists of these keys, one after the other."""
        counts = self.counts[keys]
        values: Ints = self.values[runs(self.starts[keys], counts)]
        return values


def _entries(table: Table, size: int) -> Ints:
    """A postings table's entries as an array by key (0, an empty list, for keys not in it)."""
    out = np.zeros(size, dtype=np.int64)
    out[table.keys] = table.entries
    return out


def _postings(entries: Ints, ids: npt.NDArray[np.int32]) -> tuple[Ints, Ints]:
    """Expand postings entries (start << SHIFT | length in `ids`): for each id listed, the
    entry it came from and the id."""
    sizes = entries & MASK
    subscribers = ids[runs(entries >> SHIFT, sizes)].astype(np.int64)
    return np.repeat(np.arange(len(entries)), sizes), subscribers


def _spelled(owners: Ints, places: Ints, spelling: U64, size: int) -> tuple[U64, Ints, Ints]:
    """Each owner's distinct spellings among its places (given in reading order, owners
    ascending): a hash of the sequence per owner, and the (owner, place) pairs kept."""
    index = np.arange(len(owners))
    spelled = spelling[places]
    order = np.lexsort((index, spelled, owners))  # by owner, spelling, reading order
    first = np.ones(len(order), dtype=bool)
    first[1:] = (owners[order][1:] != owners[order][:-1]) | (
        spelled[order][1:] != spelled[order][:-1]
    )
    keep = np.zeros(len(order), dtype=bool)
    keep[order[first]] = True
    owners, places, spelled = owners[keep], places[keep], spelled[keep]
    heads = np.flatnonzero(np.diff(owners, prepend=-1))
    rank = np.arange(len(owners)) - np.repeat(heads, np.diff(np.append(heads, len(owners))))
    with np.errstate(over="ignore"):
        mixed = spelled * power_series(_SPREAD_KEY_INT, int(rank.max(initial=0)) + 2)[rank + 1]
    out = np.zeros(size, dtype=np.uint64)
    if len(heads):
        out[owners[heads]] = np.add.reduceat(mixed, heads)
    return out, owners, places


def _best_sum(owners: Ints, keys: Ints, weights: Floats, size: int) -> Floats:
    """Per owner, the sum over its distinct keys of the key's largest weight."""
    order = np.lexsort((-weights, keys, owners))  # the best weight first in each group
    by_owner, by_key, best = owners[order], keys[order], weights[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (by_owner[1:] != by_owner[:-1]) | (by_key[1:] != by_key[:-1])
    sums = np.bincount(by_owner[first], weights=best[first], minlength=size)
    return sums.astype(np.float64)


def _evaluate(template: tuple[int, ...], hit: Bools) -> Bools:
    """Run a boolean program over many rows at once: column j of `hit` is its j-th atom."""
    stack: list[Bools] = []
    for step in template:
        if step >= 0:
            stack.append(hit[:, step])
        elif step == NOT:
            stack[-1] = ~stack[-1]
        else:
            last = stack.pop()
            stack[-1] = (stack[-1] & last) if step == AND else (stack[-1] | last)
    return stack[0]


def _read_labels(
    index: AlertIndex,
    found: dict[int, list[Found]],
    field: str,
    section: int,
    values: Sequence[str],
) -> None:
    """Category or source atoms: exact names, then prefixes."""
    for i, value in enumerate(values):
        folded = fold_label(value)
        ids = list(index._labels.get(f"{field}:{folded}") or ())
        ids += [a for f, p, a in index._label_prefixes if f == field and folded.startswith(p)]
        for aid in ids:
            found.setdefault(aid, []).append((section, i, value))


_new_match = builder(Match)  # hundreds of thousands a day
_new_reason = builder(Reason)


def release_freed_memory() -> None:
    """Give the memory freed by a large match back to the system (glibc's `malloc_trim`).

    The C allocator keeps freed memory for reuse; once the index and a day's matches are
    gone, the process would otherwise stay a few hundred MB larger while it sends.
    """
    with suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rank(matches: Iterable[Match], papers_by_id: Mapping[str, Paper]) -> list[Match]:
    """A digest's order: followed authors first, then score, then votes; stable otherwise."""

    def key(match: Match) -> tuple[bool, float, int]:
        paper = papers_by_id.get(match.paper_id)
        votes = paper.votes if paper is not None and paper.votes is not None else 0
        followed = any(r.kind == "author" for r in match.reasons)
        return (not followed, -match.score, -votes)

    return sorted(matches, key=key)
