"""The plain per-subscriber matcher: obviously right and slow; the oracle for `AlertIndex`.

It shares only the folding (`bot.text.fold`) and the parser (`bot.alerts.query`) with the index, and
spells out the rules that `bot.alerts.index` documents: word-by-word phrase comparison, NEAR,
author follows, labels and counts, the `categories` restriction, `exclude`, reasons
(authors first, then keywords, in the subscriber's order; terms as the paper writes them,
in reading order) and the score. Each pair (subscriber, paper) is decided on its own.

Three things only keep it fast enough to check a whole benchmark day: a paper is folded
once (`PaperView`), with each word's positions; what it answers for an atom is kept; and
so is whether an alert holds on it, by the alert's kind and text (many subscribers write
the same alert: measured at 100,000 subscribers, 52-60,000 pairs a second instead of
40-45,000).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

from bot.alerts.query import (
    And,
    AtLeast,
    Atom,
    Author,
    Label,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    atoms,
    parse_follow,
    parse_query,
)
from bot.models import Match, Paper, Reason, Subscriber
from bot.text.fold import author_key, fold_label, same_author, word_spans, words

# Sections, in reading order: what a reason quotes first.
TITLE, ABSTRACT, AUTHORS, CATEGORIES, SOURCES, ORGS, TAGS = range(7)
# (section, entry, first word, end word (past the last), the words as written); an entry is
# the n-th author, category, organisation...: sorted, places are in reading order
_Found = tuple[int, int, int, int, str]
_FIELD_SECTIONS = {
    "text": (TITLE, ABSTRACT),
    "title": (TITLE,),
    "abstract": (ABSTRACT,),
    "org": (ORGS,),
    "tag": (TAGS,),
}


class _Section:
    """One text of a paper as folded words, with each word's span and positions."""

    def __init__(self, number: int, entry: int, text: str) -> None:
        self.number, self.entry, self.text = number, entry, text
        self.words = words(text)
        self.spans = word_spans(text)
        self.positions: dict[str, list[int]] = {}
        for i, word in enumerate(self.words):
            self.positions.setdefault(word, []).append(i)
        self.vocabulary = sorted(self.positions)

    def starts(self, first: str) -> list[int]:
        """Where a phrase's first word agrees: that word, or every word a `pre*` begins."""
        if not first.endswith("*"):
            return self.positions.get(first, [])
        stem, found = first[:-1], []
        at = bisect_left(self.vocabulary, stem)
        while at < len(self.vocabulary) and self.vocabulary[at].startswith(stem):
            found += self.positions[self.vocabulary[at]]
            at += 1
        return sorted(found)

    def phrase(self, pattern: tuple[str, ...]) -> list[_Found]:
        """Every occurrence of the phrase's words, consecutive, in this section."""
        size, found = len(pattern), []
        for i in self.starts(pattern[0]):
            if i + size <= len(self.words) and all(
                _word_agrees(p, self.words[i + j]) for j, p in enumerate(pattern)
            ):
                start, end = self.spans[i][0], self.spans[i + size - 1][1]
                found.append((self.number, self.entry, i, i + size, self.text[start:end]))
        return found


def _word_agrees(pattern: str, word: str) -> bool:
    """A phrase word against a paper word: equal, or `pre*` a prefix of it."""
    return word.startswith(pattern[:-1]) if pattern.endswith("*") else word == pattern


def _near(a: _Found, b: _Found, distance: int) -> bool:
    """Two places in one section and entry, apart, with at most `distance` words between."""
    if a[:2] != b[:2]:
        return False
    between = b[2] - a[3] if b[2] >= a[3] else a[2] - b[3]
    return 0 <= between <= distance


class PaperView:
    """A paper folded once, answering atom questions (each answer kept for the next ask)."""

    def __init__(self, paper: Paper) -> None:
        self.paper = paper
        self.sections = {
            TITLE: [_Section(TITLE, 0, paper.title)],
            ABSTRACT: [_Section(ABSTRACT, 0, paper.abstract)],
            ORGS: [_Section(ORGS, i, name) for i, name in enumerate(paper.organizations)],
            TAGS: [_Section(TAGS, i, tag) for i, tag in enumerate(paper.keywords)],
        }
        self.authors = [author_key(name) for name in paper.authors]
        self.known: dict[Atom, list[_Found] | None] = {}
        self.fired: dict[str, bool] = {}  # by an alert's kind and text: see `fires`

    def places(self, atom: Atom) -> list[_Found] | None:
        """Where the paper satisfies the atom (maybe nowhere in particular), or None."""
        if atom not in self.known:
            self.known[atom] = self._places(atom)
        return self.known[atom]

    def _places(self, atom: Atom) -> list[_Found] | None:
        found: list[_Found] = []
        if isinstance(atom, Phrase):
            for number in _FIELD_SECTIONS[atom.field]:
                for section in self.sections[number]:
                    found += section.phrase(atom.words)
        elif isinstance(atom, Near):
            firsts, seconds = self.places(atom.first) or [], self.places(atom.second) or []
            pairs = [(a, b) for a in firsts for b in seconds if _near(a, b, atom.distance)]
            found = [place for pair in pairs for place in pair]
        elif isinstance(atom, Author):
            found = [
                (AUTHORS, i, 0, 0, name)
                for i, (name, key) in enumerate(zip(self.paper.authors, self.authors, strict=True))
                if key is not None and same_author(atom.key, key)
            ]
        elif isinstance(atom, Label):
            values = self.paper.categories if atom.field == "category" else self.paper.sources
            number = CATEGORIES if atom.field == "category" else SOURCES
            found = [(number, i, 0, 0, v) for i, v in enumerate(values) if _label_agrees(atom, v)]
        else:
            return [] if _counted(self.paper, atom) else None
        return found or None

    def fires(self, alert: str, root: Node) -> bool:
        """Does this alert (`kind: text`, its tree `root`) hold here? Kept: one text is one tree."""
        if (known := self.fired.get(alert)) is None:
            known = self.fired[alert] = self.holds(root)
        return known

    def holds(self, node: Node) -> bool:
        """Evaluate a query tree on this paper."""
        if isinstance(node, Not):
            return not self.holds(node.child)
        if isinstance(node, And):
            return all(self.holds(c) for c in node.children)
        if isinstance(node, Or):
            return any(self.holds(c) for c in node.children)
        return self.places(node) is not None


def _counted(paper: Paper, atom: AtLeast) -> bool:
    """The paper's votes or stars are known and at least the atom's minimum."""
    value = paper.votes if atom.field == "votes" else paper.stars
    return value is not None and value >= atom.minimum


def _label_agrees(atom: Label, value: str) -> bool:
    """A category/source name against the atom: equal, or starting with a prefix atom."""
    folded = fold_label(value)
    return folded.startswith(atom.value) if atom.prefix else folded == atom.value


def _in_categories(paper: Paper, wanted: tuple[str, ...]) -> bool:
    """The `categories:` restriction: the paper is in one of them (`cs.*` as a prefix)."""
    have = [fold_label(c) for c in paper.categories]
    for entry in (fold_label(w) for w in wanted):
        if entry.endswith("*") and any(h.startswith(entry.rstrip("*")) for h in have):
            return True
        if entry and not entry.endswith("*") and entry in have:
            return True
    return False


def _term(atom: Atom) -> object:
    """What counts once in a score: a phrase's words (whichever of title/abstract it is
    scoped to), any other atom itself."""
    return (
        atom.words
        if isinstance(atom, Phrase) and atom.field in ("text", "title", "abstract")
        else atom
    )


def _fired(view: PaperView, kind: str, text: str, root: Node) -> tuple[Reason, dict[object, float]]:
    """The reason of an alert that fired, and its terms' weights (each term at its best)."""
    found: list[_Found] = []
    weights: dict[object, float] = {}
    for atom, positive in atoms(root):
        places = view.places(atom) if positive else None
        if places is None:
            continue
        found += places
        in_title = isinstance(atom, Phrase | Near) and any(f[0] == TITLE for f in places)
        weight = 2.0 if in_title else 1.0
        weights[_term(atom)] = max(weight, weights.get(_term(atom), 0.0))
    terms = tuple(dict.fromkeys(f[4] for f in sorted(set(found))))
    return Reason(kind, text, terms), weights


class _Alerts:
    """One subscriber's alerts, parsed: (kind, text, tree) authors first, and excludes."""

    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber
        self.alerts: list[tuple[str, str, Node]] = [
            ("author", name, Author(parse_follow(name)))
            for name in dict.fromkeys(subscriber.authors)
        ]
        self.alerts += [
            ("keyword", t, parse_query(t).root) for t in dict.fromkeys(subscriber.keywords)
        ]
        self.excludes = [(f"exclude: {t}", parse_query(t).root) for t in subscriber.exclude]
        self.keys = [f"{kind}: {text}" for kind, text, _ in self.alerts]  # see PaperView.fires

    def match(self, view: PaperView) -> Match | None:
        """The subscriber's Match for this paper, or None if no alert fires."""
        categories = self.subscriber.categories
        if categories and not _in_categories(view.paper, categories):
            return None
        if any(view.fires(key, root) for key, root in self.excludes):
            return None
        fired = [
            _fired(view, kind, text, root)
            for (kind, text, root), key in zip(self.alerts, self.keys, strict=True)
            if view.fires(key, root)
        ]
        if not fired:
            return None
        weights: dict[object, float] = {}
        for _, terms in fired:
            for key, weight in terms.items():
                weights[key] = max(weight, weights.get(key, 0.0))
        return Match(view.paper.id, tuple(r for r, _ in fired), sum(weights.values()))


def reference_match(subscriber: Subscriber, paper: Paper) -> Match | None:
    """The subscriber's Match for this paper, computed the plain way; None if no alert fires."""
    return _Alerts(subscriber).match(PaperView(paper))


def reference_matches(
    subscribers: Iterable[Subscriber], papers: Sequence[Paper]
) -> dict[str, list[Match]]:
    """What `AlertIndex.match` returns, pair by pair: each paper (as first listed) against
    each subscriber, each paper folded once; subscribers without a match are absent."""
    firsts: dict[str, Paper] = {}
    for paper in papers:
        firsts.setdefault(paper.id, paper)
    prepared = [_Alerts(s) for s in subscribers]
    found: dict[str, list[Match]] = {}
    for paper in firsts.values():
        view = PaperView(paper)
        for alerts in prepared:
            match = alerts.match(view)
            if match is not None:
                found.setdefault(alerts.subscriber.email, []).append(match)
    return found
