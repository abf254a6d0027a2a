"""Source kind `html`: any publications page, read with CSS selectors from the config.

`item` selects one entry; inside it `title`, `authors`, `abstract` and `date` select the
parts, `link` the paper's link (else the title's own). `remove` drops elements (a "(see
more)" button) before text is taken, and joins a teaser cut at the point where the dropped
control sat: `incompat… (see more)ible` reads `incompatible`. arXiv ids and DOIs in an
entry's links give the paper its identity; without them it is known by its title.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import soupsieve
from bs4 import BeautifulSoup
from bs4.element import NavigableString, Tag
from pydantic import Field, field_validator

from bot.errors import EntryError, ParseError
from bot.ingest.sources.base import FetchWindow, SourceKind, SourceOptions, register
from bot.ingest.sources.common import parse_datetime
from bot.ingest.sources.items import read_items
from bot.ingest.sources.links import arxiv_links, doi_url
from bot.ingest.sources.plaintext import BLOCK_TAGS, collapse
from bot.models import Link, Listing, Paper
from bot.text.ids import arxiv_id_from, canonical_id, doi_from
from bot.text.names import split_authors

#: stands where a removed element was, so that a teaser cut there can be joined
_CUT = "\ue000"
_ELLIPSIS = r"(?:…|\.\.\.)"
_MORE_CONTROL = r"[(\[]\s*(?:see|read|show)\s+more\s*[)\]]"
# A teaser cut: the ellipsis, whatever spacing the markup put around the control, and the
# control itself (removed element or literal text) vanish; the text after it is kept as is.
_JOIN_CUT = re.compile(rf"{_ELLIPSIS}\s*(?:{_CUT}|{_MORE_CONTROL})", re.I)
_STRAY_CONTROL = re.compile(rf"{_CUT}|\s*[(\[]\s*(?:see|read|show)\s+(?:more|less)\s*[)\]]", re.I)
# An ellipsis between two letters is a cut whose control was pure script ("incompat…ible").
_MID_WORD_CUT = re.compile(r"(?<=\w)…(?=\w)")
_DATE_LABEL = re.compile(r"^(?:published|posted|date)(?:\s+on)?\s*:?\s*", re.I)
_CODE_HOST = re.compile(
    r"https?://(?:www\.)?(?:github\.com|gitlab\.com|codeberg\.org)/[^/]+/", re.I
)
# Middle dots, bullets and bars separate names as semicolons do ("A · B · C").
_LIST_MARK = re.compile(r"\s+[·•|]\s+")
_DATE_FORMATS = ("%Y-%m", "%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%B %Y", "%b %Y", "%Y")


def _check_selector(value: str | None) -> str | None:
    """A CSS selector soupsieve can compile, else a ValueError naming it."""
    if value is None:
        return None
    if not value.strip():
        raise ValueError("an empty CSS selector")
    try:
        soupsieve.compile(value)
    except soupsieve.SelectorSyntaxError as exc:
        problem = str(exc).splitlines()[0]
        raise ValueError(f"{value!r} is not a valid CSS selector: {problem}") from None
    return value


class HtmlOptions(SourceOptions):
    """Options of the `html` kind: the page and the CSS selectors that read it."""

    url: str = Field(..., description="the publications page to read")
    item: str = Field(..., description="CSS selector of one entry, e.g. 'article.pub'")
    title: str = Field(..., description="selector (inside an entry) of the title; its link too")
    link: str | None = Field(
        None, description="selector of the paper's link, when it is not the title's"
    )
    authors: str | None = Field(
        None, description="selector of the authors: one element each, or one split on , and"
    )
    abstract: str | None = Field(None, description="selector of the abstract")
    date: str | None = Field(None, description="selector of the date (datetime= or its text)")
    remove: list[str] = Field(
        default_factory=list, description="selectors dropped before text is read ('see more')"
    )
    next: str | None = Field(None, description="selector of the next-page link")
    max_pages: int = Field(1, ge=1, le=50, description="pages to follow through `next`")

    @field_validator("item", "title", "link", "authors", "abstract", "date", "next")
    @classmethod
    def _selectors(cls, value: str | None) -> str | None:
        """Reject a selector that does not compile, at config load rather than at fetch."""
        return _check_selector(value)

    @field_validator("remove")
    @classmethod
    def _remove_selectors(cls, values: list[str]) -> list[str]:
        """Every `remove` entry must be a valid selector too."""
        for value in values:
            _check_selector(value)
        return values


@register
class HtmlSource(SourceKind[HtmlOptions]):
    """Any publications page (a lab's, e.g. Mila's), read with CSS selectors from the config."""

    name = "html"
    options_model = HtmlOptions

    def start_urls(self, options: HtmlOptions, window: FetchWindow) -> list[str]:
        """The page itself; later pages come from `next`."""
        return [options.url]

    def max_pages(self, options: HtmlOptions) -> int:
        """How many pages `next` may lead through."""
        return options.max_pages

    def parse(self, body: bytes, url: str, options: HtmlOptions) -> Listing:
        """One paper per entry; no entry at all is a `ParseError` (the page changed)."""
        soup = BeautifulSoup(body, "html.parser")
        for selector in options.remove:
            for element in soup.select(selector):
                element.replace_with(NavigableString(_CUT))
        items = soup.select(options.item)
        if not items:
            raise ParseError(f"selector {options.item!r} matched nothing on {url}")
        listing = _papers(items, url, options)
        return replace(listing, next_url=_next_url(soup, url, options))


def _papers(items: list[Tag], url: str, options: HtmlOptions) -> Listing:
    """A paper per readable entry (see `ingest.sources.items`); when none is, the page changed."""
    read = read_items(
        items,
        lambda item, _notes: paper_from_item(item, url, options),
        url=url,
        noun=("entry", "entries"),
        broken=f"they are what the item selector {options.item!r} matched",
    )
    papers: dict[str, Paper] = {}
    for paper in read.papers:
        papers.setdefault(paper.id, paper)
    return Listing(tuple(papers.values()), problems=read.problems)


def paper_from_item(item: Tag, url: str, options: HtmlOptions) -> Paper:
    """A paper from one entry (`EntryError` when its title selector finds no text)."""
    title_element = item.select_one(options.title)
    title = element_text(title_element) if title_element is not None else ""
    if not title:
        raise EntryError(f"title selector {options.title!r} found no text")
    link = _entry_link(item, title_element, url, options)
    hrefs = [link, *_hrefs(item, url)] if link else _hrefs(item, url)
    arxiv_id = next(filter(None, map(arxiv_id_from, hrefs)), None)
    doi = next(filter(None, map(doi_from, hrefs)), None)
    try:
        paper_id = canonical_id(arxiv_id=arxiv_id, doi=doi, title=title)
    except ValueError as exc:
        raise EntryError(str(exc)) from exc
    return Paper(
        id=paper_id,
        title=title,
        authors=tuple(_authors(item, options.authors)),
        abstract=_selected_text(item, options.abstract),
        url=link or url,
        arxiv_id=arxiv_id,
        doi=doi,
        published=_date(item, options.date),
        links=_links(link or url, arxiv_id, doi, _code_link(hrefs)),
    )


def element_text(element: Tag) -> str:
    """An element's text on one line: blocks apart, inline markup joined, teaser cuts mended."""
    pieces: list[str] = []
    for node in element.descendants:
        if isinstance(node, Tag) and node.name in BLOCK_TAGS:
            pieces.append(" ")
        elif isinstance(node, NavigableString) and type(node) is NavigableString:
            pieces.append(str(node))
    text = _MID_WORD_CUT.sub("", _JOIN_CUT.sub("", "".join(pieces)))
    return collapse(_STRAY_CONTROL.sub("", text))


def _selected_text(item: Tag, selector: str | None) -> str:
    """The text of the first element the selector finds in the entry ('' if none)."""
    if selector is None:
        return ""
    element = item.select_one(selector)
    return element_text(element) if element is not None else ""


def _authors(item: Tag, selector: str | None) -> list[str]:
    """The names in the matched elements, by the one author-list rule (`bot.text.names`).

    One element each, or one element holding the list ("A, B, and 3 more authors"): a
    toggle such as al-folio's "3 more authors" or an "et al." is never a name.
    """
    if selector is None:
        return []
    texts = (_LIST_MARK.sub(";", element_text(element)) for element in item.select(selector))
    return list(dict.fromkeys(name for text in texts for name in split_authors(text)))


def _entry_link(item: Tag, title: Tag | None, url: str, options: HtmlOptions) -> str:
    """The paper's link: the `link` element's, else the title's own or the one inside it."""
    if options.link is not None:
        return _href_of(item.select_one(options.link), url)
    if title is None:
        return ""
    return _href_of(title, url) or _href_of(title.find_parent("a"), url)


def _href_of(element: Tag | None, url: str) -> str:
    """The absolute href of an `a` element, or of the first link inside the element."""
    if element is None:
        return ""
    is_link = element.name == "a" and element.get("href")
    anchor = element if is_link else element.find("a", href=True)
    if not isinstance(anchor, Tag):
        return ""
    href = anchor.get("href")
    return urljoin(url, href.strip()) if isinstance(href, str) and href.strip() else ""


def _hrefs(item: Tag, url: str) -> list[str]:
    """Every link in the entry, absolute, in document order."""
    return [_href_of(a, url) for a in item.find_all("a", href=True)]


def _date(item: Tag, selector: str | None) -> datetime | None:
    """The entry's date from a `datetime`/`content` attribute or the element's text."""
    if selector is None:
        return None
    element = item.select_one(selector)
    if element is None:
        return None
    for attribute in ("datetime", "content"):
        value = element.get(attribute)
        if isinstance(value, str) and (found := parse_date_text(value)):
            return found
    return parse_date_text(element_text(element))


def parse_date_text(text: str) -> datetime | None:
    """A date as lab pages write it: ISO, RFC 822, `March 5, 2025`, `5 Mar 2025`, `2025`."""
    text = _DATE_LABEL.sub("", collapse(text))
    found = parse_datetime(text)
    if found is not None:
        return found
    try:
        return parsedate_to_datetime(text).astimezone(UTC)
    except (TypeError, ValueError, IndexError):
        pass
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _code_link(hrefs: list[str]) -> str | None:
    """The first link to a code host (GitHub, GitLab, Codeberg) in the entry."""
    return next((href for href in hrefs if _CODE_HOST.match(href)), None)


def _links(page: str, arxiv_id: str | None, doi: str | None, code: str | None) -> tuple[Link, ...]:
    """The entry's page, plus arXiv, DOI and code links when the entry has them."""
    links = [Link("page", page)]
    if arxiv_id:
        links += arxiv_links(arxiv_id)
    if code:
        links.append(Link("code", code))
    if doi:
        links.append(Link("doi", doi_url(doi)))
    return tuple(links)


def _next_url(soup: BeautifulSoup, url: str, options: HtmlOptions) -> str | None:
    """The next page's URL, when `next` finds a link that leads somewhere else."""
    if options.next is None:
        return None
    found = _href_of(soup.select_one(options.next), url)
    return found if found and found != url else None
