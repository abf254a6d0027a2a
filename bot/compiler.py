"""Compiling every subscriber's alerts (build time): atoms, boolean programs, postings.

`Compiler` numbers each distinct alert text once and each distinct atom (phrase, author
name, category, source, votes threshold) once; `AlertIndex` (bot.match) freezes what it
collected into the look-up tables that papers run through.

Most boolean alerts are one of a few shapes with different words (`"x y" AND (z OR w)`,
`x -y`, see `bot.query.boolean_runs`): those are compiled once per shape as a `Template`
(by the same `walk` as any query) and instantiated with each alert's phrase atoms.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain, count
from typing import cast

import numpy as np
import numpy.typing as npt

from bot.arrays import stable_order
from bot.fold import AuthorKey, author_key, fold_label, words
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
    Shape,
    Votes,
    boolean_runs,
    parse_follow,
    parse_query,
    plain_words,
    scoped_run,
)

FIELDS = {"text": 0, "title": 1, "abstract": 2}  # where a phrase atom must be found
# Boolean programs are postfix: an atom id (>= 0) pushes "it hit", these combine.
NOT, AND, OR = -1, -2, -3
_NEVER = float("inf")  # the cost of triggers that do not exist
SHIFT = 24  # a Table entry is start << SHIFT | length
MASK = (1 << SHIFT) - 1


class Table:
    """Lists of ids by key, stored back to back in one array.

    100,000 subscribers make hundreds of thousands of small postings lists; as Python lists
    they would take several times the memory, and the garbage collector would walk each.
    """

    def __init__(
        self, keys: npt.NDArray[np.int32], entries: npt.NDArray[np.int64], ids: memoryview
    ) -> None:
        # the keys (ascending) and each one's entry, start << SHIFT | length in `ids`: as
        # arrays, since the index reads them in bulk (a dict of them took ~0.05 s to make)
        self.keys = keys
        self.entries = entries
        self._ids = ids

    def get(self, key: int) -> memoryview | None:
        """The ids filed under `key`, if any (a view: nothing is copied)."""
        at = int(np.searchsorted(self.keys, key))
        if at == len(self.keys) or self.keys[at] != key:
            return None
        found = int(self.entries[at])
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
        self.patterns: dict[tuple[str, ...], int] = {}
        self.pattern_atoms: list[list[int]] = [[], [], []]  # by field: pattern → atom (-1)
        self.authors: dict[tuple[str, tuple[str, ...]], int] = {}
        self.author_buckets: dict[str, list[int]] = {}  # "surname initial" → atoms
        self.author_keys: dict[int, AuthorKey] = {}
        self.labels: dict[str, list[int]] = {}  # "category:cs.lg" → atoms
        self.label_prefixes: list[tuple[str, str, int]] = []
        self.label_ids: dict[tuple[str, str, bool], int] = {}
        self.votes: dict[int, int] = {}  # minimum → atom
        self.runs: dict[str, tuple[int, int]] = {}  # a text phrase as written → atom, length

    def _new(self, term_key: int | None = None) -> int:
        aid = self.count
        self.count += 1
        self.term_keys.append(aid if term_key is None else term_key)
        return aid

    def phrase(self, phrase_words: tuple[str, ...], field: str) -> int:
        """The atom of a phrase in a field ("text" = title or abstract)."""
        table = self.pattern_atoms[FIELDS[field]]
        pid = self.patterns.get(phrase_words)
        if pid is None:
            pid = self.patterns[phrase_words] = len(self.patterns)
            for each in self.pattern_atoms:
                each.append(-1)
        aid = table[pid]
        if aid < 0:
            aid = table[pid] = self._new(-1 - pid)
        return aid

    def run(self, run: str) -> tuple[int, int] | None:
        """The atom of an unscoped phrase as written (no `*`) and its length; None without words.

        Many boolean alerts share a few words (`x AND (y OR z)`): each is folded once.
        """
        found = self.runs.get(run)
        if found is None:
            folded = tuple(words(run))
            if not folded:
                return None
            found = self.runs[run] = (self.phrase(folded, "text"), len(folded))
        return found

    def author(self, key: AuthorKey) -> int:
        """The atom of a followed name."""
        name = (key.surname, key.given)
        aid = self.authors.get(name)
        if aid is None:
            aid = self.authors[name] = self._new()
            bucket = f"{key.surname} {key.given[0][0] if key.given else ''}"  # key.initial
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
        self.kinds: list[str] = []
        self.texts: list[str] = []
        self.single: list[int] = []  # the alert's one atom, or -1 for a boolean alert
        self.excluding = bytearray()  # by alert: 1 for an exclude entry (numpy reads it as is)
        # boolean programs by *shape*: the program with its j-th atom written j; each
        # shape's alerts (ascending) and their atoms, row after row (`Shapes`)
        self.shapes: dict[tuple[int, ...], Shapes] = {}
        self.positives = Pairs()  # (boolean alert, each non-negated atom), alert by alert
        # a *unit* fires as one: an atom (all its one-atom alerts), or a boolean alert
        # (keyed -1 - alert); boolean alerts are evaluated when a trigger atom hits
        self.units: dict[int, list[int]] = {}
        self.evaluates = Pairs()  # (trigger atom, keyword boolean alert)
        self.evaluates_exclude = Pairs()  # (trigger atom, exclude boolean alert)
        self.emails: list[str] = []
        # every subscriber's alerts (authors, then keywords) and their exclude entries,
        # one subscriber after the other: starts[sid] .. starts[sid + 1]
        self.orders = (Flat(), Flat())
        self.excludes = Flat()
        self.restrictions: dict[int, Restrict] = {}  # subscribers with `categories`
        self._templates: dict[tuple[Shape, tuple[int, ...]], tuple[Template, Shapes]] = {}

    def subscribers(self, subscribers: Sequence[Subscriber]) -> None:
        """Add every subscriber (once): their entries are flattened and compiled text by text.

        Working on whole columns (every subscriber's authors, then keywords) keeps the
        per-subscriber Python work to a few C-level passes: 100,000 subscribers' worth of
        entries are mostly repeats of a few hundred thousand distinct texts. Raises the
        `QueryError` of an entry that does not parse (the compiler is then half-filled).
        """
        self.emails = [s.email for s in subscribers]
        authors = self._column("author", [s.authors for s in subscribers])
        keywords = self._column("keyword", [s.keywords for s in subscribers])
        self.orders = (authors, keywords)
        self.excludes = self._column("exclude", [s.exclude for s in subscribers])
        made: dict[tuple[str, ...], Restrict] = {}  # a few lists of categories, shared
        for sid, s in enumerate(subscribers):
            if s.categories:
                found = made.get(s.categories)
                if found is None:
                    found = made[s.categories] = restriction(s.categories)
                self.restrictions[sid] = found

    def _column(self, kind: str, entries: list[tuple[str, ...]]) -> Flat:
        """The alert ids of one kind of entry, subscriber by subscriber."""
        counts = np.fromiter(map(len, entries), np.int64, len(entries))
        total = int(counts.sum())
        # each entry's first place among the entries: one C-level pass over 100,000
        # subscribers' worth of texts (a look-up per entry would be a second)
        first: dict[str, int] = {}
        texts = chain.from_iterable(entries)
        places = np.fromiter(map(first.setdefault, texts, count()), np.int64, total)
        vids = self._compile(kind, list(first))  # the distinct texts, in order
        ids = np.zeros(total, dtype=np.int32)
        ids[np.fromiter(first.values(), np.int64, len(first))] = np.arange(vids.start, vids.stop)
        ids = ids[places]
        # an entry written twice by one subscriber is one alert for them
        owners = np.repeat(np.arange(len(entries)), counts)
        repeats = _repeats(places, owners, int(counts.max(initial=0)))
        if repeats.any():
            ids = ids[~repeats]
            counts -= np.bincount(owners[repeats], minlength=len(entries))
        return Flat(ids, counts)

    def _compile(self, kind: str, texts: list[str]) -> range:
        """Number and compile new alerts of one kind, in order; their ids."""
        vids = range(len(self.kinds), len(self.kinds) + len(texts))
        if kind == "author":
            single = self._authors(texts)
        else:
            single = list(map(partial(self._query, kind == "exclude"), vids, texts))
        self.kinds += [kind] * len(texts)
        self.texts += texts
        self.single += single
        self.excluding += bytes([kind == "exclude"]) * len(texts)
        if kind == "exclude":
            return vids  # no units: their atoms fire them (`AlertIndex` finds which)
        # each atom's one-atom alerts, and each boolean alert as a unit of its own (keyed
        # -1 - alert)
        units = self.units
        for vid, aid in zip(vids, single, strict=True):
            if aid >= 0:
                units.setdefault(aid, []).append(vid)
            else:
                units[-1 - vid] = [vid]
        return vids

    def _authors(self, texts: list[str]) -> list[int]:
        """The atoms of `authors:` entries."""
        keys = list(map(author_key, texts))
        if None in keys:
            parse_follow(texts[keys.index(None)])  # raises: a follow without a name
        return list(map(self.atoms.author, cast(list[AuthorKey], keys)))

    def _query(self, exclude: bool, vid: int, text: str) -> int:
        """Compile keyword or exclude entry `vid`: its one atom, or -1 for a boolean query."""
        runs = boolean_runs(text)
        if runs is not None and self._shaped(exclude, vid, *runs):
            return -1  # most boolean alerts: no parser
        plain = plain_words(text)
        if plain is not None:
            return self.atoms.phrase(plain, "text")  # most alerts
        scoped = scoped_run(text)
        if scoped is not None and (folded := tuple(words(scoped[1]))):
            return self.atoms.phrase(folded, scoped[0])  # `title:` / `abstract:` phrases
        root = parse_query(text).root
        if isinstance(root, Phrase | Author | Label | Votes):
            return self.atoms.atom(root)
        program: list[int] = []
        positive: dict[int, None] = {}
        triggers = walk(root, program, positive, False, self.atoms.atom)[0]
        slots = count()
        template = tuple(next(slots) if step >= 0 else step for step in program)
        atoms = [step for step in program if step >= 0]
        shapes = self._shape(template)
        self._boolean(
            exclude, vid, shapes, atoms, list(positive), list(dict.fromkeys(triggers or ()))
        )
        return -1

    def _shape(self, template: tuple[int, ...]) -> Shapes:
        """The alerts of one program shape (numbered in the order shapes are first met)."""
        found = self.shapes.get(template)
        if found is None:
            found = self.shapes[template] = Shapes(len(self.shapes), sum(s >= 0 for s in template))
        return found

    def _shaped(self, exclude: bool, vid: int, shape: Shape, runs: tuple[str, ...]) -> bool:
        """Compile a boolean query of a common shape from its shape's template.

        False when a phrase has no words (the parser then says what is wrong).
        """
        found = list(map(self.atoms.runs.get, runs))  # mostly known: no call per phrase
        if None in found:
            found = list(map(self.atoms.run, runs))
            if None in found:
                return False
        ids, lengths = zip(*cast("list[tuple[int, int]]", found), strict=True)
        # without a prefix a phrase's rarity is its length: that and the shape decide
        known = self._templates.get((shape, lengths))
        if known is None:
            phrases = tuple(Phrase(tuple(words(run))) for run in runs)
            made = Template.of(shape, phrases)
            known = self._templates[shape, lengths] = (made, self._shape(made.program))
        template, shapes = known
        # slots are numbered in walk order: the program's atoms are `ids`, in order
        positives = [ids[slot] for slot in template.positives]
        triggers = [ids[slot] for slot in template.triggers]
        if len(set(ids)) < len(ids):  # a phrase written twice: one atom, listed once
            positives = list(dict.fromkeys(positives))
            triggers = list(dict.fromkeys(triggers))
        self._boolean(exclude, vid, shapes, ids, positives, triggers)
        return True

    def _boolean(
        self,
        exclude: bool,
        vid: int,
        shapes: Shapes,
        atoms: Sequence[int],
        positives: list[int],
        triggers: list[int],
    ) -> None:
        """File a compiled boolean alert: its program (shape and atoms), positive atoms and
        (distinct) triggers."""
        shapes.alerts.append(vid)
        shapes.atoms += atoms
        self.positives.extend(vid, positives)
        (self.evaluates_exclude if exclude else self.evaluates).add(triggers, vid)

    def program(self, vid: int) -> list[int]:
        """The postfix program of boolean alert `vid` (for tests and debugging: slow)."""
        for template, shapes in self.shapes.items():
            if vid in shapes.alerts:
                row = shapes.alerts.index(vid) * shapes.width
                atoms = shapes.atoms[row : row + shapes.width]
                slots = count()
                return [atoms[next(slots)] if step >= 0 else step for step in template]
        raise KeyError(vid)


class Shapes:
    """The boolean alerts of one program shape: their ids and atoms (`width` per alert)."""

    def __init__(self, number: int, width: int) -> None:
        self.number = number  # shapes are numbered in the order they are first met
        self.width = width
        self.alerts: list[int] = []
        self.atoms: list[int] = []


class Pairs:
    """(key, value) pairs as two parallel lists, ready for numpy."""

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.values: list[int] = []

    def add(self, keys: list[int], value: int) -> None:
        """File `value` under each of `keys`."""
        self.keys += keys
        self.values += [value] * len(keys)

    def extend(self, key: int, values: list[int]) -> None:
        """File each of `values` under `key`."""
        self.keys += [key] * len(values)
        self.values += values

    def lists(self) -> dict[int, list[int]]:
        """The values by key, in order (for tests: slow)."""
        found: dict[int, list[int]] = {}
        for key, value in zip(self.keys, self.values, strict=True):
            found.setdefault(key, []).append(value)
        return found


@dataclass(frozen=True, slots=True)
class Template:
    """A boolean alert compiled with slots for its atoms, numbered in the order a walk meets them.

    The alerts of one `Shape` whose phrases have the same rarities compile alike: with
    each slot replaced by its atom, the template is what `walk` makes of each one's tree.
    """

    program: tuple[int, ...]  # slots (>= 0) and operators
    positives: tuple[int, ...]  # slots of the non-negated atoms, in order
    triggers: tuple[int, ...]  # slots of the trigger atoms

    @staticmethod
    def of(shape: Shape, phrases: tuple[Phrase, ...]) -> Template:
        """Compile the tree of `phrases` in `shape` with the general `walk`, atoms as slots."""
        met: list[Atom] = []

        def slot(atom: Atom) -> int:
            met.append(atom)
            return len(met) - 1

        program: list[int] = []
        positive: dict[int, None] = {}
        triggers = walk(shape.tree(phrases), program, positive, False, slot)[0]
        if tuple(met) != phrases:  # the shape must list its phrases in walk order
            raise AssertionError(f"shape {shape.name!r} lists its phrases out of walk order")
        return Template(tuple(program), tuple(positive), triggers or ())


def walk(
    node: Node,
    out: list[int],
    positive: dict[int, None],
    negated: bool,
    number: Callable[[Atom], int],
) -> tuple[tuple[int, ...] | None, float]:
    """Compile a query tree in one pass, and say what triggers its evaluation.

    Appends the node's postfix program to `out` (each atom as `number` numbers it) and
    its non-negated atoms to `positive`. Returns the *triggers*: atoms one of which must
    hit whenever the node is true (None if there are none), with their cost (how often
    they will hit). In negation normal form an OR needs a trigger from each branch, an
    AND one branch's (the rarest), and a negated atom gives none. The root has
    triggers, since `parse_query` rejects a query that is true with no atom hit.
    """
    if isinstance(node, Not):
        found = walk(node.child, out, positive, not negated, number)
        out.append(NOT)
        return found
    if isinstance(node, And | Or):
        step = AND if isinstance(node, And) else OR
        parts = [walk(node.children[0], out, positive, negated, number)]
        for child in node.children[1:]:
            parts.append(walk(child, out, positive, negated, number))
            out.append(step)
        if (step == OR) != negated:  # an OR, or a negated AND: every branch's
            if any(p[0] is None for p in parts):
                return None, _NEVER
            return tuple(a for p in parts for a in p[0] or ()), sum(p[1] for p in parts)
        usable = [p for p in parts if p[0] is not None]
        return min(usable, key=operator.itemgetter(1)) if usable else (None, _NEVER)
    aid = number(node)
    out.append(aid)
    if negated:
        return None, _NEVER
    positive[aid] = None
    return (aid,), _rarity(node)


def _repeats(
    places: npt.NDArray[np.int64], owners: npt.NDArray[np.int64], longest: int
) -> npt.NDArray[np.bool_]:
    """Which entries repeat an earlier entry of their subscriber (equal texts, equal places).

    `longest` is the most entries a subscriber has: a few, so comparing each entry with
    the few before it is cheaper than sorting (which longer lists fall back to).
    """
    if longest > 8:
        repeats = np.ones(len(places), dtype=bool)
        keys = owners * len(places) + places
        repeats[np.unique(keys, return_index=True)[1]] = False  # each pair's first entry
        return repeats
    repeats = np.zeros(len(places), dtype=bool)
    for lag in range(1, longest):
        repeats[lag:] |= (places[lag:] == places[:-lag]) & (owners[lag:] == owners[:-lag])
    return repeats


class Flat:
    """Lists of ids, one per subscriber, stored back to back with where each starts."""

    def __init__(
        self,
        ids: Sequence[int] | npt.NDArray[np.int32] = (),
        counts: Sequence[int] | npt.NDArray[np.int64] = (),
    ) -> None:
        self.ids = np.array(ids, dtype=np.int32)
        self.counts = np.array(counts, dtype=np.int32)
        self.starts = np.concatenate(([0], np.cumsum(self.counts, dtype=np.int64)))

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
        order = stable_order(ids)  # stable: each id's owners stay in order
        keys, values = ids[order], np.concatenate([f.owners() for f in flats])[order]
        starts = np.flatnonzero(np.diff(keys, prepend=-1))  # where each id's owners start
        unique, sizes = keys[starts], np.diff(starts, append=len(keys))
        if len(sizes) and sizes.max() >> SHIFT:
            raise ValueError(f"more than {1 << SHIFT} subscribers of one alert")
        entries = starts.astype(np.int64) << SHIFT | sizes
        return Table(unique, entries, values.data)


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
