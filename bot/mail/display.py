"""Text and links as a digest may display them: without bidirectional-text controls, on one
line, cut at a word, and only http(s) links.

Whatever a feed sends is shown through these: a title cannot break a line of the text part,
a bidi control cannot make "Grokking gnp.exe" display as "Grokking exe.png", and a
`javascript:` link is no link.
"""

from __future__ import annotations

import re

#: bidirectional-text controls: a feed can use them to make text display as something else
#: ("Grokking exe.png"); they are removed from everything a digest or page shows
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_NO_BIDI = dict.fromkeys(map(ord, BIDI_CONTROLS))

_LINE_BREAK = re.compile(r"\s*[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]\s*")


def plain_text(text: str) -> str:
    """The text without bidirectional-text controls (BIDI_CONTROLS), as it may be shown."""
    return text if text.isascii() else text.translate(_NO_BIDI)


def shorten(text: str, limit: int) -> str:
    """The text with its whitespace collapsed, cut to about `limit` characters at a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    return _cut_at_word(text, limit) + " …"


def _cut_at_word(text: str, limit: int) -> str:
    """Single-spaced text longer than `limit` cut at the last word that ends within it."""
    cut = text.rfind(" ", 0, limit + 1)
    if cut < limit // 2:  # one giant token: cut inside it rather than drop almost everything
        cut = limit
    return text[:cut].rstrip(" ,;:.-")


def one_line(title: str) -> str:
    """The title on one line: only whitespace runs that break the line become one space."""
    return _LINE_BREAK.sub(" ", title).strip()


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s) (a feed must not smuggle in javascript: links), else None.

    A URL with a bidi control in it is refused too: it could display as another address.
    """
    if not url:
        return None
    url = url.strip()
    if not url.isascii() and url != plain_text(url):
        return None
    return url if url.lower().startswith(("https://", "http://")) else None
