"""Matching: every subscriber's alerts in one index that a day's papers run through.

An *alert* is one distinct (kind, text) — `keyword: neural collapse`, `author: G. Lajoie`,
`exclude: survey` — parsed once however many subscribers wrote it (`bot.alerts.query`). An
*atom* is one distinct phrase, NEAR, followed name, category, source or count.

`AlertIndex.match` works on a whole day at once:

1. atoms: `bot.alerts.hits.AtomFinder` reads each paper once and gives, for every atom, the
   papers that have it and where (the places a reason quotes);
2. alerts: an alert of one atom fires on its atom's papers. A boolean one is evaluated
   only on a day with an atom it needs (`_needs`: 28,000 of 62,000 on the bench day), over
   sets of papers kept as Python ints, a bit per paper (`Papers`): AND, OR, NOT over the
   whole day are one operation each;
3. Matches: one per (alert, paper) that fired, shared by all the alert's subscribers;
4. subscribers (`_Day.spread`): every (subscriber, paper) pair their fired alerts reach,
   gated by `categories` and `exclude`, sorted, and cut into one list each; a paper that
   two of a subscriber's alerts reached gets one Match of both. The one step in numpy:
   measured, 0.5-0.6 s where the same in Python took 0.9-1.5 s (1.2 million pairs a day).

Scoring (`Match.score`): each distinct term that fired counts once — a phrase or NEAR 2.0
when found in the title, else 1.0 (a phrase is one term whichever of title/abstract it is
scoped to); any other 1.0. `rank` orders a digest: followed authors, score, then votes.
"""

from __future__ import annotations

import ctypes
import gc
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import contextmanager, suppress
from itertools import chain, count
from operator import attrgetter, itemgetter
from typing import Literal, NamedTuple, NewType

import numpy as np
import numpy.typing as npt

from bot.alerts.hits import TITLE, AtomFinder, Hits, PaperNo, Place
from bot.alerts.query import (
    And,
    Atom,
    Author,
    Node,
    Not,
    Or,
    Phrase,
    atoms,
    parse_follow,
    parse_tree,
)
from bot.errors import QueryError
from bot.models import Match, Paper, Reason, Subscriber
from bot.text.fold import fold_label

TITLE_WEIGHT, OTHER_WEIGHT = 2.0, 1.0
_BULK = 200_000  # allocations that make a piece of work "bulk" (see _collector_paused)
_CHUNK = 2000  # papers matched together
Kind = Literal["author", "keyword", "exclude"]  # an alert's kind, as its reasons name it
_FIELDS: dict[Kind, str] = {"author": "authors", "keyword": "keywords", "exclude": "exclude"}
_TEXT = frozenset({"text", "title", "abstract"})  # phrase fields that count as one term
_quote, _paper, _match = itemgetter(4), itemgetter(0), itemgetter(1)

AlertNo = NewType("AlertNo", int)  #: an alert's number in the index
SubscriberNo = NewType("SubscriberNo", int)  #: a subscriber's place in the index's list
Papers = NewType("Papers", int)  #: a set of a day's papers: bit n for paper n
Ints = npt.NDArray[np.int64]


def numbers_in(papers: Papers) -> Iterator[PaperNo]:
    """The paper numbers of a set, ascending."""
    while papers:
        lowest = papers & -papers
        yield PaperNo(lowest.bit_length() - 1)
        papers = Papers(papers ^ lowest)


def papers_of(numbers: Iterable[PaperNo]) -> Papers:
    """The set of these (distinct) paper numbers."""
    return Papers(sum(map((1).__lshift__, numbers)))


def pair_keys(subscribers: Ints, papers: Ints, day: int) -> Ints:
    """One number per (subscriber, paper) of a `day`-paper day, sorting by subscriber first."""
    return subscribers * day + papers


def pair_of(key: int, day: int) -> tuple[SubscriberNo, PaperNo]:
    """The (subscriber, paper) of one of the `pair_keys` of a `day`-paper day."""
    subscriber, paper = divmod(key, day)
    return SubscriberNo(subscriber), PaperNo(paper)


class _Entries(NamedTuple):
    """Entries of subscribers (authors, keywords or excludes): each one's owner and alert."""

    owners: Ints
    alerts: Ints


def admits(wanted: Iterable[str], categories: Iterable[str]) -> bool:
    """Does a `categories:` entry (`cs.*`, a prefix) admit a paper in these (folded) ones?"""
    names = [n for n in map(fold_label, wanted) if n]
    prefixes = tuple(n.rstrip("*") for n in names if n.endswith("*"))
    return any(c in names or c.startswith(prefixes) for c in categories)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk work that makes no cycles (it would walk
    millions of new objects again and again); what is left is moved out of sight (freeze)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_count()[0] > _BULK:
            gc.freeze()
        if enabled:
            gc.enable()


class AlertIndex:
    """Every subscriber's alerts, each parsed once; `match` runs papers through them."""

    def __init__(self, subscribers: Sequence[Subscriber]) -> None:
        """Use `AlertIndex.build`."""
        self.subscribers = tuple(subscribers)
        # by alert number: the kind and text its reasons name, its tree
        self.kinds, self.texts, self.roots = list[Kind](), list[str](), list[Node]()
        self.alone: dict[Atom, list[AlertNo]] = defaultdict(list)  # alerts of one atom
        self.needing: dict[Atom, list[AlertNo]] = defaultdict(list)  # the others: `_needs`
        inner: dict[Atom, None] = {}  # the atoms of the others
        of = {kind: self._numbered(kind, field, inner) for kind, field in _FIELDS.items()}
        self.finder = AtomFinder(chain(self.alone, inner))
        owners, alerts = map(np.concatenate, zip(of["author"], of["keyword"], strict=True))
        order = np.argsort(owners, kind="stable")  # by subscriber, authors first
        self.entries = _Entries(owners[order], alerts[order])
        self.starts = np.searchsorted(self.entries.owners, np.arange(len(subscribers) + 1))
        self.exclusions = of["exclude"]
        self.restricts = list(dict.fromkeys(s.categories for s in subscribers if s.categories))
        row = {categories: n for n, categories in enumerate(self.restricts)}
        rows = (row[s.categories] if s.categories else -1 for s in subscribers)
        self.restrict_of = np.fromiter(rows, np.int64, len(subscribers))  # -1: none

    @classmethod
    def build(cls, subscribers: Sequence[Subscriber]) -> AlertIndex:
        """Parse every subscriber's keywords, authors and exclude entries into one index;
        a `QueryError` names the subscriber and entry that does not parse, a `ValueError`
        says two subscribers share an email."""
        if len({s.email for s in subscribers}) != len(subscribers):
            raise ValueError("two subscribers share an email address")
        with _collector_paused():
            try:
                return cls(subscribers)
            except QueryError:
                raise _first_error(subscribers) from None

    def match(self, papers: Sequence[Paper]) -> dict[str, list[Match]]:
        """Each subscriber's matches among `papers` (an id once, as first listed), in paper
        order, by email; a subscriber without any is absent."""
        firsts: dict[str, Paper] = {}
        for paper in papers:
            firsts.setdefault(paper.id, paper)
        unique, found = list(firsts.values()), dict[str, list[Match]]()
        with _collector_paused():  # 2,000 papers at a time: one day's memory at most
            for start in range(0, len(unique), _CHUNK):
                for email, matches in _Day(self, unique[start : start + _CHUNK]).spread().items():
                    if (known := found.setdefault(email, matches)) is not matches:
                        known.extend(matches)
        return found

    def _numbered(self, kind: Kind, field: str, inner: dict[Atom, None]) -> _Entries:
        """Number the distinct entries of a field (parsing each once); all its entries."""
        get, subscribers, start = attrgetter(field), self.subscribers, len(self.texts)
        texts = list(chain.from_iterable(map(get, subscribers)))
        first: dict[str, int] = {}  # each text's first place among the entries
        places = np.fromiter(map(first.setdefault, texts, count()), np.int64, len(texts))
        if kind == "author":
            roots: list[Node] = [Author(parse_follow(text)) for text in first]
        else:
            roots = list(map(parse_tree, first))
        self.kinds += [kind] * len(roots)
        self.texts += first
        self.roots += roots
        for number, root in zip(map(AlertNo, range(start, len(self.texts))), roots, strict=True):
            if isinstance(root, (Not, And, Or)):
                mine: dict[Atom, None] = {}
                for atom in _needs(root, mine) or mine:
                    self.needing[atom].append(number)
                inner.update(mine)
            else:
                self.alone[root].append(number)
        alert_at = np.zeros(len(texts), np.int64)
        alert_at[np.fromiter(first.values(), np.int64, len(first))] = range(start, len(self.texts))
        counts = np.fromiter(map(len, map(get, subscribers)), np.int64, len(subscribers))
        return _Entries(np.repeat(np.arange(len(subscribers)), counts), alert_at[places])


def _needs(node: Node, atoms: dict[Atom, None]) -> list[Atom] | None:
    """Atoms one of which a paper must have for the query to hold: an atom itself, one
    child's of an AND, every child's of an OR; None when this rule says nothing (a NOT):
    then any of its atoms (`parse_tree` rejects the others). Puts each atom met in `atoms`."""
    if isinstance(node, Not):
        _needs(node.child, atoms)
        return None
    if isinstance(node, (And, Or)):
        parts = [_needs(child, atoms) for child in node.children]
        if isinstance(node, And):
            return next(filter(None, parts), None)
        return None if None in parts else [atom for part in parts if part for atom in part]
    atoms[node] = None
    return [node]


def _first_error(subscribers: Sequence[Subscriber]) -> QueryError:
    """The error of the first entry that does not parse, naming its subscriber and entry."""
    for sub in subscribers:
        for field in ("authors", "keywords", "exclude"):
            for i, text in enumerate(getattr(sub, field)):
                try:
                    parse_follow(text) if field == "authors" else parse_tree(text)
                except QueryError as exc:
                    where = f"subscriber {sub.email}: {field}[{i}]"
                    return QueryError(f"{where}: {exc.message}", exc.column)
    raise AssertionError("an entry failed to parse, then parsed")  # pragma: no cover


class _Day:
    """One `match` call: what the papers hit, the alerts that fired, the Matches made."""

    def __init__(self, index: AlertIndex, papers: list[Paper]) -> None:
        self.index, self.papers, self.hits = index, papers, index.finder.find(papers)
        self.fired: dict[AlertNo, Collection[PaperNo]] = {}  # their papers; excludes too
        self.made: dict[AlertNo, list[tuple[PaperNo, Match]]] = {}  # by paper, ascending
        self.positives: dict[AlertNo, tuple[Atom, ...]] = {}  # see `_positives`
        candidates: set[AlertNo] = set()  # the boolean alerts to evaluate
        for atom, found in self.hits.items():
            alone = index.alone.get(atom, ())
            self.fired.update(dict.fromkeys(alone, found))
            if keywords := [a for a in alone if index.kinds[a] != "exclude"]:  # or follows
                self._made_alone(found, keywords)
            candidates.update(index.needing.get(atom, ()))
        sets, everything = dict[Atom, Papers](), Papers((1 << len(papers)) - 1)
        for number in candidates:
            if fired := _holds(index.roots[number], self.hits, sets, everything):
                self.fired[number] = papers_in = dict.fromkeys(numbers_in(fired))
                if index.kinds[number] != "exclude":
                    self.made[number] = [(p, self._match(p, (number,))) for p in papers_in]

    def _made_alone(self, found: dict[PaperNo, list[Place]], alerts: list[AlertNo]) -> None:
        """The Matches of the alerts that are one atom (what they quote is the same)."""
        index = self.index
        made = [(self.made.setdefault(a, []), index.kinds[a], index.texts[a]) for a in alerts]
        for number, places in found.items():
            terms, score = tuple(dict.fromkeys(map(_quote, places))), _weight(places)
            paper_id = self.papers[number].id
            for pairs, kind, text in made:
                pairs.append((number, Match(paper_id, (Reason(kind, text, terms),), score)))

    def _match(self, paper: PaperNo, alerts: Iterable[AlertNo]) -> Match:
        """The Match of these alerts (that fired) for one paper: each one's reason, quoting
        the places of its positive atoms; each distinct term once at its best weight."""
        reasons: list[Reason] = []
        weights: dict[object, float] = {}
        for number in alerts:
            places: list[Place] = []
            for atom in self._positives(number):
                if (found := self.hits.get(atom, {}).get(paper)) is not None:
                    places += found
                    key = atom.words if isinstance(atom, Phrase) and atom.field in _TEXT else atom
                    weights[key] = max(weights.get(key, 0.0), _weight(found))
            terms = tuple(dict.fromkeys(map(_quote, sorted(set(places)))))
            reasons.append(Reason(self.index.kinds[number], self.index.texts[number], terms))
        return Match(self.papers[paper].id, tuple(reasons), sum(weights.values()))

    def _positives(self, number: AlertNo) -> tuple[Atom, ...]:
        """An alert's distinct atoms not under a NOT, in writing order: what it quotes."""
        if number not in self.positives:
            found = dict.fromkeys(a for a, positive in atoms(self.index.roots[number]) if positive)
            self.positives[number] = tuple(found)
        return self.positives[number]

    def spread(self) -> dict[str, list[Match]]:
        """Each subscriber's Matches in paper order, by email (in numpy: see the module)."""
        pairs = list(chain.from_iterable(self.made.values()))  # alert after alert
        keys, slots = self._reached(pairs)
        written, starts = self.index.entries.alerts, self.index.starts  # authors first
        found = np.fromiter(map(_match, pairs), dtype=object, count=len(pairs))[slots]
        again = np.flatnonzero(keys[1:] == keys[:-1]) + 1
        for at in np.setdiff1d(again - 1, again).tolist():  # one Match of the alerts there
            owner, paper = pair_of(int(keys[at]), len(self.papers))
            alerts = dict.fromkeys(written[starts[owner] : starts[owner + 1]].tolist())
            reached = [a for a in alerts if a in self.made and paper in self.fired[a]]
            found[at] = self._match(paper, reached)
        found, keys = np.delete(found, again), np.delete(keys, again)
        owners = keys // len(self.papers)  # the subscribers (see `pair_of`)
        if not len(owners):  # none, or all gated out
            return {}
        firsts = np.flatnonzero(np.diff(owners, prepend=-1)).tolist()
        listed, emails = found.tolist(), [s.email for s in self.index.subscribers]
        cuts = zip(owners[firsts].tolist(), firsts, [*firsts[1:], len(listed)], strict=True)
        return {emails[owner]: listed[start:end] for owner, start, end in cuts}

    def _reached(self, pairs: list[tuple[PaperNo, Match]]) -> tuple[Ints, Ints]:
        """The (subscriber, paper) pairs (`pair_keys`) that the pairs of `made` reach, gated
        and sorted, and each one's slot in `pairs`."""
        owners, slots = self._reach(self.index.entries, self.made)
        papers = np.fromiter(map(_paper, pairs), np.int64, len(pairs))[slots]
        keep = self._admitted()[self.index.restrict_of[owners], papers]
        keys = pair_keys(owners, papers, len(self.papers))
        if len(excluded := np.sort(self._excluded())):  # searched: 0.02 s, np.isin 0.13
            keep &= excluded[np.searchsorted(excluded, keys).clip(max=len(excluded) - 1)] != keys
        keys, slots = keys[keep], slots[keep]
        order = np.argsort(keys, kind="stable")  # runs of ascending keys: 0.01 s
        return keys[order], slots[order]

    def _reach(self, entries: _Entries, lists: Mapping[AlertNo, Sized]) -> tuple[Ints, Ints]:
        """For each entry whose alert has a list, and each item of it: the entry's
        subscriber, and the item's place in the lists laid end to end (in their order)."""
        starts, counts = np.zeros((2, len(self.index.texts)), np.int64)
        alerts = np.fromiter(lists, np.int64, len(lists))
        counts[alerts] = np.fromiter(map(len, lists.values()), np.int64, len(lists))
        starts[alerts] = np.cumsum(counts[alerts]) - counts[alerts]
        some = np.flatnonzero(reach := counts[entries.alerts])
        firsts, reach = starts[entries.alerts[some]], reach[some]
        slots = np.repeat(firsts - np.cumsum(reach) + reach, reach) + np.arange(reach.sum())
        return np.repeat(entries.owners[some], reach), slots

    def _admitted(self) -> npt.NDArray[np.bool_]:
        """Row r: which papers the r-th `categories` restriction lets through; last row: all.
        Worked out once per distinct set of categories that papers have (cs.LG, ...)."""
        sets: dict[tuple[str, ...], int] = {}
        of = [sets.setdefault(tuple(map(fold_label, p.categories)), len(sets)) for p in self.papers]
        rows = [[admits(r, c) for c in sets] for r in self.index.restricts]
        return np.array([*rows, [True] * len(sets)], dtype=bool).reshape(-1, len(sets))[:, of]

    def _excluded(self) -> Ints:
        """The pairs (`pair_keys`) that a subscriber's exclude entry rules out."""
        fired = {a: p for a, p in self.fired.items() if self.index.kinds[a] == "exclude"}
        owners, slots = self._reach(self.index.exclusions, fired)
        papers = np.fromiter(chain.from_iterable(fired.values()), np.int64)[slots]
        return pair_keys(owners, papers, len(self.papers))


def _weight(places: list[Place]) -> float:
    """An atom's weight in a paper: a phrase found in the title counts more."""
    return TITLE_WEIGHT if places and places[0][0] == TITLE else OTHER_WEIGHT


def _holds(node: Node, hits: Hits, sets: dict[Atom, Papers], everything: Papers) -> Papers:
    """The papers where a query holds, given each atom's (`sets`: each atom's made once)."""
    if isinstance(node, Not):
        return Papers(everything & ~_holds(node.child, hits, sets, everything))
    if isinstance(node, And):
        found = everything
        for child in node.children:
            if not (found := Papers(found & _holds(child, hits, sets, everything))):
                break
        return found
    if isinstance(node, Or):
        found = Papers(0)
        for child in node.children:
            found = Papers(found | _holds(child, hits, sets, everything))
        return found
    if (known := sets.get(node)) is None:
        known = sets[node] = papers_of(hits.get(node, ()))
    return known


def release_freed_memory() -> None:
    """Give the memory freed by a large match back to the system (glibc's `malloc_trim`):
    else the process would stay a few hundred MB larger while it sends."""
    with suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)
