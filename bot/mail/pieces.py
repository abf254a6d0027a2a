"""Pieces: one digest entry (a paper with its reasons) as the text and HTML a digest joins.

A piece is its paper's skeleton (`bot.mail.templates`) filled with what the entry's reasons
make of it: the highlighted title and abstract, the followed authors in <strong>, the
reasons. Pieces are cached by paper and reasons, because the same paper with the same
reasons recurs in many subscribers' digests of one run; pieces with a cut abstract, which
few digests need, have a smaller cache of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import escape

from bot.mail.abstracts import Cut, abstract_cut, abstract_lines, wrapped
from bot.mail.caches import CACHES, PaperTable, Table
from bot.mail.highlight import highlight
from bot.mail.mime import pack_lines
from bot.mail.templates import (
    WHY_MATCHED,
    WHY_NONE,
    WHY_RECOMMENDED,
    abstract_state,
    html_skeleton,
    styled,
    text_skeleton,
)
from bot.mail.views import (
    author_views,
    display_title,
    followed_authors,
    highlighted_terms,
    reason_lines,
)
from bot.models import RECOMMENDED, DigestEntry, Paper, Reason

#: rendered entries kept: ~3 KB each. A day of 2,000 papers and 100,000 subscribers has
#: 1.15 million entries but only ~160,000 distinct (paper, reasons): a cache this size
#: serves 76% of them (half the size: 59%; twice: 86%, but past the 1 GB budget)
PIECES_CACHE = 65536
#: entries cut to fit kept: a cut piece is about 1.5 KB, and few digests need cutting
CUTS_CACHE = 1024
#: entries of the caches keyed by (paper, matched terms): a day of 2,000 papers and 100,000
#: subscribers has about 50,000 such pairs, each ~1.5 KB of highlighted HTML
RUN_CACHE = 65536


@dataclass(frozen=True, slots=True)
class EntryParts:
    """One digest entry: its paper, and what its reasons make of it (terms, authors)."""

    paper: Paper
    terms: tuple[str, ...]
    reasons: tuple[Reason, ...]
    #: the authors as shown: (text part, HTML part with followed authors in <strong>)
    authors: tuple[str, str]

    @classmethod
    def of(cls, entry: DigestEntry) -> EntryParts:
        """The parts of a digest entry."""
        authors = entry.paper.authors
        return cls(
            paper=entry.paper,
            terms=highlighted_terms(entry.reasons),
            reasons=entry.reasons,
            authors=_styled_authors(authors, followed_authors(authors, entry.reasons)),
        )


#: by paper and reasons: (text piece, HTML piece) with the whole abstract
_PIECES: PaperTable[tuple[str, str]] = CACHES.paper_table(PIECES_CACHE, per_entry=1)
#: by paper and (reasons, abstract lines kept): (text piece, HTML piece) of a cut abstract
_CUTS: PaperTable[tuple[str, str]] = CACHES.paper_table(CUTS_CACHE)
#: by (abstract, terms): the whole abstract's highlighted HTML, the largest thing cached
#: besides the pieces (a render process keeps two per entry it keeps)
_ABSTRACT_HTML: Table[tuple[str, tuple[str, ...]], str] = CACHES.table(RUN_CACHE, per_entry=2)


def entry_pieces(entry: DigestEntry) -> tuple[str, str]:
    """The entry's text and HTML pieces (whole abstract), from the cache if there.

    Keyed by paper and reasons: a popular alert gives many subscribers the same entry.
    """
    hit = _PIECES.get(entry.paper, entry.reasons)
    if hit is not None:
        return hit
    parts = EntryParts.of(entry)
    whole = abstract_cut(entry.paper.abstract, None)
    pieces = (_entry_text(parts, whole), _packed_html(parts, whole))
    return _PIECES.put(entry.paper, entry.reasons, pieces)


def cut_piece(entry: EntryParts, limit: int | None) -> tuple[str, str]:
    """The entry's text and HTML pieces with its abstract cut to `limit`, from the cache of
    recent cuts if there (digests that need cutting share papers, and most cut as deep)."""
    cut = abstract_cut(entry.paper.abstract, limit)
    key = (entry.reasons, cut.kept)
    hit = _CUTS.get(entry.paper, key)
    if hit is not None:
        return hit
    return _CUTS.put(entry.paper, key, (_entry_text(entry, cut), _packed_html(entry, cut)))


def abstract_html(abstract: str, terms: tuple[str, ...]) -> str:
    """The whole abstract as shown, highlighted, one line of it per line (cached)."""
    key = (abstract, terms)
    html = _ABSTRACT_HTML.get(key)
    if html is None:
        lines = "\n".join(abstract_lines(abstract).lines)
        html = _ABSTRACT_HTML.put(key, styled(highlight(lines, terms)))
    return html


def _packed_html(entry: EntryParts, cut: Cut) -> str:
    """The entry's HTML as ASCII with its lines packed (see `html_document`, `pack_lines`).

    As ASCII it takes a third of the memory of a str with one "…" in it.
    """
    html = _entry_html(entry, cut).encode("ascii", "xmlcharrefreplace").decode("ascii")
    end = "\n" if html.endswith("\n") else ""  # the next paper starts on a line of its own
    return pack_lines(html.removesuffix("\n")) + end


def _entry_text(entry: EntryParts, cut: Cut) -> str:
    """The entry's text piece: its paper's skeleton filled."""
    paper = entry.paper
    state = abstract_state(cut)
    skeleton = text_skeleton(paper, why_of(entry.reasons), state)
    return skeleton.fill(
        {
            "authors": entry.authors[0],
            "why": _reasons_shown(entry.reasons, skeleton.separator, html=False),
            "abstract": wrapped(paper.abstract, cut.kept) if state else "",
        }
    )


def _entry_html(entry: EntryParts, cut: Cut) -> str:
    """The entry's HTML piece: its paper's skeleton filled."""
    paper = entry.paper
    state = abstract_state(cut)
    skeleton = html_skeleton(paper, why_of(entry.reasons), state)
    return skeleton.fill(
        {
            "title": _title_html(paper.title, entry.terms),
            "authors": entry.authors[1],
            "why": _reasons_shown(entry.reasons, skeleton.separator, html=True),
            "abstract": _cut_html(paper.abstract, entry.terms, cut) if state else "",
        }
    )


def why_of(reasons: tuple[Reason, ...]) -> int:
    """What an entry's piece says of why it is there (see WHY_NONE in bot.mail.templates)."""
    if not reasons:
        return WHY_NONE
    return WHY_RECOMMENDED if reasons[0].kind == RECOMMENDED else WHY_MATCHED


@CACHES.memo(maxsize=16384)
def _styled_authors(authors: tuple[str, ...], followed: frozenset[int]) -> tuple[str, str]:
    """The authors as shown in the text part, and in HTML with their inline styles."""
    text, html = author_views(authors, followed)
    return text, styled(html)


@CACHES.memo(maxsize=65536)
def _reasons_shown(reasons: tuple[Reason, ...], separator: str, *, html: bool) -> str:
    """The reasons' lines joined by the template's separator (escaped for HTML)."""
    lines = reason_lines(reasons)
    return separator.join(map(str, map(escape, lines)) if html else lines)


@CACHES.memo(maxsize=RUN_CACHE)
def _title_html(title: str, terms: tuple[str, ...]) -> str:
    """The title as shown, highlighted, with inline styles."""
    return styled(highlight(display_title(title), terms))


def _cut_html(abstract: str, terms: tuple[str, ...], cut: Cut) -> str:
    """The abstract's highlighted HTML, cut to its first `cut.kept` lines."""
    html = abstract_html(abstract, terms)
    if cut.kept >= cut.lines:
        return html
    html = "\n".join(html.split("\n", cut.kept)[: cut.kept])
    # a highlighted phrase that ran on past the cut is closed at it
    return html + "</mark>" * (html.count("<mark") - html.count("</mark>"))
