"""Where a day's papers have the alerts' atoms: for each atom, the papers and the places.

`AtomFinder` is made once per index from every distinct atom of every alert; `find` reads
each paper once. Titles and abstracts (and each organisation and AI keyword) are folded
once into words (`bot.fold`), and phrases are looked up from the text side: a dict from a
word to the phrases that may start there, worked out the first time the word is seen (a
prefix phrase `transform*` is filed under its letters, and found for every word they
begin). The rest of a phrase is then compared word by word. A NEAR is two such phrases
in one section; authors, categories, sources and counts are read from their fields.

A *place* is where a paper has an atom: (section, entry, first word, end word, the words
as the paper writes them). Sections go in reading order (`TITLE` ... `TAGS`); an entry is
the n-th author, category, organisation...; words are numbered from 0, the end one past
the last. Sorted, places are in reading order: what a reason quotes, title first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple, NewType

from bot.fold import AuthorKey, author_key, fold_label, same_author, word_spans, words
from bot.models import Paper
from bot.query import AtLeast, Atom, Author, Label, Near, Phrase

TITLE, ABSTRACT, AUTHORS, CATEGORIES, SOURCES, ORGS, TAGS = range(7)
#: the sections a phrase of each field is looked for in
SECTIONS = {"text": (TITLE, ABSTRACT), "title": (TITLE,), "abstract": (ABSTRACT,)}
SECTIONS |= {"org": (ORGS,), "tag": (TAGS,)}

#: a paper's number in the day's list (its place in `AlertIndex.match`'s papers, first 0)
PaperNo = NewType("PaperNo", int)
Place = tuple[int, int, int, int, str]
#: for each atom that a paper has: the papers (ascending), each with its places in order
Hits = dict[Atom, dict[PaperNo, list[Place]]]
Words = tuple[str, ...]  # a phrase's folded words; one ending in `*` is a prefix


class _Pattern(NamedTuple):
    """A phrase's words, and the phrase atoms its occurrence makes true in each section."""

    words: Words
    rest: list[str] | None  # the words after the first when none is a prefix, else None
    phrases: dict[int, list[Phrase]]  # by section

    @classmethod
    def of(cls, pattern: Words) -> _Pattern:
        """A pattern that no phrase uses yet."""
        plain = not any(word.endswith("*") for word in pattern[1:])
        return cls(pattern, list(pattern[1:]) if plain else None, {})


class AtomFinder:
    """The look-ups that find a set of atoms in papers."""

    def __init__(self, atoms: Iterable[Atom]) -> None:
        self._patterns: dict[Words, _Pattern] = {}
        self._by_first: dict[str, list[_Pattern]] = defaultdict(list)  # exact first word
        self._by_stem: dict[str, list[_Pattern]] = defaultdict(list)  # a first word's prefix
        self._starting: dict[str, tuple[_Pattern, ...]] = {}  # a paper word → patterns
        self._nears: list[Near] = []
        self._follows: dict[tuple[str, str], list[Author]] = defaultdict(list)
        self._authors: dict[str, list[Author]] = {}  # a paper author → followed names
        self._labels: dict[tuple[str, str], list[Label]] = defaultdict(list)
        self._label_prefixes: list[Label] = []
        self._found_labels: dict[tuple[str, str], list[Label]] = {}
        self._counts: list[AtLeast] = []
        self._lists = False  # any phrase of an organisation or a tag
        atoms = dict.fromkeys(atoms)
        for near in [a for a in atoms if isinstance(a, Near)]:
            atoms.update(dict.fromkeys((near.first, near.second)))
        for atom in atoms:
            self._add(atom)
        self._stems = sorted({len(stem) for stem in self._by_stem})

    def _add(self, atom: Atom) -> None:
        """File one atom under what finds it."""
        if isinstance(atom, Phrase):
            self._add_phrase(atom)
        elif isinstance(atom, Near):
            self._nears.append(atom)
        elif isinstance(atom, Author):
            key = atom.key
            self._follows[key.surname, key.given[0] if key.given else ""].append(atom)
            if key.given:  # a paper author written with an initial: every name it begins
                self._follows[key.surname, key.given[0][0] + "*"].append(atom)
        elif isinstance(atom, Label):
            if atom.prefix:
                self._label_prefixes.append(atom)
            else:
                self._labels[atom.field, atom.value].append(atom)
        else:
            self._counts.append(atom)

    def _add_phrase(self, phrase: Phrase) -> None:
        """File a phrase under its pattern, and a new pattern under its first word."""
        pattern = self._patterns.get(phrase.words)
        if pattern is None:
            pattern = self._patterns[phrase.words] = _Pattern.of(phrase.words)
            first = phrase.words[0]
            if first.endswith("*"):
                self._by_stem[first[:-1]].append(pattern)
            else:
                self._by_first[first].append(pattern)
        for section in SECTIONS[phrase.field]:
            pattern.phrases.setdefault(section, []).append(phrase)
        self._lists = self._lists or phrase.field in ("org", "tag")

    def find(self, papers: Sequence[Paper]) -> Hits:
        """Every atom these papers have, with its places, paper by paper."""
        hits: Hits = defaultdict(dict)
        for number, paper in enumerate(papers):
            self._read_text(hits, PaperNo(number), paper)
            self._read_fields(hits, PaperNo(number), paper)
        for near in self._nears:
            self._read_near(hits, near)
        return hits

    # ---------------------------------------------------------------------- phrases

    def _read_text(self, hits: Hits, number: PaperNo, paper: Paper) -> None:
        """The phrases of the title, the abstract, and each organisation and AI keyword."""
        self._read_section(hits, number, TITLE, 0, paper.title)
        self._read_section(hits, number, ABSTRACT, 0, paper.abstract)
        if self._lists:
            for entry, name in enumerate(paper.organizations):
                self._read_section(hits, number, ORGS, entry, name)
            for entry, tag in enumerate(paper.keywords):
                self._read_section(hits, number, TAGS, entry, tag)

    def _read_section(
        self, hits: Hits, number: PaperNo, section: int, entry: int, text: str
    ) -> None:
        """Every phrase occurrence in one text, filed under the atoms it makes true."""
        folded = words(text)
        spans: list[tuple[int, int]] = []
        starting, size = self._starting, len(folded)
        for first, word in enumerate(folded):
            patterns = starting.get(word)
            if patterns is None:
                patterns = self._starting_at(word)
            for pattern in patterns:
                phrases = pattern.phrases.get(section)
                end = first + len(pattern.words)
                if not phrases or end > size:
                    continue
                rest = pattern.rest  # do the words after the first agree?
                if rest is None:
                    if not _agree(pattern.words, folded, first):
                        continue
                elif rest and (folded[first + 1] != rest[0] or folded[first + 1 : end] != rest):
                    continue
                spans = spans or word_spans(text)
                quote = text[spans[first][0] : spans[end - 1][1]]
                place = (section, entry, first, end, quote)
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

    def _read_near(self, hits: Hits, near: Near) -> None:
        """The papers where both phrases of a NEAR are close enough in one section."""
        firsts, seconds = hits.get(near.first), hits.get(near.second)
        if not firsts or not seconds:
            return
        for number, places in firsts.items():
            if number in seconds and (both := close(places, seconds[number], near.distance)):
                hits[near][number] = both

    # ----------------------------------------------------------------------- fields

    def _read_fields(self, hits: Hits, number: PaperNo, paper: Paper) -> None:
        """Followed authors, categories, sources and counts of one paper."""
        if self._follows:
            for entry, name in enumerate(paper.authors):
                follows = self._authors.get(name)
                for follow in self._followed(name) if follows is None else follows:
                    hits[follow].setdefault(number, []).append((AUTHORS, entry, 0, 0, name))
        if self._labels or self._label_prefixes:
            for section, field, values in (
                (CATEGORIES, "category", paper.categories),
                (SOURCES, "source", paper.sources),
            ):
                for entry, value in enumerate(values):
                    for label in self._labelled(field, fold_label(value)):
                        hits[label].setdefault(number, []).append((section, entry, 0, 0, value))
        for count in self._counts:
            known = paper.votes if count.field == "votes" else paper.stars
            if known is not None and known >= count.minimum:
                hits[count][number] = []

    def _followed(self, name: str) -> list[Author]:
        """The followed names that designate this paper author (kept for the next paper)."""
        key = author_key(name)
        found = (
            []
            if key is None
            else [a for a in _candidates(self._follows, key) if same_author(a.key, key)]
        )
        self._authors[name] = found
        return found

    def _labelled(self, field: str, folded: str) -> list[Label]:
        """The category or source atoms that a (folded) name satisfies."""
        found = self._found_labels.get((field, folded))
        if found is None:
            found = list(self._labels.get((field, folded), ()))
            found += [
                a for a in self._label_prefixes if a.field == field and folded.startswith(a.value)
            ]
            self._found_labels[field, folded] = found
        return found


def _agree(pattern: Words, folded: list[str], first: int) -> bool:
    """Do the paper's words from `first` on agree with the phrase after its first word?"""
    for offset in range(1, len(pattern)):
        want, word = pattern[offset], folded[first + offset]
        if want[-1] == "*":
            if not word.startswith(want[:-1]):
                return False
        elif word != want:
            return False
    return True


def _candidates(follows: dict[tuple[str, str], list[Author]], key: AuthorKey) -> list[Author]:
    """The follows that may designate an author with this key (`same_author` decides)."""
    found = list(follows.get((key.surname, ""), ()))  # follows of a surname alone
    if key.given:
        first = key.given[0]
        if len(first) == 1:
            found += follows.get((key.surname, first + "*"), ())
        else:
            found += follows.get((key.surname, first), ())
            found += follows.get((key.surname, first[0]), ())
    return found


def close(firsts: list[Place], seconds: list[Place], distance: int) -> list[Place]:
    """The places of either list with one of the other in the same section and entry, not
    overlapping, at most `distance` words between them; in reading order."""
    found: set[Place] = set()
    for a in firsts:
        for b in seconds:
            if a[:2] == b[:2] and (0 <= b[2] - a[3] <= distance or 0 <= a[2] - b[3] <= distance):
                found.update((a, b))
    return sorted(found)
