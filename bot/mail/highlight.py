"""Highlighting: a digest marks in a title or abstract the terms its alerts matched.

Matching ignores case, accents and hyphen-or-space differences, and is whole-word
(`transform*` is a prefix).
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from bot.mail.caches import CACHES

_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2212"
#: what may separate the words of a phrase in text: spaces, newlines, any kind of hyphen
_GAP = rf"[\s{_DASHES}]+"
_GAP_RE = re.compile(_GAP)
#: a gap that is not already one plain space
_OPEN_GAP = re.compile(rf"[\s{_DASHES}]{{2,}}|[^\S ]|[{_DASHES}]")
_GAP_RUN = re.compile(rf"[\s{_DASHES}]{{2,}}")
_WORD_CHAR = re.compile(r"\w")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def highlight(text: str, terms: tuple[str, ...]) -> Markup:
    """The text HTML-escaped, with every occurrence of the terms wrapped in <mark>.

    Matching ignores case, accents and hyphen-or-space differences, and is whole-word
    (`transform*` is a prefix). Escaping each piece after matching on the raw text keeps
    entities intact.
    """
    needles = [n for n in map(_term_needle, terms) if n is not None]
    if not needles:
        return escape(text)
    folded, index = _fold_with_index(text)
    closed, where = _closed_gaps(folded)
    spans = [span for needle in needles for span in _occurrences(closed, where, needle)]
    if len(needles) > 1:
        spans.sort(key=lambda span: (span[0], -span[1]))  # leftmost, then longest first
    pieces: list[Markup] = []
    pos = 0
    for found_start, found_end in spans:
        start, end = index[found_start], index[found_end - 1] + 1
        if start < pos:
            continue
        pieces += [escape(text[pos:start]), Markup("<mark>"), escape(text[start:end])]
        pieces.append(Markup("</mark>"))
        pos = end
    pieces.append(escape(text[pos:]))
    return Markup("").join(pieces)


def fold(text: str) -> str:
    """Lowercased, accents removed (NFKD): what highlighting and author matching compare."""
    return _fold_with_index(text)[0]


@CACHES.memo(maxsize=16384)
def _fold_with_index(text: str) -> tuple[str, Sequence[int]]:
    """The folded text and, for each folded character, the index of its source character."""
    if text.isascii():
        return text.lower(), range(len(text))
    chars: list[str] = []
    index = array("I")  # compact: cached abstracts would otherwise hold lists of int objects
    pos = 0
    # ASCII runs fold in one piece; only the other characters go one by one
    for found in _NON_ASCII.finditer(text):
        i = found.start()
        if i > pos:
            chars.append(text[pos:i].lower())
            index.extend(range(pos, i))
        for part in unicodedata.normalize("NFKD", text[i]):
            if not unicodedata.combining(part):
                folded = part.casefold()
                chars.append(folded)
                index.extend([i] * len(folded))
        pos = i + 1
    chars.append(text[pos:].lower())
    index.extend(range(pos, len(text)))
    return "".join(chars), index


@dataclass(frozen=True, slots=True)
class _Needle:
    """A term as searched for: its folded words joined by single spaces, and its edges."""

    text: str
    #: the first (last) character is a word character: no word character may touch it
    word_start: bool
    word_end: bool
    #: `transform*`: the match runs on to the end of the word
    prefix: bool


@CACHES.memo(maxsize=65536)
def _term_needle(term: str) -> _Needle | None:
    """The needle of one term (cached: there are far fewer terms than digests).

    Plain `str.find` on gap-closed text instead of one compiled pattern per term: a run
    meets tens of thousands of distinct terms, and compiling each cost more than rendering.
    """
    words = [w for w in _GAP_RE.split(fold(term.strip().rstrip("*"))) if w]
    if not words:
        return None
    return _Needle(
        " ".join(words),
        word_start=_is_word_char(words[0][0]),
        word_end=_is_word_char(words[-1][-1]),
        prefix=term.rstrip().endswith("*"),
    )


def _is_word_char(char: str) -> bool:
    """Whether the character is a word character (\\w)."""
    return _WORD_CHAR.match(char) is not None


@CACHES.memo(maxsize=16384)
def _closed_gaps(folded: str) -> tuple[str, Sequence[int]]:
    """The folded text with each run of gaps (spaces, hyphens) made one space, and an index.

    The index gives, for each character, the position of the folded character it stands for.
    """
    if not _OPEN_GAP.search(folded):
        return folded, range(len(folded))
    if not _GAP_RUN.search(folded):  # each gap one character (a newline, a hyphen): in place
        return _GAP_RE.sub(" ", folded), range(len(folded))
    pieces: list[str] = []
    where = array("I")
    pos = 0
    for gap in _GAP_RE.finditer(folded):
        start = gap.start()
        pieces += (folded[pos:start], " ")
        where.extend(range(pos, start + 1))
        pos = gap.end()
    pieces.append(folded[pos:])
    where.extend(range(pos, len(folded)))
    return "".join(pieces), where


def _occurrences(closed: str, where: Sequence[int], needle: _Needle) -> Iterator[tuple[int, int]]:
    """The (start, end) folded-text spans of the needle, left to right, never overlapping.

    Whole words only (a prefix runs on to the end of its word): what the pattern
    "no word character, the words with gaps between them, no word character" finds.
    """
    size, length = len(closed), len(needle.text)
    found = closed.find(needle.text)
    while found >= 0:
        end = found + length
        if needle.word_start and found and _is_word_char(closed[found - 1]):
            found = closed.find(needle.text, found + 1)
            continue
        if needle.prefix:
            while end < size and _is_word_char(closed[end]):
                end += 1
        elif needle.word_end and end < size and _is_word_char(closed[end]):
            found = closed.find(needle.text, found + 1)
            continue
        yield where[found], where[end - 1] + 1
        found = closed.find(needle.text, end)
