"""Render a digest as an email's parts: subject, plain text and HTML, within the size budget.

Rendering is pure. A digest is its papers' pieces (`bot.mail.pieces`, cached: the same
paper with the same reasons recurs in many subscribers' digests of one run) joined into
the document around them (`bot.mail.templates`); `bot.mail.mime` makes the message.

Size: the HTML part's body as sent (after its transfer encoding, with CRLF line ends) stays
within MAX_HTML_BYTES, under Gmail's clipping point. Abstracts are whole unless that budget
needs cutting; then every abstract longer than one common length is cut there, at a word,
with "…" and the paper's link, in both parts alike; below ABSTRACT_FLOOR characters the
lowest-ranked papers are left out instead, and counted and listed as such. Titles, author
lists, reasons and links have caps of their own (`bot.mail.views`), so that one paper never
fills the budget.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.mail.abstracts import abstract_lines
from bot.mail.caches import CACHES
from bot.mail.display import plain_text, safe_url, shorten
from bot.mail.links import feedback_prefix, quoted_id
from bot.mail.mime import MAX_HTML_BYTES, EncodedBody, RenderedDigest
from bot.mail.pieces import RUN_CACHE, EntryParts, abstract_html, cut_piece, entry_pieces
from bot.mail.templates import (
    HTML_TEMPLATE,
    PAPER_END,
    TEXT_TEMPLATE,
    FeedbackPieces,
    html_document,
    inline_fragment,
    render_block,
    text_document,
)
from bot.mail.views import entry_view
from bot.models import MAX_PAPERS, Digest, DigestEntry, Paper

log = logging.getLogger(__name__)

#: an abstract cut to fit the budget keeps about this many characters (two lines) at least;
#: when even that does not fit, the lowest-ranked papers are left out instead
ABSTRACT_FLOOR = 200
#: abstracts cut to fit are cut at a multiple of this many characters (cached cuts recur)
ABSTRACT_STEP = 50
#: without a page of recent matches to link to, the left-out papers' titles are listed in
#: the digest, in at most this many bytes of the HTML part, each title cut to LIST_TITLE_CHARS
LEFT_OUT_BYTES = 10_000
LIST_TITLE_CHARS = 120


def render_digest(
    digest: Digest,
    *,
    list_name: str = "paperbot",
    manage_url: str | None = None,
    unsubscribe_url: str | None = None,
    matches_url: str | None = None,
    feedback: Feedback | None = None,
) -> RenderedDigest:
    """Render a digest's subject, text part and HTML part (CSS inlined, within MAX_HTML_BYTES).

    Both parts show the same papers with the same (whole or cut) abstracts: the alerts'
    matches, then "Recommended for you". `matches_url` is the subscriber's page of recent
    matches, where papers left out can be seen; without it their titles are listed in the
    digest, as many as fit. With `feedback` (the web app's base URL and the digest's manage
    token) every paper has its "more/less like this" links.
    """
    frame = _Frame(
        digest,
        plain_text(list_name),
        safe_url(manage_url),
        safe_url(unsubscribe_url),
        safe_url(matches_url),
    )
    entries = (*digest.entries, *digest.recommended)
    links = _feedback_links(feedback, entries)
    pieces = [entry_pieces(entry) for entry in entries]
    context = frame.context(len(pieces))
    body = EncodedBody.of(html_document([html for _, html in pieces], context, links.html))
    texts = [text for text, _ in pieces]
    if body.wire_size > MAX_HTML_BYTES:
        parts = [EntryParts.of(entry) for entry in entries]
        count, limit, body = _fit(frame, parts, [html for _, html in pieces], links.html)
        context = frame.context(count)
        texts = [cut_piece(part, limit)[0] for part in parts[:count]]
    text = text_document(texts, context, links.text)
    # the HTML's body as measured goes with it: building the message encodes it no more
    return RenderedDigest(str(context["subject"]), text, body.text, html_body=body)


@dataclass(frozen=True, slots=True)
class Feedback:
    """Where a digest's "more/less like this" links go: the web app, the digest's token."""

    base_url: str
    manage_token: str


@dataclass(frozen=True, slots=True)
class _Links:
    """Each entry's "more/less like this" links in one digest: text, HTML (none: empty)."""

    text: tuple[str, ...] = ()
    html: tuple[str, ...] = ()


def _feedback_links(feedback: Feedback | None, entries: Sequence[DigestEntry]) -> _Links:
    """The "more/less like this" links of these entries in this digest (none without
    `feedback`)."""
    if feedback is None:
        return _Links()
    pieces = FeedbackPieces.of(feedback_prefix(feedback.base_url, feedback.manage_token))
    filled = [pieces.fill(quoted_id(entry.paper.id)) for entry in entries]
    return _Links(tuple(text for text, _ in filled), tuple(html for _, html in filled))


@dataclass(frozen=True, slots=True)
class _Frame:
    """One digest's document around its papers: whom it is for, where its links go, and
    what it says about the papers it holds and leaves out."""

    digest: Digest
    list_name: str
    manage_url: str | None
    unsubscribe_url: str | None
    matches_url: str | None

    @property
    def total(self) -> int:
        """Papers matched by alerts: shown and left out."""
        return len(self.digest.entries) + self.digest.omitted

    def context(self, kept: int) -> dict[str, object]:
        """The templates' values when the first `kept` papers are in the digest: the alerts'
        matches first, then the recommended ones (the first the size budget drops)."""
        subscriber = self.digest.subscriber
        shown = min(kept, len(self.digest.entries))
        recommended = kept - shown
        heading = _heading(shown, self.total, recommended)
        omitted = self.total - shown
        listed: tuple[tuple[str, str], ...] = ()
        if omitted and self.matches_url is None:
            listed = _left_out_list((*self.digest.entries[shown:], *self.digest.left_out))
        return {
            "heading": heading,
            "subject": f"{self.list_name}: {heading}",
            "list_name": self.list_name,
            "email": plain_text(subscriber.email),
            "omitted": omitted,
            "max_papers": max(1, min(subscriber.max_papers, MAX_PAPERS)),
            # fewer than max_papers shown, yet some left out: the size budget left them out
            "size_limited": bool(omitted) and shown < len(self.digest.entries),
            "manage_url": self.manage_url,
            "unsubscribe_url": self.unsubscribe_url,
            "matches_url": self.matches_url,
            "leftout_html": "".join(html for html, _ in listed),
            "leftout_text": "".join(text for _, text in listed),
            "unlisted": omitted - len(listed),
            "config_origin": subscriber.origin == "config",
            "alert_count": shown,
            "recommended_count": recommended,
        }


def _heading(shown: int, total: int, recommended: int = 0) -> str:
    """`3 new papers matching your alerts`, or `50 of 139 new papers ...` when capped;
    `, 2 recommended` after it, or `2 recommended papers` alone."""
    liked = f"{recommended} recommended"
    if not total:
        return f"{liked} {'paper' if recommended == 1 else 'papers'}"
    count = f"{shown} of {total}" if total > shown else str(shown)
    matched = f"{count} new {'paper' if total == 1 else 'papers'} matching your alerts"
    return f"{matched}, {liked}" if recommended else matched


@CACHES.memo(maxsize=RUN_CACHE)
def _left_out_item(paper: Paper) -> tuple[str, str]:
    """A left-out paper's line in the list of them: (HTML, text)."""
    view = entry_view(DigestEntry(paper, ()))
    title, url = shorten(view.title, LIST_TITLE_CHARS), view.url
    html = inline_fragment(render_block(HTML_TEMPLATE, "leftout", title=title, url=url))
    html = html.encode("ascii", "xmlcharrefreplace").decode("ascii")
    return html, render_block(TEXT_TEMPLATE, "leftout", title=title, url=url)


def _left_out_list(entries: Iterable[DigestEntry]) -> tuple[tuple[str, str], ...]:
    """The (HTML, text) lines of the first left-out papers whose HTML fits in LEFT_OUT_BYTES."""
    items: list[tuple[str, str]] = []
    used = 0
    for entry in entries:
        html, text = _left_out_item(entry.paper)
        used += len(html) + html.count("\n")
        if used > LEFT_OUT_BYTES and items:
            break
        items.append((html, text))
    return tuple(items)


# --- fitting the budget ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Estimate:
    """How one paper's HTML size (as sent) changes with the length its abstract is cut to."""

    whole: int
    #: where each line of the abstract ends in its text, and each line's bytes (as sent)
    ends: tuple[int, ...]
    line_bytes: tuple[int, ...]
    #: what a cut adds: the "…" and the link to the whole abstract
    cut_extra: int

    @classmethod
    def of(cls, part: EntryParts, html: str) -> _Estimate:
        """The estimate of a paper from its HTML with the whole abstract."""
        paper = part.paper
        url = entry_view(DigestEntry(paper, ())).url or ""
        return cls(
            whole=len(html) + html.count("\n"),
            ends=abstract_lines(paper.abstract).ends,
            line_bytes=_line_bytes(paper.abstract, part.terms),
            cut_extra=100 + len(url),
        )

    def at(self, limit: int | None) -> int:
        """About the bytes of this paper's HTML with its abstract cut to `limit`."""
        kept = len(self.ends) if limit is None else max(1, bisect_right(self.ends, limit))
        if kept >= len(self.line_bytes) or not self.ends:
            return self.whole
        return self.whole - sum(self.line_bytes[kept:]) + self.cut_extra


@CACHES.memo(maxsize=8192)
def _line_bytes(abstract: str, terms: tuple[str, ...]) -> tuple[int, ...]:
    """The bytes (as sent) of each line of the abstract's highlighted HTML."""
    html = abstract_html(abstract, terms).encode("ascii", "xmlcharrefreplace")
    return tuple(len(line) + 2 for line in html.split(b"\n"))


def _fit(
    frame: _Frame,
    parts: Sequence[EntryParts],
    wholes: Sequence[str],
    links: Sequence[str],
) -> tuple[int, int | None, EncodedBody]:
    """(papers kept, abstract cut, HTML body) of a digest whose whole abstracts do not fit.

    Sizes are estimated from each paper's HTML with its whole abstract (`wholes`), then the
    document is rendered and measured; when an estimate was short, the next try aims
    lower by as much.
    """
    extra = links or [""] * len(parts)  # each paper's links and end are part of its size
    estimates = [
        _Estimate.of(part, html + fb + PAPER_END)
        for part, html, fb in zip(parts, wholes, extra, strict=True)
    ]
    target = MAX_HTML_BYTES
    count, size, body = len(parts), 0, EncodedBody.of("")
    for _ in range(6):
        count, limit = _plan(frame, estimates, target)
        body = _html_body(_cut_html(parts[:count], limit), frame.context(count), links)
        size = body.wire_size
        if size <= MAX_HTML_BYTES:
            return count, limit, body
        target -= size - MAX_HTML_BYTES + 256
    while count > 1:  # the estimates keep missing: fewer papers until it fits
        count -= 1
        body = _html_body(_cut_html(parts[:count], ABSTRACT_FLOOR), frame.context(count), links)
        if body.wire_size <= MAX_HTML_BYTES:
            return count, ABSTRACT_FLOOR, body
    log.warning("the digest for %s is %d bytes of HTML", frame.digest.subscriber.email, size)
    return count, ABSTRACT_FLOOR, body


def _cut_html(parts: Sequence[EntryParts], limit: int | None) -> list[str]:
    """The HTML pieces of these entries with abstracts cut to `limit`."""
    return [cut_piece(part, limit)[1] for part in parts]


def _html_body(
    papers: Sequence[str], context: dict[str, object], links: Sequence[str] = ()
) -> EncodedBody:
    """The HTML document around these papers (and their feedback links), encoded as sent."""
    return EncodedBody.of(html_document(papers, context, links[: len(papers)]))


def _plan(frame: _Frame, estimates: Sequence[_Estimate], target: int) -> tuple[int, int | None]:
    """The most papers that fit `target` with abstracts cut to ABSTRACT_FLOOR, then the
    longest cut (a multiple of ABSTRACT_STEP) those papers fit with, by the estimates."""

    def size(count: int, limit: int | None) -> int:
        shell = _html_body([], frame.context(count)).wire_size
        return shell + sum(estimate.at(limit) for estimate in estimates[:count])

    # the most papers that fit at the floor (sizes grow with the count: a bisection)
    counts = range(1, len(estimates) + 1)
    count = max(1, bisect_right(counts, False, key=lambda n: size(n, ABSTRACT_FLOOR) > target))
    if size(count, None) <= target:
        return count, None
    longest = max(max(estimate.ends, default=0) for estimate in estimates[:count])
    steps = range(ABSTRACT_FLOOR, max(ABSTRACT_FLOOR, longest) + 1, ABSTRACT_STEP)
    fits = bisect_right(steps, False, key=lambda limit: size(count, limit) > target)
    return count, steps[max(0, fits - 1)]
