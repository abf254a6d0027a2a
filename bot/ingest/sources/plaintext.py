"""Plain text from what sources send: whitespace collapsed, HTML reduced to its text, HTML
entities decoded once.

`collapse` is the one whitespace rule of the sources: every parser uses it, and
`checks.clean_text`, the gate every paper passes, applies it too.
"""

from __future__ import annotations

import html

from bs4 import BeautifulSoup

#: block elements end a line of text; inline ones (`H<sub>2</sub>O`) sit inside a word
BLOCK_TAGS = [
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
    "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
]  # fmt: skip


def collapse(text: str) -> str:
    """Whitespace runs (newlines included) to single spaces, trimmed."""
    return " ".join(text.split())  # str.split() knows the same whitespace as regex `\s`


def html_to_text(markup: str) -> str:
    """The text of an HTML fragment: scripts dropped, block elements apart, inline ones joined."""
    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup(["script", "style", "template"]):
        tag.decompose()
    for tag in soup(BLOCK_TAGS):
        tag.insert_before(" ")
        tag.insert_after(" ")
    return soup.get_text("")


def entity_text(raw: str) -> str:
    """Text of a JSON source as a reader sees it: HTML entities decoded once, spaces collapsed.

    Once only: `&amp;lt;` is the text `&lt;`, never `<`.
    """
    return collapse(html.unescape(raw))
