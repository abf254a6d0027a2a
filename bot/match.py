"""Matching: every subscriber's alerts compiled once into one index that papers run through.

`AlertIndex.build` parses each distinct alert text once. An *alert* is one distinct
(kind, text) — `keyword: neural collapse`, `author: G. Lajoie`, `exclude: survey` —
shared by every subscriber who wrote it; an *atom* is one distinct phrase, author name,
category, source or votes threshold, shared by every alert that uses it.

`AlertIndex.match`, per paper:

1. atoms: one Aho-Corasick scan of the folded title and abstract finds every phrase of
   every alert; authors, categories, sources and votes are dictionary look-ups;
2. alerts: a one-atom alert fires when its atom hit; a boolean one is evaluated once per
   paper, and only when one of its non-negated atoms hit (queries must have one, see
   `bot.query`), so nothing is ever evaluated per subscriber;
3. subscribers: the postings of the fired alerts, less those the paper is excluded or
   restricted for. A subscriber reached by a single alert gets the `Match` shared by all
   such subscribers (it is immutable), so the work per (subscriber, paper) pair is tiny.

Scoring (`Match.score`): each distinct term that fired counts once — a phrase 2.0 when it
was found in the title, 1.0 when only in the abstract; an author, category, source or
votes term 1.0. `rank` orders a digest: followed authors first, then score, then votes.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import ahocorasick

from bot.fold import AuthorKey, author_key, fold_label, same_author, word_spans, words
from bot.models import Match, Paper, Reason, Subscriber
from bot.query import (
    Atom,
    Author,
    Label,
    Node,
    Phrase,
    QueryError,
    Votes,
    atoms,
    evaluate,
    parse_follow,
    parse_query,
)

TITLE_WEIGHT = 2.0
OTHER_WEIGHT = 1.0
# Where a term was found; the order of a reason's terms (title first, then abstract...).
TITLE, ABSTRACT, AUTHORS, CATEGORIES, SOURCES = range(5)

# (section, position in it, the words as the paper writes them)
Found = tuple[int, int, str]
_TextPlace = tuple[int, int]  # (index of the space before the first word, end of last word)


@dataclass(frozen=True, slots=True)
class _Alert:
    """One distinct alert: `root` is None when the alert is its single positive atom."""

    kind: str
    text: str
    root: Node | None
    positive: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Restrict:
    """A subscriber's `categories`: folded names, and prefixes for names written `cs.*`."""

    names: frozenset[str]
    prefixes: tuple[str, ...]

    def allows(self, categories: frozenset[str]) -> bool:
        """Is a paper in these (folded) categories inside the restriction?"""
        if not self.names.isdisjoint(categories):
            return True
        return any(c.startswith(p) for p in self.prefixes for c in categories)


def restriction(categories: Iterable[str]) -> _Restrict:
    """Fold a `categories:` list; a trailing `*` (or `.*`) makes an entry a prefix."""
    names = [fold_label(c) for c in categories if fold_label(c)]
    return _Restrict(
        frozenset(n for n in names if not n.endswith("*")),
        tuple(n.rstrip("*") for n in names if n.endswith("*")),
    )


def term_key(atom: Atom) -> object:
    """What makes two fired terms the same for scoring: a phrase whatever its field."""
    return atom.words if isinstance(atom, Phrase) else atom


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


class _Compiler:
    """Collects the atoms, alerts and postings of every subscriber into lookup tables."""

    def __init__(self) -> None:
        self.atom_ids: dict[Atom, int] = {}
        self.atoms: list[Atom] = []
        self.alert_ids: dict[tuple[str, str], int] = {}
        self.alerts: list[_Alert] = []
        self.fires: list[list[int]] = []  # atom → one-atom keyword/author alerts
        self.may_fire: list[list[int]] = []  # atom → boolean keyword alerts using it
        self.fires_exclude: list[list[int]] = []
        self.may_exclude: list[list[int]] = []
        self.patterns: dict[tuple[str, ...], int] = {}
        self.pattern_atoms: list[list[tuple[int, str]]] = []
        self.author_buckets: dict[tuple[str, str], list[tuple[AuthorKey, int]]] = {}
        self.labels: dict[tuple[str, str], list[int]] = {}
        self.label_prefixes: list[tuple[str, str, int]] = []
        self.votes: list[tuple[int, int]] = []

    def atom(self, atom: Atom) -> int:
        """The id of an atom, registering it in the look-up that finds it on first sight."""
        found = self.atom_ids.get(atom)
        if found is not None:
            return found
        aid = len(self.atoms)
        self.atom_ids[atom] = aid
        self.atoms.append(atom)
        for table in (self.fires, self.may_fire, self.fires_exclude, self.may_exclude):
            table.append([])
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

    def alert(self, kind: str, text: str) -> int:
        """The id of an alert, parsing its text the first time it is seen."""
        found = self.alert_ids.get((kind, text))
        if found is not None:
            return found
        root: Node = Author(parse_follow(text)) if kind == "author" else parse_query(text).root
        positive = tuple(dict.fromkeys(self.atom(a) for a, pos in atoms(root) if pos))
        for a, _ in atoms(root):
            self.atom(a)  # negated atoms too: boolean alerts must know when they hit
        boolean = not isinstance(root, Phrase | Author | Label | Votes)
        vid = len(self.alerts)
        self.alert_ids[(kind, text)] = vid
        self.alerts.append(_Alert(kind, text, root if boolean else None, positive))
        exclude = kind == "exclude"
        for aid in positive:
            if boolean:
                (self.may_exclude if exclude else self.may_fire)[aid].append(vid)
            else:
                (self.fires_exclude if exclude else self.fires)[aid].append(vid)
        return vid


class AlertIndex:
    """Every subscriber's alerts compiled into one index; `match` runs papers through it."""

    def __init__(self, compiler: _Compiler, subscribers: Sequence[Subscriber]) -> None:
        """Use `AlertIndex.build`."""
        self._atoms = compiler.atoms
        self._alerts = compiler.alerts
        self._fires = [tuple(x) for x in compiler.fires]
        self._may_fire = [tuple(x) for x in compiler.may_fire]
        self._fires_exclude = [tuple(x) for x in compiler.fires_exclude]
        self._may_exclude = [tuple(x) for x in compiler.may_exclude]
        self._pattern_atoms = [tuple(x) for x in compiler.pattern_atoms]
        self._author_buckets = compiler.author_buckets
        self._labels = compiler.labels
        self._label_prefixes = compiler.label_prefixes
        self._votes = sorted(compiler.votes)
        self._vote_minimums = [m for m, _ in self._votes]
        self._automaton, self._heads = _automaton(compiler.patterns)
        self._emails = [s.email for s in subscribers]
        self._plain: list[list[int]] = [[] for _ in compiler.alerts]
        self._conditional: list[list[int]] = [[] for _ in compiler.alerts]
        self._order: list[tuple[int, ...]] = []
        self._excluded_by: list[frozenset[int]] = []
        self._restrict: list[_Restrict | None] = []

    @classmethod
    def build(cls, subscribers: Sequence[Subscriber]) -> AlertIndex:
        """Compile every subscriber's keywords, authors, categories and exclude entries.

        Raises `QueryError` naming the subscriber and entry when an alert does not parse,
        and `ValueError` when two subscribers share an email.
        """
        compiler = _Compiler()
        entries = [_compile_subscriber(compiler, sub) for sub in subscribers]
        index = cls(compiler, subscribers)
        if len(set(index._emails)) != len(index._emails):
            raise ValueError("two subscribers share an email address")
        for sid, (order, excluded_by, restrict) in enumerate(entries):
            postings = index._conditional if excluded_by or restrict else index._plain
            for vid in order:
                postings[vid].append(sid)
            index._order.append(order)
            index._excluded_by.append(excluded_by)
            index._restrict.append(restrict)
        return index

    def match(self, papers: Sequence[Paper]) -> dict[str, list[Match]]:
        """Each subscriber's matches among `papers` (in paper order), by email; none → absent."""
        found: dict[int, list[Match]] = {}
        author_atoms: dict[str, tuple[int, ...]] = {}
        done: set[str] = set()
        for paper in papers:
            if paper.id in done:
                continue
            done.add(paper.id)
            hits = self._hits(paper, author_atoms)
            if hits:
                self._deliver(paper, hits, found)
        return {self._emails[sid]: found[sid] for sid in sorted(found)}

    # --------------------------------------------------------------------------- atoms

    def _hits(
        self, paper: Paper, author_atoms: dict[str, tuple[int, ...]]
    ) -> dict[int, list[Found]]:
        """Every atom the paper satisfies, with where and how the paper writes it."""
        hits: dict[int, list[Found]] = {}
        self._text_hits(paper, hits)
        for i, name in enumerate(paper.authors):
            ids = author_atoms.get(name)
            if ids is None:
                ids = author_atoms[name] = self._author_atoms(name)
            for aid in ids:
                hits.setdefault(aid, []).append((AUTHORS, i, name))
        self._label_hits("category", CATEGORIES, paper.categories, hits)
        self._label_hits("source", SOURCES, paper.sources, hits)
        if paper.votes is not None:
            for _, aid in self._votes[: bisect_right(self._vote_minimums, paper.votes)]:
                hits[aid] = []
        return hits

    def _text_hits(self, paper: Paper, hits: dict[int, list[Found]]) -> None:
        """Phrase atoms found in the title or abstract, by one automaton scan of both."""
        if self._automaton is None:
            return
        title = " ".join(words(paper.title))
        text = f" {title} | {' '.join(words(paper.abstract))} "
        places: dict[int, list[_TextPlace]] = {}
        for end, hid in self._automaton.iter(text):
            start = end - len(self._heads[hid][0]) + 1
            for pid, rest in self._heads[hid][1]:
                if rest is None:
                    places.setdefault(pid, []).append((start, end))
                elif found := rest.match(text, end + 1):
                    places.setdefault(pid, []).append((start, found.end()))
        if places:
            quote = _Quoter(paper, text, len(title) + 2)
            for pid, where in places.items():
                self._phrase_hits(pid, [quote(place) for place in where], hits)

    def _phrase_hits(self, pid: int, found: list[Found], hits: dict[int, list[Found]]) -> None:
        """Record a phrase's occurrences for each of its atoms (any field, title, abstract)."""
        for aid, field in self._pattern_atoms[pid]:
            if field == "text":
                hits[aid] = found
            elif kept := [f for f in found if (f[0] == TITLE) == (field == "title")]:
                hits[aid] = kept

    def _author_atoms(self, name: str) -> tuple[int, ...]:
        """The followed-name atoms that designate this paper author."""
        key = author_key(name)
        if key is None:
            return ()
        candidates = self._author_buckets.get((key.surname, key.initial), [])
        if key.given:
            candidates = candidates + self._author_buckets.get((key.surname, ""), [])
        return tuple(aid for alert, aid in candidates if same_author(alert, key))

    def _label_hits(
        self, field: str, section: int, values: Sequence[str], hits: dict[int, list[Found]]
    ) -> None:
        """Category or source atoms: exact names, then prefixes."""
        for i, value in enumerate(values):
            folded = fold_label(value)
            ids = list(self._labels.get((field, folded), ()))
            ids += [a for f, p, a in self._label_prefixes if f == field and folded.startswith(p)]
            for aid in ids:
                hits.setdefault(aid, []).append((section, i, value))

    # --------------------------------------------------------------------------- alerts

    def _fired(self, hits: dict[int, list[Found]], exclude: bool) -> list[int]:
        """The alerts (keyword/author, or exclude) that these atom hits make true."""
        fires = self._fires_exclude if exclude else self._fires
        may_fire = self._may_exclude if exclude else self._may_fire
        fired: list[int] = []
        maybe: set[int] = set()
        for aid in hits:
            fired.extend(fires[aid])
            maybe.update(may_fire[aid])
        if maybe:
            holds = {self._atoms[aid] for aid in hits}
            for vid in sorted(maybe):
                root = self._alerts[vid].root
                if root is not None and evaluate(root, holds):
                    fired.append(vid)
        return fired

    def _reason(self, vid: int, hits: dict[int, list[Found]]) -> tuple[Reason, dict[object, float]]:
        """The reason an alert gives for this paper, and its terms' weights for the score."""
        alert = self._alerts[vid]
        found: list[Found] = []
        weights: dict[object, float] = {}
        for aid in alert.positive:
            places = hits.get(aid)
            if places is None:
                continue
            found += places
            atom = self._atoms[aid]
            in_title = isinstance(atom, Phrase) and any(f[0] == TITLE for f in places)
            weights[term_key(atom)] = TITLE_WEIGHT if in_title else OTHER_WEIGHT
        terms = tuple(dict.fromkeys(f[2] for f in sorted(found)))
        return Reason(alert.kind, alert.text, terms), weights

    # ---------------------------------------------------------------------- subscribers

    def _deliver(
        self, paper: Paper, hits: dict[int, list[Found]], found: dict[int, list[Match]]
    ) -> None:
        """Append this paper's Match to every subscriber one of its alerts fired for."""
        fired = self._fired(hits, exclude=False)
        if not fired:
            return
        reached: dict[int, list[int]] = {}
        for vid in fired:
            for sid in self._plain[vid]:
                reached.setdefault(sid, []).append(vid)
        conditional = [vid for vid in fired if self._conditional[vid]]
        if conditional:
            allowed = _Allowed(self, paper, self._fired(hits, exclude=True))
            for vid in conditional:
                for sid in self._conditional[vid]:
                    if allowed(sid):
                        reached.setdefault(sid, []).append(vid)
        reasons: dict[int, tuple[Reason, dict[object, float]]] = {}
        shared: dict[int, Match] = {}
        for sid, vids in reached.items():
            for vid in vids:
                if vid not in reasons:
                    reasons[vid] = self._reason(vid, hits)
            if len(vids) == 1:
                match = shared.get(vids[0])
                if match is None:
                    reason, weights = reasons[vids[0]]
                    match = shared[vids[0]] = Match(paper.id, (reason,), sum(weights.values()))
            else:
                match = self._merged(paper.id, sid, vids, reasons)
            found.setdefault(sid, []).append(match)

    def _merged(
        self,
        paper_id: str,
        sid: int,
        vids: list[int],
        reasons: dict[int, tuple[Reason, dict[object, float]]],
    ) -> Match:
        """One Match from several fired alerts: reasons in the subscriber's order, one score."""
        fired = set(vids)
        ordered = [vid for vid in self._order[sid] if vid in fired]
        weights: dict[object, float] = {}
        for vid in ordered:
            for key, weight in reasons[vid][1].items():
                weights[key] = max(weight, weights.get(key, 0.0))
        return Match(paper_id, tuple(reasons[v][0] for v in ordered), sum(weights.values()))


class _Allowed:
    """Whether a subscriber with `categories` or `exclude` may get this paper (cached)."""

    def __init__(self, index: AlertIndex, paper: Paper, excluding: list[int]) -> None:
        self.index = index
        self.excluding = frozenset(excluding)
        self.categories = frozenset(fold_label(c) for c in paper.categories)

    def __call__(self, sid: int) -> bool:
        """True unless an exclude entry fired or the categories restriction rejects it."""
        if self.excluding and not self.index._excluded_by[sid].isdisjoint(self.excluding):
            return False
        restrict = self.index._restrict[sid]
        return restrict is None or restrict.allows(self.categories)


class _Quoter:
    """Turns a place in the folded " title | abstract " text into the paper's own words."""

    def __init__(self, paper: Paper, text: str, bar: int) -> None:
        self.paper = paper
        self.text = text
        self.bar = bar  # index of the "|" between title and abstract
        self.spans: dict[int, list[tuple[int, int]]] = {}

    def __call__(self, place: _TextPlace) -> Found:
        """(section, first word's index, the original words) of one occurrence."""
        start, stop = place
        section = TITLE if start < self.bar else ABSTRACT
        base = 0 if section == TITLE else self.bar + 1
        first = self.text.count(" ", base, start + 1) - 1
        last = first + self.text.count(" ", start + 1, stop)
        source = self.paper.title if section == TITLE else self.paper.abstract
        spans = self.spans.get(section)
        if spans is None:
            spans = self.spans[section] = word_spans(source)
        return section, first, source[spans[first][0] : spans[last][1]]


def _automaton(
    patterns: Mapping[tuple[str, ...], int],
) -> tuple[
    ahocorasick.Automaton | None, list[tuple[str, list[tuple[int, re.Pattern[str] | None]]]]
]:
    """The Aho-Corasick automaton of every phrase; its values index `heads`."""
    heads: list[tuple[str, list[tuple[int, re.Pattern[str] | None]]]] = []
    head_ids: dict[str, int] = {}
    for phrase_words, pid in patterns.items():
        head, rest = phrase_pattern(phrase_words)
        hid = head_ids.setdefault(head, len(heads))
        if hid == len(heads):
            heads.append((head, []))
        heads[hid][1].append((pid, rest))
    if not heads:
        return None, heads
    automaton = ahocorasick.Automaton()
    for head, hid in head_ids.items():
        automaton.add_word(head, hid)
    automaton.make_automaton()
    return automaton, heads


def _compile_subscriber(
    compiler: _Compiler, sub: Subscriber
) -> tuple[tuple[int, ...], frozenset[int], _Restrict | None]:
    """A subscriber's alerts (authors first, then keywords), excludes and restriction."""
    order: list[int] = []
    excluded: list[int] = []
    for field, kind, target in (
        ("authors", "author", order),
        ("keywords", "keyword", order),
        ("exclude", "exclude", excluded),
    ):
        for i, text in enumerate(getattr(sub, field)):
            try:
                vid = compiler.alert(kind, text)
            except QueryError as exc:
                where = f"subscriber {sub.email}: {field}[{i}]"
                raise QueryError(f"{where}: {exc.message}", exc.column) from exc
            if vid not in target:
                target.append(vid)
    restrict = restriction(sub.categories) if sub.categories else None
    return tuple(order), frozenset(excluded), restrict


def rank(matches: Iterable[Match], papers_by_id: Mapping[str, Paper]) -> list[Match]:
    """A digest's order: followed authors first, then score, then votes; stable otherwise."""

    def key(match: Match) -> tuple[bool, float, int]:
        paper = papers_by_id.get(match.paper_id)
        votes = paper.votes if paper is not None and paper.votes is not None else 0
        followed = any(r.kind == "author" for r in match.reasons)
        return (not followed, -match.score, -votes)

    return sorted(matches, key=key)
