"""Render a digest as an email: subject, plain text and HTML (Jinja2), then the MIME message.

Rendering is pure. Per-paper fragments (escaped and highlighted title, shortened authors and
abstract, links) are cached, because the same paper with the same reasons recurs in many
subscribers' digests of one run.
"""

from __future__ import annotations

import binascii
import functools
import logging
import os
import re
import textwrap
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage, Message
from email.policy import EmailPolicy, Policy
from email.utils import format_datetime

import css_inline
import jinja2
from markupsafe import Markup, escape

from bot.models import Digest, DigestEntry, Paper, Reason

log = logging.getLogger("paperbot.render")

#: Gmail clips HTML bodies past ~102 KB; the HTML part is kept below this many bytes
MAX_HTML_BYTES = 100_000
#: abstracts are cut to about this many characters, at a word boundary
ABSTRACT_CHARS = 700
#: a long author list shows this many first authors, the followed ones, and the last
HEAD_AUTHORS = 5
#: width of the wrapped abstract in the text part (titles are never wrapped)
TEXT_WIDTH = 76

#: CRLF serialization as SMTP wants it. Headers we store pre-folded are written as they are:
#: re-folding would turn a long List-Unsubscribe URL into RFC 2047 encoded words.
MESSAGE_POLICY = email_policy.SMTP.clone(refold_source="none")

TEXT_TEMPLATE = "digest.txt.j2"
HTML_TEMPLATE = "digest.html.j2"
#: where the papers go in the HTML document; autoescaping keeps any data from forging it
_PAPERS_SLOT = "<!--papers-->"

_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2212"
#: what may separate the words of a phrase in text: spaces, newlines, any kind of hyphen
_GAP = rf"[\s{_DASHES}]+"
_GAP_RE = re.compile(_GAP)
_WORD_CHAR = re.compile(r"\w")
_LINE_BREAK = re.compile(r"\s*[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]\s*")
_SOFT_WRAP = re.compile(r"(.{1,100})(?: +|$)")
_NEWLINES = re.compile(rb"\r\n|\r|\n")
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
) -> RenderedDigest:
    """Render a digest's subject, text part and HTML part (CSS inlined, under MAX_HTML_BYTES)."""
    count = len(digest.entries)
    heading = f"{count} new {'paper' if count == 1 else 'papers'} matching your alerts"
    views = [entry_view(entry) for entry in digest.entries]
    context = {
        "heading": heading,
        "subject": f"{list_name}: {heading}",
        "list_name": list_name,
        "email": digest.subscriber.email,
        "omitted": digest.omitted,
        "max_papers": digest.subscriber.max_papers,
        "manage_url": _safe_url(manage_url),
        "unsubscribe_url": _safe_url(unsubscribe_url),
    }
    papers = [_paper_text(view) for view in views]
    text = _template(TEXT_TEMPLATE).render(context, papers=papers)
    html = _render_html_within_budget(digest.entries, views, context)
    return RenderedDigest(subject=str(context["subject"]), text=text, html=html)


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
) -> EmailMessage:
    """The multipart/alternative email of a rendered digest, with list and one-click headers.

    The HTML is used as rendered: `render_digest` has already inlined its CSS and kept it
    under the size limit. Raises ValueError on a header value that cannot be sent.
    """
    msg = DigestMessage(policy=MESSAGE_POLICY)
    _set_address(msg, "From", sender)
    _set_address(msg, "To", recipient)
    if reply_to:
        _set_address(msg, "Reply-To", reply_to)
    _set_text(msg, "Subject", rendered.subject)
    msg.set_raw("Date", format_datetime(_aware(date or datetime.now(UTC))))
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

    def as_bytes(self, unixfrom: bool = False, policy: Policy | None = None) -> bytes:
        """The message serialized as `BytesGenerator` would, several times faster."""
        policy = self.policy if policy is None else policy
        if unixfrom or not isinstance(policy, EmailPolicy) or not _plain_tree(self, policy):
            return super().as_bytes(unixfrom, policy)
        out: list[bytes] = []
        _flatten(self, policy, policy.linesep.encode("ascii"), out)
        return b"".join(out)


# --- per-paper views (cached) ---------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def entry_view(entry: DigestEntry) -> EntryView:
    """The template view of one digest entry (pure, cached: papers recur across digests)."""
    paper = entry.paper
    title = _one_line(paper.title)
    links = paper_links(paper)
    authors = _author_items(paper.authors, _followed_authors(paper.authors, entry.reasons))
    return EntryView(
        title=title,
        title_html=highlight(title, _terms(entry.reasons)),
        url=links[0][1] if links else None,
        authors=_authors_text(authors, len(paper.authors)),
        authors_html=_authors_html(authors, len(paper.authors)),
        sources=", ".join(paper.sources),
        date=_paper_date(paper),
        reasons=tuple(_reason_line(reason) for reason in entry.reasons),
        abstract=_wrapped(paper.abstract, ABSTRACT_CHARS),
        links=tuple((_LINK_NAMES.get(label, label), url) for label, url in links),
    )


def paper_links(paper: Paper) -> tuple[tuple[str, str], ...]:
    """A paper's (label, url) links, abstract page first, then PDF, code, HF; http(s) only."""
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
        if safe and safe not in seen:
            seen[safe] = label
    return tuple((label, url) for url, label in seen.items())


def shorten(text: str, limit: int) -> str:
    """The text with its whitespace collapsed, cut to about `limit` characters at a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    cut = text.rfind(" ", 0, limit + 1)
    if cut < limit // 2:  # one giant token: cut inside it rather than drop almost everything
        cut = limit
    return text[:cut].rstrip(" ,;:.-") + " …"


def highlight(text: str, terms: tuple[str, ...]) -> Markup:
    """The text HTML-escaped, with every occurrence of the terms wrapped in <mark>.

    Matching ignores case, accents and hyphen-or-space differences, and is whole-word
    (`transform*` is a prefix). Escaping each piece after matching on the raw text keeps
    entities intact.
    """
    pattern = _terms_pattern(terms)
    if pattern is None:
        return escape(text)
    folded, index = _fold_with_index(text)
    pieces: list[Markup] = []
    pos = 0
    for found in pattern.finditer(folded):
        if found.end() == found.start():
            continue
        start, end = index[found.start()], index[found.end() - 1] + 1
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


# --- rendering ----------------------------------------------------------------------------


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bot", "templates"),
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


def _render_html_within_budget(
    entries: Sequence[DigestEntry], views: Sequence[EntryView], context: dict[str, object]
) -> str:
    """The HTML under MAX_HTML_BYTES: abstracts are shortened until it fits, papers never cut."""

    def render(limit: int) -> str:
        abstracts = [_abstract_html(e.paper.abstract, _terms(e.reasons), limit) for e in entries]
        return _render_html(views, abstracts, context)

    html = render(ABSTRACT_CHARS)
    size = _byte_size(html)
    if size < MAX_HTML_BYTES:
        return html
    bare = render(0)
    bare_size = _byte_size(bare)
    if bare_size >= MAX_HTML_BYTES:
        return _render_last_resort(views, context)
    limit = ABSTRACT_CHARS
    for _ in range(4):
        # abstracts grow about linearly with the limit: aim a little below the budget
        limit = limit * (MAX_HTML_BYTES - bare_size) * 19 // ((size - bare_size) * 20)
        if limit < 40:
            break
        html = render(limit)
        size = _byte_size(html)
        if size < MAX_HTML_BYTES:
            return html
    return bare


def _render_last_resort(views: Sequence[EntryView], context: dict[str, object]) -> str:
    """No abstracts and no highlights: all that can go without dropping papers."""
    plain = [replace(view, title_html=escape(view.title)) for view in views]
    html = _render_html(plain, [Markup("")] * len(plain), context)
    if _byte_size(html) >= MAX_HTML_BYTES:
        log.warning("the digest for %s is %d bytes of HTML", context["email"], _byte_size(html))
    return html


def _byte_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _render_html(
    views: Sequence[EntryView], abstracts: Sequence[Markup], context: dict[str, object]
) -> str:
    """The document with its CSS inlined; each paper's piece comes inlined from the cache."""
    papers = "".join(map(_paper_html, views, abstracts))
    shell = _template(HTML_TEMPLATE).render(context, papers=Markup(_PAPERS_SLOT))
    inlined = str(_inliner().inline(shell))
    if _PAPERS_SLOT not in inlined:  # a css_inline that drops comments must not drop papers
        raise RuntimeError("the CSS inliner removed the papers' place from the digest")
    return inlined.replace(_PAPERS_SLOT, papers, 1)


@functools.lru_cache(maxsize=8192)
def _paper_html(view: EntryView, abstract: Markup) -> str:
    html = _render_block(HTML_TEMPLATE, "paper", e=view, abstract=abstract)
    return str(_inliner().inline_fragment(html, _css()))


@functools.lru_cache(maxsize=8192)
def _paper_text(view: EntryView) -> str:
    return _render_block(TEXT_TEMPLATE, "paper", e=view).rstrip("\n") + "\n"


@functools.cache
def _css() -> str:
    return _render_block(HTML_TEMPLATE, "css")


def _render_block(template_name: str, block: str, **values: object) -> str:
    """One block of a template on its own (a paper's piece, the CSS)."""
    template = _template(template_name)
    return "".join(template.blocks[block](template.new_context(values)))


@functools.lru_cache(maxsize=16384)
def _abstract_html(abstract: str, terms: tuple[str, ...], limit: int) -> Markup:
    # newlines at spaces keep every HTML line short enough for an 8bit MIME part
    wrapped = _SOFT_WRAP.sub("\\1\n", shorten(abstract, limit)).rstrip("\n")
    return highlight(wrapped, terms)


@functools.lru_cache(maxsize=8192)
def _wrapped(abstract: str, limit: int) -> str:
    return textwrap.fill(
        shorten(abstract, limit), TEXT_WIDTH, break_long_words=False, break_on_hyphens=False
    )


def _terms(reasons: Iterable[Reason]) -> tuple[str, ...]:
    """Words to highlight in title and abstract: what every non-author alert hit."""
    terms: dict[str, None] = {}
    for reason in reasons:
        if reason.kind != "author":
            terms.update(dict.fromkeys(reason.terms or (reason.alert,)))
    return tuple(terms)


def _reason_line(reason: Reason) -> str:
    """`keyword: transform* (matched: transformer, Transformers)`; terms only if they differ."""
    alert = fold(reason.alert)
    extra = [t for t in dict.fromkeys(reason.terms) if fold(t) != alert]
    return f"{reason}" + (f" (matched: {', '.join(extra)})" if extra else "")


def _one_line(title: str) -> str:
    """The title on one line: only whitespace runs that break the line become one space."""
    return _LINE_BREAK.sub(" ", title).strip()


def _paper_date(paper: Paper) -> str:
    when = paper.published or paper.first_seen
    return when.date().isoformat() if when else ""


def _safe_url(url: str | None) -> str | None:
    """The URL if it is http(s) (a feed must not smuggle in javascript: links), else None."""
    if not url:
        return None
    url = url.strip()
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
    return frozenset(i for i, name in enumerate(authors) if wanted & _author_keys(name))


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


def _author_items(authors: Sequence[str], followed: frozenset[int]) -> list[tuple[str, bool]]:
    """(name, followed) pairs to show; ("", False) marks a gap of left-out authors."""
    count = len(authors)
    if count <= HEAD_AUTHORS + 2:
        shown = list(range(count))
    else:
        shown = sorted({*range(HEAD_AUTHORS), *followed, count - 1})
    items: list[tuple[str, bool]] = []
    for previous, index in zip([-1, *shown], shown, strict=False):
        if index != previous + 1:
            items.append(("", False))
        items.append((authors[index], index in followed))
    return items


def _authors_text(items: Sequence[tuple[str, bool]], count: int) -> str:
    names = ", ".join(name or "…" for name, _ in items)
    return f"{names} ({count} authors)" if ("", False) in items else names


def _authors_html(items: Sequence[tuple[str, bool]], count: int) -> Markup:
    names = Markup(", ").join(
        Markup("<strong>{}</strong>").format(name) if followed else escape(name or "…")
        for name, followed in items
    )
    if ("", False) in items:
        names += Markup(" ({} authors)").format(count)
    return names


# --- folding and term patterns --------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _fold_with_index(text: str) -> tuple[str, Sequence[int]]:
    """The folded text and, for each folded character, the index of its source character."""
    if text.isascii():
        return text.lower(), range(len(text))
    chars: list[str] = []
    index: list[int] = []
    for i, char in enumerate(text):
        for part in unicodedata.normalize("NFKD", char):
            if not unicodedata.combining(part):
                folded = part.casefold()
                chars.append(folded)
                index.extend([i] * len(folded))
    return "".join(chars), index


@functools.lru_cache(maxsize=4096)
def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    """One alternation of every term, longest first so that phrases win over their words."""
    parts = {p for p in map(_term_regex, terms) if p}
    if not parts:
        return None
    return re.compile("|".join(sorted(parts, key=len, reverse=True)))


def _term_regex(term: str) -> str | None:
    prefix = term.rstrip().endswith("*")
    words = [w for w in _GAP_RE.split(fold(term.strip().rstrip("*"))) if w]
    if not words:
        return None
    body = _GAP.join(re.escape(word) for word in words)
    start = r"(?<!\w)" if _WORD_CHAR.match(words[0][0]) else ""
    word_end = r"(?!\w)" if _WORD_CHAR.match(words[-1][-1]) else ""
    end = r"\w*" if prefix else word_end
    return start + body + end


# --- MIME -----------------------------------------------------------------------------------


def _text_part(subtype: str, body: str) -> DigestMessage:
    """A text/* part, encoded by hand: the stdlib's content manager is several times slower."""
    part = DigestMessage(policy=MESSAGE_POLICY)
    part.set_raw("Content-Type", f'text/{subtype}; charset="utf-8"')
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    data = body.encode("utf-8")
    if max(map(len, data.split(b"\n"))) <= 998:  # RFC 5322 line limit, else quoted-printable
        part.set_raw("Content-Transfer-Encoding", "7bit" if data.isascii() else "8bit")
        # the stdlib keeps 8bit payloads as surrogate-escaped str and writes back the bytes
        part.set_payload(data.decode("ascii", "surrogateescape"))
    else:
        part.set_raw("Content-Transfer-Encoding", "quoted-printable")
        part.set_payload(binascii.b2a_qp(data, istext=True).decode("ascii"))
    return part


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
    return _parse_content_type(raw) if raw else ("", None)


@functools.lru_cache(maxsize=256)
def _parse_content_type(value: str) -> tuple[str, str | None]:
    header = MESSAGE_POLICY.header_factory("Content-Type", value)
    boundary = getattr(header, "params", {}).get("boundary")
    return str(getattr(header, "content_type", "")), str(boundary) if boundary else None


def _flatten(msg: Message, policy: EmailPolicy, newline: bytes, out: list[bytes]) -> None:
    out.extend(policy.fold_binary(name, value) for name, value in msg.raw_items())
    out.append(newline)
    payload = _stored_payload(msg)
    if isinstance(payload, str):
        body = payload.encode("ascii", "surrogateescape")
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
