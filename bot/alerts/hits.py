"""Where a day's papers have the alerts' atoms: for each atom, the papers and the places.

`AtomFinder` is made once per index from every distinct atom; `find` reads each paper
once. Each title, abstract, organisation and AI keyword is folded once into words
(`bot.text.fold`); a dict from a paper word to the phrases that may start there (made when the
word is first seen; `transform*` is filed under its letters) finds the phrases, the rest
compared word by word. A NEAR is two phrases close in one section; authors, categories,
sources and counts are read from their fields.

A *place* is where a paper has an atom: (section, entry, first word, end word, the words
as the paper writes them). Sections go in reading order (`TITLE` ... `TAGS`); an entry is
the n-th author, category, organisation...; the end word is one past the last. Sorted,
places are in reading order: what a reason quotes, title first.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple, NewType

from bot.alerts.query import AtLeast, Atom, Author, Label, Near, Phrase
from bot.models import Paper
from bot.text.fold import author_key, fold_label, same_author, word_spans, words

TITLE, ABSTRACT, AUTHORS, CATEGORIES, SOURCES, ORGS, TAGS = range(7)
#: the sections a phrase of each field is looked for in
SECTIONS = {"text": (TITLE, ABSTRACT), "title": (TITLE,), "abstract": (ABSTRACT,)}
SECTIONS |= {"org": (ORGS,), "tag": (TAGS,)}

PaperNo = NewType("PaperNo", int)  #: a paper's place in the day's list, from 0
Place = tuple[int, int, int, int, str]
#: for each atom that papers have: the papers (ascending), each with its places in order
Hits = dict[Atom, dict[PaperNo, list[Place]]]
Words = tuple[str, ...]  # a phrase's folded words; one ending in `*` is a prefix


class _Pattern(NamedTuple):
    """A phrase's words, and the phrase atoms its occurrence makes true in each section."""

    words: Words
    rest: list[str] | None  # the words after the first when none is a prefix, else None
    phrases: dict[int, list[Phrase]]  # by section


class AtomFinder:
    """The look-ups that find a set of atoms in papers."""

    def __init__(self, atoms: Iterable[Atom]) -> None:
        self._patterns: dict[Words, _Pattern] = {}
        self._by_first: dict[str, list[_Pattern]] = defaultdict(list)  # exact first word
        self._by_stem: dict[str, list[_Pattern]] = defaultdict(list)  # a first word's prefix
        self._starting: dict[str, tuple[_Pattern, ...]] = {}  # a paper word → patterns
        self._nears: list[Near] = []
        # followed names by (surname, first given name or ""), and by surname
        self._follows: dict[tuple[str, str], list[Author]] = defaultdict(list)
        self._surnames: dict[str, list[Author]] = defaultdict(list)
        self._authors: dict[str, list[Author]] = {}  # a paper author → followed names
        self._labels: dict[tuple[str, str], list[Label]] = defaultdict(list)
        self._prefixes: list[Label] = []  # category and source prefixes
        self._counts: list[AtLeast] = []
        atoms = dict.fromkeys(atoms)
        for near in [a for a in atoms if isinstance(a, Near)]:
            atoms.update(dict.fromkeys((near.first, near.second)))
        for atom in atoms:
            self._add(atom)
        self._stems = sorted({len(stem) for stem in self._by_stem})

    def _add(self, atom: Atom) -> None:
        """File one atom under what finds it."""
        if isinstance(atom, Phrase):
            pattern = self._patterns.get(atom.words)
            if pattern is None:  # a new pattern, filed under its first word (or prefix)
                rest = None if any(w[-1] == "*" for w in atom.words[1:]) else [*atom.words[1:]]
                pattern = self._patterns[atom.words] = _Pattern(atom.words, rest, {})
                first = atom.words[0]
                table = self._by_stem if first[-1] == "*" else self._by_first
                table[first.rstrip("*")].append(pattern)
            for section in SECTIONS[atom.field]:
                pattern.phrases.setdefault(section, []).append(atom)
        elif isinstance(atom, Near):
            self._nears.append(atom)
        elif isinstance(atom, Author):
            key = atom.key
            self._follows[key.surname, key.given[0] if key.given else ""].append(atom)
            self._surnames[key.surname].append(atom)
        elif isinstance(atom, Label) and atom.prefix:
            self._prefixes.append(atom)
        elif isinstance(atom, Label):
            self._labels[atom.field, atom.value].append(atom)
        else:
            self._counts.append(atom)

    def find(self, papers: Sequence[Paper]) -> Hits:
        """Every atom these papers have, with its places, paper by paper."""
        hits: Hits = defaultdict(dict)
        for number, paper in enumerate(papers):
            self._read(hits, PaperNo(number), TITLE, 0, paper.title)
            self._read(hits, PaperNo(number), ABSTRACT, 0, paper.abstract)
            for section, texts in ((ORGS, paper.organizations), (TAGS, paper.keywords)):
                for entry, text in enumerate(texts):
                    self._read(hits, PaperNo(number), section, entry, text)
            self._read_fields(hits, PaperNo(number), paper)
        for near in self._nears:
            firsts, seconds = hits.get(near.first, {}), hits.get(near.second, {})
            for number, places in firsts.items():
                if number in seconds and (both := close(places, seconds[number], near.distance)):
                    hits[near][number] = both
        return hits

    def _read(self, hits: Hits, number: PaperNo, section: int, entry: int, text: str) -> None:
        """Every phrase occurrence in one text, filed under the atoms it makes true."""
        folded = words(text)
        spans: list[tuple[int, int]] = []
        starting, size = self._starting, len(folded)
        for first, word in enumerate(folded):
            patterns = starting.get(word)
            if patterns is None:
                patterns = self._starting_at(word)
            for pattern in patterns:
                phrases, end = pattern.phrases.get(section), first + len(pattern.words)
                if not phrases or end > size or not _agree(pattern, folded, first, end):
                    continue
                spans = spans or word_spans(text)
                place = (section, entry, first, end, text[spans[first][0] : spans[end - 1][1]])
                for phrase in phrases:
                    hits[phrase].setdefault(number, []).append(place)

    def _starting_at(self, word: str) -> tuple[_Pattern, ...]:
        """The patterns that may start at this word: its own, and those of its prefixes."""
        found = list(self._by_first.get(word, ()))
        for size in self._stems:
            if size > len(word):
                break
            found += self._by_stem.get(word[:size], ())
        self._starting[word] = got = tuple(found)
        return got

    def _read_fields(self, hits: Hits, number: PaperNo, paper: Paper) -> None:
        """Followed authors, categories, sources and counts of one paper."""
        for entry, name in enumerate(paper.authors if self._follows else ()):
            follows = self._authors.get(name)
            for follow in self._followed(name) if follows is None else follows:
                hits[follow].setdefault(number, []).append((AUTHORS, entry, 0, 0, name))
        labelled = self._labels or self._prefixes
        for section, field, values in (
            (CATEGORIES, "category", paper.categories if labelled else ()),
            (SOURCES, "source", paper.sources if labelled else ()),
        ):
            for entry, value in enumerate(values):
                folded = fold_label(value)
                found = [a for a in self._prefixes if folded.startswith(a.value)]
                for label in [*self._labels.get((field, folded), ()), *found]:
                    if label.field == field:
                        hits[label].setdefault(number, []).append((section, entry, 0, 0, value))
        for count in self._counts:
            known = paper.votes if count.field == "votes" else paper.stars
            if known is not None and known >= count.minimum:
                hits[count][number] = []

    def _followed(self, name: str) -> list[Author]:
        """The followed names that designate this paper author (kept for the next paper)."""
        key, found = author_key(name), []
        if key is not None and len(first := key.given[0] if key.given else "") == 1:
            found = [a for a in self._surnames.get(key.surname, ()) if same_author(a.key, key)]
        elif key is not None:  # follows of the surname alone, the first name or its initial
            for given in dict.fromkeys(("", first, first[:1])):
                follows = self._follows.get((key.surname, given), ())
                found += [a for a in follows if same_author(a.key, key)]
        self._authors[name] = found
        return found


def _agree(pattern: _Pattern, folded: list[str], first: int, end: int) -> bool:
    """Do the paper's words after `first` agree with the pattern's after its first one?"""
    if (rest := pattern.rest) is not None:  # no prefix: compare them, the second one first
        return not rest or (folded[first + 1] == rest[0] and folded[first + 1 : end] == rest)
    return all(
        word.startswith(want[:-1]) if want[-1] == "*" else word == want
        for want, word in zip(pattern.words[1:], folded[first + 1 : end], strict=True)
    )


def close(firsts: list[Place], seconds: list[Place], distance: int) -> list[Place]:
    """The places of either list with one of the other in the same section and entry, not
    overlapping, at most `distance` words between them; in reading order. Those near a
    place are two runs of the other (in order, one length): bisected, not all compared."""
    found: set[Place] = set()
    for entry, group in groupby(seconds, key=itemgetter(0, 1)):
        near = list(group)
        starts, size = [b[2] for b in near], near[0][3] - near[0][2]
        for a in (a for a in firsts if a[:2] == entry):
            after = near[bisect_left(starts, a[3]) : bisect_right(starts, a[3] + distance)]
            before = near[
                bisect_left(starts, a[2] - distance - size) : bisect_right(starts, a[2] - size)
            ]
            if after or before:
                found.update((a, *after, *before))
    return sorted(found)
