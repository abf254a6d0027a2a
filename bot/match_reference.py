"""The plain per-subscriber matcher: obviously right and slow; the oracle for `AlertIndex`.

It shares only the folding (`bot.fold`) and the parser (`bot.query`) with the index, and
spells out the rules that `bot.match` documents: word-by-word phrase comparison, author
follows, `categories` restriction, `exclude`, reasons (authors first, then keywords, in
the subscriber's order; terms as the paper writes them, title first) and the score.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.fold import author_key, fold_label, same_author, word_spans, words
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
    atoms,
    parse_follow,
    parse_query,
)

# (section, position, words as written) — sections: title, abstract, authors, categories,
# sources, in this order
_Found = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class _Section:
    """A text field as folded words, with each word's span in the original text."""

    text: str
    words: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, text: str) -> _Section:
        """Fold one field."""
        return cls(text, tuple(words(text)), tuple(word_spans(text)))


def _word_agrees(pattern: str, word: str) -> bool:
    """A phrase word against a paper word: equal, or `pre*` a prefix of it."""
    return word.startswith(pattern[:-1]) if pattern.endswith("*") else word == pattern


def _phrase_places(phrase: Phrase, number: int, section: _Section) -> list[_Found]:
    """Every occurrence of the phrase's words, consecutive, in one section."""
    size = len(phrase.words)
    found: list[_Found] = []
    for i in range(len(section.words) - size + 1):
        if all(_word_agrees(p, section.words[i + j]) for j, p in enumerate(phrase.words)):
            start, end = section.spans[i][0], section.spans[i + size - 1][1]
            found.append((number, i, section.text[start:end]))
    return found


class _PaperView:
    """A paper with its title and abstract folded once, answering atom questions."""

    def __init__(self, paper: Paper) -> None:
        self.paper = paper
        self.title = _Section.of(paper.title)
        self.abstract = _Section.of(paper.abstract)

    def places(self, atom: Atom) -> list[_Found] | None:
        """Where the paper satisfies the atom (maybe nowhere in particular), or None."""
        found: list[_Found]
        if isinstance(atom, Phrase):
            found = []
            if atom.field in ("text", "title"):
                found += _phrase_places(atom, 0, self.title)
            if atom.field in ("text", "abstract"):
                found += _phrase_places(atom, 1, self.abstract)
        elif isinstance(atom, Author):
            found = [
                (2, i, name)
                for i, name in enumerate(self.paper.authors)
                if (key := author_key(name)) is not None and same_author(atom.key, key)
            ]
        elif isinstance(atom, Label):
            values = self.paper.categories if atom.field == "category" else self.paper.sources
            number = 3 if atom.field == "category" else 4
            found = [(number, i, v) for i, v in enumerate(values) if _label_agrees(atom, v)]
        else:
            votes = self.paper.votes
            return [] if votes is not None and votes >= atom.minimum else None
        return found or None

    def holds(self, node: Node) -> bool:
        """Evaluate a query tree on this paper."""
        if isinstance(node, Not):
            return not self.holds(node.child)
        if isinstance(node, And):
            return all(self.holds(c) for c in node.children)
        if isinstance(node, Or):
            return any(self.holds(c) for c in node.children)
        return self.places(node) is not None


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


def _fired(
    view: _PaperView, kind: str, text: str, root: Node
) -> tuple[Reason, dict[object, float]]:
    """The reason of an alert that fired, and its terms' weights (distinct terms count once)."""
    found: list[_Found] = []
    weights: dict[object, float] = {}
    for atom, positive in atoms(root):
        places = view.places(atom) if positive else None
        if places is None:
            continue
        found += places
        key = atom.words if isinstance(atom, Phrase) else atom
        in_title = isinstance(atom, Phrase) and any(f[0] == 0 for f in places)
        weights[key] = 2.0 if in_title else 1.0
    terms = tuple(dict.fromkeys(f[2] for f in sorted(set(found))))
    return Reason(kind, text, terms), weights


def reference_match(subscriber: Subscriber, paper: Paper) -> Match | None:
    """The subscriber's Match for this paper, computed the plain way; None if no alert fires."""
    view = _PaperView(paper)
    if subscriber.categories and not _in_categories(paper, subscriber.categories):
        return None
    if any(view.holds(parse_query(text).root) for text in subscriber.exclude):
        return None
    alerts: list[tuple[str, str, Node]] = [
        ("author", name, Author(parse_follow(name))) for name in dict.fromkeys(subscriber.authors)
    ]
    alerts += [("keyword", t, parse_query(t).root) for t in dict.fromkeys(subscriber.keywords)]
    fired = [_fired(view, kind, text, root) for kind, text, root in alerts if view.holds(root)]
    if not fired:
        return None
    weights: dict[object, float] = {}
    for _, terms in fired:
        for key, weight in terms.items():
            weights[key] = max(weight, weights.get(key, 0.0))
    return Match(paper.id, tuple(r for r, _ in fired), sum(weights.values()))
