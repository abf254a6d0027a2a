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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import chain, compress

import numpy as np
import numpy.typing as npt

from bot.builder import builder
from bot.compiler import AND, MASK, NOT, SHIFT, Compiler, Flat, Restrict, entry_error, tuples
from bot.fold import author_key, fold_label, same_author, word_spans, words
from bot.models import Match, Paper, Reason, Subscriber
from bot.query import QueryError

TITLE_WEIGHT = 2.0
OTHER_WEIGHT = 1.0
# Where a term was found, in the order a reason lists its terms.
TITLE, ABSTRACT, AUTHORS, CATEGORIES, SOURCES = range(5)

Found = tuple[int, int, str]  # (section, position in it, the words as the paper writes them)
_SPREAD = 1_000_000  # (subscriber, paper) pairs held before they are spread (memory)
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


def _run_program(program: Iterable[int], hit: set[int]) -> bool:
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
        self._phrases = _Phrases(a.patterns)
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
        where = self._subscribers._where  # every alert but an exclude entry has subscribers
        # each alert's unit and its place in it, to find its Match (exclude entries have
        # no unit: they get a number that is none)
        self._unit_of = [-1 - len(self._kinds)] * len(self._kinds)
        self._slot_of = [0] * len(self._kinds)
        for unit, alerts in self._units.items():
            for slot, vid in enumerate(alerts):
                self._unit_of[vid], self._slot_of[vid] = unit, slot
        self._unit_entries = {u: tuple(map(where.__getitem__, a)) for u, a in self._units.items()}
        self._exclude_subscribers = Flat.inverted(c.excludes)
        self._restrictions = c.restrictions
        # subscribers whose matches are checked against their restriction and excludes
        gated = {*c.restrictions, *compress(range(len(c.emails)), c.excludes.counts)}
        self._gated = sorted(gated)
        self._emails = c.emails
        self._orders = c.orders

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
            done: set[str] = set()
            for paper in papers:
                if paper.id not in done:
                    done.add(paper.id)
                    run.paper(paper)
            found = run.finish()
            del run
            emails = self._emails
            return {emails[sid]: got for sid, got in found.items()}

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


_Step = tuple[str, bool]  # a word of a phrase: folded, and whether it is a prefix (`transform*`)
# a phrase (pattern id), its words after the first, and those as steps if one is a prefix
_Entry = tuple[int, list[str], tuple[_Step, ...] | None]
Place = tuple[int, int, int]  # an occurrence: section (TITLE or ABSTRACT), first word, end


@dataclass(frozen=True, slots=True)
class _Starting:
    """The phrases that can start at a word: one-word phrases it is, longer phrases by
    their second word (`then`, entries holding the words after the second), and the few
    whose second word is a prefix (`others`, entries holding the words after the first)."""

    alone: tuple[int, ...]
    then: dict[str, list[_Entry]]
    others: tuple[_Entry, ...]


class _Phrases:
    """Every phrase of every alert, found in a paper's folded words by dictionary look-ups.

    Phrases are filed under their first word (or, for `transform*`, its stem) and then
    their second; what can start at a word is worked out once per word and cached for the
    index's life, since papers share most of their vocabulary. So a paper costs about a
    dictionary look-up or two per word, however many phrases there are.
    """

    def __init__(self, patterns: Mapping[tuple[str, ...], int]) -> None:
        self._exact: dict[str, list[_Entry]] = {}
        self._stems: dict[str, list[_Entry]] = {}
        for phrase_words, pid in patterns.items():
            steps = tuple((w[:-1], True) if w.endswith("*") else (w, False) for w in phrase_words)
            (first, prefix), rest = steps[0], steps[1:]
            entry = (pid, [w for w, _ in rest], rest if any(p for _, p in rest) else None)
            (self._stems if prefix else self._exact).setdefault(first, []).append(entry)
        self._lengths = sorted({len(stem) for stem in self._stems})
        self._starting: dict[str, _Starting | None] = {}

    def _look_up(self, word: str) -> None:
        """File what can start at this word (None: nothing) in `_starting`."""
        found = list(self._exact.get(word, ()))
        for size in self._lengths:
            if size <= len(word):
                found += self._stems.get(word[:size], ())
        if len(self._starting) > 1_000_000:  # a bound for a long-lived index
            self._starting.clear()
        if not found:
            self._starting[word] = None
            return
        alone: list[int] = []
        then: dict[str, list[_Entry]] = {}
        others: list[_Entry] = []
        for pid, rest, steps in found:
            if not rest:
                alone.append(pid)
            elif steps is not None and steps[0][1]:  # the second word is a prefix
                others.append((pid, rest, steps))
            else:
                after = (pid, rest[1:], steps[1:] if steps is not None else None)
                then.setdefault(rest[0], []).append(after)
        self._starting[word] = _Starting(tuple(alone), then, tuple(others))

    def scan(self, tokens: list[str], section: int, places: dict[int, list[Place]]) -> None:
        """Add every occurrence in these words (one section of a paper) to `places`."""
        starting = self._starting
        for word in set(tokens).difference(starting):  # words not looked up yet
            self._look_up(word)
        size = len(tokens)
        for i, word in enumerate(tokens):
            if (start := starting[word]) is None:
                continue
            for pid in start.alone:
                _add(places, pid, (section, i, i + 1))
            if start.then and i + 1 < size and (entries := start.then.get(tokens[i + 1])):
                for pid, rest, steps in entries:
                    if _follows(tokens, i + 2, rest, steps):
                        _add(places, pid, (section, i, i + 2 + len(rest)))
            for pid, rest, steps in start.others:
                if _follows(tokens, i + 1, rest, steps):
                    _add(places, pid, (section, i, i + 1 + len(rest)))


def _stable_order(values: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """`np.argsort(values, kind="stable")` for values below 2**32, several times faster.

    Two stable sorts of 16-bit halves, which numpy does by radix sort in linear time.
    """
    low = (values & 0xFFFF).astype(np.uint16)
    order = np.argsort(low, kind="stable")
    high = (values[order] >> 16).astype(np.uint16)
    return order[np.argsort(high, kind="stable")]


def _add(places: dict[int, list[Place]], pid: int, place: Place) -> None:
    """Note an occurrence of a phrase."""
    if (got := places.get(pid)) is None:
        places[pid] = [place]
    else:
        got.append(place)


def _follows(
    tokens: list[str], start: int, rest: list[str], steps: tuple[_Step, ...] | None
) -> bool:
    """Do the words from `start` on spell the rest of a phrase?"""
    if not rest:
        return True
    if steps is None:
        return tokens[start : start + len(rest)] == rest
    return start + len(steps) <= len(tokens) and _agrees(steps, tokens, start)


def _agrees(steps: tuple[_Step, ...], tokens: list[str], start: int) -> bool:
    """Do the words from `start` on spell these phrase words (a prefix agrees with a start)?"""
    for (word, prefix), token in zip(steps, tokens[start : start + len(steps)], strict=True):
        if token != word and not (prefix and token.startswith(word)):
            return False
    return True


# ---------------------------------------------------------------------- one paper


class _Hits:
    """The atoms one paper satisfies; where and how it writes them is worked out on demand."""

    def __init__(
        self, index: AlertIndex, paper: Paper, authors: dict[str, tuple[int, ...]]
    ) -> None:
        self.index = index
        self.paper = paper
        self.phrases: dict[int, tuple[int, int]] = {}  # atom → (pattern, field)
        self.others: dict[int, list[Found]] = {}  # author, label and votes atoms
        self.places: dict[int, list[Place]] = {}  # pattern → its occurrences
        self._terms: dict[int, tuple[tuple[str, ...], float]] = {}
        self._spans: list[list[tuple[int, int]] | None] = [None, None]  # title, abstract
        self._scan_text()
        if paper.authors:
            self._scan_authors(authors)
        if index._labels or index._label_prefixes:
            self._scan_labels("category", CATEGORIES, paper.categories)
            self._scan_labels("source", SOURCES, paper.sources)
        if paper.votes is not None:
            for _, aid in index._votes[: bisect_right(index._vote_minimums, paper.votes)]:
                self.others[aid] = []
        self.all = {*self.phrases, *self.others}

    def _scan_text(self) -> None:
        """Phrase atoms found in the title or abstract."""
        index = self.index
        self.title_words = words(self.paper.title)
        self.abstract_words = words(self.paper.abstract)
        places, phrases = self.places, self.phrases
        index._phrases.scan(self.title_words, TITLE, places)
        index._phrases.scan(self.abstract_words, ABSTRACT, places)
        anywhere, in_title, in_abstract = index._pattern_atoms
        for pid, where in places.items():
            if (aid := anywhere[pid]) >= 0:
                phrases[aid] = (pid, 0)
            if where[0][0] == TITLE and (aid := in_title[pid]) >= 0:
                phrases[aid] = (pid, 1)
            if where[-1][0] == ABSTRACT and (aid := in_abstract[pid]) >= 0:
                phrases[aid] = (pid, 2)

    def _scan_authors(self, cache: dict[str, tuple[int, ...]]) -> None:
        """Followed-author atoms, by surname and initial (cached per name for the run)."""
        for i, name in enumerate(self.paper.authors):
            ids = cache.get(name)
            if ids is None:
                ids = cache[name] = self.index._author_atoms(name)
            for aid in ids:
                self.others.setdefault(aid, []).append((AUTHORS, i, name))

    def _scan_labels(self, field: str, section: int, values: Sequence[str]) -> None:
        """Category or source atoms: exact names, then prefixes."""
        index = self.index
        for i, value in enumerate(values):
            folded = fold_label(value)
            ids = list(index._labels.get(f"{field}:{folded}") or ())
            ids += [a for f, p, a in index._label_prefixes if f == field and folded.startswith(p)]
            for aid in ids:
                self.others.setdefault(aid, []).append((section, i, value))

    def found(self, aid: int) -> list[Found]:
        """Where the paper satisfies an atom that hit, in reading order (title first)."""
        got = self.others.get(aid)
        if got is not None:
            return got
        pid, field = self.phrases[aid]
        places = self.places[pid]
        if field:  # 1: title only, 2: abstract only
            places = [p for p in places if p[0] == field - 1]
        return list(map(self._quote, places))

    def _quote(self, place: Place) -> Found:
        """An occurrence as the paper writes it: (section, offset, the words)."""
        section, first, end = place
        spans = self._spans[section]
        if spans is None:
            source = self.paper.title if section == TITLE else self.paper.abstract
            spans = self._spans[section] = word_spans(source)
        begin = spans[first][0]
        return (
            section,
            begin,
            (self.paper.title if section == TITLE else self.paper.abstract)[
                begin : spans[end - 1][1]
            ],
        )

    def weight(self, aid: int) -> float:
        """An atom's weight in a score: a phrase found in the title counts more."""
        phrase = self.phrases.get(aid)
        if phrase is None or phrase[1] == 2 or self.places[phrase[0]][0][0] != TITLE:
            return OTHER_WEIGHT
        return TITLE_WEIGHT

    def terms(self, aid: int) -> tuple[tuple[str, ...], float]:
        """An atom's distinct words as the paper writes them, and its weight for the score."""
        got = self._terms.get(aid)
        if got is None:
            found = self.found(aid)
            got = self._terms[aid] = (tuple(dict.fromkeys(f[2] for f in found)), self.weight(aid))
        return got


class _Run:
    """One `match` call: the subscribers' result lists and the caches its papers share."""

    def __init__(self, index: AlertIndex) -> None:
        self.index = index
        self.found: dict[int, list[Match]] = {}  # subscriber → matches, in paper order
        self.authors: dict[str, tuple[int, ...]] = {}
        # what fired, waiting to be spread over subscribers (`_spread`): per alert that
        # fired, its postings entry, its Match and the paper's number; and each paper's
        # delivery, to merge the Matches of a subscriber whom two alerts reached
        self.entries: list[int] = []
        self.matches: list[Match] = []
        self.numbers: list[int] = []
        self.deliveries: dict[int, _Delivery] = {}
        self.pending = 0
        self.number = 0
        # unit → (words quoted, one reasons tuple per alert): the same alerts often quote
        # the same words in many papers, and then their Reasons serve them all
        self.reasons: dict[int, tuple[tuple[str, ...], list[tuple[Reason]]]] = {}
        self.excluded: dict[str, set[int]] = {}  # paper → subscribers who exclude it
        self.by_category: dict[str, set[str]] = {}  # folded category → papers

    def paper(self, paper: Paper) -> None:
        """Append this paper's Match to every subscriber one of its alerts fired for."""
        hits = _Hits(self.index, paper, self.authors)
        if not hits.all:
            return
        index = self.index
        delivery = _Delivery(self, hits)
        units = index._units
        for aid in units.keys() & hits.all:  # the atoms that are units of their own
            delivery.fire(aid, *hits.terms(aid))
        for vid in self.evaluated(hits, index._evaluates):
            delivery.fire(-1 - vid, *delivery.combined(index._positives.get(vid) or ()))
        if not delivery.entries:
            return
        self.number += 1
        delivery.hand_over(self.number)
        if self.pending > _SPREAD:
            self._spread()
        if index._gated:
            if excluded := self.excluded_by(hits):
                self.excluded[paper.id] = excluded
            for name in map(fold_label, paper.categories):
                self.by_category.setdefault(name, set()).add(paper.id)

    def evaluated(self, hits: _Hits, table: dict[int, tuple[int, ...]]) -> list[int]:
        """The boolean alerts that one of the paper's atoms triggers and that hold true."""
        hit = hits.all
        triggered = list(filter(None, map(table.get, hit)))
        if not triggered:
            return []
        programs = self.index._programs
        candidates = triggered[0] if len(triggered) == 1 else dict.fromkeys(chain(*triggered))
        return [vid for vid in candidates if _run_program(programs.get(vid) or (), hit)]

    def excluded_by(self, hits: _Hits) -> set[int]:
        """Subscribers one of whose exclude entries this paper matches."""
        index = self.index
        fires = index._fires_exclude
        fired = [vid for aid in hits.all if aid in fires for vid in fires.get(aid) or ()]
        fired += self.evaluated(hits, index._evaluates_exclude)
        postings = index._exclude_subscribers
        return set(chain.from_iterable(postings.get(vid) or () for vid in fired))

    def finish(self) -> dict[int, list[Match]]:
        """Every subscriber's matches, once all the papers have been through `paper`."""
        self._spread()
        self.gate()
        return {sid: got for sid, got in self.found.items() if got}

    def _spread(self) -> None:
        """Give each fired alert's Match to the alert's subscribers, for all papers at once.

        One stable sort of (subscriber, paper) pairs in numpy instead of a Python
        `list.append` per pair: a day has millions of pairs.
        """
        if not self.entries:
            return
        entries = np.array(self.entries, dtype=np.int64)
        starts, counts = entries >> SHIFT, entries & MASK
        total = int(counts.sum())
        # the subscribers of fired alert k are ids[starts[k] : starts[k] + counts[k]]
        offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
        subscribers = self.index._subscriber_ids[offsets].astype(np.int64)
        which = np.repeat(np.arange(len(entries)), counts)
        numbers = np.repeat(np.array(self.numbers, dtype=np.int64), counts)
        keys = subscribers << 32 | numbers
        order = _stable_order(subscribers)  # by subscriber, then paper (pairs are in paper order)
        keys, which = keys[order], which[order]
        matches = self.matches
        again = np.flatnonzero(keys[1:] == keys[:-1]) + 1  # a pair the one before repeats
        if len(again):  # subscribers reached by two alerts: one merged Match instead
            firsts = np.setdiff1d(again - 1, again)
            pairs = zip(*divmod(keys[firsts], 1 << 32), strict=True)
            merged = [self.deliveries[int(n)].merged(int(s)) for s, n in pairs]
            which[firsts] = len(matches) + np.arange(len(merged))
            matches = [*matches, *merged]
            keep = np.ones(len(keys), dtype=bool)
            keep[again] = False
            keys, which = keys[keep], which[keep]
        subscribers = keys >> 32
        objects = np.empty(len(matches), dtype=object)
        objects[:] = matches
        spread = objects[which].tolist()
        bounds = [0, *(np.flatnonzero(np.diff(subscribers)) + 1).tolist(), len(spread)]
        found = self.found
        firsts = subscribers[bounds[:-1]].tolist()
        for sid, start, end in zip(firsts, bounds, bounds[1:], strict=False):
            if (got := found.get(sid)) is None:
                found[sid] = spread[start:end]
            else:
                got += spread[start:end]
        self.entries, self.matches, self.numbers, self.deliveries = [], [], [], {}
        self.pending = 0

    def gate(self) -> None:
        """Take out the matches that a subscriber's `categories` or `exclude` rule out.

        Done once at the end, over the few subscribers who have such rules, rather than
        for every alert of every paper.
        """
        found, restrictions = self.found, self.index._restrictions
        allowed: dict[Restrict, set[str]] = {}
        excluded: dict[int, set[str]] = {}
        for pid, sids in self.excluded.items():
            for sid in sids:
                excluded.setdefault(sid, set()).add(pid)
        for sid in self.index._gated:
            got = found.get(sid)
            if not got:
                continue
            kept = got
            if (restrict := restrictions.get(sid)) is not None:
                papers = allowed.get(restrict)
                if papers is None:
                    papers = allowed[restrict] = self._allowed(restrict)
                kept = [m for m in kept if m.paper_id in papers]
            if (papers := excluded.get(sid)) is not None:
                kept = [m for m in kept if m.paper_id not in papers]
            if len(kept) < len(got):
                found[sid] = kept

    def _allowed(self, restrict: Restrict) -> set[str]:
        """The papers of this run that a `categories` restriction lets through."""
        by_category = self.by_category
        names = filter(restrict.admits, by_category)
        return set().union(*map(by_category.__getitem__, names))

    def reasons_of(self, unit: int, terms: tuple[str, ...]) -> list[tuple[Reason]]:
        """One (one-element) reasons tuple per alert of the unit, quoting these words."""
        cached = self.reasons.get(unit)
        if cached is not None and cached[0] == terms:
            return cached[1]
        kinds, texts = self.index._kinds, self.index._texts
        alerts = self.index._units.get(unit) or ()
        reasons = [(_new_reason(kinds[v], texts[v], terms),) for v in alerts]
        self.reasons[unit] = (terms, reasons)
        return reasons


class _Delivery:
    """Delivering one paper: its Matches lined up with their subscribers, appended in bulk;
    the rare subscriber reached by two alerts gets one merged Match instead."""

    def __init__(self, run: _Run, hits: _Hits) -> None:
        self.run = run
        self.index = run.index
        self.hits = hits
        self.units: list[tuple[int, list[Match]]] = []
        self.entries: list[int] = []  # the postings entry of each alert that fired
        self.matches: list[Match] = []  # and its Match
        self.paper_id = hits.paper.id
        self.weights: dict[int, float] = {}  # atom → its weight in a score
        self._fired: dict[int, list[Match]] = {}

    def fire(self, unit: int, terms: tuple[str, ...], score: float) -> None:
        """A unit fired: a Match per alert, lined up with each alert's subscribers."""
        paper_id = self.hits.paper.id
        matches = [_new_match(paper_id, r, score) for r in self.run.reasons_of(unit, terms)]
        self.units.append((unit, matches))
        self.entries += self.index._unit_entries[unit]
        self.matches += matches

    def hand_over(self, number: int) -> None:
        """Give what fired to the run, as its paper `number`; keep only what a merge needs."""
        run = self.run
        run.entries += self.entries
        run.matches += self.matches
        run.numbers += [number] * len(self.entries)
        run.pending += sum(e & MASK for e in self.entries)
        if len(self.entries) > 1:  # someone may be reached twice
            hits = self.hits
            self.weights = {aid: hits.weight(aid) for aid in hits.all}
            run.deliveries[number] = self
        del self.hits, self.entries, self.matches

    def combined(self, positive: Iterable[int]) -> tuple[tuple[str, ...], float]:
        """Words (in reading order) and score of several atoms, each distinct term once."""
        hits, keys = self.hits, self.index._term_keys
        found: list[Found] = []
        best: dict[int, float] = {}
        for aid in positive:
            if aid in hits.all:
                found += hits.found(aid)
                weight = hits.terms(aid)[1]
                best[keys[aid]] = max(weight, best.get(keys[aid], 0.0))
        found.sort()
        return tuple(dict.fromkeys(f[2] for f in found)), sum(best.values())

    def merged(self, sid: int) -> Match:
        """The Match of a subscriber reached by several alerts: reasons in their order."""
        index = self.index
        if not self._fired:  # unit → its Matches, made at the first merge
            self._fired = dict(self.units)
        fired, unit_of, slot_of = self._fired, index._unit_of, index._slot_of
        reasons: list[Reason] = []  # of each of their alerts that fired, in their order
        positive: list[int] = []
        for vid in index._order(sid):
            if (matches := fired.get(unit_of[vid])) is not None:
                reasons += matches[slot_of[vid]].reasons
                single = index._single[vid]
                positive += [single] if single >= 0 else index._positives.get(vid) or ()
        keys, weights = index._term_keys, self.weights
        best: dict[int, float] = {}
        for aid in positive:
            if (weight := weights.get(aid)) is not None:
                best[keys[aid]] = max(weight, best.get(keys[aid], 0.0))
        return Match(self.paper_id, tuple(reasons), sum(best.values()))


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
