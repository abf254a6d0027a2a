"""Abstracts as shown: whole, or cut after one of their lines.

An abstract as shown is broken into lines of at most SOFT_WRAP characters at spaces. A cut
keeps its first lines: the HTML of a cut abstract is then the first lines of the whole
abstract's highlighted HTML (cached), with no highlighting to redo, and the text part keeps
the same words. In the text part an abstract is one long line (or a few, each within the
RFC 5322 limit), which mail clients wrap to their width.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import NamedTuple

from bot.mail.caches import CACHES
from bot.mail.display import plain_text
from bot.mail.mime import PACKED_LINE

#: longer than any real abstract (arXiv allows 1,920 characters): what is longer is cut
#: here whatever the budget, so that a hostile feed cannot make every digest slow
ABSTRACT_MAX = 5000
#: abstracts in the HTML part are broken into lines of this many characters at most, at
#: spaces (before their lines are packed): the part stays 7bit with no line too long
SOFT_WRAP = 100


@dataclass(frozen=True, slots=True)
class Lines:
    """An abstract as shown (whitespace collapsed, no bidi controls) in lines of at most
    SOFT_WRAP characters broken at spaces, at most ABSTRACT_MAX characters of them."""

    lines: tuple[str, ...]
    #: where each line ends in the text (the lines joined by spaces)
    ends: tuple[int, ...]
    #: the abstract had more than ABSTRACT_MAX characters
    truncated: bool

    def within(self, limit: int) -> int:
        """How many first lines fit in `limit` characters; at least one (if any)."""
        return max(1, bisect_right(self.ends, limit)) if self.lines else 0


@CACHES.memo(maxsize=8192)
def abstract_lines(abstract: str) -> Lines:
    """The abstract's lines (a hostile megabyte is not even read whole)."""
    sliced = len(abstract) > 4 * ABSTRACT_MAX
    text = " ".join(plain_text(abstract[: 4 * ABSTRACT_MAX] if sliced else abstract).split())
    lines = tuple(_break_lines(text, SOFT_WRAP).split("\n")) if text else ()
    ends = tuple(end - 1 for end in accumulate(len(line) + 1 for line in lines))
    whole = Lines(lines, ends, sliced)
    kept = whole.within(ABSTRACT_MAX)
    return Lines(lines[:kept], ends[:kept], sliced or kept < len(lines))


class Cut(NamedTuple):
    """How an abstract is shown: its first `kept` lines of `lines`; it is cut when that is
    fewer, or when it had more than ABSTRACT_MAX characters."""

    kept: int
    lines: int
    truncated: bool

    @property
    def cut(self) -> bool:
        """The abstract shown is not all of it."""
        return self.truncated or self.kept < self.lines


def abstract_cut(abstract: str, limit: int | None) -> Cut:
    """How the abstract is shown with the cut `limit` (None: whole)."""
    lines = abstract_lines(abstract)
    total = len(lines.lines)
    return Cut(total if limit is None else lines.within(limit), total, lines.truncated)


@CACHES.memo(maxsize=4096)
def wrapped(abstract: str, kept: int | None = None) -> str:
    """The abstract's first `kept` lines (None: all) as few long lines, which mail clients
    wrap to their width.

    A line of 76 makes an abstract twenty lines, and lines are what SMTP servers spend their
    time on (a server reads DATA line by line). So an abstract is one line, or, when too long
    in bytes for one RFC 5322 line, lines of up to PACKED_LINE bytes broken at spaces.
    """
    text = " ".join(abstract_lines(abstract).lines[:kept])
    if _byte_size(text) <= PACKED_LINE:
        return text
    widest = 1 if text.isascii() else max(len(char.encode("utf-8")) for char in set(text))
    return _break_lines(text, PACKED_LINE // widest)


def _break_lines(text: str, width: int) -> str:
    """Single-spaced text in lines of at most `width` characters, broken at spaces; a word
    longer than that stays whole on a line of its own (one pass, no backtracking)."""
    lines: list[str] = []
    start = 0
    while len(text) - start > width:
        cut = text.rfind(" ", start, start + width + 1)
        if cut <= start:
            cut = text.find(" ", start + width)
            if cut < 0:
                break
        lines.append(text[start:cut])
        start = cut + 1
    lines.append(text[start:])
    return "\n".join(lines)


def _byte_size(text: str) -> int:
    """The UTF-8 bytes of the text."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))
