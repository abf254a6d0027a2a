"""Templates: the Jinja environment, CSS inlining, and skeletons that render them once.

Rendering a Jinja block and inlining its CSS costs about 0.1 ms; a run of 100,000 digests
of ten papers each cannot afford that per paper per digest. So each paper (and the document
around them) is rendered and inlined once, with slot tokens where a digest's own parts go
(highlighted title and abstract, followed authors, reasons), and each digest only joins
strings (`Skeleton.fill`). The tokens carry a per-process random nonce, so no data can
forge one. The parts put into slots get their <mark>/<strong> styles from the plain
`mark`/`strong` rules of the CSS (see `styled`).

The environment, templates, inliner and CSS are built once per process (they are the
package's files); the skeletons are per-run caches (`bot.mail.caches`).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import css_inline
import jinja2
from markupsafe import Markup, escape

from bot.mail.abstracts import Cut
from bot.mail.caches import CACHES, PaperTable
from bot.mail.mime import MAX_HTML_BYTES, pack_lines
from bot.mail.views import EntryView, entry_view
from bot.models import MAX_PAPERS, DigestEntry, Paper

TEXT_TEMPLATE = "digest.txt.j2"
HTML_TEMPLATE = "digest.html.j2"

_NONCE = os.urandom(8).hex()
_SLOT = re.compile(rf"pb_{_NONCE}_([a-z0-9]+)_")

#: what an abstract is in a paper's piece: none, whole, or cut (ending with a link to it)
ABSTRACT_NONE, ABSTRACT_WHOLE, ABSTRACT_CUT = 0, 1, 2
#: what a paper's piece says of why it is there: nothing, "Matched <alerts>", or the
#: recommendation's why ("Like “<title>” — shared words: ...")
WHY_NONE, WHY_MATCHED, WHY_RECOMMENDED = 0, 1, 2
#: a paper's HTML piece stops before the end of its <div>: the document puts the digest's
#: own "more/less like this" links there (the pieces are cached across digests), then this
PAPER_END = "</div>\n"


@functools.cache
def _environment() -> jinja2.Environment:
    """The templates' environment (built once per process)."""
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
    """A template, loaded once per process."""
    return _environment().get_template(name)


@functools.cache
def _inliner() -> css_inline.CSSInliner:
    """The CSS inliner (built once per process)."""
    # keep_at_rules: the dark-mode @media rule cannot be inlined, so it stays in <style>
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@functools.cache
def _css() -> str:
    """The digest's CSS, from the HTML template's `css` block."""
    return render_block(HTML_TEMPLATE, "css")


def render_block(template_name: str, block: str, **values: object) -> str:
    """One block of a template on its own (a paper's piece, the CSS)."""
    template = _template(template_name)
    return "".join(template.blocks[block](template.new_context(values)))


def inline_fragment(html: str) -> str:
    """A piece of the HTML document with the digest's CSS inlined into its tags."""
    return str(_inliner().inline_fragment(html, _css()))


@functools.cache
def _styled_tags() -> dict[str, str]:
    """`<mark>` and `<strong>` as the inliner writes them with the CSS (e.g. a style="")."""
    inlined = inline_fragment("<p><mark>m</mark><strong>s</strong></p>")
    tags = {}
    for tag in ("mark", "strong"):
        found = re.search(rf"<{tag}\b[^>]*>", inlined)
        tags[f"<{tag}>"] = found.group(0) if found else f"<{tag}>"
    return tags


def styled(html: Markup) -> str:
    """The HTML with its <mark> and <strong> tags carrying the CSS's inline styles."""
    text = str(html)
    if "<" in text:
        for plain, tag in _styled_tags().items():
            text = text.replace(plain, tag)
    return text


# --- skeletons ---------------------------------------------------------------------------------


def _slot(name: str) -> str:
    """The token of a slot: where a digest's own value goes in a skeleton."""
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


# --- a paper's piece ---------------------------------------------------------------------------


def abstract_state(cut: Cut) -> int:
    """What the abstract is in a piece with this cut: ABSTRACT_NONE, _WHOLE or _CUT."""
    return ABSTRACT_CUT if cut.cut else ABSTRACT_WHOLE if cut.kept else ABSTRACT_NONE


#: skeletons of papers' pieces, by paper and (why, abstract state)
_HTML_SKELETONS: PaperTable[Skeleton] = CACHES.paper_table(16384)
_TEXT_SKELETONS: PaperTable[Skeleton] = CACHES.paper_table(16384)


def html_skeleton(paper: Paper, why: int, abstract: int) -> Skeleton:
    """The skeleton of a paper's HTML piece (slots: title, authors, why, abstract)."""
    variant = (why, abstract)
    return _HTML_SKELETONS.get(paper, variant) or _HTML_SKELETONS.put(
        paper, variant, _new_html_skeleton(paper, why, abstract)
    )


def text_skeleton(paper: Paper, why: int, abstract: int) -> Skeleton:
    """The skeleton of a paper's text piece (slots: authors, why, abstract)."""
    variant = (why, abstract)
    return _TEXT_SKELETONS.get(paper, variant) or _TEXT_SKELETONS.put(
        paper, variant, _new_text_skeleton(paper, why, abstract)
    )


def _skeleton_view(paper: Paper, why: int, abstract: int) -> EntryView:
    """The paper's view with slots for what depends on the digest's reasons and size."""
    view = entry_view(DigestEntry(paper, ()))
    return replace(
        view,
        title_html=Markup(_slot("title")),
        authors=_slot("authors") if paper.authors else "",
        authors_html=Markup(_slot("authors")),
        reasons=(_slot("why1"), _slot("why2")) if why else (),
        abstract=_slot("abstract") if abstract else "",
    )


def _new_html_skeleton(paper: Paper, why: int, abstract: int) -> Skeleton:
    """A paper's HTML piece rendered with slots, its CSS inlined, cut at the slots."""
    view = _skeleton_view(paper, why, abstract)
    html = render_block(
        HTML_TEMPLATE,
        "paper",
        e=view,
        abstract=Markup(_slot("abstract")) if abstract else Markup(""),
        cut=abstract == ABSTRACT_CUT,
        recommended=why == WHY_RECOMMENDED,
    )
    inlined = inline_fragment(html).rstrip()
    if not inlined.endswith(PAPER_END.strip()):  # the document closes the piece: it must end so
        raise RuntimeError("a paper's HTML piece does not end with its </div>")
    unclosed = inlined.removesuffix(PAPER_END.strip()) + "\n"
    return Skeleton.of(unclosed, _piece_slots(paper, why, abstract, title=True))


def _new_text_skeleton(paper: Paper, why: int, abstract: int) -> Skeleton:
    """A paper's text piece rendered with slots, cut at the slots."""
    view = _skeleton_view(paper, why, abstract)
    text = render_block(
        TEXT_TEMPLATE,
        "paper",
        e=view,
        cut=abstract == ABSTRACT_CUT,
        recommended=why == WHY_RECOMMENDED,
    )
    return Skeleton.of(
        text.rstrip("\n") + "\n",
        _piece_slots(paper, why, abstract, title=False),
    )


def _piece_slots(paper: Paper, why: int, abstract: int, *, title: bool) -> list[str]:
    """The slots a paper's skeleton must have."""
    return [
        *(["title"] if title else []),
        *(["authors"] if paper.authors else []),
        *(["why"] if why else []),
        *(["abstract"] if abstract else []),
    ]


@CACHES.memo(maxsize=1)
def _feedback_skeletons() -> tuple[Skeleton, Skeleton]:
    """The (text, HTML) skeletons of an entry's "more/less like this" links (built once)."""
    slots = {"more": _slot("more"), "less": _slot("less")}
    text = render_block(TEXT_TEMPLATE, "feedback", **slots)
    html = inline_fragment(render_block(HTML_TEMPLATE, "feedback", **slots)).strip() + "\n"
    return Skeleton.of(text, slots), Skeleton.of(html, slots)


@dataclass(frozen=True, slots=True)
class FeedbackPieces:
    """One digest's "more/less like this" links around the place of a paper's id, in both
    parts: `fill(paper id)` joins five strings (a digest of 100 papers has 200 links)."""

    text: tuple[str, str, str]
    html: tuple[str, str, str]

    @classmethod
    def of(cls, prefix: str) -> FeedbackPieces:
        """The pieces of the links that start with `prefix` (see bot.mail.links)."""
        text, html = _feedback_skeletons()
        escaped = str(escape(prefix))
        return cls(_around(text, prefix), _around(html, escaped))

    def fill(self, quoted_id: str) -> tuple[str, str]:
        """The (text, HTML) links of the paper with this (quoted, so HTML-safe) id."""
        (t0, t1, t2), (h0, h1, h2) = self.text, self.html
        return t0 + quoted_id + t1 + quoted_id + t2, h0 + quoted_id + h1 + quoted_id + h2


def _around(skeleton: Skeleton, prefix: str) -> tuple[str, str, str]:
    """A feedback skeleton's statics with the links' prefix and verdicts put in."""
    s0, s1, s2 = skeleton.statics
    values = dict(zip(skeleton.names, (f"{prefix}/more/", f"{prefix}/less/"), strict=True))
    first, second = (values[name] for name in skeleton.names)
    return s0 + first, s1 + second, s2


# --- the document around the papers -------------------------------------------------------------


def html_document(
    papers: Sequence[str], context: dict[str, object], feedback: Sequence[str] = ()
) -> str:
    """The document around the papers, from a skeleton inlined once per kind of digest:
    each paper's piece, its feedback links (`feedback`, if any), its PAPER_END."""
    skeleton = _shell_skeleton(_ShellKind.of(context))
    values = {slot: str(escape(context[key])) for slot, key in _SHELL_SLOTS.items() if context[key]}
    alerts = int(str(context["alert_count"]))
    closed = _closed(papers, feedback)
    values["papers"] = "".join(closed[: 3 * alerts])
    values["recommended"] = "".join(closed[3 * alerts :])
    values["leftout"] = str(context["leftout_html"])
    # ASCII with character references (the CSS is ASCII, where they would not work): the
    # part is then 7bit, and sizing, packing and encoding it are plain byte counts
    return skeleton.fill(values).encode("ascii", "xmlcharrefreplace").decode("ascii")


def _closed(papers: Sequence[str], feedback: Sequence[str]) -> list[str]:
    """The papers' HTML pieces, each followed by its feedback links and PAPER_END (joined
    once, with the document: no piece is copied to add its links)."""
    links = feedback or [""] * len(papers)
    return [
        part for paper, fb in zip(papers, links, strict=False) for part in (paper, fb, PAPER_END)
    ]


def text_document(
    papers: Sequence[str], context: dict[str, object], feedback: Sequence[str] = ()
) -> str:
    """The text part: a skeleton per number of papers (the template numbers them); the first
    `alert_count` are the alerts' matches, the others recommended."""
    alerts = min(len(papers), int(str(context["alert_count"])))
    skeleton = _text_shell_skeleton(_ShellKind.of(context), alerts, len(papers) - alerts)
    values = {slot: str(context[key]) for slot, key in _SHELL_SLOTS.items() if context[key]}
    values.update((f"p{i}", paper) for i, paper in enumerate(papers))
    values.update((f"f{i}", links) for i, links in enumerate(feedback or [""] * len(papers)))
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
    recommended: bool

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
            recommended=bool(context["recommended_count"]),
        )


@CACHES.memo(maxsize=64)
def _shell_skeleton(kind: _ShellKind) -> Skeleton:
    """The HTML document of this kind around a slot for the papers (lines packed)."""
    context = _shell_context(kind)
    shell = _template(HTML_TEMPLATE).render(
        context,
        papers=Markup(_slot("papers")),
        recommended=Markup(_slot("recommended")) if kind.recommended else "",
    )
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
    return f"{first}\n{pack_lines(inner)}\n{last}"


@CACHES.memo(maxsize=1024)
def _text_shell_skeleton(kind: _ShellKind, count: int, recommended: int) -> Skeleton:
    """The text document of this kind with slots for `count` matched papers and
    `recommended` ones (numbered on from them: p<count>...)."""
    context = _shell_context(kind)
    slots = [_slot(f"p{i}") + _slot(f"f{i}") for i in range(count + recommended)]
    text = _template(TEXT_TEMPLATE).render(context, papers=slots[:count], recommended=slots[count:])
    names = [name for i in range(count + recommended) for name in (f"p{i}", f"f{i}")]
    return Skeleton.of(text, ["email", "heading", *names])


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
