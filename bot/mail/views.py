"""Views: what a digest (or a web page) shows of a paper with its reasons.

`entry_view` is what the templates show of one paper: title (matched terms highlighted),
authors (the followed ones marked, a long list shortened), sources, date, reasons, abstract
and links, each cut to its cap so that no one paper fills a digest, and shown through
`bot.mail.display`. Followed authors are found by the matcher's own rule
(`bot.text.fold.same_author`), so that what is marked is what matched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from bot.mail.abstracts import wrapped
from bot.mail.caches import CACHES
from bot.mail.display import one_line, plain_text, safe_url, shorten
from bot.mail.highlight import highlight
from bot.models import RECOMMENDED, DigestEntry, Paper, Reason
from bot.text.fold import author_key, fold, same_author

#: titles are shown up to this many characters (long real titles have about 300)
TITLE_CHARS = 500
#: each author's name is shown up to this many characters
AUTHOR_CHARS = 100
#: a long author list shows this many first authors, the followed ones, and "and N more"
HEAD_AUTHORS = 5
#: the most followed authors named in one long author list
FOLLOWED_AUTHORS = 10
#: reasons shown per paper ("and N more" past that), each up to REASON_CHARS characters
MAX_REASONS = 10
REASON_CHARS = 300
#: the liked paper's title a recommendation names is cut to this many characters
LIKE_TITLE_CHARS = 150
#: links shown per paper; a longer URL than URL_CHARS is not shown
MAX_LINKS = 8
URL_CHARS = 2000


_LINK_ORDER = ("abs", "pdf", "code", "hf", "alphaxiv")
_LINK_NAMES = {
    "abs": "abstract",
    "pdf": "PDF",
    "code": "code",
    "hf": "Hugging Face",
    "alphaxiv": "alphaXiv",
    "doi": "DOI",
    "page": "page",
}


@dataclass(frozen=True, slots=True)
class EntryView:
    """What the templates show of one paper; built once per paper and reasons."""

    title: str
    title_html: Markup
    url: str | None
    authors: str
    authors_html: Markup
    sources: str
    date: str
    reasons: tuple[str, ...]
    abstract: str
    links: tuple[tuple[str, str], ...]


@CACHES.memo(maxsize=8192)
def entry_view(entry: DigestEntry) -> EntryView:
    """The template view of one digest entry (pure, cached: papers recur across digests)."""
    paper = entry.paper
    title = display_title(paper.title)
    links = paper_links(paper)
    text, html = author_views(paper.authors, followed_authors(paper.authors, entry.reasons))
    return EntryView(
        title=title,
        title_html=highlight(title, highlighted_terms(entry.reasons)),
        url=links[0][1] if links else None,
        authors=text,
        authors_html=Markup(html),
        sources=plain_text(", ".join(paper.sources)),
        date=_paper_date(paper),
        reasons=reason_lines(entry.reasons),
        abstract=wrapped(paper.abstract),
        links=tuple((_link_name(label), url) for label, url in links),
    )


def paper_links(paper: Paper) -> tuple[tuple[str, str], ...]:
    """A paper's (label, url) links, abstract page first, then PDF, code, HF; http(s) only.

    At most MAX_LINKS, none longer than URL_CHARS.
    """
    arxiv = f"https://arxiv.org/{{}}/{paper.arxiv_id}" if paper.arxiv_id else None
    candidates = [
        ("abs", paper.url or paper.link("abs") or (arxiv and arxiv.format("abs"))),
        ("pdf", paper.link("pdf") or (arxiv and arxiv.format("pdf"))),
        *sorted(
            ((lk.label, lk.url) for lk in paper.links),
            key=lambda item: _LINK_ORDER.index(item[0]) if item[0] in _LINK_ORDER else 99,
        ),
        ("doi", paper.link("doi") or (paper.doi and f"https://doi.org/{paper.doi}")),
    ]
    seen: dict[str, str] = {}
    for label, url in candidates:
        safe = safe_url(url)
        if safe and len(safe) <= URL_CHARS and safe not in seen:
            seen[safe] = label
    return tuple((label, url) for url, label in seen.items())[:MAX_LINKS]


@CACHES.memo(maxsize=16384)
def display_title(title: str) -> str:
    """The title as shown: on one line, no bidi controls, cut at a word past TITLE_CHARS."""
    shown = one_line(plain_text(title))
    return shown if len(shown) <= TITLE_CHARS else shorten(shown, TITLE_CHARS)


def _link_name(label: str) -> str:
    """What a link is called in a digest: a known label's name, else the label (short)."""
    return _LINK_NAMES.get(label) or shorten(plain_text(label), 40)


def _paper_date(paper: Paper) -> str:
    when = paper.published or paper.first_seen
    return when.date().isoformat() if when else ""


# --- reasons ---------------------------------------------------------------------------------


def highlighted_terms(reasons: Iterable[Reason]) -> tuple[str, ...]:
    """Words to highlight in title and abstract: what every non-author alert hit."""
    terms: dict[str, None] = {}
    for reason in reasons:
        if reason.kind == RECOMMENDED:  # its `alert` is a title, not words to look for
            terms.update(dict.fromkeys(reason.terms))
        elif reason.kind != "author":
            terms.update(dict.fromkeys(reason.terms or (reason.alert,)))
    return tuple(terms)


@CACHES.memo(maxsize=65536)
def _reason_line(reason: Reason) -> str:
    """`keyword: transform* (matched: transformer, Transformers)`; terms only if they differ.
    A recommendation's: `Like “<title>” — shared words: a, b, c`."""
    if reason.kind == RECOMMENDED:
        like = f"Like “{shorten(one_line(reason.alert), LIKE_TITLE_CHARS)}”"
        shared = ", ".join(dict.fromkeys(reason.terms))
        return shorten(
            plain_text(f"{like} — shared words: {shared}" if shared else like), REASON_CHARS
        )
    alert = fold(reason.alert)
    extra = [t for t in dict.fromkeys(reason.terms) if fold(t) != alert]
    line = f"{reason}" + (f" (matched: {', '.join(extra)})" if extra else "")
    return shorten(plain_text(line), REASON_CHARS)


@CACHES.memo(maxsize=65536)
def reason_lines(reasons: tuple[Reason, ...]) -> tuple[str, ...]:
    """The reasons as shown: the first MAX_REASONS, the last saying how many more there are."""
    lines = [_reason_line(reason) for reason in reasons[:MAX_REASONS]]
    if len(reasons) > MAX_REASONS:
        lines[-1] += f" (and {len(reasons) - MAX_REASONS} more)"
    return tuple(lines)


# --- authors ---------------------------------------------------------------------------------


@CACHES.memo(maxsize=16384)
def author_views(authors: tuple[str, ...], followed: frozenset[int]) -> tuple[str, Markup]:
    """The authors as shown: in the text part, and in HTML with followed ones in <strong>."""
    items, more = _author_items(authors, followed)
    return _authors_text(items, more), _authors_html(items, more)


def followed_authors(authors: tuple[str, ...], reasons: Iterable[Reason]) -> frozenset[int]:
    """Indexes of the authors an `author` reason's followed name designates."""
    follows = tuple(reason.alert for reason in reasons if reason.kind == "author")
    return _designated(authors, follows) if follows else frozenset()


@CACHES.memo(maxsize=16384)
def _designated(authors: tuple[str, ...], follows: tuple[str, ...]) -> frozenset[int]:
    """Indexes of the authors one of the followed names designates, by the matcher's rule
    (`same_author`): what is marked is what matched."""
    keys = [key for key in map(author_key, follows) if key is not None]
    return frozenset(
        i
        for i, name in enumerate(authors)
        if (key := author_key(name)) is not None and any(same_author(k, key) for k in keys)
    )


def _author_items(
    authors: Sequence[str], followed: frozenset[int]
) -> tuple[list[tuple[str, bool]], int]:
    """(name, followed) pairs to show, and how many authors are not shown.

    ("", False) marks a gap of left-out authors between two shown ones. A long list shows
    its first HEAD_AUTHORS and its followed ones (the first FOLLOWED_AUTHORS of them).
    """
    count = len(authors)
    if count <= HEAD_AUTHORS + 2:
        shown = list(range(count))
    else:
        shown = sorted({*range(HEAD_AUTHORS), *sorted(followed)[:FOLLOWED_AUTHORS]})
    items: list[tuple[str, bool]] = []
    for previous, index in zip([-1, *shown], shown, strict=False):
        if index != previous + 1:
            items.append(("", False))
        items.append((_display_name(authors[index]), index in followed))
    return items, count - len(shown)


def _authors_text(items: Sequence[tuple[str, bool]], more: int) -> str:
    names = ", ".join(name or "…" for name, _ in items)
    return f"{names} and {more} more" if more else names


def _authors_html(items: Sequence[tuple[str, bool]], more: int) -> Markup:
    names = Markup(", ").join(
        Markup("<strong>{}</strong>").format(name) if followed else escape(name or "…")
        for name, followed in items
    )
    return names + Markup(" and {} more").format(more) if more else names


@CACHES.memo(maxsize=65536)
def _display_name(name: str) -> str:
    """An author's name as shown: on one line, no bidi controls, at most AUTHOR_CHARS."""
    return shorten(plain_text(name), AUTHOR_CHARS)
