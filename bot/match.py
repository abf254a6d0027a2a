"""Matching: every subscriber's alerts compiled once into one index that papers run through.

An *alert* is one distinct (kind, text) — `keyword: neural collapse`, `author: G. Lajoie`,
`exclude: survey` — shared by every subscriber who wrote it and parsed once. An *atom* is
one distinct phrase, author name, category, source or votes threshold, shared by alerts.

`AlertIndex.match`, per paper:

1. atoms: the folded words of the title and of the abstract are looked up one by one in
   a dictionary of every phrase's first word (`_Phrases`), which finds every phrase of
   every alert; authors, categories, sources and votes are dictionary look-ups too;
2. alerts: a one-atom alert fires when its atom hit; a boolean one is evaluated (once per
   paper, never per subscriber) only when one of its *trigger* atoms hit — atoms chosen so
   that the query cannot be true without one of them (`Compiler._walk`);
3. what fired is kept as (postings entry, `Match`) pairs: a Match is immutable, so one
   serves every subscriber of the alert.

Then, for all papers at once (`_Run._spread`), the pairs are spread over the alerts'
subscribers with one numpy sort of (subscriber, paper); a subscriber that two alerts
reached for one paper gets one merged Match instead. Last, the few subscribers with a
`categories` restriction or `exclude` entries lose the papers those rule out.

So the cost grows with the papers' text and the number of matches, not with subscribers x
alerts. The index keeps its postings (alert → subscribers) back to back in one array
(`Table`): compact, and nothing the garbage collector has to walk.

Scoring (`Match.score`): each distinct term that fired counts once — a phrase 2.0 when it
was found in the title, 1.0 when only in the abstract; an author, category, source or
votes term 1.0. `rank` orders a digest: followed authors first, then score, then votes.
"""

from __future__ import annotations

import ctypes
import gc
from array import array
from bisect import bisect_right
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from itertools import chain, repeat

import numpy as np
import numpy.typing as npt

from bot.builder import builder
from bot.compiler import AND, MASK, NOT, SHIFT, Compiler, Flat, entry_error, tuples
from bot.fold import author_key, fold_label, same_author
from bot.models import Match, Paper, Reason, Subscriber
from bot.phrases import Ints, PhraseFinder, ramp
from bot.query import QueryError

TITLE_WEIGHT = 2.0
OTHER_WEIGHT = 1.0
# Where a term was found, in the order a reason lists its terms.
TITLE, ABSTRACT, AUTHORS, CATEGORIES, SOURCES = range(5)

Found = tuple[int, int, str]  # (section, position in it, the words as the paper writes them)
_LOW = (1 << 32) - 1  # the paper half of a (subscriber, paper) key
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


def _run_program(program: Iterable[int], hit: Container[int]) -> bool:
    """Evaluate a postfix boolean program over the atom ids that hit."""
    stack: list[bool] = []
    for step in program:
        if step >= 0:
            stack.append(step in hit)
        elif step == NOT:
            stack[-1] = not stack[-1]
        else:
            last = stack.pop()
            stack[-1] = (stack[-1] and last) if step == AND else (stack[-1] or last)
    return stack[0]


# ------------------------------------------------------------------------ the index


class AlertIndex:
    """Every subscriber's alerts compiled into one index; `match` runs papers through it."""

    def __init__(self, c: Compiler) -> None:
        """Use `AlertIndex.build`."""
        a = c.atoms
        self._term_keys = array("i", a.term_keys)
        self._pattern_atoms = [array("i", table) for table in a.pattern_atoms]
        self._phrases = PhraseFinder(a.patterns)
        self._author_buckets = tuples(a.author_buckets)
        self._author_keys = a.author_keys
        self._labels = tuples(a.labels)
        self._label_prefixes = a.label_prefixes
        self._votes = sorted(a.votes.items())
        self._vote_minimums = [m for m, _ in self._votes]
        self._kinds = c.kinds
        self._texts = c.texts
        self._single = array("i", c.single)
        self._programs = tuples(c.programs)
        self._positives = tuples(c.positives)
        self._units = tuples(c.units)
        self._evaluates = tuples(c.evaluates)
        self._fires_exclude = tuples(c.fires_exclude)
        self._evaluates_exclude = tuples(c.evaluates_exclude)
        self._subscribers = Flat.inverted(*c.orders)  # alert → its subscribers
        self._subscriber_ids = np.frombuffer(self._subscribers._ids, dtype=np.int32)
        self._units_in_rows(c)
        self._exclude_subscribers = Flat.inverted(c.excludes)
        self._restricts = sorted(set(c.restrictions.values()), key=repr)
        number = {r: i for i, r in enumerate(self._restricts)}
        self._restrict_of = np.full(len(c.emails), -1, dtype=np.int64)
        for sid, restrict in c.restrictions.items():
            self._restrict_of[sid] = number[restrict]
        self._gates = bool(c.restrictions) or bool(c.excludes.counts.any())
        self._emails = c.emails
        self._orders = c.orders

    def _units_in_rows(self, c: Compiler) -> None:
        """Each unit's alerts back to back, by row: an atom's row is its id, a boolean
        alert's comes after the atoms (`_boolean_rows` - unit); and each alert's unit, its
        place in it (to find its Match) and its postings entry."""
        units, alerts = self._units, len(self._kinds)
        self._boolean_rows = c.atoms.count - 1
        rows = np.array([u if u >= 0 else self._boolean_rows - u for u in units], dtype=np.int64)
        counts = np.fromiter(map(len, units.values()), np.int64, len(units))
        self._unit_alerts = np.fromiter(chain.from_iterable(units.values()), np.int64)
        self._unit_counts = np.zeros(c.atoms.count + alerts, dtype=np.int64)
        self._unit_starts = np.zeros(c.atoms.count + alerts, dtype=np.int64)
        self._unit_counts[rows] = counts
        self._unit_starts[rows] = np.cumsum(counts) - counts
        unit_of = np.full(alerts, -1 - alerts, dtype=np.int64)  # exclude entries: no unit
        unit_of[self._unit_alerts] = np.repeat(np.fromiter(units, np.int64, len(units)), counts)
        slot_of = np.zeros(alerts, dtype=np.int64)
        slot_of[self._unit_alerts] = ramp(counts)
        self._unit_of, self._slot_of = unit_of.tolist(), slot_of.tolist()
        where = self._subscribers._where  # every alert but an exclude entry has subscribers
        self._alert_entries = np.zeros(alerts, dtype=np.int64)
        self._alert_entries[np.fromiter(where, np.int64, len(where))] = np.fromiter(
            where.values(), np.int64, len(where)
        )

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
                chunk.fire()
                chunk.spread()
                del chunk
            emails = self._emails
            return dict(zip(map(emails.__getitem__, run.found), run.found.values(), strict=True))

    def _author_atoms(self, name: str) -> tuple[int, ...]:
        """The followed-name atoms that designate this paper author."""
        key = author_key(name)
        if key is None:
            return ()
        buckets = self._author_buckets
        candidates = list(buckets.get(f"{key.surname} {key.initial}") or ())
        if key.given:
            candidates += buckets.get(f"{key.surname} ") or ()
        keys = self._author_keys
        return tuple(aid for aid in candidates if same_author(keys[aid], key))

    def _order(self, sid: int) -> list[int]:
        """A subscriber's alerts, authors first, in the order they wrote them."""
        authors, keywords = self._orders
        return authors.of(sid) + keywords.of(sid)


# ------------------------------------------------------------------------- a day

_Hit = tuple[tuple[str, ...], float, int, int]  # terms, weight, where its occurrences are


def _distinct(strings: Iterable[str]) -> tuple[str, ...]:
    """The strings without repeats, in their order."""
    return tuple(dict.fromkeys(strings))


class _Run:
    """One `match` call: the subscribers' result lists and the caches its papers share."""

    def __init__(self, index: AlertIndex) -> None:
        self.index = index
        self.found: dict[int, list[Match]] = {}  # subscriber → matches, in paper order
        self.authors: dict[str, tuple[int, ...]] = {}  # a paper author → followed-name atoms
        # (unit, words quoted) → one reasons tuple per alert of the unit: the same alerts
        # quote the same words in many papers, and then their Reasons serve them all
        self.reasons: dict[tuple[int, tuple[str, ...]], list[tuple[Reason]]] = {}
        self.admits: dict[tuple[str, ...], npt.NDArray[np.bool_]] = {}  # see `_Chunk.gate`

    def reasons_of(self, unit: int, terms: tuple[str, ...]) -> list[tuple[Reason]]:
        """One (one-element) reasons tuple per alert of the unit, quoting these words."""
        got = self.reasons.get((unit, terms))
        if got is None:
            kinds, texts = self.index._kinds, self.index._texts
            alerts = self.index._units.get(unit) or ()
            got = self.reasons[(unit, terms)] = [
                (_new_reason(kinds[v], texts[v], terms),) for v in alerts
            ]
        return got

    def add(self, spread: list[Match], subscribers: npt.NDArray[np.int64]) -> None:
        """Append matches, grouped by subscriber (`subscribers` is sorted), to their lists."""
        if not spread:
            return
        bounds = [0, *(np.flatnonzero(np.diff(subscribers)) + 1).tolist(), len(spread)]
        found = self.found
        firsts = subscribers[bounds[:-1]].tolist()
        for sid, start, end in zip(firsts, bounds, bounds[1:], strict=False):
            if (got := found.get(sid)) is None:
                found[sid] = spread[start:end]
            else:
                got += spread[start:end]


class _Chunk:
    """Papers matched together: their words laid end to end, what each paper hit, what
    fired, and the resulting Matches spread over the subscribers."""

    def __init__(self, run: _Run, papers: Sequence[Paper]) -> None:
        self.run = run
        self.index = run.index
        self.papers = papers
        # per paper: each atom that hit → its terms, weight and where it was found
        self.hits: list[dict[int, _Hit]] = [{} for _ in papers]
        self.others: list[dict[int, list[Found]]] = [{} for _ in papers]  # non-phrase atoms
        self.kinds: list[int] = []  # phrase occurrences: title (0) or abstract (1),
        self.words: list[int] = []  # the position of their first word,
        self.quotes: list[str] = []  # and the words as the paper writes them
        # what fired, in paper order: unit, paper, one reasons tuple per alert, score
        self.units: list[int] = []
        self.numbers: list[int] = []
        self.reasons: list[list[tuple[Reason]]] = []
        self.scores: list[float] = []
        self.paper_fires: list[int] = []  # where each paper's fires start
        self.fired_at: dict[int, dict[int, int]] = {}  # paper → unit → fire (for merges)
        self.excluded: list[int] = []  # subscriber << 32 | paper that an exclude entry rules out
        self._read_text()
        for number, paper in enumerate(papers):
            self._read_fields(number, paper)

    # -- reading the papers

    def _read_text(self) -> None:
        """Every phrase in the titles and abstracts: terms and weight per (paper, atom)."""
        texts = [text for paper in self.papers for text in (paper.title, paper.abstract)]
        found = self.index._phrases.find(texts)
        if not len(found.text):
            return
        owner, kind = found.text >> 1, found.text & 1  # texts: title, abstract, title, ...
        order = np.lexsort((found.first, kind, found.pattern, owner))  # by paper, phrase,
        owner, kind, pid = owner[order], kind[order], found.pattern[order]  # reading order
        self.kinds, self.words = kind.tolist(), found.first[order].tolist()
        self.quotes = list(
            map(
                _slice,
                map(texts.__getitem__, found.text[order].tolist()),
                found.begin[order].tolist(),
                found.end[order].tolist(),
            )
        )
        key = owner << 32 | pid
        heads = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        tails = np.append(heads[1:], len(key))
        mids = heads + np.add.reduceat((kind == 0).astype(np.int64), heads)  # title first
        self._file_phrases(owner[heads].tolist(), pid[heads].tolist(), heads, mids, tails)

    def _file_phrases(
        self, papers: list[int], pids: list[int], heads: Ints, mids: Ints, tails: Ints
    ) -> None:
        """File each phrase found in a paper under the atoms it satisfies."""
        anywhere, in_title, in_abstract = self.index._pattern_atoms
        quotes, hits = self.quotes, self.hits
        for number, pid, a, m, b in zip(
            papers, pids, heads.tolist(), mids.tolist(), tails.tolist(), strict=True
        ):
            got = hits[number]
            if (aid := anywhere[pid]) >= 0:
                weight = TITLE_WEIGHT if m > a else OTHER_WEIGHT
                got[aid] = (_distinct(quotes[a:b]) if b - a > 1 else (quotes[a],), weight, a, b)
            if m > a and (aid := in_title[pid]) >= 0:
                got[aid] = (_distinct(quotes[a:m]), TITLE_WEIGHT, a, m)
            if b > m and (aid := in_abstract[pid]) >= 0:
                got[aid] = (_distinct(quotes[m:b]), OTHER_WEIGHT, m, b)

    def _read_fields(self, number: int, paper: Paper) -> None:
        """Followed authors, categories, sources and votes of one paper."""
        index = self.index
        found: dict[int, list[Found]] = {}
        if paper.authors:
            cache = self.run.authors
            for i, name in enumerate(paper.authors):
                ids = cache.get(name)
                if ids is None:
                    ids = cache[name] = index._author_atoms(name)
                for aid in ids:
                    found.setdefault(aid, []).append((AUTHORS, i, name))
        if index._labels or index._label_prefixes:
            self._read_labels(found, "category", CATEGORIES, paper.categories)
            self._read_labels(found, "source", SOURCES, paper.sources)
        if paper.votes is not None:
            for _, aid in index._votes[: bisect_right(index._vote_minimums, paper.votes)]:
                found[aid] = []
        got = self.hits[number]
        for aid, places in found.items():
            got[aid] = (_distinct(f[2] for f in places), OTHER_WEIGHT, -1, -1)
        self.others[number] = found

    def _read_labels(
        self, found: dict[int, list[Found]], field: str, section: int, values: Sequence[str]
    ) -> None:
        """Category or source atoms: exact names, then prefixes."""
        index = self.index
        for i, value in enumerate(values):
            folded = fold_label(value)
            ids = list(index._labels.get(f"{field}:{folded}") or ())
            ids += [a for f, p, a in index._label_prefixes if f == field and folded.startswith(p)]
            for aid in ids:
                found.setdefault(aid, []).append((section, i, value))

    # -- what fired

    def fire(self) -> None:
        """Every alert that fires for each paper, and the exclude entries that rule it out."""
        index, run = self.index, self.run
        units, positives = index._units.keys(), index._positives
        numbers, fired, reasons, scores = self.numbers, self.units, self.reasons, self.scores
        reasons_of = run.reasons_of
        for number, got in enumerate(self.hits):
            self.paper_fires.append(len(fired))
            if not got:
                continue
            for aid in got.keys() & units:  # the atoms that are units of their own
                terms, weight = got[aid][:2]
                fired.append(aid)
                numbers.append(number)
                reasons.append(reasons_of(aid, terms))
                scores.append(weight)
            for vid in _evaluated(got, index._evaluates, index._programs):
                terms, score = self._combined(number, positives.get(vid) or ())
                fired.append(-1 - vid)
                numbers.append(number)
                reasons.append(reasons_of(-1 - vid, terms))
                scores.append(score)
            if index._gates:
                self._exclusions(number, got)
        self.paper_fires.append(len(fired))

    def _combined(self, number: int, positive: Iterable[int]) -> tuple[tuple[str, ...], float]:
        """Words (in reading order) and score of several atoms, each distinct term once."""
        got, keys = self.hits[number], self.index._term_keys
        found: list[Found] = []
        best: dict[int, float] = {}
        for aid in positive:
            if (hit := got.get(aid)) is None:
                continue
            _, weight, lo, hi = hit
            if lo >= 0:
                found += zip(self.kinds[lo:hi], self.words[lo:hi], self.quotes[lo:hi], strict=True)
            else:
                found += self.others[number][aid]
            if weight > best.get(keys[aid], 0.0):
                best[keys[aid]] = weight
        found.sort()
        return _distinct(f[2] for f in found), sum(best.values())

    def _exclusions(self, number: int, got: dict[int, _Hit]) -> None:
        """Note the subscribers one of whose exclude entries this paper matches."""
        index = self.index
        fires = index._fires_exclude
        vids = [vid for aid in got.keys() & fires.keys() for vid in fires[aid]]
        vids += _evaluated(got, index._evaluates_exclude, index._programs)
        postings = index._exclude_subscribers
        for vid in vids:
            if (sids := postings.get(vid)) is not None:
                self.excluded += [sid << 32 | number for sid in sids.tolist()]

    # -- spreading over subscribers

    def spread(self) -> None:
        """Give each fired alert's Match to the alert's subscribers, for the whole chunk.

        One stable sort of (subscriber, paper) pairs in numpy instead of a Python
        `list.append` per pair: a day has millions of pairs.
        """
        if not self.units:
            return
        index = self.index
        units = np.array(self.units, dtype=np.int64)
        rows = np.where(units >= 0, units, index._boolean_rows - units)
        counts = index._unit_counts[rows]
        alerts = np.repeat(index._unit_starts[rows], counts) + ramp(counts)
        matches = self._matches(counts)
        entries = index._alert_entries[index._unit_alerts[alerts]]
        sizes = entries & MASK
        offsets = np.repeat(entries >> SHIFT, sizes) + ramp(sizes)
        subscribers = index._subscriber_ids[offsets].astype(np.int64)
        which = np.repeat(np.arange(len(entries)), sizes)
        numbers = np.repeat(np.repeat(np.array(self.numbers, dtype=np.int64), counts), sizes)
        order = _stable_order(subscribers)  # by subscriber, then paper (pairs are in paper order)
        subscribers, numbers, which = subscribers[order], numbers[order], which[order]
        keys = subscribers << 32 | numbers
        if index._gates:
            keep = self.gate(subscribers, numbers, keys)
            keys, which = keys[keep], which[keep]
        again = np.flatnonzero(keys[1:] == keys[:-1]) + 1  # a pair the one before repeats
        if len(again):  # subscribers reached by two alerts: one merged Match instead
            firsts = np.setdiff1d(again - 1, again)
            pairs = zip((keys[firsts] >> 32).tolist(), (keys[firsts] & _LOW).tolist(), strict=True)
            merged = [self._merged(s, n, matches) for s, n in pairs]
            which[firsts] = len(matches) + np.arange(len(merged))
            matches = [*matches, *merged]
            keep = np.ones(len(keys), dtype=bool)
            keep[again] = False
            keys, which = keys[keep], which[keep]
        objects = np.empty(len(matches), dtype=object)
        objects[:] = matches
        self.run.add(objects[which].tolist(), keys >> 32)

    def _matches(self, counts: Ints) -> list[Match]:
        """One Match per alert that fired, in the order of the fired units and their alerts."""
        ids = [paper.id for paper in self.papers]
        repeats = counts.tolist()
        paper_ids = chain.from_iterable(map(repeat, map(ids.__getitem__, self.numbers), repeats))
        scores = chain.from_iterable(map(repeat, self.scores, repeats))
        reasons = chain.from_iterable(self.reasons)
        self.match_starts = (np.cumsum(counts) - counts).tolist()
        return list(map(_new_match, paper_ids, reasons, scores))

    def gate(self, subscribers: Ints, numbers: Ints, keys: Ints) -> npt.NDArray[np.bool_]:
        """Which pairs a subscriber's `categories` restriction or `exclude` entries let through.

        Done once per chunk for all (subscriber, paper) pairs, sorted, rather than for every
        alert of every paper.
        """
        index = self.index
        keep = np.ones(len(subscribers), dtype=bool)
        if index._restricts:
            admits = np.stack([self._admitted(paper) for paper in self.papers], axis=1)
            restricted = index._restrict_of[subscribers]
            some = np.flatnonzero(restricted >= 0)
            keep[some] = admits[restricted[some], numbers[some]]
        if self.excluded:  # few: find them among the sorted pairs
            ruled_out = np.unique(self.excluded)
            low = np.searchsorted(keys, ruled_out, "left")
            counts = np.searchsorted(keys, ruled_out, "right") - low
            keep[np.repeat(low, counts) + ramp(counts)] = False
        return keep

    def _admitted(self, paper: Paper) -> npt.NDArray[np.bool_]:
        """Which of the index's `categories` restrictions let this paper through."""
        names = tuple(map(fold_label, paper.categories))
        got = self.run.admits.get(names)
        if got is None:
            restricts = self.index._restricts
            got = np.array([any(map(r.admits, names)) for r in restricts], dtype=bool)
            self.run.admits[names] = got
        return got

    def _merged(self, sid: int, number: int, matches: list[Match]) -> Match:
        """The Match of a subscriber reached by several alerts: reasons in their order."""
        index = self.index
        fired = self.fired_at.get(number)  # unit → its fire
        if fired is None:
            lo, hi = self.paper_fires[number], self.paper_fires[number + 1]
            fired = self.fired_at[number] = dict(zip(self.units[lo:hi], range(lo, hi), strict=True))
        starts, unit_of, slot_of = self.match_starts, index._unit_of, index._slot_of
        reasons: list[Reason] = []  # of each of their alerts that fired, in their order
        positive: list[int] = []
        for vid in index._order(sid):
            if (fire := fired.get(unit_of[vid])) is not None:
                reasons += matches[starts[fire] + slot_of[vid]].reasons
                single = index._single[vid]
                positive += [single] if single >= 0 else index._positives.get(vid) or ()
        got, keys = self.hits[number], index._term_keys
        best: dict[int, float] = {}
        for aid in positive:
            if (hit := got.get(aid)) is not None and hit[1] > best.get(keys[aid], 0.0):
                best[keys[aid]] = hit[1]
        return Match(self.papers[number].id, tuple(reasons), sum(best.values()))


def _slice(text: str, begin: int, end: int) -> str:
    """text[begin:end]."""
    return text[begin:end]


def _evaluated(
    got: Mapping[int, object],
    table: dict[int, tuple[int, ...]],
    programs: dict[int, tuple[int, ...]],
) -> list[int]:
    """The boolean alerts that one of the paper's atoms triggers and that hold true."""
    triggered = list(filter(None, map(table.get, got)))
    if not triggered:
        return []
    candidates = triggered[0] if len(triggered) == 1 else dict.fromkeys(chain(*triggered))
    return [vid for vid in candidates if _run_program(programs.get(vid) or (), got)]


def _stable_order(values: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """`np.argsort(values, kind="stable")` for values below 2**32, several times faster.

    Two stable sorts of 16-bit halves, which numpy does by radix sort in linear time.
    """
    low = (values & 0xFFFF).astype(np.uint16)
    order = np.argsort(low, kind="stable")
    high = (values[order] >> 16).astype(np.uint16)
    return order[np.argsort(high, kind="stable")]


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
