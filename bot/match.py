"""Matching: every subscriber's alerts compiled once into one index that papers run through.

An *alert* is one distinct (kind, text) — `keyword: neural collapse`, `author: G. Lajoie`,
`exclude: survey` — shared by every subscriber who wrote it, parsed once. An *atom* is one
distinct phrase, author name, category, source or votes threshold, shared by every alert.

`AlertIndex.match`, per paper:

1. atoms: one Aho-Corasick scan of the folded " title | abstract " text finds every
   phrase of every alert; authors, categories, sources and votes are dictionary look-ups;
2. alerts: a one-atom alert fires when its atom hit; a boolean one is evaluated (once per
   paper, never per subscriber) only when one of its *trigger* atoms hit — atoms chosen so
   that the query cannot be true without one of them (`_triggers`);
3. subscribers: the postings of the fired alerts, less those the paper is excluded or
   restricted for, with set operations. Subscribers reached by one alert share one
   `Match` (it is immutable), so each (subscriber, paper) pair costs a few C-level steps.

Scoring (`Match.score`): each distinct term that fired counts once — a phrase 2.0 when it
was found in the title, 1.0 when only in the abstract; an author, category, source or
votes term 1.0. `rank` orders a digest: followed authors first, then score, then votes.
"""

from __future__ import annotations

import gc
import re
from bisect import bisect_right
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, filterfalse, repeat
from typing import TypeVar

import ahocorasick

from bot.fold import AuthorKey, author_key, fold_label, same_author, word_spans, words
from bot.models import Match, Paper, Reason, Subscriber
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
    atoms,
    parse_follow,
    parse_query,
)

TITLE_WEIGHT = 2.0
OTHER_WEIGHT = 1.0
# Where a term was found, in the order a reason lists its terms.
TITLE, ABSTRACT, AUTHORS, CATEGORIES, SOURCES = range(5)

Found = tuple[int, int, str]  # (section, position in it, the words as the paper writes them)
Weights = tuple[tuple[object, float], ...]
_K = TypeVar("_K")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic GC: the index makes millions of objects and no cycles, and the
    collector's passes over them would otherwise take most of the build and match time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ------------------------------------------------------------------------ compiling


@dataclass(frozen=True, slots=True)
class _Op:
    """A boolean query node over atom ids: `op` is "and", "or" or "not" (one argument)."""

    op: str
    args: tuple[int | _Op, ...]


@dataclass(frozen=True, slots=True)
class _Alert:
    """One distinct alert; `query` is None when the alert is its single positive atom."""

    kind: str
    text: str
    query: _Op | None
    positive: tuple[int, ...]


def phrase_pattern(phrase_words: tuple[str, ...]) -> tuple[str, re.Pattern[str] | None]:
    """The automaton key for a phrase and, when it has a prefix word, the regex for its rest.

    Keys are matched in " word word " text (single spaces, a space at both ends), so the
    spaces make matches whole words. A prefix word ends the key without its space; the
    words after it are checked by the regex where the key ended.
    """
    cut = next((i for i, w in enumerate(phrase_words) if w.endswith("*")), None)
    if cut is None:
        return " " + " ".join(phrase_words) + " ", None
    head = " " + " ".join((*phrase_words[:cut], phrase_words[cut][:-1]))
    rest = "[^ ]*"
    for w in phrase_words[cut + 1 :]:
        rest += " " + (re.escape(w[:-1]) + "[^ ]*" if w.endswith("*") else re.escape(w) + "(?= )")
    return head, re.compile(rest)


def term_key(atom: Atom) -> object:
    """What makes two fired terms the same for scoring: a phrase whatever its field."""
    return atom.words if isinstance(atom, Phrase) else atom


def _rarity(atom: Atom) -> float:
    """A rough cost of an atom as a trigger: how often it will hit (lower is rarer)."""
    if isinstance(atom, Phrase):
        prefixes = sum(w.endswith("*") for w in atom.words)
        return 10.0 ** (prefixes - len(atom.words))
    return 1e-3 if isinstance(atom, Author) else 1.0


def _triggers(node: Node, negated: bool = False) -> tuple[Atom, ...] | None:
    """Atoms one of which must hit whenever the query is true; None if there are none.

    In negation normal form, an OR needs a trigger from each branch, an AND from one
    branch (the rarest), and a negated atom gives none. None exactly when the query is
    true with no atom hit, which `parse_query` rejects.
    """
    if isinstance(node, Not):
        return _triggers(node.child, not negated)
    if isinstance(node, And | Or):
        parts = [_triggers(child, negated) for child in node.children]
        if isinstance(node, Or) != negated:  # an OR, or a negated AND
            return None if None in parts else tuple(a for p in parts if p for a in p)
        usable = [p for p in parts if p is not None]
        return min(usable, key=lambda p: sum(map(_rarity, p))) if usable else None
    return None if negated else (node,)


def _evaluate(query: int | _Op, hit: Collection[int]) -> bool:
    """A compiled query's truth when exactly the atom ids in `hit` hit."""
    if query.__class__ is int:
        return query in hit
    op, args = query.op, query.args  # type: ignore[union-attr]
    if op == "and":
        for arg in args:
            if not _evaluate(arg, hit):
                return False
        return True
    if op == "or":
        for arg in args:
            if _evaluate(arg, hit):
                return True
        return False
    return not _evaluate(args[0], hit)


@dataclass(frozen=True, slots=True)
class _Restrict:
    """A subscriber's `categories`: folded names, and prefixes for names written `cs.*`."""

    names: frozenset[str]
    prefixes: tuple[str, ...]

    def allows(self, categories: Iterable[str]) -> bool:
        """Is a paper in these (folded) categories inside the restriction?"""
        return any(c in self.names or c.startswith(self.prefixes) for c in categories)


def restriction(categories: Iterable[str]) -> _Restrict:
    """Fold a `categories:` list; a trailing `*` (`cs.*`, `math*`) makes an entry a prefix."""
    names = [n for n in map(fold_label, categories) if n]
    return _Restrict(
        frozenset(n for n in names if not n.endswith("*")),
        tuple(n.rstrip("*") for n in names if n.endswith("*")),
    )


@dataclass(frozen=True, slots=True)
class _Gated:
    """An alert's subscribers who have `exclude` entries or a `categories` restriction."""

    excluders: tuple[int, ...]  # not restricted, but with exclude entries
    by_category: dict[str, tuple[int, ...]]  # restricted to exact names, by each name
    checked: tuple[int, ...]  # restricted with prefixes (`cs.*`): checked one by one

    def allowed(self, categories: Iterable[str], prefixed: Mapping[int, _Restrict]) -> list[int]:
        """Those whose restriction admits a paper in these folded categories."""
        out = list(self.excluders)
        if self.by_category:
            for name in categories:
                out += self.by_category.get(name, ())
        out += [sid for sid in self.checked if prefixed[sid].allows(categories)]
        return out


class _Compiler:
    """Collects every subscriber's atoms, alerts and postings into look-up tables."""

    def __init__(self) -> None:
        self.atom_ids: dict[Atom, int] = {}
        self.atoms: list[Atom] = []
        self.alert_ids: dict[str, dict[str, int]] = {"author": {}, "keyword": {}, "exclude": {}}
        self.alerts: list[_Alert] = []
        # atom → alerts it triggers: one-atom alerts fire, boolean ones get evaluated
        self.fires: dict[int, list[int]] = {}
        self.evaluates: dict[int, list[int]] = {}
        self.fires_exclude: dict[int, list[int]] = {}
        self.evaluates_exclude: dict[int, list[int]] = {}
        self.patterns: dict[tuple[str, ...], int] = {}
        self.pattern_atoms: list[list[tuple[int, str]]] = []
        self.author_buckets: dict[tuple[str, str], list[tuple[AuthorKey, int]]] = {}
        self.labels: dict[tuple[str, str], list[int]] = {}
        self.label_prefixes: list[tuple[str, str, int]] = []
        self.votes: list[tuple[int, int]] = []
        # alert → subscribers: `plain` ones get every paper the alert fires for
        self.plain: dict[int, list[int]] = {}
        self.gated: dict[int, tuple[list[int], dict[str, list[int]], list[int]]] = {}
        self.exclude_subscribers: dict[int, list[int]] = {}
        self.prefixed: dict[int, _Restrict] = {}
        self.emails: list[str] = []
        self.orders: list[tuple[int, ...]] = []

    def atom(self, atom: Atom) -> int:
        """The id of an atom, registering it in the look-up that finds it on first sight."""
        found = self.atom_ids.get(atom)
        if found is not None:
            return found
        aid = self.atom_ids[atom] = len(self.atoms)
        self.atoms.append(atom)
        if isinstance(atom, Phrase):
            pid = self.patterns.setdefault(atom.words, len(self.patterns))
            if pid == len(self.pattern_atoms):
                self.pattern_atoms.append([])
            self.pattern_atoms[pid].append((aid, atom.field))
        elif isinstance(atom, Author):
            bucket = (atom.key.surname, atom.key.initial)
            self.author_buckets.setdefault(bucket, []).append((atom.key, aid))
        elif isinstance(atom, Label) and atom.prefix:
            self.label_prefixes.append((atom.field, atom.value, aid))
        elif isinstance(atom, Label):
            self.labels.setdefault((atom.field, atom.value), []).append(aid)
        else:
            self.votes.append((atom.minimum, aid))
        return aid

    def compile(self, node: Node) -> int | _Op:
        """The query tree over atom ids (registering every atom, negated ones too)."""
        if isinstance(node, Not):
            return _Op("not", (self.compile(node.child),))
        if isinstance(node, And | Or):
            kind = "and" if isinstance(node, And) else "or"
            return _Op(kind, tuple(self.compile(child) for child in node.children))
        return self.atom(node)

    def alert(self, kind: str, text: str) -> int:
        """The id of an alert, parsing its text the first time it is seen."""
        known = self.alert_ids[kind]
        vid = known.get(text)
        if vid is not None:
            return vid
        root: Node = Author(parse_follow(text)) if kind == "author" else parse_query(text).root
        query = self.compile(root)
        positive = tuple(dict.fromkeys(self.atom_ids[a] for a, pos in atoms(root) if pos))
        vid = known[text] = len(self.alerts)
        exclude = kind == "exclude"
        if isinstance(query, int):
            self.alerts.append(_Alert(kind, text, None, positive))
            (self.fires_exclude if exclude else self.fires).setdefault(query, []).append(vid)
            return vid
        self.alerts.append(_Alert(kind, text, query, positive))
        table = self.evaluates_exclude if exclude else self.evaluates
        for atom in dict.fromkeys(_triggers(root) or ()):
            table.setdefault(self.atom_ids[atom], []).append(vid)
        return vid

    def subscriber(self, sub: Subscriber) -> None:
        """Add a subscriber: alerts (authors first, then keywords), excludes, restriction."""
        sid = len(self.emails)
        self.emails.append(sub.email)
        order = self._alerts_of(sub, (("authors", "author"), ("keywords", "keyword")))
        excludes = self._alerts_of(sub, (("exclude", "exclude"),))
        restrict = restriction(sub.categories) if sub.categories else None
        self.orders.append(order)
        for vid in excludes:
            self.exclude_subscribers.setdefault(vid, []).append(sid)
        if restrict is None and not excludes:
            for vid in order:
                self.plain.setdefault(vid, []).append(sid)
            return
        if restrict is not None and restrict.prefixes:
            self.prefixed[sid] = restrict
        for vid in order:
            excluders, by_category, checked = self.gated.setdefault(vid, ([], {}, []))
            if restrict is None:
                excluders.append(sid)
            elif restrict.prefixes:
                checked.append(sid)
            else:
                for name in restrict.names:
                    by_category.setdefault(name, []).append(sid)

    def _alerts_of(self, sub: Subscriber, fields: tuple[tuple[str, str], ...]) -> tuple[int, ...]:
        """The distinct alert ids of these fields, in order; errors name the entry."""
        found: dict[int, None] = {}
        for field, kind in fields:
            for i, text in enumerate(getattr(sub, field)):
                try:
                    found[self.alert(kind, text)] = None
                except QueryError as exc:
                    where = f"subscriber {sub.email}: {field}[{i}]"
                    raise QueryError(f"{where}: {exc.message}", exc.column) from exc
        return tuple(found)

    def gates(self) -> dict[int, _Gated]:
        """The frozen `_Gated` of every alert that has such subscribers."""
        return {
            vid: _Gated(tuple(ex), {n: tuple(ids) for n, ids in by.items()}, tuple(ch))
            for vid, (ex, by, ch) in self.gated.items()
        }


def _postings(table: Mapping[_K, list[int]]) -> dict[_K, tuple[int, ...]]:
    """Freeze a postings table."""
    return {key: tuple(ids) for key, ids in table.items()}


# ------------------------------------------------------------------------ the index


class AlertIndex:
    """Every subscriber's alerts compiled into one index; `match` runs papers through it."""

    def __init__(self, c: _Compiler) -> None:
        """Use `AlertIndex.build`."""
        self._atoms = c.atoms
        self._term_keys = [term_key(atom) for atom in c.atoms]
        self._alerts = c.alerts
        self._queries = {vid: a.query for vid, a in enumerate(c.alerts) if a.query is not None}
        self._fires = _postings(c.fires)
        self._evaluates = _postings(c.evaluates)
        self._fires_exclude = _postings(c.fires_exclude)
        self._evaluates_exclude = _postings(c.evaluates_exclude)
        self._pattern_atoms = [tuple(x) for x in c.pattern_atoms]
        self._author_buckets = c.author_buckets
        self._labels = c.labels
        self._label_prefixes = c.label_prefixes
        self._votes = sorted(c.votes)
        self._vote_minimums = [m for m, _ in self._votes]
        self._automaton, self._heads = _automaton(c.patterns)
        self._plain = _postings(c.plain)
        self._gated = c.gates()
        self._exclude_subscribers = _postings(c.exclude_subscribers)
        self._prefixed = c.prefixed
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
            compiler = _Compiler()
            for sub in subscribers:
                compiler.subscriber(sub)
            return cls(compiler)

    def match(self, papers: Sequence[Paper]) -> dict[str, list[Match]]:
        """Each subscriber's matches among `papers` (in paper order), by email; none → absent."""
        with _collector_paused():
            run = _Run(self)
            done: set[str] = set()
            for paper in papers:
                if paper.id not in done:
                    done.add(paper.id)
                    run.paper(paper)
            return {email: got for email, got in zip(self._emails, run.found, strict=True) if got}

    def _author_atoms(self, name: str) -> tuple[int, ...]:
        """The followed-name atoms that designate this paper author."""
        key = author_key(name)
        if key is None:
            return ()
        buckets = self._author_buckets
        candidates = buckets.get((key.surname, key.initial), ())
        if key.given and (key.surname, "") in buckets:
            candidates = [*candidates, *buckets[(key.surname, "")]]
        return tuple(aid for alert, aid in candidates if same_author(alert, key))


class _Hits:
    """The atoms one paper satisfies; where and how it writes them is worked out on demand."""

    def __init__(self, index: AlertIndex, paper: Paper, authors: dict[str, tuple[int, ...]]):
        self.index = index
        self.paper = paper
        self.phrases: dict[int, tuple[int, str]] = {}  # atom → (pattern, field)
        self.others: dict[int, list[Found]] = {}  # author, label and votes atoms
        self.places: dict[int, list[tuple[int, int]]] = {}  # pattern → (start, stop) in text
        self.spans: dict[int, list[tuple[int, int]]] = {}
        self._terms: dict[int, tuple[tuple[str, ...], float]] = {}
        self._all: set[int] | None = None
        self._scan_text()
        if paper.authors:
            self._scan_authors(authors)
        if index._labels or index._label_prefixes:
            self._scan_labels("category", CATEGORIES, paper.categories)
            self._scan_labels("source", SOURCES, paper.sources)
        if paper.votes is not None:
            for _, aid in index._votes[: bisect_right(index._vote_minimums, paper.votes)]:
                self.others[aid] = []

    def _scan_text(self) -> None:
        """Phrase atoms found in the title or abstract, by one automaton scan of both."""
        index = self.index
        title = " ".join(words(self.paper.title))
        self.bar = len(title) + 2  # the "|" between title and abstract
        self.text = text = f" {title} | {' '.join(words(self.paper.abstract))} "
        if index._automaton is None:
            return
        places = self.places
        heads = index._heads
        for end, hid in index._automaton.iter(text):
            size, patterns = heads[hid]
            for pid, rest in patterns:
                if rest is None:
                    place = (end - size + 1, end)
                elif found := rest.match(text, end + 1):
                    place = (end - size + 1, found.end())
                else:
                    continue
                if (got := places.get(pid)) is None:
                    places[pid] = [place]
                else:
                    got.append(place)
        bar = self.bar
        for pid, where in places.items():
            in_title, in_abstract = where[0][0] < bar, where[-1][0] > bar
            for aid, field in index._pattern_atoms[pid]:
                if field == "text" or (in_title if field == "title" else in_abstract):
                    self.phrases[aid] = (pid, field)

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
            ids = list(index._labels.get((field, folded), ()))
            ids += [a for f, p, a in index._label_prefixes if f == field and folded.startswith(p)]
            for aid in ids:
                self.others.setdefault(aid, []).append((section, i, value))

    def atom_ids(self) -> set[int]:
        """Every atom that hit."""
        if self._all is None:
            self._all = {*self.phrases, *self.others}
        return self._all

    def found(self, aid: int) -> list[Found]:
        """Where the paper satisfies an atom that hit, in reading order (title first)."""
        got = self.others.get(aid)
        if got is not None:
            return got
        pid, field = self.phrases[aid]
        got = [self._quote(start, stop) for start, stop in self.places[pid]]
        if field != "text":
            got = [f for f in got if (f[0] == TITLE) == (field == "title")]
        return got

    def terms(self, aid: int) -> tuple[tuple[str, ...], float]:
        """An atom's distinct words as the paper writes them, and its weight for the score."""
        got = self._terms.get(aid)
        if got is None:
            found = self.found(aid)
            in_title = aid in self.phrases and bool(found) and found[0][0] == TITLE
            weight = TITLE_WEIGHT if in_title else OTHER_WEIGHT
            got = self._terms[aid] = (tuple(dict.fromkeys(f[2] for f in found)), weight)
        return got

    def _quote(self, start: int, stop: int) -> Found:
        """(section, first word's index, the original words) of text[start:stop]."""
        section = TITLE if start < self.bar else ABSTRACT
        base = 0 if section == TITLE else self.bar + 1
        first = self.text.count(" ", base, start + 1) - 1
        last = first + self.text.count(" ", start + 1, stop)
        source = self.paper.title if section == TITLE else self.paper.abstract
        spans = self.spans.get(section)
        if spans is None:
            spans = self.spans[section] = word_spans(source)
        return section, first, source[spans[first][0] : spans[last][1]]


class _Run:
    """One `match` call: the subscribers' result lists and the caches shared by its papers."""

    def __init__(self, index: AlertIndex) -> None:
        self.index = index
        self.found: list[list[Match]] = [[] for _ in index._emails]
        self.authors: dict[str, tuple[int, ...]] = {}
        # the same alert often quotes the same words in many papers: one Reason for all
        self.reasons: dict[tuple[int, tuple[str, ...]], Reason] = {}

    def paper(self, paper: Paper) -> None:
        """Append this paper's Match to every subscriber one of its alerts fired for."""
        hits = _Hits(self.index, paper, self.authors)
        fired = self.fired(hits, exclude=False)
        if not fired:
            return
        groups = self.groups(hits, fired)
        multi = _reached_twice(groups) if len(groups) > 1 else None
        explained: dict[int, tuple[Reason, float]] = {}
        append = list.append
        for vid, subscribers in groups:
            if multi and not multi.isdisjoint(subscribers):
                subscribers = list(filterfalse(multi.__contains__, subscribers))
                if not subscribers:
                    continue
            reason, score = self.explain(hits, vid, explained)
            match = Match(paper.id, (reason,), score)
            deque(map(append, map(self.found.__getitem__, subscribers), repeat(match)), 0)
        if multi:
            self.merged(hits, multi, {vid for vid, _ in groups}, explained)

    def fired(self, hits: _Hits, exclude: bool) -> list[int]:
        """The keyword/author alerts (or the exclude alerts) that this paper makes true."""
        index = self.index
        fires = index._fires_exclude if exclude else index._fires
        evaluates = index._evaluates_exclude if exclude else index._evaluates
        hit = hits.atom_ids()
        fired = list(chain.from_iterable(fires[a] for a in hit if a in fires))
        maybe = [evaluates[a] for a in hit if a in evaluates]
        if maybe:
            queries = index._queries
            candidates = maybe[0] if len(maybe) == 1 else dict.fromkeys(chain(*maybe))
            fired += [v for v in candidates if _evaluate(queries[v], hit)]
        return fired

    def groups(self, hits: _Hits, fired: list[int]) -> list[tuple[int, Sequence[int]]]:
        """(alert, subscribers to deliver to) per fired alert, with restrictions applied."""
        index = self.index
        plain, gated = index._plain, index._gated
        groups: list[tuple[int, Sequence[int]]] = []
        excluded: set[int] | None = None
        categories: list[str] = []
        for vid in fired:
            if vid in plain:
                groups.append((vid, plain[vid]))
            gate = gated.get(vid)
            if gate is None:
                continue
            if excluded is None:
                categories = list(dict.fromkeys(map(fold_label, hits.paper.categories)))
                excluded = self.excluded(hits)
            allowed = gate.allowed(categories, index._prefixed)
            if len(categories) > 1 and gate.by_category:
                allowed = list(dict.fromkeys(allowed))  # restricted to two of its categories
            if excluded and allowed:
                allowed = [sid for sid in allowed if sid not in excluded]
            if allowed:
                groups.append((vid, allowed))
        return groups

    def excluded(self, hits: _Hits) -> set[int]:
        """Subscribers one of whose exclude entries this paper matches."""
        postings = self.index._exclude_subscribers
        return set(chain.from_iterable(postings[v] for v in self.fired(hits, exclude=True)))

    def explain(
        self, hits: _Hits, vid: int, explained: dict[int, tuple[Reason, float]]
    ) -> tuple[Reason, float]:
        """The reason an alert gives for this paper and its score on its own (cached)."""
        if (got := explained.get(vid)) is not None:
            return got
        alert = self.index._alerts[vid]
        if len(alert.positive) == 1:
            terms, score = hits.terms(alert.positive[0])
        else:
            terms, score = self._combined(hits, alert.positive)
        reason = self.reasons.get((vid, terms))
        if reason is None:
            reason = self.reasons[(vid, terms)] = Reason(alert.kind, alert.text, terms)
        explained[vid] = (reason, score)
        return reason, score

    def _combined(self, hits: _Hits, positive: Iterable[int]) -> tuple[tuple[str, ...], float]:
        """Words (in reading order) and score of several atoms, each distinct term once."""
        hit = hits.atom_ids()
        found: list[Found] = []
        best: dict[object, float] = {}
        for aid in positive:
            if aid in hit:
                found += hits.found(aid)
                key, weight = self.index._term_keys[aid], hits.terms(aid)[1]
                best[key] = max(weight, best.get(key, 0.0))
        found.sort()
        return tuple(dict.fromkeys(f[2] for f in found)), sum(best.values())

    def merged(
        self,
        hits: _Hits,
        multi: set[int],
        fired: set[int],
        explained: dict[int, tuple[Reason, float]],
    ) -> None:
        """One Match each for subscribers reached by several alerts, reasons in their order."""
        index = self.index
        merged: dict[tuple[int, ...], Match] = {}
        for sid in sorted(multi):
            ordered = tuple(vid for vid in index._orders[sid] if vid in fired)
            match = merged.get(ordered)
            if match is None:
                positive = [aid for vid in ordered for aid in index._alerts[vid].positive]
                reasons = tuple(self.explain(hits, vid, explained)[0] for vid in ordered)
                score = self._combined(hits, positive)[1]
                match = merged[ordered] = Match(hits.paper.id, reasons, score)
            self.found[sid].append(match)


def _reached_twice(groups: list[tuple[int, Sequence[int]]]) -> set[int]:
    """Subscribers present in more than one group."""
    seen: set[int] = set()
    total = 0
    for _, subscribers in groups:
        seen.update(subscribers)
        total += len(subscribers)
    if len(seen) == total:
        return seen.difference(seen)  # nobody twice: the common case costs one pass
    seen.clear()
    multi: set[int] = set()
    for _, subscribers in groups:
        if not seen.isdisjoint(subscribers):
            multi.update(seen.intersection(subscribers))
        seen.update(subscribers)
    return multi


def _automaton(
    patterns: Mapping[tuple[str, ...], int],
) -> tuple[
    ahocorasick.Automaton | None, list[tuple[int, list[tuple[int, re.Pattern[str] | None]]]]
]:
    """The Aho-Corasick automaton of every phrase; its values index (key length, patterns)."""
    heads: list[tuple[int, list[tuple[int, re.Pattern[str] | None]]]] = []
    head_ids: dict[str, int] = {}
    for phrase_words, pid in patterns.items():
        head, rest = phrase_pattern(phrase_words)
        hid = head_ids.setdefault(head, len(heads))
        if hid == len(heads):
            heads.append((len(head), []))
        heads[hid][1].append((pid, rest))
    if not heads:
        return None, heads
    automaton = ahocorasick.Automaton()
    for head, hid in head_ids.items():
        automaton.add_word(head, hid)
    automaton.make_automaton()
    return automaton, heads


def rank(matches: Iterable[Match], papers_by_id: Mapping[str, Paper]) -> list[Match]:
    """A digest's order: followed authors first, then score, then votes; stable otherwise."""

    def key(match: Match) -> tuple[bool, float, int]:
        paper = papers_by_id.get(match.paper_id)
        votes = paper.votes if paper is not None and paper.votes is not None else 0
        followed = any(r.kind == "author" for r in match.reasons)
        return (not followed, -match.score, -votes)

    return sorted(matches, key=key)
