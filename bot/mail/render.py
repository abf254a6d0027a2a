"""Render a digest as an email: subject, plain text and HTML (Jinja2), then the MIME message.

Rendering is pure. Per-paper fragments (escaped and highlighted title, shortened authors,
abstract, links) are cached, because the same paper with the same reasons recurs in many
subscribers' digests of one run.

Size: the HTML part's body as sent (after its transfer encoding, with CRLF line ends) stays
within MAX_HTML_BYTES, under Gmail's clipping point. Abstracts are whole unless that budget
needs cutting; then every abstract longer than one common length is cut there, at a word,
with "…" and the paper's link, in both parts alike; below ABSTRACT_FLOOR characters the
lowest-ranked papers are left out instead, and counted and listed as such. Titles, author
lists, reasons and links have caps of their own, so that one paper never fills the budget.
"""

from __future__ import annotations

import binascii
import functools
import logging
import os
import re
import unicodedata
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy, Policy
from email.utils import format_datetime
from itertools import accumulate, repeat
from operator import add
from typing import AnyStr, NamedTuple

import css_inline
import jinja2
from markupsafe import Markup, escape

from bot.models import MAX_PAPERS, Digest, DigestEntry, Paper, Reason

log = logging.getLogger(__name__)

#: Gmail clips HTML bodies past ~102 KB; the HTML part's body as sent (transfer-encoded,
#: CRLF line ends: at least what any client counts) is kept within this many bytes
MAX_HTML_BYTES = 100_000
#: an abstract cut to fit the budget keeps about this many characters (two lines) at least;
#: when even that does not fit, the lowest-ranked papers are left out instead
ABSTRACT_FLOOR = 200
#: abstracts cut to fit are cut at a multiple of this many characters (cached cuts recur)
ABSTRACT_STEP = 50
#: longer than any real abstract (arXiv allows 1,920 characters): what is longer is cut
#: here whatever the budget, so that a hostile feed cannot make every digest slow
ABSTRACT_MAX = 5000
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
#: links shown per paper; a longer URL than URL_CHARS is not shown
MAX_LINKS = 8
URL_CHARS = 2000
#: without a page of recent matches to link to, the left-out papers' titles are listed in
#: the digest, in at most this many bytes of the HTML part, each title cut to LIST_TITLE_CHARS
LEFT_OUT_BYTES = 10_000
LIST_TITLE_CHARS = 120
#: abstracts in the HTML part are broken into lines of this many characters at most, at
#: spaces (before their lines are packed): the part stays 7bit with no line too long
SOFT_WRAP = 100
#: HTML lines are packed up to this many bytes (the RFC 5322 limit is 998)
PACKED_LINE = 990
#: rendered entries kept: ~3 KB each. A day of 2,000 papers and 100,000 subscribers has
#: 1.15 million entries but only ~160,000 distinct (paper, reasons): a cache this size
#: serves 76% of them (half the size: 59%; twice: 86%, but past the 1 GB budget)
PIECES_CACHE = 65536
#: entries cut to fit kept: a cut piece is about 1.5 KB, and few digests need cutting
CUTS_CACHE = 1024
#: entries of the caches keyed by (paper, matched terms): a day of 2,000 papers and 100,000
#: subscribers has about 50,000 such pairs, each ~1.5 KB of highlighted HTML
RUN_CACHE = 65536

#: CRLF serialization as SMTP wants it. Headers we store pre-folded are written as they are:
#: re-folding would turn a long List-Unsubscribe URL into RFC 2047 encoded words.
MESSAGE_POLICY = email_policy.SMTP.clone(refold_source="none")

TEXT_TEMPLATE = "digest.txt.j2"
HTML_TEMPLATE = "digest.html.j2"
#: where the papers go in the HTML document; autoescaping keeps any data from forging it
_PAPERS_SLOT = "<!--papers-->"

#: bidirectional-text controls: a feed can use them to make text display as something else
#: ("Grokking exe.png"); they are removed from everything a digest or page shows
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_NO_BIDI = dict.fromkeys(map(ord, BIDI_CONTROLS))

_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2212"
#: what may separate the words of a phrase in text: spaces, newlines, any kind of hyphen
_GAP = rf"[\s{_DASHES}]+"
_GAP_RE = re.compile(_GAP)
#: a gap that is not already one plain space
_OPEN_GAP = re.compile(rf"[\s{_DASHES}]{{2,}}|[^\S ]|[{_DASHES}]")
_GAP_RUN = re.compile(rf"[\s{_DASHES}]{{2,}}")
_WORD_CHAR = re.compile(r"\w")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_LINE_BREAK = re.compile(r"\s*[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]\s*")
#: a text-part line of at most PACKED_LINE bytes, broken at a space (ASCII; see `_wrapped`)
_LONG_LINE = re.compile(rf"(.{{1,{PACKED_LINE}}})(?: +|$)")
_NEWLINES = re.compile(rb"\r\n|\r|\n")
_SIMPLE_CONTENT_TYPE = re.compile(
    r'(?P<type>text/(?:plain|html)); charset="utf-8"'
    r'|(?P<multi>multipart/alternative); boundary="(?P<boundary>=_[0-9a-f]+)"'
)
_ADDR_SPEC = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_URI = re.compile(r"[!#-;=?-\[\]_a-z~]+")
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
class RenderedDigest:
    """A digest rendered for email: subject, plain-text part, and HTML part (CSS inlined)."""

    subject: str
    text: str
    html: str


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


# --- public API ---------------------------------------------------------------------------


def render_digest(
    digest: Digest,
    *,
    list_name: str = "paperbot",
    manage_url: str | None = None,
    unsubscribe_url: str | None = None,
    matches_url: str | None = None,
) -> RenderedDigest:
    """Render a digest's subject, text part and HTML part (CSS inlined, within MAX_HTML_BYTES).

    Both parts show the same papers with the same (whole or cut) abstracts. `matches_url`
    is the subscriber's page of recent matches, where papers left out can be seen; without
    it their titles are listed in the digest, as many as fit.
    """
    frame = _Frame(
        digest,
        plain_text(list_name),
        _safe_url(manage_url),
        _safe_url(unsubscribe_url),
        _safe_url(matches_url),
    )
    pieces = [_entry_pieces(entry) for entry in digest.entries]
    context = frame.context(len(pieces))
    html = _render_html([html for _, html in pieces], context)
    texts = [text for text, _ in pieces]
    if html_wire_size(html) > MAX_HTML_BYTES:
        parts = [_entry_parts(entry) for entry in digest.entries]
        count, limit, html = _fit(frame, parts, [html for _, html in pieces])
        context = frame.context(count)
        texts = [_cut_piece(part, limit)[0] for part in parts[:count]]
    text = _render_text(texts, context)
    return RenderedDigest(subject=str(context["subject"]), text=text, html=html)


def html_wire_size(html: str) -> int:
    """The bytes of an HTML part's body as sent: transfer-encoded as `build_message` does
    it, with CRLF line ends (at least what a mail client or Gmail counts of it)."""
    encoding, data = _body_encoding(html)
    global _last_encoded
    _last_encoded = (html, encoding, data)  # the message built next encodes this again
    return len(data) + data.count(b"\n")


#: the body `html_wire_size` encoded last, and its encoding
_last_encoded: tuple[str, str, bytes] = ("", "7bit", b"")


def plain_text(text: str) -> str:
    """The text without bidirectional-text controls (BIDI_CONTROLS), as it may be shown."""
    return text if text.isascii() else text.translate(_NO_BIDI)


def build_message(
    rendered: RenderedDigest,
    *,
    sender: str,
    recipient: str,
    message_id: str,
    date: datetime | None = None,
    list_id: str | None = None,
    unsubscribe_url: str | None = None,
    unsubscribe_mailto: str | None = None,
    reply_to: str | None = None,
    sender_header: str | None = None,
) -> EmailMessage:
    """The multipart/alternative email of a rendered digest, with list and one-click headers.

    The HTML is used as rendered: `render_digest` has already inlined its CSS and kept it
    under the size limit. `sender_header` is the `Sender:` (who actually sends, and where
    bounces go) when it differs from From. Raises ValueError on a header value that cannot
    be sent.
    """
    msg = DigestMessage(policy=MESSAGE_POLICY)
    _set_address(msg, "From", sender)
    _set_address(msg, "To", recipient)
    if sender_header:
        _set_address(msg, "Sender", sender_header)
    if reply_to:
        _set_address(msg, "Reply-To", reply_to)
    _set_text(msg, "Subject", rendered.subject)
    msg.set_raw("Date", _date_header(_aware(date or datetime.now(UTC)).replace(microsecond=0)))
    msg.set_raw("Message-ID", _msg_id(message_id))
    if list_id:
        _set_text(msg, "List-Id", list_id if "<" in list_id else f"<{list_id}>")
    _set_unsubscribe(msg, unsubscribe_url, unsubscribe_mailto)
    # tells vacation responders and other robots not to answer a digest
    msg.set_raw("Auto-Submitted", "auto-generated")
    msg.set_raw("MIME-Version", "1.0")
    # a random boundary: the stdlib would otherwise scan the whole body for a free one
    msg.set_raw("Content-Type", f'multipart/alternative; boundary="=_{os.urandom(12).hex()}"')
    msg.attach(_text_part("plain", rendered.text))
    msg.attach(_text_part("html", rendered.html))
    return msg


class DigestMessage(EmailMessage):
    """An EmailMessage whose `as_bytes` writes each text part in one piece.

    The stdlib generator writes bodies line by line, which makes a 150 KB digest cost
    milliseconds; the output here is byte for byte what `BytesGenerator` writes, and any
    structure this does not cover (7bit policies, message/*, preambles) goes to the stdlib.
    """

    #: (payload, its bytes) as `_text_part` encoded them, so that writing skips re-encoding
    wire_body: tuple[str, bytes] | None = None

    def as_bytes(self, unixfrom: bool = False, policy: Policy | None = None) -> bytes:
        """The message serialized as `BytesGenerator` would, several times faster."""
        policy = self.policy if policy is None else policy
        if unixfrom or not isinstance(policy, EmailPolicy) or not _plain_tree(self, policy):
            return super().as_bytes(unixfrom, policy)
        out: list[bytes] = []
        _flatten(self, policy, policy.linesep.encode("ascii"), out)
        return b"".join(out)


class PrebuiltMessage(DigestMessage):
    """A digest message already serialized elsewhere (the render process), as its bytes.

    It carries only the envelope headers the senders read (From, To, Sender, Message-ID);
    written with MESSAGE_POLICY it is `wire` as is, with any other policy the bytes are
    parsed back into a whole message first (a server without 8BITMIME: rare, and slower).
    """

    def __init__(self, wire: bytes, headers: Iterable[tuple[str, str]]) -> None:
        super().__init__(policy=MESSAGE_POLICY)
        self.wire = wire
        for name, value in headers:
            self.set_raw(name, value)

    def as_bytes(self, unixfrom: bool = False, policy: Policy | None = None) -> bytes:
        """`wire` when written as it was built, else the parsed message written anew."""
        if not unixfrom and policy in (None, MESSAGE_POLICY):
            return self.wire
        # read as built, with "\n" line ends: a 7bit policy re-encodes the bodies as such
        parser = BytesParser(DigestMessage, policy=MESSAGE_POLICY.clone(linesep="\n"))
        whole = parser.parsebytes(self.wire.replace(b"\r\n", b"\n"))
        return whole.as_bytes(unixfrom, policy or MESSAGE_POLICY)


#: the headers a PrebuiltMessage keeps: what the senders read for the envelope and file name
ENVELOPE_HEADERS = ("From", "To", "Sender", "Message-ID")


def envelope_headers(message: EmailMessage) -> list[tuple[str, str]]:
    """The raw ENVELOPE_HEADERS of a message, for a PrebuiltMessage of its bytes."""
    return [(name, str(value)) for name, value in message.raw_items() if name in ENVELOPE_HEADERS]


# --- per-paper views (cached) ---------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def entry_view(entry: DigestEntry) -> EntryView:
    """The template view of one digest entry (pure, cached: papers recur across digests)."""
    paper = entry.paper
    title = _display_title(paper.title)
    links = paper_links(paper)
    text, html = _author_views(paper.authors, _followed_authors(paper.authors, entry.reasons))
    return EntryView(
        title=title,
        title_html=highlight(title, _terms(entry.reasons)),
        url=links[0][1] if links else None,
        authors=text,
        authors_html=Markup(html),
        sources=plain_text(", ".join(paper.sources)),
        date=_paper_date(paper),
        reasons=_reason_lines(entry.reasons),
        abstract=_wrapped(paper.abstract),
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
        safe = _safe_url(url)
        if safe and len(safe) <= URL_CHARS and safe not in seen:
            seen[safe] = label
    return tuple((label, url) for url, label in seen.items())[:MAX_LINKS]


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


def limit_entry_cache(entries: int) -> None:
    """Keep at most this many rendered entries (a render process trades speed for memory),
    and twice as many highlighted whole abstracts (the largest thing cached besides)."""
    global PIECES_CACHE, _abstract_html
    PIECES_CACHE = entries
    while len(_PIECES) > entries:
        _PIECES.popitem(last=False)
    _abstract_html = functools.lru_cache(maxsize=2 * entries)(_abstract_html.__wrapped__)


def release_caches() -> None:
    """Forget the per-paper pieces of this run (a long-lived worker renders new papers daily)."""
    for cached in (
        entry_view,
        _abstract_html,
        _title_html,
        _abstract_lines,
        _wrapped,
        _reasons_shown,
        _line_bytes,
        _display_title,
        _left_out_item,
        _HTML_SKELETONS,
        _TEXT_SKELETONS,
        _text_shell_skeleton,
        _author_views,
        _styled_authors,
        _fold_with_index,
        _closed_gaps,
    ):
        cached.cache_clear()
    _PIECES.clear()
    _CUTS.clear()


def fold(text: str) -> str:
    """Lowercased, accents removed (NFKD): what highlighting and author matching compare."""
    return _fold_with_index(text)[0]


# --- rendering ----------------------------------------------------------------------------


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bot.mail", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@functools.cache
def _template(name: str) -> jinja2.Template:
    return _environment().get_template(name)


@functools.cache
def _inliner() -> css_inline.CSSInliner:
    # keep_at_rules: the dark-mode @media rule cannot be inlined, so it stays in <style>
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


# --- fitting the budget ---------------------------------------------------------------------


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
        """Papers matched: shown and left out."""
        return len(self.digest.entries) + self.digest.omitted

    def context(self, shown: int) -> dict[str, object]:
        """The templates' values when the first `shown` papers are in the digest."""
        subscriber = self.digest.subscriber
        heading = _heading(shown, self.total)
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
        }


def _heading(shown: int, total: int) -> str:
    """`3 new papers matching your alerts`, or `50 of 139 new papers ...` when capped."""
    count = f"{shown} of {total}" if total > shown else str(shown)
    return f"{count} new {'paper' if total == 1 else 'papers'} matching your alerts"


@functools.lru_cache(maxsize=RUN_CACHE)
def _left_out_item(paper: Paper) -> tuple[str, str]:
    """A left-out paper's line in the list of them: (HTML, text)."""
    view = entry_view(DigestEntry(paper, ()))
    title, url = shorten(view.title, LIST_TITLE_CHARS), view.url
    html = _render_block(HTML_TEMPLATE, "leftout", title=title, url=url)
    inlined = str(_inliner().inline_fragment(html, _css()))
    html = inlined.encode("ascii", "xmlcharrefreplace").decode("ascii")
    return html, _render_block(TEXT_TEMPLATE, "leftout", title=title, url=url)


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
            ends=_abstract_lines(paper.abstract).ends,
            line_bytes=_line_bytes(paper.abstract, part.terms),
            cut_extra=100 + len(url),
        )

    def at(self, limit: int | None) -> int:
        """About the bytes of this paper's HTML with its abstract cut to `limit`."""
        kept = len(self.ends) if limit is None else max(1, bisect_right(self.ends, limit))
        if kept >= len(self.line_bytes) or not self.ends:
            return self.whole
        return self.whole - sum(self.line_bytes[kept:]) + self.cut_extra


@functools.lru_cache(maxsize=8192)
def _line_bytes(abstract: str, terms: tuple[str, ...]) -> tuple[int, ...]:
    """The bytes (as sent) of each line of the abstract's highlighted HTML."""
    html = _abstract_html(abstract, terms).encode("ascii", "xmlcharrefreplace")
    return tuple(len(line) + 2 for line in html.split(b"\n"))


def _fit(
    frame: _Frame, parts: Sequence[EntryParts], wholes: Sequence[str]
) -> tuple[int, int | None, str]:
    """(papers kept, abstract cut, HTML) of a digest whose whole abstracts do not fit.

    Sizes are estimated from each paper's HTML with its whole abstract (`wholes`), then the
    document is rendered and measured; when an estimate was short, the next try aims
    lower by as much.
    """
    estimates = [_Estimate.of(part, html) for part, html in zip(parts, wholes, strict=True)]
    target = MAX_HTML_BYTES
    count, size, html = len(parts), 0, ""
    for _ in range(6):
        count, limit = _plan(frame, estimates, target)
        html = _render_html([_cut_piece(p, limit)[1] for p in parts[:count]], frame.context(count))
        size = html_wire_size(html)
        if size <= MAX_HTML_BYTES:
            return count, limit, html
        target -= size - MAX_HTML_BYTES + 256
    while count > 1:  # the estimates keep missing: fewer papers until it fits
        count -= 1
        html = _render_html(
            [_cut_piece(p, ABSTRACT_FLOOR)[1] for p in parts[:count]], frame.context(count)
        )
        if html_wire_size(html) <= MAX_HTML_BYTES:
            return count, ABSTRACT_FLOOR, html
    log.warning("the digest for %s is %d bytes of HTML", frame.digest.subscriber.email, size)
    return count, ABSTRACT_FLOOR, html


def _plan(frame: _Frame, estimates: Sequence[_Estimate], target: int) -> tuple[int, int | None]:
    """The most papers that fit `target` with abstracts cut to ABSTRACT_FLOOR, then the
    longest cut (a multiple of ABSTRACT_STEP) those papers fit with, by the estimates."""

    def size(count: int, limit: int | None) -> int:
        shell = html_wire_size(_render_html([], frame.context(count)))
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


def _byte_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


@functools.cache
def _css() -> str:
    return _render_block(HTML_TEMPLATE, "css")


def _render_block(template_name: str, block: str, **values: object) -> str:
    """One block of a template on its own (a paper's piece, the CSS)."""
    template = _template(template_name)
    return "".join(template.blocks[block](template.new_context(values)))


# --- abstracts: whole, or cut after one of their lines -----------------------------------------
#
# An abstract as shown is broken into lines of at most SOFT_WRAP characters at spaces. A cut
# keeps its first lines: the HTML of a cut abstract is then the first lines of the whole
# abstract's highlighted HTML (cached), with no highlighting to redo, and the text part keeps
# the same words.


@dataclass(frozen=True, slots=True)
class _Lines:
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


@functools.lru_cache(maxsize=8192)
def _abstract_lines(abstract: str) -> _Lines:
    """The abstract's lines (a hostile megabyte is not even read whole)."""
    sliced = len(abstract) > 4 * ABSTRACT_MAX
    text = " ".join(plain_text(abstract[: 4 * ABSTRACT_MAX] if sliced else abstract).split())
    lines = tuple(_break_lines(text, SOFT_WRAP).split("\n")) if text else ()
    ends = tuple(end - 1 for end in accumulate(len(line) + 1 for line in lines))
    whole = _Lines(lines, ends, sliced)
    kept = whole.within(ABSTRACT_MAX)
    return _Lines(lines[:kept], ends[:kept], sliced or kept < len(lines))


class _Cut(NamedTuple):
    """How an abstract is shown: its first `kept` lines of `lines`; it is cut when that is
    fewer, or when it had more than ABSTRACT_MAX characters."""

    kept: int
    lines: int
    truncated: bool

    @property
    def cut(self) -> bool:
        """The abstract shown is not all of it."""
        return self.truncated or self.kept < self.lines


def _abstract_cut(abstract: str, limit: int | None) -> _Cut:
    """How the abstract is shown with the cut `limit` (None: whole)."""
    lines = _abstract_lines(abstract)
    total = len(lines.lines)
    return _Cut(total if limit is None else lines.within(limit), total, lines.truncated)


@functools.lru_cache(maxsize=RUN_CACHE)
def _abstract_html(abstract: str, terms: tuple[str, ...]) -> str:
    """The whole abstract as shown, highlighted, one line of it per line (cached)."""
    return _styled(highlight("\n".join(_abstract_lines(abstract).lines), terms))


def _cut_html(abstract: str, terms: tuple[str, ...], cut: _Cut) -> str:
    """The abstract's highlighted HTML, cut to its first `cut.kept` lines."""
    html = _abstract_html(abstract, terms)
    if cut.kept >= cut.lines:
        return html
    html = "\n".join(html.split("\n", cut.kept)[: cut.kept])
    # a highlighted phrase that ran on past the cut is closed at it
    return html + "</mark>" * (html.count("<mark") - html.count("</mark>"))


@functools.lru_cache(maxsize=4096)
def _wrapped(abstract: str, kept: int | None = None) -> str:
    """The abstract's first `kept` lines (None: all) as few long lines, which mail clients
    wrap to their width.

    A line of 76 makes an abstract twenty lines, and lines are what SMTP servers spend their
    time on (a server reads DATA line by line). So an abstract is one line, or, when too long
    in bytes for one RFC 5322 line, lines of up to PACKED_LINE bytes broken at spaces.
    """
    text = " ".join(_abstract_lines(abstract).lines[:kept])
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


# --- assembling digests from per-paper skeletons ----------------------------------------------
#
# Rendering a Jinja block and inlining its CSS costs about 0.1 ms; a run of 100,000 digests
# of ten papers each cannot afford that per paper per digest. So each paper (and the
# document around them) is rendered and inlined once, with slot tokens where a digest's own
# parts go (highlighted title and abstract, followed authors, reasons), and each digest only
# joins strings. The tokens carry a per-process random nonce, so no data can forge one.
# The parts put into slots get their <mark>/<strong> styles from the plain `mark`/`strong`
# rules of the CSS (see `_styled`).

_NONCE = os.urandom(8).hex()
_SLOT = re.compile(rf"pb_{_NONCE}_([a-z0-9]+)_")


def _slot(name: str) -> str:
    return f"pb_{_NONCE}_{name}_"


@dataclass(frozen=True, slots=True)
class Skeleton:
    """A rendered piece cut at its slots: `statics[0]`, slot `names[0]`, `statics[1]`, ...

    `separator` is what the template puts between two reasons (the list is one slot).
    """

    statics: tuple[str, ...]
    names: tuple[str, ...]
    separator: str = ""

    @classmethod
    def of(cls, rendered: str, names: Iterable[str]) -> Skeleton:
        """The skeleton of `rendered`; every slot in `names` must be there."""
        separator = ""
        pair = re.search(f"{_slot('why1')}(.*?){_slot('why2')}", rendered, re.DOTALL)
        if pair:
            separator = pair.group(1)
            rendered = rendered[: pair.start()] + _slot("why") + rendered[pair.end() :]
        parts = _SLOT.split(rendered)
        missing = set(names) - set(parts[1::2])
        if missing:  # a template or an inliner that lost a slot must not lose a paper's part
            raise RuntimeError(f"rendering lost the digest's {', '.join(sorted(missing))}")
        return cls(tuple(parts[0::2]), tuple(parts[1::2]), separator)

    def fill(self, values: Mapping[str, str]) -> str:
        """The piece with each slot replaced by its value."""
        statics = self.statics
        pieces = [statics[0]]
        for name, static in zip(self.names, statics[1:], strict=True):
            pieces += (values[name], static)
        return "".join(pieces)


class _PaperCache:
    """Skeletons by (paper, variant), found by the paper's id and checked by identity first.

    Hashing a whole Paper for an lru_cache key costs more than the lookup saves; the
    papers of a run are the same objects in every digest, so `is` nearly always answers.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: dict[tuple[str, object], tuple[Paper, Skeleton]] = {}

    def get(self, paper: Paper, variant: object, make: Callable[[], Skeleton]) -> Skeleton:
        """The cached skeleton, else `make()` (remembered)."""
        key = (paper.id, variant)
        hit = self.entries.get(key)
        if hit is not None and (hit[0] is paper or hit[0] == paper):
            return hit[1]
        value = make()
        if len(self.entries) >= self.size:
            self.entries.clear()
        self.entries[key] = (paper, value)
        return value

    def cache_clear(self) -> None:
        """Forget everything."""
        self.entries.clear()


_HTML_SKELETONS = _PaperCache(16384)
_TEXT_SKELETONS = _PaperCache(16384)


@dataclass(frozen=True, slots=True)
class EntryParts:
    """One digest entry: its paper, and what its reasons make of it (terms, authors)."""

    paper: Paper
    terms: tuple[str, ...]
    reasons: tuple[Reason, ...]
    #: the authors as shown: (text part, HTML part with followed authors in <strong>)
    authors: tuple[str, str]


def _entry_pieces(entry: DigestEntry) -> tuple[str, str]:
    """The entry's text and HTML pieces (whole abstract), from the cache if there.

    Keyed by paper and reasons: a popular alert gives many subscribers the same entry.
    """
    key = (entry.paper.id, entry.reasons)
    hit = _PIECES.get(key)
    if hit is not None and (hit[0] is entry.paper or hit[0] == entry.paper):
        _PIECES.move_to_end(key)
        return hit[1], hit[2]
    parts = _entry_parts(entry)
    whole = _abstract_cut(entry.paper.abstract, None)
    html = _packed_html(parts, whole)
    _PIECES[key] = (entry.paper, _entry_text(parts, whole), html)
    if len(_PIECES) > PIECES_CACHE:
        _PIECES.popitem(last=False)
    return _PIECES[key][1], html


#: (paper id, reasons) -> (paper, text piece, HTML piece), least recently used first
_PIECES: OrderedDict[tuple[str, tuple[Reason, ...]], tuple[Paper, str, str]] = OrderedDict()


def _cut_piece(entry: EntryParts, limit: int | None) -> tuple[str, str]:
    """The entry's text and HTML pieces with its abstract cut to `limit`, from the cache of
    recent cuts if there (digests that need cutting share papers, and most cut as deep)."""
    cut = _abstract_cut(entry.paper.abstract, limit)
    key = (entry.paper.id, entry.reasons, cut.kept)
    hit = _CUTS.get(key)
    if hit is not None and (hit[0] is entry.paper or hit[0] == entry.paper):
        return hit[1], hit[2]
    text, html = _entry_text(entry, cut), _packed_html(entry, cut)
    _CUTS[key] = (entry.paper, text, html)
    if len(_CUTS) > CUTS_CACHE:
        _CUTS.popitem(last=False)
    return text, html


#: (paper id, reasons, abstract lines kept) -> (paper, text piece, HTML piece), oldest first
_CUTS: OrderedDict[tuple[str, tuple[Reason, ...], int], tuple[Paper, str, str]] = OrderedDict()


def _packed_html(entry: EntryParts, cut: _Cut) -> str:
    """The entry's HTML as ASCII with its lines packed (see `_render_html`, `_pack_lines`).

    As ASCII it takes a third of the memory of a str with one "…" in it.
    """
    html = _entry_html(entry, cut).encode("ascii", "xmlcharrefreplace").decode("ascii")
    end = "\n" if html.endswith("\n") else ""  # the next paper starts on a line of its own
    return _pack_lines(html.removesuffix("\n")) + end


def _entry_parts(entry: DigestEntry) -> EntryParts:
    authors = entry.paper.authors
    return EntryParts(
        paper=entry.paper,
        terms=_terms(entry.reasons),
        reasons=entry.reasons,
        authors=_styled_authors(authors, _followed_authors(authors, entry.reasons)),
    )


@functools.lru_cache(maxsize=16384)
def _author_views(authors: tuple[str, ...], followed: frozenset[int]) -> tuple[str, Markup]:
    """The authors as shown: in the text part, and in HTML with followed ones in <strong>."""
    items, more = _author_items(authors, followed)
    return _authors_text(items, more), _authors_html(items, more)


@functools.lru_cache(maxsize=16384)
def _styled_authors(authors: tuple[str, ...], followed: frozenset[int]) -> tuple[str, str]:
    text, html = _author_views(authors, followed)
    return text, _styled(html)


#: what an abstract is in a piece: none, whole, or cut (the cut ends with a link to it)
_NO_ABSTRACT, _WHOLE, _CUT = 0, 1, 2


def _abstract_state(cut: _Cut) -> int:
    return _CUT if cut.cut else _WHOLE if cut.kept else _NO_ABSTRACT


def _entry_text(entry: EntryParts, cut: _Cut) -> str:
    paper = entry.paper
    state = _abstract_state(cut)
    skeleton = _text_skeleton(paper, bool(entry.reasons), state)
    return skeleton.fill(
        {
            "authors": entry.authors[0],
            "why": _reasons_shown(entry.reasons, skeleton.separator, html=False),
            "abstract": _wrapped(paper.abstract, cut.kept) if state else "",
        }
    )


def _entry_html(entry: EntryParts, cut: _Cut) -> str:
    paper = entry.paper
    state = _abstract_state(cut)
    skeleton = _html_skeleton(paper, bool(entry.reasons), state)
    return skeleton.fill(
        {
            "title": _title_html(paper.title, entry.terms),
            "authors": entry.authors[1],
            "why": _reasons_shown(entry.reasons, skeleton.separator, html=True),
            "abstract": _cut_html(paper.abstract, entry.terms, cut) if state else "",
        }
    )


@functools.lru_cache(maxsize=65536)
def _reasons_shown(reasons: tuple[Reason, ...], separator: str, *, html: bool) -> str:
    """The reasons' lines joined by the template's separator (escaped for HTML)."""
    lines = _reason_lines(reasons)
    return separator.join(map(str, map(escape, lines)) if html else lines)


@functools.lru_cache(maxsize=RUN_CACHE)
def _title_html(title: str, terms: tuple[str, ...]) -> str:
    return _styled(highlight(_display_title(title), terms))


def _skeleton_view(paper: Paper, has_reasons: bool, abstract: int) -> EntryView:
    """The paper's view with slots for what depends on the digest's reasons and size."""
    view = entry_view(DigestEntry(paper, ()))
    return replace(
        view,
        title_html=Markup(_slot("title")),
        authors=_slot("authors") if paper.authors else "",
        authors_html=Markup(_slot("authors")),
        reasons=(_slot("why1"), _slot("why2")) if has_reasons else (),
        abstract=_slot("abstract") if abstract else "",
    )


def _html_skeleton(paper: Paper, has_reasons: bool, abstract: int) -> Skeleton:
    return _HTML_SKELETONS.get(
        paper,
        (has_reasons, abstract),
        lambda: _new_html_skeleton(paper, has_reasons, abstract),
    )


def _text_skeleton(paper: Paper, has_reasons: bool, abstract: int) -> Skeleton:
    return _TEXT_SKELETONS.get(
        paper,
        (has_reasons, abstract),
        lambda: _new_text_skeleton(paper, has_reasons, abstract),
    )


def _new_html_skeleton(paper: Paper, has_reasons: bool, abstract: int) -> Skeleton:
    view = _skeleton_view(paper, has_reasons, abstract)
    html = _render_block(
        HTML_TEMPLATE,
        "paper",
        e=view,
        abstract=Markup(_slot("abstract")) if abstract else Markup(""),
        cut=abstract == _CUT,
    )
    inlined = str(_inliner().inline_fragment(html, _css()))
    return Skeleton.of(inlined, _piece_slots(paper, has_reasons, abstract, title=True))


def _new_text_skeleton(paper: Paper, has_reasons: bool, abstract: int) -> Skeleton:
    view = _skeleton_view(paper, has_reasons, abstract)
    text = _render_block(TEXT_TEMPLATE, "paper", e=view, cut=abstract == _CUT)
    return Skeleton.of(
        text.rstrip("\n") + "\n", _piece_slots(paper, has_reasons, abstract, title=False)
    )


def _piece_slots(paper: Paper, has_reasons: bool, abstract: int, *, title: bool) -> list[str]:
    """The slots a paper's skeleton must have."""
    return [
        *(["title"] if title else []),
        *(["authors"] if paper.authors else []),
        *(["why"] if has_reasons else []),
        *(["abstract"] if abstract else []),
    ]


def _render_html(papers: Sequence[str], context: dict[str, object]) -> str:
    """The document around the papers, from a skeleton inlined once per kind of digest."""
    skeleton = _shell_skeleton(_ShellKind.of(context))
    values = {slot: str(escape(context[key])) for slot, key in _SHELL_SLOTS.items() if context[key]}
    values["papers"] = "".join(papers)
    values["leftout"] = str(context["leftout_html"])
    # ASCII with character references (the CSS is ASCII, where they would not work): the
    # part is then 7bit, and sizing, packing and encoding it are plain byte counts
    return skeleton.fill(values).encode("ascii", "xmlcharrefreplace").decode("ascii")


def _render_text(papers: Sequence[str], context: dict[str, object]) -> str:
    """The text part: a skeleton per number of papers (the template numbers them)."""
    skeleton = _text_shell_skeleton(_ShellKind.of(context), len(papers))
    values = {slot: str(context[key]) for slot, key in _SHELL_SLOTS.items() if context[key]}
    values.update((f"p{i}", paper) for i, paper in enumerate(papers))
    values["leftout"] = str(context["leftout_text"])
    return skeleton.fill(values)


#: the document's slots and the context values that fill them
_SHELL_SLOTS = {
    "heading": "heading",
    "subject": "subject",
    "email": "email",
    "omitted": "omitted",
    "unlisted": "unlisted",
    "maxpapers": "max_papers",
    "manageurl": "manage_url",
    "unsubscribeurl": "unsubscribe_url",
    "matchesurl": "matches_url",
}


@dataclass(frozen=True, slots=True)
class _ShellKind:
    """What the document's wording depends on; the numbers and links go into its slots.

    `omitted` and `unlisted` are 0, 1 or 2 for "two or more": the wording depends on
    that, not on the number.
    """

    list_name: str
    omitted: int
    unlisted: int
    listed: bool
    size_limited: bool
    manage: bool
    unsubscribe: bool
    matches: bool
    config_origin: bool

    @classmethod
    def of(cls, context: Mapping[str, object]) -> _ShellKind:
        """The kind of document a digest's context makes."""
        return cls(
            list_name=str(context["list_name"]),
            omitted=min(int(str(context["omitted"])), 2),
            unlisted=min(int(str(context["unlisted"])), 2),
            listed=bool(context["leftout_html"]),
            size_limited=bool(context["size_limited"]),
            manage=context["manage_url"] is not None,
            unsubscribe=context["unsubscribe_url"] is not None,
            matches=context["matches_url"] is not None,
            config_origin=bool(context["config_origin"]),
        )


@functools.lru_cache(maxsize=64)
def _shell_skeleton(kind: _ShellKind) -> Skeleton:
    context = _shell_context(kind)
    shell = _template(HTML_TEMPLATE).render(context, papers=Markup(_slot("papers")))
    skeleton = Skeleton.of(str(_inliner().inline(shell)), ["papers", "email", "heading"])
    return replace(skeleton, statics=tuple(map(_pack_inner_lines, skeleton.statics)))


def _pack_inner_lines(static: str) -> str:
    """A piece of the document with its lines packed, except those that touch a slot.

    The first and last line of a piece share a line with a slot's value: left as they
    are, no packed line can grow past the limit when the values go in.
    """
    first, _, rest = static.partition("\n")
    inner, newline, last = rest.rpartition("\n")
    if not newline:
        return static
    return f"{first}\n{_pack_lines(inner)}\n{last}"


@functools.lru_cache(maxsize=1024)
def _text_shell_skeleton(kind: _ShellKind, count: int) -> Skeleton:
    context = _shell_context(kind)
    papers = [_slot(f"p{i}") for i in range(count)]
    text = _template(TEXT_TEMPLATE).render(context, papers=papers)
    return Skeleton.of(text, ["email", "heading", *(f"p{i}" for i in range(count))])


def _shell_context(kind: _ShellKind) -> dict[str, object]:
    """The templates' context with slots for what differs between digests of one kind."""
    context: dict[str, object] = {key: _slot(slot) for slot, key in _SHELL_SLOTS.items()}
    context.update(
        list_name=kind.list_name,
        omitted=kind.omitted if kind.omitted < 2 else _slot("omitted"),
        unlisted=kind.unlisted if kind.unlisted < 2 else _slot("unlisted"),
        leftout=Markup(_slot("leftout")) if kind.listed else "",
        size_limited=kind.size_limited,
        manage_url=_slot("manageurl") if kind.manage else None,
        unsubscribe_url=_slot("unsubscribeurl") if kind.unsubscribe else None,
        matches_url=_slot("matchesurl") if kind.matches else None,
        config_origin=kind.config_origin,
        budget_kb=MAX_HTML_BYTES // 1000,
        max_papers_bound=MAX_PAPERS,
    )
    return context


@functools.cache
def _styled_tags() -> dict[str, str]:
    """`<mark>` and `<strong>` as the inliner writes them with the CSS (e.g. a style="")."""
    inlined = str(_inliner().inline_fragment("<p><mark>m</mark><strong>s</strong></p>", _css()))
    tags = {}
    for tag in ("mark", "strong"):
        found = re.search(rf"<{tag}\b[^>]*>", inlined)
        tags[f"<{tag}>"] = found.group(0) if found else f"<{tag}>"
    return tags


def _styled(html: Markup) -> str:
    """The HTML with its <mark> and <strong> tags carrying the CSS's inline styles."""
    text = str(html)
    if "<" in text:
        for plain, styled in _styled_tags().items():
            text = text.replace(plain, styled)
    return text


def _terms(reasons: Iterable[Reason]) -> tuple[str, ...]:
    """Words to highlight in title and abstract: what every non-author alert hit."""
    terms: dict[str, None] = {}
    for reason in reasons:
        if reason.kind != "author":
            terms.update(dict.fromkeys(reason.terms or (reason.alert,)))
    return tuple(terms)


@functools.lru_cache(maxsize=65536)
def _reason_line(reason: Reason) -> str:
    """`keyword: transform* (matched: transformer, Transformers)`; terms only if they differ."""
    alert = fold(reason.alert)
    extra = [t for t in dict.fromkeys(reason.terms) if fold(t) != alert]
    line = f"{reason}" + (f" (matched: {', '.join(extra)})" if extra else "")
    return shorten(plain_text(line), REASON_CHARS)


@functools.lru_cache(maxsize=65536)
def _reason_lines(reasons: tuple[Reason, ...]) -> tuple[str, ...]:
    """The reasons as shown: the first MAX_REASONS, the last saying how many more there are."""
    lines = [_reason_line(reason) for reason in reasons[:MAX_REASONS]]
    if len(reasons) > MAX_REASONS:
        lines[-1] += f" (and {len(reasons) - MAX_REASONS} more)"
    return tuple(lines)


def _one_line(title: str) -> str:
    """The title on one line: only whitespace runs that break the line become one space."""
    return _LINE_BREAK.sub(" ", title).strip()


@functools.lru_cache(maxsize=16384)
def _display_title(title: str) -> str:
    """The title as shown: on one line, no bidi controls, cut at a word past TITLE_CHARS."""
    shown = _one_line(plain_text(title))
    return shown if len(shown) <= TITLE_CHARS else shorten(shown, TITLE_CHARS)


def _link_name(label: str) -> str:
    """What a link is called in a digest: a known label's name, else the label (short)."""
    return _LINK_NAMES.get(label) or shorten(plain_text(label), 40)


def _paper_date(paper: Paper) -> str:
    when = paper.published or paper.first_seen
    return when.date().isoformat() if when else ""


def _safe_url(url: str | None) -> str | None:
    """The URL if it is http(s) (a feed must not smuggle in javascript: links), else None.

    A URL with a bidi control in it is refused too: it could display as another address.
    """
    if not url:
        return None
    url = url.strip()
    if not url.isascii() and url != plain_text(url):
        return None
    return url if url.lower().startswith(("https://", "http://")) else None


# --- authors ------------------------------------------------------------------------------


def _followed_authors(authors: Sequence[str], reasons: Iterable[Reason]) -> frozenset[int]:
    """Indexes of the authors an `author` reason fired for (by full name or last + initial)."""
    wanted = {
        key
        for reason in reasons
        if reason.kind == "author"
        for name in (reason.alert, *reason.terms)
        for key in _author_keys(name)
    }
    if not wanted:
        return frozenset()
    return frozenset(i for i, name in enumerate(authors) if wanted & _author_keys(name))


@functools.lru_cache(maxsize=65536)
def _author_keys(name: str) -> frozenset[str]:
    """`guillaume lajoie` and `lajoie g`: "G. Lajoie" and "Lajoie, Guillaume" share the last."""
    folded = fold(name)
    if "," in folded:
        last, _, first = folded.partition(",")
        folded = f"{first} {last}"
    words = re.findall(r"\w+", folded)
    if not words:
        return frozenset()
    keys = {" ".join(words)}
    if len(words) > 1:
        keys.add(f"{words[-1]} {words[0][0]}")
    return frozenset(keys)


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


@functools.lru_cache(maxsize=65536)
def _display_name(name: str) -> str:
    """An author's name as shown: on one line, no bidi controls, at most AUTHOR_CHARS."""
    return shorten(plain_text(name), AUTHOR_CHARS)


# --- folding and term patterns --------------------------------------------------------------


@functools.lru_cache(maxsize=16384)
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


@functools.lru_cache(maxsize=65536)
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
    return _WORD_CHAR.match(char) is not None


@functools.lru_cache(maxsize=16384)
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


# --- MIME -----------------------------------------------------------------------------------


def _text_part(subtype: str, body: str) -> DigestMessage:
    """A text/* part, encoded by hand: the stdlib's content manager is several times slower."""
    part = DigestMessage(policy=MESSAGE_POLICY)
    part.set_raw("Content-Type", f'text/{subtype}; charset="utf-8"')
    last, encoding, data = _last_encoded
    if body is not last:
        encoding, data = _body_encoding(body)
    part.set_raw("Content-Transfer-Encoding", encoding)
    if encoding == "quoted-printable":
        part.set_payload(data.decode("ascii"))
    else:
        # the stdlib keeps 8bit payloads as surrogate-escaped str and writes back the bytes
        payload = data.decode("ascii", "surrogateescape")
        part.set_payload(payload)
        part.wire_body = (payload, data)
    return part


def _body_encoding(body: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, the encoded body with "\\n" line ends) of a text part."""
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    data = body.encode("utf-8")
    if max(map(len, data.split(b"\n"))) <= 998:  # RFC 5322 line limit, else quoted-printable
        return ("7bit" if data.isascii() else "8bit"), data
    return "quoted-printable", binascii.b2a_qp(data, istext=True)


def _pack_lines(html: str) -> str:
    """The HTML with its lines joined by spaces into lines of at most PACKED_LINE bytes.

    Outside <pre> (the template has none) a newline and a space are the same whitespace
    in HTML, so the page is unchanged; a paper takes two lines instead of fifteen, and
    lines are what SMTP servers spend their time on. A line already too long stays alone.
    """
    if not html.isascii():  # lengths below count bytes
        return b"\n".join(_packed(html.encode("utf-8").split(b"\n"), b" ")).decode("utf-8")
    return "\n".join(_packed(html.split("\n"), " "))


def _packed(lines: list[AnyStr], space: AnyStr) -> list[AnyStr]:
    """Greedy packing by cumulative offsets: one bisection per line written."""
    ends = list(accumulate(map(add, map(len, lines), repeat(1))))  # offset after each "\n"
    packed: list[AnyStr] = []
    first, offset = 0, 0
    while first < len(lines):
        last = max(first, bisect_right(ends, offset + PACKED_LINE + 1, lo=first) - 1)
        packed.append(space.join(lines[first : last + 1]))
        first, offset = last + 1, ends[last]
    return packed


def _stored_payload(msg: Message) -> object:
    # what BytesGenerator reads: get_payload() would decode surrogate-escaped 8bit bodies
    return msg.__dict__.get("_payload")


def _plain_tree(msg: Message, policy: EmailPolicy) -> bool:
    """Whether `_flatten` writes this message exactly as the stdlib generator would."""
    if policy.cte_type != "8bit" or policy.mangle_from_:
        return False
    content_type, boundary = _content_type(msg)
    payload = _stored_payload(msg)
    if content_type.startswith("multipart/"):
        return (
            content_type != "multipart/signed"
            and bool(boundary)
            and msg.preamble is None
            and msg.epilogue is None
            and isinstance(payload, list)
            and all(_plain_tree(part, policy) for part in payload)
        )
    return content_type.startswith("text/") and isinstance(payload, str)


def _content_type(msg: Message) -> tuple[str, str | None]:
    """(type, boundary) from the raw header: Message parses it anew on every access."""
    raw = next((str(v) for k, v in msg.raw_items() if k.lower() == "content-type"), None)
    if not raw:
        return "", None
    # what build_message writes, read without the header parser (a fresh boundary per
    # message would make the parser's cache useless); anything else goes to the parser
    simple = _SIMPLE_CONTENT_TYPE.fullmatch(raw)
    if simple:
        return simple["type"] or simple["multi"], simple["boundary"]
    return _parse_content_type(raw)


@functools.lru_cache(maxsize=256)
def _parse_content_type(value: str) -> tuple[str, str | None]:
    header = MESSAGE_POLICY.header_factory("Content-Type", value)
    boundary = getattr(header, "params", {}).get("boundary")
    return str(getattr(header, "content_type", "")), str(boundary) if boundary else None


def _flatten(msg: Message, policy: EmailPolicy, newline: bytes, out: list[bytes]) -> None:
    # most headers are the same on every digest: fold them once (for the one shared policy)
    fold = _folded if policy is MESSAGE_POLICY else policy.fold_binary
    out.extend(fold(name, value) for name, value in msg.raw_items())
    out.append(newline)
    payload = _stored_payload(msg)
    if isinstance(payload, str):
        wire = getattr(msg, "wire_body", None)
        # the bytes only while the payload is still the one they were made from
        body = (
            wire[1] if wire and wire[0] is payload else payload.encode("ascii", "surrogateescape")
        )
        out.append(_NEWLINES.sub(newline, body) if b"\r" in body else body.replace(b"\n", newline))
        return
    assert isinstance(payload, list)
    delimiter = b"--" + str(_content_type(msg)[1]).encode("ascii")
    out += [delimiter, newline]
    for i, part in enumerate(payload):
        if i:
            out += [newline, delimiter, newline]
        _flatten(part, policy, newline, out)
    out += [newline, delimiter, b"--", newline]


@functools.lru_cache(maxsize=1024)
def _folded(name: str, value: str) -> bytes:
    return MESSAGE_POLICY.fold_binary(name, value)


@functools.lru_cache(maxsize=16)
def _date_header(when: datetime) -> str:
    # a run sends hundreds of digests a second and Date has whole seconds
    return format_datetime(when)


def _check_header(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} header contains a line break: {value!r}")


def _set_address(msg: EmailMessage, name: str, value: str) -> None:
    """An address header; a bare ASCII address goes in as is, anything else is parsed."""
    _check_header(name, value)
    msg.set_raw(name, value if _ADDR_SPEC.fullmatch(value) else _encoded_address(name, value))


def _set_text(msg: EmailMessage, name: str, value: str) -> None:
    """An unstructured header: short printable ASCII as is, else RFC 2047 encoded and folded."""
    _check_header(name, value)
    plain = value.isascii() and value.isprintable() and "=?" not in value
    msg.set_raw(name, value if plain and len(name) + len(value) <= 76 else _encoded(name, value))


@functools.lru_cache(maxsize=1024)
def _encoded(name: str, value: str) -> str:
    """The header value as the email policy folds and encodes it (cached: values recur)."""
    folded: str = MESSAGE_POLICY.header_factory(name, value).fold(policy=MESSAGE_POLICY)
    return folded[len(name) + 2 :].rstrip("\r\n")


@functools.lru_cache(maxsize=1024)
def _encoded_address(name: str, value: str) -> str:
    header = MESSAGE_POLICY.header_factory(name, value)
    addresses = getattr(header, "addresses", ())
    if header.defects or not addresses or not all(a.domain for a in addresses):
        raise ValueError(f"{name} header: not a valid address: {value!r}")
    return _encoded(name, value)


def _set_unsubscribe(msg: EmailMessage, url: str | None, mailto: str | None) -> None:
    """RFC 2369 List-Unsubscribe, plus RFC 8058 one-click when there is an https URL."""
    if mailto and not mailto.startswith("mailto:"):
        mailto = f"mailto:{mailto}"
    uris = [uri for uri in (url, mailto) if uri]
    for uri in uris:
        if not _URI.fullmatch(uri):
            raise ValueError(f"List-Unsubscribe: not a plain ASCII URI: {uri!r}")
    if not uris:
        return
    value = ", ".join(f"<{uri}>" for uri in uris)
    if len(value) > 78 - len("List-Unsubscribe: "):
        value = ",\r\n ".join(f"<{uri}>" for uri in uris)
    msg.set_raw("List-Unsubscribe", value)
    if url and url.startswith("https://"):
        msg.set_raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")


def _msg_id(message_id: str) -> str:
    value = message_id.strip()
    value = value if value.startswith("<") else f"<{value}>"
    if not re.fullmatch(r"<[^<>\s@]+@[^<>\s@]+>", value):
        raise ValueError(f"Message-ID: not of the form <left@right>: {message_id!r}")
    return value


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)
