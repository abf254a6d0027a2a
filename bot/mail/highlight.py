"""Highlighting: a digest marks in a title or abstract the words its alerts matched.

What is marked is what the matcher matches, by the same folding (`bot.text.fold`): words
are runs of letters and digits, compared without case or accents (ł, ø, æ and soft
hyphens included), every other character is a boundary. So a term marks its words where
they stand one after the other in the text, whole words only, whatever separates them
there ("in-context", "in context", "in/context"); `transform*` runs on to the end of the
word it begins.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from bot.mail.caches import CACHES
from bot.text.fold import word_spans, words


def highlight(text: str, terms: tuple[str, ...]) -> Markup:
    """The text HTML-escaped, with every occurrence of the terms wrapped in <mark>.

    Escaping each piece after matching on the raw text keeps entities intact. Where two
    occurrences overlap, the one that starts first (then the longer) is marked.
    """
    needles = [n for n in map(_needle, terms) if n is not None]
    if not needles:
        return escape(text)
    folded = _folded(text)
    spans = [span for needle in needles for span in folded.occurrences(needle)]
    if len(needles) > 1:
        spans.sort(key=lambda span: (span[0], -span[1]))  # leftmost, then longest first
    pieces: list[Markup] = []
    pos = 0
    for start, end in spans:
        if start < pos:
            continue
        pieces += [escape(text[pos:start]), Markup("<mark>"), escape(text[start:end])]
        pieces.append(Markup("</mark>"))
        pos = end
    pieces.append(escape(text[pos:]))
    return Markup("").join(pieces)


@dataclass(frozen=True, slots=True)
class _Needle:
    """A term as searched for: its folded words joined by single spaces."""

    text: str
    #: the term's words less one: how many words after the first one an occurrence spans
    more: int
    #: `transform*`: the last word runs on to the end of the text's word
    prefix: bool


@CACHES.memo(maxsize=65536)
def _needle(term: str) -> _Needle | None:
    """The needle of one term, None when it has no words (cached: terms recur).

    Plain `str.find` on the folded words instead of one compiled pattern per term: a run
    meets tens of thousands of distinct terms, and compiling each cost more than rendering.
    """
    found = words(term.strip().rstrip("*"))
    if not found:
        return None
    return _Needle(" ".join(found), len(found) - 1, prefix=term.rstrip().endswith("*"))


@dataclass(frozen=True, slots=True)
class _Folded:
    """A text's folded words joined by single spaces, and where each word is in the text."""

    joined: str
    starts: Sequence[int]
    ends: Sequence[int]

    def occurrences(self, needle: _Needle) -> Iterator[tuple[int, int]]:
        """The (start, end) text spans of the needle's words, left to right, never
        overlapping: whole words, one after the other (a prefix to the end of its word)."""
        joined = self.joined
        size, length = len(joined), len(needle.text)
        found = joined.find(needle.text)
        while found >= 0:
            end = found + length
            if found and joined[found - 1] != " ":  # inside a word
                found = joined.find(needle.text, found + 1)
                continue
            if needle.prefix:
                end = joined.find(" ", end)
                end = size if end < 0 else end
            elif end < size and joined[end] != " ":
                found = joined.find(needle.text, found + 1)
                continue
            first = joined.count(" ", 0, found)  # the word it starts at
            yield self.starts[first], self.ends[first + needle.more]
            found = joined.find(needle.text, end)


@CACHES.memo(maxsize=16384)
def _folded(text: str) -> _Folded:
    """The text's words as the matcher folds them (cached: titles and abstracts recur)."""
    spans = word_spans(text)
    # arrays: cached abstracts would otherwise hold hundreds of int objects each
    starts, ends = array("I", [s for s, _ in spans]), array("I", [e for _, e in spans])
    return _Folded(" ".join(words(text)), starts, ends)
