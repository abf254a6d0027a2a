"""Compiling every subscriber's alerts (build time): atoms, boolean programs, postings.

`Compiler` numbers each distinct alert text once and each distinct atom (phrase, author
name, category, source, votes threshold) once; `AlertIndex` (bot.match) freezes what it
collected into the look-up tables that papers run through.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from bot.fold import AuthorKey, fold_label
from bot.models import Subscriber
from bot.query import (
    And,
    Atom,
    Author,
    Label,
    Node,
    Not,
    Or,
    Phrase,
    QueryError,
    Votes,
    parse_follow,
    parse_query,
    plain_words,
)

FIELDS = {"text": 0, "title": 1, "abstract": 2}  # where a phrase atom must be found
# Boolean programs are postfix: an atom id (>= 0) pushes "it hit", these combine.
NOT, AND, OR = -1, -2, -3
_NEVER = float("inf")  # the cost of triggers that do not exist
_K = TypeVar("_K")
SHIFT = 24  # a Table entry is start << SHIFT | length
MASK = (1 << SHIFT) - 1


def tuples(lists: Mapping[_K, Sequence[int]]) -> dict[_K, tuple[int, ...]]:
    """Small lists of ids by key, frozen for look-ups."""
    return dict(zip(lists, map(tuple, lists.values()), strict=True))


class Table:
    """Lists of ids by key, stored back to back in one array.

    100,000 subscribers make hundreds of thousands of small postings lists; as Python lists
    they would take several times the memory, and the garbage collector would walk each.
    """

    def __init__(self, where: dict[int, int], ids: memoryview) -> None:
        self._where = where  # key → start << SHIFT | length, in `ids`
        self._ids = ids

    def get(self, key: int) -> memoryview | None:
        """The ids filed under `key`, if any (a view: nothing is copied)."""
        found = self._where.get(key)
        if found is None:
            return None
        start = found >> SHIFT
        return self._ids[start : start + (found & MASK)]


def _rarity(atom: Atom) -> float:
    """A rough cost of an atom as a trigger: how often it will hit (lower is rarer)."""
    if isinstance(atom, Phrase):
        prefixes = sum(w.endswith("*") for w in atom.words)
        return 10.0 ** (prefixes - len(atom.words))
    return 1e-3 if isinstance(atom, Author) else 1.0


@dataclass(frozen=True, slots=True)
class Restrict:
    """A subscriber's `categories`: folded names, and prefixes for names written `cs.*`."""

    names: frozenset[str]
    prefixes: tuple[str, ...]

    def admits(self, category: str) -> bool:
        """Is a paper in this (folded) category inside the restriction?"""
        return category in self.names or category.startswith(self.prefixes)


def restriction(categories: Iterable[str]) -> Restrict:
    """Fold a `categories:` list; a trailing `*` (`cs.*`, `math*`) makes an entry a prefix."""
    names = [n for n in map(fold_label, categories) if n]
    return Restrict(
        frozenset(n for n in names if not n.endswith("*")),
        tuple(n.rstrip("*") for n in names if n.endswith("*")),
    )


class Atoms:
    """Atom ids and the look-ups that find each kind of atom in a paper (build time)."""

    def __init__(self) -> None:
        self.count = 0
        self.term_keys: list[int] = []  # what counts once in a score: the phrase, or the atom
        self.phrases: list[dict[tuple[str, ...], int]] = [{}, {}, {}]  # by field
        self.patterns: dict[tuple[str, ...], int] = {}
        self.pattern_atoms: list[list[int]] = [[], [], []]  # by field: pattern → atom (-1)
        self.authors: dict[tuple[str, tuple[str, ...]], int] = {}
        self.author_buckets: dict[str, list[int]] = {}  # "surname initial" → atoms
        self.author_keys: dict[int, AuthorKey] = {}
        self.labels: dict[str, list[int]] = {}  # "category:cs.lg" → atoms
        self.label_prefixes: list[tuple[str, str, int]] = []
        self.label_ids: dict[tuple[str, str, bool], int] = {}
        self.votes: dict[int, int] = {}  # minimum → atom

    def _new(self, term_key: int | None = None) -> int:
        aid = self.count
        self.count += 1
        self.term_keys.append(aid if term_key is None else term_key)
        return aid

    def phrase(self, phrase_words: tuple[str, ...], field: str) -> int:
        """The atom of a phrase in a field ("text" = title or abstract)."""
        index = FIELDS[field]
        aid = self.phrases[index].get(phrase_words)
        if aid is None:
            pid = self.patterns.get(phrase_words)
            if pid is None:
                pid = self.patterns[phrase_words] = len(self.patterns)
                for table in self.pattern_atoms:
                    table.append(-1)
            aid = self.phrases[index][phrase_words] = self._new(-1 - pid)
            self.pattern_atoms[index][pid] = aid
        return aid

    def author(self, key: AuthorKey) -> int:
        """The atom of a followed name."""
        aid = self.authors.get((key.surname, key.given))
        if aid is None:
            aid = self.authors[(key.surname, key.given)] = self._new()
            bucket = f"{key.surname} {key.initial}"
            self.author_buckets.setdefault(bucket, []).append(aid)
            self.author_keys[aid] = key
        return aid

    def label(self, atom: Label) -> int:
        """The atom of a category or source name (or prefix)."""
        aid = self.label_ids.get((atom.field, atom.value, atom.prefix))
        if aid is None:
            aid = self.label_ids[(atom.field, atom.value, atom.prefix)] = self._new()
            if atom.prefix:
                self.label_prefixes.append((atom.field, atom.value, aid))
            else:
                self.labels.setdefault(f"{atom.field}:{atom.value}", []).append(aid)
        return aid

    def atom(self, atom: Atom) -> int:
        """The id of any atom."""
        if isinstance(atom, Phrase):
            return self.phrase(atom.words, atom.field)
        if isinstance(atom, Author):
            return self.author(atom.key)
        if isinstance(atom, Label):
            return self.label(atom)
        aid = self.votes.get(atom.minimum)
        if aid is None:
            aid = self.votes[atom.minimum] = self._new()
        return aid


class Compiler:
    """Collects every subscriber's alerts and postings (build time; frozen by AlertIndex)."""

    def __init__(self) -> None:
        self.atoms = Atoms()
        self.alert_ids: dict[str, dict[str, int]] = {"author": {}, "keyword": {}, "exclude": {}}
        self.kinds: list[str] = []
        self.texts: list[str] = []
        self.single: list[int] = []  # the alert's one atom, or -1 for a boolean alert
        self.programs: dict[int, list[int]] = {}
        self.positives: dict[int, list[int]] = {}
        # a *unit* fires as one: an atom (all its one-atom alerts), or a boolean alert
        # (keyed -1 - alert); boolean alerts are evaluated when a trigger atom hits
        self.units: dict[int, list[int]] = {}
        self.evaluates: dict[int, list[int]] = {}
        self.fires_exclude: dict[int, list[int]] = {}
        self.evaluates_exclude: dict[int, list[int]] = {}
        self.emails: list[str] = []
        # every subscriber's alerts (authors, then keywords) and their exclude entries,
        # one subscriber after the other: starts[sid] .. starts[sid + 1]
        self.orders = (Flat(), Flat())
        self.excludes = Flat()
        self.restrictions: dict[int, Restrict] = {}  # subscribers with `categories`

    def subscribers(self, subscribers: Sequence[Subscriber]) -> None:
        """Add every subscriber: their entries are flattened and compiled text by text.

        Working on whole columns (every subscriber's authors, then keywords) keeps the
        per-subscriber Python work to a few C-level passes: 100,000 subscribers' worth of
        entries are mostly repeats of a few hundred thousand distinct texts.
        """
        self.emails = [s.email for s in subscribers]
        authors = self._column("author", [s.authors for s in subscribers])
        keywords = self._column("keyword", [s.keywords for s in subscribers])
        self.orders = (authors, keywords)
        self.excludes = self._column("exclude", [s.exclude for s in subscribers])
        self.restrictions = {
            sid: restriction(s.categories) for sid, s in enumerate(subscribers) if s.categories
        }

    def _column(self, kind: str, entries: list[tuple[str, ...]]) -> Flat:
        """The alert ids of one kind of entry, subscriber by subscriber."""
        # an entry written twice by one subscriber is one alert for them
        entries = [e if len(set(e)) == len(e) else tuple(dict.fromkeys(e)) for e in entries]
        texts = list(chain.from_iterable(entries))
        known = self.alert_ids[kind]
        for text in dict.fromkeys(texts):
            if text not in known:
                self.alert(kind, text)
        return Flat(list(map(known.__getitem__, texts)), list(map(len, entries)))

    def alert(self, kind: str, text: str) -> int:
        """The id of an alert, compiling its text the first time it is seen."""
        known = self.alert_ids[kind]
        vid = known.get(text)
        if vid is not None:
            return vid
        if kind == "author":
            aid = self.atoms.author(parse_follow(text))
        elif (plain := plain_words(text)) is not None:
            aid = self.atoms.phrase(plain, "text")  # most alerts: no need for the parser
        else:
            root = parse_query(text).root
            if not isinstance(root, Phrase | Author | Label | Votes):
                vid = self._new_alert(kind, text)
                self._boolean(vid, root, kind == "exclude")
                return vid
            aid = self.atoms.atom(root)
        vid = self._new_alert(kind, text)
        self.single.append(aid)
        table = self.fires_exclude if kind == "exclude" else self.units
        table.setdefault(aid, []).append(vid)
        return vid

    def _new_alert(self, kind: str, text: str) -> int:
        """Number a new alert (only once its text has compiled)."""
        vid = self.alert_ids[kind][text] = len(self.kinds)
        self.kinds.append(kind)
        self.texts.append(text)
        return vid

    def _boolean(self, vid: int, root: Node, exclude: bool) -> None:
        """Compile a boolean query: its program, positive atoms and triggers."""
        self.single.append(-1)
        program: list[int] = []
        positive: dict[int, None] = {}
        triggers = self._walk(root, program, positive, False)[0]
        self.programs[vid] = program
        self.positives[vid] = list(positive)
        if not exclude:
            self.units[-1 - vid] = [vid]
        table = self.evaluates_exclude if exclude else self.evaluates
        for aid in dict.fromkeys(triggers or ()):
            table.setdefault(aid, []).append(vid)

    def _walk(
        self, node: Node, out: list[int], positive: dict[int, None], negated: bool
    ) -> tuple[tuple[int, ...] | None, float]:
        """Compile a query tree in one pass, and say what triggers its evaluation.

        Appends the node's postfix program to `out` and its non-negated atoms to
        `positive`. Returns the *triggers*: atoms one of which must hit whenever the node
        is true (None if there are none), with their cost (how often they will hit). In
        negation normal form an OR needs a trigger from each branch, an AND one branch's
        (the rarest), and a negated atom gives none. The root has triggers, since
        `parse_query` rejects a query that is true with no atom hit.
        """
        if isinstance(node, Not):
            found = self._walk(node.child, out, positive, not negated)
            out.append(NOT)
            return found
        if isinstance(node, And | Or):
            step = AND if isinstance(node, And) else OR
            parts = [self._walk(node.children[0], out, positive, negated)]
            for child in node.children[1:]:
                parts.append(self._walk(child, out, positive, negated))
                out.append(step)
            if (step == OR) != negated:  # an OR, or a negated AND: every branch's
                if any(p[0] is None for p in parts):
                    return None, _NEVER
                return tuple(a for p in parts for a in p[0] or ()), sum(p[1] for p in parts)
            usable = [p for p in parts if p[0] is not None]
            return min(usable, key=operator.itemgetter(1)) if usable else (None, _NEVER)
        aid = self.atoms.atom(node)
        out.append(aid)
        if negated:
            return None, _NEVER
        positive[aid] = None
        return (aid,), _rarity(node)


class Flat:
    """Lists of ids, one per subscriber, stored back to back with where each starts."""

    def __init__(self, ids: Sequence[int] = (), counts: Sequence[int] = ()) -> None:
        self.ids = np.array(ids, dtype=np.int32)
        self.counts = np.array(counts, dtype=np.int32)
        self.starts = np.concatenate(([0], np.cumsum(self.counts))).tolist()

    def of(self, sid: int) -> list[int]:
        """One subscriber's ids."""
        ids: list[int] = self.ids[self.starts[sid] : self.starts[sid + 1]].tolist()
        return ids

    def owners(self) -> npt.NDArray[np.int32]:
        """The subscriber of each id, in order."""
        return np.repeat(np.arange(len(self.counts), dtype=np.int32), self.counts)

    @staticmethod
    def inverted(*flats: Flat) -> Table:
        """Each id's subscribers, in subscriber order (an id is in one of `flats` only)."""
        ids = np.concatenate([f.ids for f in flats])
        owners = np.concatenate([f.owners() for f in flats])
        order = np.argsort(ids, kind="stable")  # stable: each id's owners stay in order
        keys, values = ids[order], owners[order]
        unique, starts, sizes = np.unique(keys, return_index=True, return_counts=True)
        if len(sizes) and sizes.max() >> SHIFT:
            raise ValueError(f"more than {1 << SHIFT} subscribers of one alert")
        entries = starts.astype(np.int64) << SHIFT | sizes
        return Table(dict(zip(unique.tolist(), entries.tolist(), strict=True)), values.data)


def entry_error(subscribers: Sequence[Subscriber], error: QueryError) -> QueryError:
    """The error of the first entry that does not parse, naming its subscriber and entry."""
    for sub in subscribers:
        for field in ("authors", "keywords", "exclude"):
            for i, text in enumerate(getattr(sub, field)):
                try:
                    parse_follow(text) if field == "authors" else parse_query(text)
                except QueryError as exc:
                    where = f"subscriber {sub.email}: {field}[{i}]"
                    return QueryError(f"{where}: {exc.message}", exc.column)
    return error
