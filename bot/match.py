"""Matching: every subscriber's alerts compiled once into one index that papers run through.

An *alert* is one distinct (kind, text) — `keyword: neural collapse`, `author: G. Lajoie`,
`exclude: survey` — shared by every subscriber who wrote it and parsed once. An *atom* is
one distinct phrase, author name, category, source or votes threshold, shared by alerts.

`AlertIndex.match`, per paper:

1. atoms: one Aho-Corasick scan of the folded " title | abstract " text finds every
   phrase of every alert; authors, categories, sources and votes are dictionary look-ups;
2. alerts: a one-atom alert fires when its atom hit; a boolean one is evaluated (once per
   paper, never per subscriber) only when one of its *trigger* atoms hit — atoms chosen so
   that the query cannot be true without one of them (`_triggers`);
3. subscribers: each fired alert's `Match` is lined up with its subscribers (less those
   the paper is excluded or restricted for) and appended to their lists in bulk. A Match
   is immutable, so one serves every subscriber of the alert; the few subscribers two
   alerts reach get one merged Match instead.

So the cost grows with the papers' text and the number of matches, not with subscribers x
alerts. The index keeps its many small lists of ids back to back in a few arrays
(`_Table`): compact, and nothing the garbage collector has to walk.

Scoring (`Match.score`): each distinct term that fired counts once — a phrase 2.0 when it
was found in the title, 1.0 when only in the abstract; an author, category, source or
votes term 1.0. `rank` orders a digest: followed authors first, then score, then votes.
"""

from __future__ import annotations

import gc
import operator
import re
from array import array
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate, chain, compress, repeat
from typing import Generic, TypeVar

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
    Votes,
    parse_follow,
    parse_query,
    plain_words,
)

TITLE_WEIGHT = 2.0
OTHER_WEIGHT = 1.0
# Where a term was found, in the order a reason lists its terms.
TITLE, ABSTRACT, AUTHORS, CATEGORIES, SOURCES = range(5)
_FIELDS = {"text": 0, "title": 1, "abstract": 2}
# Boolean programs are postfix: an atom id (>= 0) pushes "it hit", these combine.
_NOT, _AND, _OR = -1, -2, -3

Found = tuple[int, int, str]  # (section, position in it, the words as the paper writes them)
_K = TypeVar("_K")
_SHIFT = 24  # a _Table entry is start << _SHIFT | length


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk work that makes no reference cycles.

    Building the index or a day's matches allocates millions of objects; letting the
    collector walk them again and again as they are made costs more than the work itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Table(Generic[_K]):
    """Lists of ids by key, stored back to back in one array.

    100,000 subscribers make hundreds of thousands of small postings lists; as Python lists
    they would take several times the memory, and the garbage collector would walk each.
    """

    def __init__(self, lists: Mapping[_K, Sequence[int]]) -> None:
        sizes = list(map(len, lists.values()))
        if sizes and max(sizes) >> _SHIFT:
            raise ValueError(f"more than {1 << _SHIFT} ids under one key")
        starts = accumulate(sizes, initial=0)
        entries = map(operator.or_, map(operator.lshift, starts, repeat(_SHIFT)), sizes)
        self._where: dict[_K, int] = dict(zip(lists, entries))  # noqa: B905  # starts is longer
        self._ids = memoryview(array("i", chain.from_iterable(lists.values())))

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def __bool__(self) -> bool:
        return bool(self._where)

    def get(self, key: _K) -> memoryview | None:
        """The ids filed under `key`, if any (a view: nothing is copied)."""
        found = self._where.get(key)
        if found is None:
            return None
        start = found >> _SHIFT
        return self._ids[start : start + (found & ((1 << _SHIFT) - 1))]


# ----------------------------------------------------------------------- compiling


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


def _run_program(program: Iterable[int], hit: set[int]) -> bool:
    """Evaluate a postfix boolean program over the atom ids that hit."""
    stack: list[bool] = []
    for step in program:
        if step >= 0:
            stack.append(step in hit)
        elif step == _NOT:
            stack[-1] = not stack[-1]
        else:
            last = stack.pop()
            stack[-1] = (stack[-1] and last) if step == _AND else (stack[-1] or last)
    return stack[0]


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


class _Atoms:
    """Atom ids and the look-ups that find each kind of atom in a paper (build time)."""

    def __init__(self) -> None:
        self.count = 0
        self.term_keys: list[int] = []  # what counts once in a score: the phrase, or the atom
        self.phrases: list[dict[tuple[str, ...], int]] = [{}, {}, {}]  # by field
        self.patterns: dict[tuple[str, ...], int] = {}
        self.pattern_atoms: list[list[int]] = [[], [], []]  # by field: pattern → atom (-1)
        self.authors: dict[tuple[str, tuple[str, ...]], int] = {}
        self.author_buckets: dict[str, list[int]] = {}  # "surname initial" → atoms
        self.author_given: dict[int, str] = {}
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
        index = _FIELDS[field]
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
            self.author_given[aid] = " ".join(key.given)
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


class _Compiler:
    """Collects every subscriber's alerts and postings (build time; frozen by AlertIndex)."""

    def __init__(self) -> None:
        self.atoms = _Atoms()
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
        # alert → subscribers, by what must be checked before a paper is theirs
        self.plain: dict[int, list[int]] = {}
        self.excluders: dict[int, list[int]] = {}  # have exclude entries, no restriction
        self.by_category: dict[str, dict[int, list[int]]] = {}  # restricted: by each name
        self.checked: dict[int, list[int]] = {}  # restricted with prefixes (`cs.*`)
        self.prefixed: dict[int, _Restrict] = {}
        self.exclude_subscribers: dict[int, list[int]] = {}
        self.emails: list[str] = []
        self.orders: list[int] = []  # every subscriber's alerts, one after the other
        self.order_starts: list[int] = [0]

    def alert(self, kind: str, text: str) -> int:
        """The id of an alert, compiling its text the first time it is seen."""
        known = self.alert_ids[kind]
        vid = known.get(text)
        if vid is not None:
            return vid
        vid = known[text] = len(self.kinds)
        self.kinds.append(kind)
        self.texts.append(text)
        if kind == "author":
            aid = self.atoms.author(parse_follow(text))
        elif (plain := plain_words(text)) is not None:
            aid = self.atoms.phrase(plain, "text")  # most alerts: no need for the parser
        else:
            root = parse_query(text).root
            if not isinstance(root, Phrase | Author | Label | Votes):
                self._boolean(vid, root, kind == "exclude")
                return vid
            aid = self.atoms.atom(root)
        self.single.append(aid)
        table = self.fires_exclude if kind == "exclude" else self.units
        table.setdefault(aid, []).append(vid)
        return vid

    def _boolean(self, vid: int, root: Node, exclude: bool) -> None:
        """Compile a boolean query: its program, positive atoms and triggers."""
        self.single.append(-1)
        program: list[int] = []
        positive: dict[int, None] = {}
        self._program(root, program, positive, True)
        self.programs[vid] = program
        self.positives[vid] = list(positive)
        if not exclude:
            self.units[-1 - vid] = [vid]
        table = self.evaluates_exclude if exclude else self.evaluates
        for aid in dict.fromkeys(map(self.atoms.atom, _triggers(root) or ())):
            table.setdefault(aid, []).append(vid)

    def _program(self, node: Node, out: list[int], positive: dict[int, None], pos: bool) -> None:
        """Append the postfix program of a query tree; collect its non-negated atoms."""
        if isinstance(node, Not):
            self._program(node.child, out, positive, not pos)
            out.append(_NOT)
        elif isinstance(node, And | Or):
            self._program(node.children[0], out, positive, pos)
            for child in node.children[1:]:
                self._program(child, out, positive, pos)
                out.append(_AND if isinstance(node, And) else _OR)
        else:
            aid = self.atoms.atom(node)
            out.append(aid)
            if pos:
                positive[aid] = None

    def subscriber(self, sub: Subscriber) -> None:
        """Add a subscriber: alerts (authors first, then keywords), excludes, restriction."""
        sid = len(self.emails)
        order = self._alert_ids("author", sub.authors) + self._alert_ids("keyword", sub.keywords)
        if len(set(order)) < len(order):
            order = list(dict.fromkeys(order))
        excludes = self._alert_ids("exclude", sub.exclude)
        self.emails.append(sub.email)
        self.orders += order
        self.order_starts.append(len(self.orders))
        for vid in excludes:
            self.exclude_subscribers.setdefault(vid, []).append(sid)
        if not sub.categories and not excludes:
            plain = self.plain
            for vid in order:
                if vid in plain:
                    plain[vid].append(sid)
                else:
                    plain[vid] = [sid]
            return
        self._gate(sid, order, restriction(sub.categories) if sub.categories else None)

    def _alert_ids(self, kind: str, texts: Sequence[str]) -> list[int]:
        """The alert ids of these entries (known texts are a dictionary look-up)."""
        ids = list(map(self.alert_ids[kind].get, texts))
        if None in ids:
            pairs = zip(ids, texts, strict=True)
            return [self.alert(kind, t) if v is None else v for v, t in pairs]
        return ids  # type: ignore[return-value]  # no None left

    def _gate(self, sid: int, order: list[int], restrict: _Restrict | None) -> None:
        """File a subscriber who has excludes or a restriction under each of their alerts."""
        if restrict is None:
            for vid in order:
                self.excluders.setdefault(vid, []).append(sid)
        elif restrict.prefixes:
            self.prefixed[sid] = restrict
            for vid in order:
                self.checked.setdefault(vid, []).append(sid)
        else:
            for name in restrict.names:
                postings = self.by_category.setdefault(name, {})
                for vid in order:
                    postings.setdefault(vid, []).append(sid)


def _entry_error(sub: Subscriber, error: QueryError) -> QueryError:
    """The error of a subscriber's first entry that does not parse, naming the entry."""
    for field in ("authors", "keywords", "exclude"):
        for i, text in enumerate(getattr(sub, field)):
            try:
                parse_follow(text) if field == "authors" else parse_query(text)
            except QueryError as exc:
                where = f"subscriber {sub.email}: {field}[{i}]"
                return QueryError(f"{where}: {exc.message}", exc.column)
    return error


# ------------------------------------------------------------------------ the index


class AlertIndex:
    """Every subscriber's alerts compiled into one index; `match` runs papers through it."""

    def __init__(self, c: _Compiler) -> None:
        """Use `AlertIndex.build`."""
        a = c.atoms
        self._term_keys = array("i", a.term_keys)
        self._pattern_atoms = [array("i", table) for table in a.pattern_atoms]
        self._automaton, self._heads = _automaton(a.patterns)
        self._author_buckets = _Table(a.author_buckets)
        self._author_given = a.author_given
        self._labels = _Table(a.labels)
        self._label_prefixes = a.label_prefixes
        self._votes = sorted(a.votes.items())
        self._vote_minimums = [m for m, _ in self._votes]
        self._kinds = c.kinds
        self._texts = c.texts
        self._single = array("i", c.single)
        self._programs = _Table(c.programs)
        self._positives = _Table(c.positives)
        self._units = _Table(c.units)
        self._evaluates = _Table(c.evaluates)
        self._fires_exclude = _Table(c.fires_exclude)
        self._evaluates_exclude = _Table(c.evaluates_exclude)
        self._exclude_subscribers = _Table(c.exclude_subscribers)
        self._plain = _Table(c.plain)
        self._excluders = _Table(c.excluders)
        self._by_category = {name: _Table(table) for name, table in c.by_category.items()}
        self._checked = _Table(c.checked)
        gated = {*c.excluders, *c.checked}
        gated.update(chain.from_iterable(c.by_category.values()))
        self._gated = frozenset(gated)
        self._prefixed = c.prefixed
        self._emails = c.emails
        self._orders = array("i", c.orders)
        self._order_starts = array("i", c.order_starts)

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
                try:
                    compiler.subscriber(sub)
                except QueryError as exc:
                    raise _entry_error(sub, exc) from exc
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
            found = run.found
            del run
            return {email: got for email, got in zip(self._emails, found, strict=True) if got}

    def _author_atoms(self, name: str) -> tuple[int, ...]:
        """The followed-name atoms that designate this paper author."""
        key = author_key(name)
        if key is None:
            return ()
        buckets = self._author_buckets
        candidates = list(buckets.get(f"{key.surname} {key.initial}") or ())
        if key.given:
            candidates += buckets.get(f"{key.surname} ") or ()
        given = self._author_given
        return tuple(
            aid
            for aid in candidates
            if same_author(AuthorKey(key.surname, tuple(given[aid].split())), key)
        )

    def _order(self, sid: int) -> array[int]:
        """A subscriber's alerts, authors first, in the order they wrote them."""
        return self._orders[self._order_starts[sid] : self._order_starts[sid + 1]]


_Head = tuple[int, list[tuple[int, re.Pattern[str] | None]]]  # key length, (pattern, rest)


def _automaton(
    patterns: Mapping[tuple[str, ...], int],
) -> tuple[ahocorasick.Automaton | None, list[_Head]]:
    """The Aho-Corasick automaton of every phrase; its values index `heads`."""
    heads: list[_Head] = []
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
        self.places: dict[int, list[tuple[int, int]]] = {}  # pattern → (start, stop) in text
        self.spans: dict[int, list[tuple[int, int]]] = {}
        self._terms: dict[int, tuple[tuple[str, ...], float]] = {}
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
        anywhere, in_title, in_abstract = index._pattern_atoms
        bar, phrases = self.bar, self.phrases
        for pid, where in places.items():
            if (aid := anywhere[pid]) >= 0:
                phrases[aid] = (pid, 0)
            if where[0][0] < bar and (aid := in_title[pid]) >= 0:
                phrases[aid] = (pid, 1)
            if where[-1][0] > bar and (aid := in_abstract[pid]) >= 0:
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
        got = [self._quote(start, stop) for start, stop in self.places[pid]]
        if field:
            got = [f for f in got if (f[0] == TITLE) == (field == 1)]
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
    """One `match` call: the subscribers' result lists and the caches its papers share."""

    def __init__(self, index: AlertIndex) -> None:
        self.index = index
        self.found: list[list[Match]] = [[] for _ in index._emails]
        self.authors: dict[str, tuple[int, ...]] = {}
        # unit → (words quoted, one reasons tuple per alert): the same alerts often quote
        # the same words in many papers, and then their Reasons serve them all
        self.reasons: dict[int, tuple[tuple[str, ...], list[tuple[Reason]]]] = {}

    def paper(self, paper: Paper) -> None:
        """Append this paper's Match to every subscriber one of its alerts fired for."""
        hits = _Hits(self.index, paper, self.authors)
        if not hits.all:
            return
        index = self.index
        delivery = _Delivery(self, hits)
        for aid in hits.all:
            if aid in index._units:
                delivery.fire(aid, *hits.terms(aid))
        for vid in self.evaluated(hits, index._evaluates):
            delivery.fire(-1 - vid, *delivery.combined(index._positives.get(vid) or ()))
        delivery.deliver()

    def evaluated(self, hits: _Hits, table: _Table[int]) -> list[int]:
        """The boolean alerts that one of the paper's atoms triggers and that hold true."""
        hit = hits.all
        triggered = [got for aid in hit if (got := table.get(aid)) is not None]
        if not triggered:
            return []
        programs = self.index._programs
        candidates = triggered[0] if len(triggered) == 1 else dict.fromkeys(chain(*triggered))
        return [vid for vid in candidates if _run_program(programs.get(vid) or (), hit)]

    def excluded(self, hits: _Hits) -> set[int]:
        """Subscribers one of whose exclude entries this paper matches."""
        index = self.index
        fires = index._fires_exclude
        fired = [vid for aid in hits.all if aid in fires for vid in fires.get(aid) or ()]
        fired += self.evaluated(hits, index._evaluates_exclude)
        postings = index._exclude_subscribers
        return set(chain.from_iterable(postings.get(vid) or () for vid in fired))

    def reasons_of(self, unit: int, terms: tuple[str, ...]) -> list[tuple[Reason]]:
        """One (one-element) reasons tuple per alert of the unit, quoting these words."""
        cached = self.reasons.get(unit)
        if cached is not None and cached[0] == terms:
            return cached[1]
        kinds, texts = self.index._kinds, self.index._texts
        alerts = self.index._units.get(unit) or ()
        reasons = [(Reason(kinds[v], texts[v], terms),) for v in alerts]
        self.reasons[unit] = (terms, reasons)
        return reasons


class _Delivery:
    """Delivering one paper: its Matches lined up with their subscribers, appended in bulk;
    the rare subscriber reached by two alerts gets one merged Match instead."""

    def __init__(self, run: _Run, hits: _Hits) -> None:
        self.run = run
        self.index = run.index
        self.hits = hits
        self.fired: dict[int, Match] = {}
        self.subscribers: list[Iterable[int]] = []
        self.matches: list[Iterable[Match]] = []
        self._excluded: set[int] = set()
        self._categories: list[str] | None = None
        self._by_category: list[_Table[int]] = []

    def fire(self, unit: int, terms: tuple[str, ...], score: float) -> None:
        """A unit fired: a Match per alert, lined up with each alert's subscribers."""
        index, paper_id = self.index, self.hits.paper.id
        plain, gated = index._plain, index._gated
        alerts = index._units.get(unit) or ()
        for vid, reasons in zip(alerts, self.run.reasons_of(unit, terms), strict=True):
            match = self.fired[vid] = Match(paper_id, reasons, score)
            subscribers = plain.get(vid)
            if subscribers is not None:
                self.subscribers.append(subscribers)
                self.matches.append(repeat(match, len(subscribers)))
            if vid in gated:
                self._gated(vid, match)

    def _gated(self, vid: int, match: Match) -> None:
        """Line up the alert's subscribers with excludes or restrictions the paper passes."""
        index = self.index
        if self._categories is None:
            self._categories = list(dict.fromkeys(map(fold_label, self.hits.paper.categories)))
            by_name = index._by_category
            self._by_category = [by_name[c] for c in self._categories if c in by_name]
            self._excluded = self.run.excluded(self.hits)
        parts: list[Sequence[int]] = []
        if (excluders := index._excluders.get(vid)) is not None:
            parts.append(excluders)
        parts += [got for table in self._by_category if (got := table.get(vid)) is not None]
        if (checked := index._checked.get(vid)) is not None:
            prefixed, categories = index._prefixed, self._categories
            parts.append([s for s in checked if prefixed[s].allows(categories)])
        if not parts:
            return
        # one restricted to two of the paper's categories is in two parts: once is enough
        subscribers = list(dict.fromkeys(chain(*parts))) if len(parts) > 1 else parts[0]
        self.subscribers.append(subscribers)
        self.matches.append(repeat(match, len(subscribers)))

    def deliver(self) -> None:
        """Append the lined-up Matches to the subscribers' lists (in C: most of the work)."""
        subscribers = list(chain.from_iterable(self.subscribers))
        if not subscribers:
            return
        matches = list(chain.from_iterable(self.matches))
        if self._excluded:
            subscribers, matches = _without(subscribers, matches, self._excluded)
        twice: set[int] = set()
        if len(set(subscribers)) < len(subscribers):
            twice = {sid for sid, n in Counter(subscribers).items() if n > 1}
            subscribers, matches = _without(subscribers, matches, twice)
        found = self.run.found
        deque(map(list.append, map(found.__getitem__, subscribers), matches), 0)
        for sid in sorted(twice):
            found[sid].append(self._merged(sid))

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

    def _merged(self, sid: int) -> Match:
        """The Match of a subscriber reached by several alerts: reasons in their order."""
        index = self.index
        ordered = [vid for vid in index._order(sid) if vid in self.fired]
        positive: list[int] = []
        for vid in ordered:
            single = index._single[vid]
            positive += [single] if single >= 0 else index._positives.get(vid) or ()
        reasons = tuple(self.fired[vid].reasons[0] for vid in ordered)
        return Match(self.hits.paper.id, reasons, self.combined(positive)[1])


def _without(
    subscribers: list[int], matches: list[Match], dropped: set[int]
) -> tuple[list[int], list[Match]]:
    """The (subscriber, match) pairs whose subscriber is not in `dropped`."""
    keep = list(map(operator.not_, map(dropped.__contains__, subscribers)))
    return list(compress(subscribers, keep)), list(compress(matches, keep))


def rank(matches: Iterable[Match], papers_by_id: Mapping[str, Paper]) -> list[Match]:
    """A digest's order: followed authors first, then score, then votes; stable otherwise."""

    def key(match: Match) -> tuple[bool, float, int]:
        paper = papers_by_id.get(match.paper_id)
        votes = paper.votes if paper is not None and paper.votes is not None else 0
        followed = any(r.kind == "author" for r in match.reasons)
        return (not followed, -match.score, -votes)

    return sorted(matches, key=key)
