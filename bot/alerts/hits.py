"""Where a day's papers have the alerts' atoms: for each atom, the papers and the places.

`AtomFinder` is made once per index from every distinct atom; `find` reads each paper
once. Each title, abstract, organisation and AI keyword is folded into words (`bot.text.fold`),
all looked up at once (`map`, `compress`) in a dict of the phrases that may start at a
word (`transform*` filed under its letters); a phrase of two exact words is filed under
its second one there, one more look-up; the rest is compared word by word. (Bench day:
108,000 patterns tried, not 289,000; `find` 0.50-0.55 s CPU, not 0.73-0.89.) A NEAR is two
phrases close in one section; authors, categories, sources and counts come from fields.

A *place* is where a paper has an atom: (section, entry, first word, end word, the words
as the paper writes them). Sections go in reading order (`TITLE` ... `TAGS`); an entry is
the n-th author, category, organisation...; the end word is one past the last. Sorted,
places are in reading order: what a reason quotes, title first.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import compress, groupby
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
    known: int  # the first words its look-up compared (1, or 2 when filed by a pair)
    rest: list[str] | None  # the words after those when none is a prefix, else None
    phrases: dict[int, list[Phrase]]  # by section


_Start = tuple[tuple[_Pattern, ...], dict[str, list[_Pattern]]]


class _Starting(dict[str, _Start | None]):
    """A paper word → the patterns that may start there, or None: those filed under it (its
    own, its prefixes'), and those of two exact words by their second one; worked out when
    the word is first seen."""

    def __init__(self, finder: AtomFinder) -> None:
        self.by_first, self.by_stem, self.pairs = finder.by_first, finder.by_stem, finder.pairs
        self.stems = sorted({len(stem) for stem in self.by_stem})

    def __missing__(self, word: str) -> _Start | None:
        found = list(self.by_first.get(word, ()))
        for size in self.stems:
            if size > len(word):
                break
            found += self.by_stem.get(word[:size], ())
        pairs = self.pairs.get(word, {})
        self[word] = got = (tuple(found), pairs) if found or pairs else None
        return got


class AtomFinder:
    """The look-ups that find a set of atoms in papers."""

    def __init__(self, atoms: Iterable[Atom]) -> None:
        self._patterns: dict[Words, _Pattern] = {}
        self.by_first: dict[str, list[_Pattern]] = defaultdict(list)  # exact first word
        self.by_stem: dict[str, list[_Pattern]] = defaultdict(list)  # a first word's prefix
        self.pairs: dict[str, dict[str, list[_Pattern]]] = {}  # two exact words: 1st → 2nd →
        self._nears: list[Near] = []
        # followed names by surname and first given name ("" for none), and by surname
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
        self._starting = _Starting(self)

    def _add(self, atom: Atom) -> None:
        """File one atom under what finds it."""
        if isinstance(atom, Phrase):
            pattern = self._patterns.get(atom.words)
            if pattern is None:  # a new pattern, filed under its first two words or first
                words, exact = atom.words, [w[-1] != "*" for w in atom.words]
                known = 2 if exact[:2] == [True, True] else 1
                rest = [*words[known:]] if all(exact[1:]) else None
                pattern = self._patterns[words] = _Pattern(words, known, rest, {})
                if known == 2:
                    self.pairs.setdefault(words[0], {}).setdefault(words[1], []).append(pattern)
                else:
                    table = self.by_first if exact[0] else self.by_stem
                    table[words[0].rstrip("*")].append(pattern)
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
        folded, spans = words(text), list[tuple[int, int]]()
        starts, size = list(map(self._starting.__getitem__, folded)), len(folded)
        for first, (tries, pairs) in zip(
            compress(range(size), starts), filter(None, starts), strict=True
        ):
            if pairs and first + 1 < size and (second := pairs.get(folded[first + 1])):
                tries = (*tries, *second)
            for pattern in tries:
                phrases, end = pattern.phrases.get(section), first + len(pattern.words)
                if not phrases or end > size:
                    continue
                if pattern.rest != [] and not _agree(pattern, folded, first, end):  # []: known
                    continue
                spans = spans or word_spans(text)
                place = (section, entry, first, end, text[spans[first][0] : spans[end - 1][1]])
                for phrase in phrases:
                    hits[phrase].setdefault(number, []).append(place)

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
    """Do the paper's words from `first` agree with the pattern's its look-up did not compare?"""
    known = pattern.known
    if (rest := pattern.rest) is not None:  # no prefix: compare them, the first one first
        return folded[first + known] == rest[0] and folded[first + known : end] == rest
    return all(
        word.startswith(want[:-1]) if want[-1] == "*" else word == want
        for want, word in zip(pattern.words[known:], folded[first + known : end], strict=True)
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
            low = a[2] - size  # the start of one that ends right before `a`
            before = near[bisect_left(starts, low - distance) : bisect_right(starts, low)]
            if after or before:
                found.update((a, *after, *before))
    return sorted(found)
