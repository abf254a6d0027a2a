"""Source kind `huggingface`: Hugging Face Daily Papers, from the JSON API or the HTML pages.

The API (`/api/daily_papers?date=D`) is asked once per day since the last successful fetch.
The pages (`/papers`, `/papers/date/D`, `/papers/trending`, a paper's own page) carry the
same items as HTML-escaped JSON in a `data-props` attribute; that JSON is read, never the
rendered cards, which repeat every paper. Which of the two a document is, is told by its
content, so `url:` may point at either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from bot.errors import EntryError, ParseError
from bot.ingest.sources.base import FetchWindow, SourceKind, SourceOptions, register
from bot.ingest.sources.checks import shown
from bot.ingest.sources.common import (
    date_field,
    fetch_days,
    int_field,
    name_list,
    query_value,
    read_json,
    string_list,
    text_field,
    with_query,
)
from bot.ingest.sources.items import ItemNotes, read_items
from bot.ingest.sources.links import arxiv_abs_url, arxiv_links
from bot.ingest.sources.plaintext import collapse, entity_text
from bot.models import Link, Listing, Paper
from bot.text.ids import arxiv_id_from, canonical_id
from bot.text.tex import decode_tex
from bot.timing.schedule import Schedule

API_URL = "https://huggingface.co/api/daily_papers"
PAPER_PAGE = "https://huggingface.co/papers/"
#: the API's largest page; a day rarely holds more papers than this
API_LIMIT = "100"
#: hydration targets whose `data-props` hold papers: a listing, or one paper's page
_LISTING, _PAPER_PAGE = "DailyPapers", "PaperContent"
_PERIOD_PARAMS = ("date", "week", "month")


class HuggingfaceOptions(SourceOptions):
    """Options of the `huggingface` kind; without `url`, the Daily Papers API day by day."""

    url: str | None = Field(
        None,
        description=f"the API (default {API_URL}, asked day by day) or a page such as"
        " https://huggingface.co/papers/trending",
    )

    min_upvotes: int = Field(0, ge=0, description="leave out papers with fewer upvotes")
    catch_up_days: int = Field(
        7, ge=1, le=60, description="after an outage, ask the API for at most this many days"
    )


@register
class HuggingfaceSource(SourceKind[HuggingfaceOptions]):
    """Hugging Face Daily Papers (API or /papers pages), with upvotes, code and AI keywords."""

    name = "huggingface"
    options_model = HuggingfaceOptions
    # the daily list grows through the day: hourly, a few minutes past the hour
    default_schedule = Schedule("5 * * * *")

    def start_urls(self, options: HuggingfaceOptions, window: FetchWindow) -> list[str]:
        """One API request per day since the last success; a page or a dated URL as given."""
        url = options.url or API_URL
        if not is_daily_api(url):
            return [url]
        # Only days that have ended in UTC: never a future date (an error at HF), and the
        # day's list is complete; the day before the last success is read again.
        days = fetch_days(
            window, catch_up=options.catch_up_days, last_day=window.today - timedelta(days=1)
        )
        return [with_query(url, {"date": day.isoformat(), "limit": API_LIMIT}) for day in days]

    def parse(self, body: bytes, url: str, options: HuggingfaceOptions) -> Listing:
        """The papers of an API answer or a page; `[]` (a weekend) is an empty day."""
        read = read_items(_items(body, url), paper_from_item, url=url)
        papers: dict[str, Paper] = {}
        for paper in read.papers:
            papers.setdefault(paper.id, paper)
        kept = [p for p in papers.values() if (p.votes or 0) >= options.min_upvotes]
        return Listing(tuple(kept), problems=read.problems)


def is_daily_api(url: str) -> bool:
    """Whether the URL is the daily-papers API without a date, week or month of its own."""
    if not urlsplit(url).path.rstrip("/").endswith("/api/daily_papers"):
        return False
    return all(query_value(url, name) is None for name in _PERIOD_PARAMS)


# --- which document is it ------------------------------------------------------------------


def _items(body: bytes, url: str) -> list[Any]:
    """The daily-paper items of a document, whichever form it has."""
    if body.lstrip()[:1] in (b"[", b"{"):
        return _json_items(read_json(body, url), url)
    return _page_items(body, url)


def _json_items(data: Any, url: str) -> list[Any]:
    """Items of an API answer: an array, or an object (an error, a listing, one paper)."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        if "error" in data:
            raise ParseError(f"{url}: Hugging Face answered with an error: {data['error']}")
        if isinstance(data.get("dailyPapers"), list):
            return list(data["dailyPapers"])
        if isinstance(data.get("paper"), dict) or "id" in data:
            return [data]
    raise ParseError(f"{url}: expected a JSON array of daily papers, got {_shape(data)}")


def _page_items(body: bytes, url: str) -> list[Any]:
    """Items of an HTML page, from the JSON in its hydration `data-props`."""
    props = hydration_props(body.decode("utf-8", errors="replace"), (_LISTING, _PAPER_PAGE))
    if _LISTING in props:
        data = _props_json(props[_LISTING], url)
        if not isinstance(data.get("dailyPapers"), list):
            raise ParseError(f"{url}: the DailyPapers data has no 'dailyPapers' list")
        return list(data["dailyPapers"])
    if _PAPER_PAGE in props:
        data = _props_json(props[_PAPER_PAGE], url)
        if not isinstance(data.get("paper"), dict):
            raise ParseError(f"{url}: the PaperContent data has no 'paper' object")
        return [data]
    raise ParseError(
        f'{url}: expected a Hugging Face papers page with a data-target="{_LISTING}"'
        " element holding data-props JSON, found none (the page layout changed?)"
    )


def _props_json(raw: str, url: str) -> dict[str, Any]:
    """The decoded JSON of a `data-props` attribute (entities are already unescaped)."""
    data = read_json(raw.encode(), url)
    if not isinstance(data, dict):
        raise ParseError(f"{url}: data-props is {_shape(data)}, expected an object")
    return data


def _shape(data: Any) -> str:
    """A word on a JSON value's shape for an error line."""
    if isinstance(data, dict):
        keys = ", ".join(list(data)[:5])
        return f"an object with keys {keys}" if keys else "an empty object"
    return type(data).__name__


class _HydrationFinder(HTMLParser):
    """Collects the `data-props` of the first element for each wanted `data-target`."""

    def __init__(self, targets: Iterable[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.targets = set(targets)
        self.props: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Keep the props of a wanted hydration target the first time it is seen."""
        found = dict(attrs)
        target = found.get("data-target")
        props = found.get("data-props")
        if target in self.targets and target not in self.props and props is not None:
            self.props[target] = props


def hydration_props(html: str, targets: Iterable[str]) -> dict[str, str]:
    """The `data-props` text (entities decoded) of each wanted Svelte hydration target."""
    finder = _HydrationFinder(targets)
    finder.feed(html)
    finder.close()
    return finder.props


# --- items to papers -----------------------------------------------------------------------


def paper_from_item(item: Any, notes: ItemNotes) -> Paper:
    """A paper from one daily-papers item (`EntryError` when it has no title)."""
    if not isinstance(item, dict):
        raise EntryError(f"expected an object, got {shown(item)}")
    paper = item["paper"] if isinstance(item.get("paper"), dict) else item
    hf_id = text_field(paper, "id", notes).strip()
    notes.named(hf_id)
    title = _text(text_field(paper, "title", notes) or text_field(item, "title", notes))
    if not title:
        raise EntryError("no title")
    arxiv_id = arxiv_id_from(hf_id) if hf_id else None
    try:
        paper_id = canonical_id(arxiv_id=arxiv_id, title=title)
    except ValueError as exc:  # a title of punctuation only, and no arXiv id
        raise EntryError(str(exc)) from None
    return Paper(
        id=paper_id,
        title=title,
        authors=tuple(name_list(paper, "authors", "name", notes, expected=True)),
        abstract=_text(
            text_field(paper, "summary", notes) or text_field(item, "summary", notes, expected=True)
        ),
        url=arxiv_abs_url(arxiv_id) if arxiv_id else _page_url(hf_id),
        arxiv_id=arxiv_id,
        published=date_field(paper, "publishedAt", notes) or date_field(item, "publishedAt", notes),
        links=_links(paper, hf_id, arxiv_id, notes),
        votes=int_field(paper, "upvotes", notes),
        stars=int_field(paper, "githubStars", notes),
        keywords=tuple(string_list(paper, "ai_keywords", notes)),
        organizations=tuple(_organizations(item, paper, notes)),
    )


def _text(raw: str) -> str:
    """Title or summary text: entities and arXiv's TeX accents decoded, line wraps joined."""
    return collapse(decode_tex(entity_text(raw)))


def _organizations(
    item: Mapping[str, Any], paper: Mapping[str, Any], notes: ItemNotes
) -> list[str]:
    """The organisation's full name (else its handle), from the paper or the item."""
    names: list[str] = []
    for holder in (paper, item):
        org = holder.get("organization")
        if isinstance(org, dict):
            name = entity_text(text_field(org, "fullname", notes) or text_field(org, "name", notes))
            if name:
                names.append(name)
    return list(dict.fromkeys(names))


def _page_url(hf_id: str) -> str:
    """The paper's page on Hugging Face ('' without an id)."""
    return f"{PAPER_PAGE}{hf_id}" if hf_id else ""


def _links(
    paper: Mapping[str, Any], hf_id: str, arxiv_id: str | None, notes: ItemNotes
) -> tuple[Link, ...]:
    """arXiv abstract and PDF, code repository, project page and the Hugging Face page."""
    links = arxiv_links(arxiv_id) if arxiv_id else []
    code = text_field(paper, "githubRepo", notes).strip()
    if code:
        links.append(Link("code", code))
    if hf_id:
        links.append(Link("hf", _page_url(hf_id)))
    project = text_field(paper, "projectPage", notes).strip()
    if project:
        links.append(Link("project", project))
    return tuple(links)
