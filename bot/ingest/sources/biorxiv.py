"""Source kind `biorxiv`: the bioRxiv / medRxiv details API, day window by day window.

`api.biorxiv.org/details/{server}/{from}/{to}/{cursor}/json` lists the preprints posted in
the window, 30 at a time; the next page starts at `cursor + count` until `total`. Every
version is its own record, so the same DOI can come several times: it is one paper. An
error arrives as HTTP 200 with a status message; "no posts found" is an empty day.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field

from bot.errors import EntryError, ParseError
from bot.ingest.sources.base import FetchWindow, SourceKind, SourceOptions, register
from bot.ingest.sources.checks import shown
from bot.ingest.sources.common import (
    date_field,
    fetch_days,
    int_field,
    read_json,
    text_field,
    with_query,
)
from bot.ingest.sources.items import ItemNotes, ItemsRead, read_items
from bot.ingest.sources.links import doi_url
from bot.ingest.sources.plaintext import collapse, entity_text
from bot.models import Link, Listing, Paper
from bot.text.ids import canonical_id, doi_from
from bot.text.names import split_authors as author_list

API_URL = "https://api.biorxiv.org/details"
_EMPTY_STATUS = "no posts found"
_SERVERS = ("biorxiv", "medrxiv")
# The cursor is the number before the optional format at the end of the path.
_CURSOR = re.compile(r"/(\d+)(/(?:json|xml))?/?$")


class BiorxivOptions(SourceOptions):
    """Options of the `biorxiv` kind; `url` is the details API's base."""

    url: str | None = Field(
        None,
        description=f"the details API's base (default {API_URL}), or a whole details URL"
        " (.../{server}/{from}/{to}/0/json) to read as given",
    )

    server: Literal["biorxiv", "medrxiv"] = Field("biorxiv", description="biorxiv or medrxiv")
    categories: list[str] = Field(
        default_factory=list,
        description="only these subject categories, e.g. [neuroscience, 'cell biology']",
    )
    catch_up_days: int = Field(
        7, ge=1, le=60, description="after an outage, ask for at most this many days"
    )
    max_pages: int = Field(
        30, ge=1, le=500, description="pages of 30 records one fetch may read, per category"
    )


@register
class BiorxivSource(SourceKind[BiorxivOptions]):
    """bioRxiv or medRxiv preprints posted since the last fetch, optionally by category."""

    name = "biorxiv"
    options_model = BiorxivOptions

    def start_urls(self, options: BiorxivOptions, window: FetchWindow) -> list[str]:
        """The window's first page, once per category (the API filters by one at a time).

        A `url` that already is a details URL (`.../2024-01-01/2024-01-07/0/json`, or an
        interval such as `.../7d/0/json`) is fetched as given.
        """
        if options.url and _CURSOR.search(urlsplit(options.url).path):
            return [options.url]  # a complete details URL (its own window): as given
        days = fetch_days(
            window, catch_up=options.catch_up_days, last_day=window.today, first_run=2
        )
        base = (options.url or API_URL).rstrip("/")
        first = f"{base}/{options.server}/{days[0].isoformat()}/{days[-1].isoformat()}/0/json"
        if not options.categories:
            return [first]
        return [with_query(first, {"category": _api_category(c)}) for c in options.categories]

    def max_pages(self, options: BiorxivOptions) -> int:
        """Pages one window may take."""
        return options.max_pages

    def parse(self, body: bytes, url: str, options: BiorxivOptions) -> Listing:
        """One paper per DOI (its latest version), and the next page while there is one."""
        data = read_json(body, url)
        message = _message(data, url)
        status = collapse(text_field(message, "status"))
        if status.lower() == _EMPTY_STATUS:
            return Listing(())
        if status.lower() != "ok":
            raise ParseError(f"{url}: the bioRxiv API answered {status or 'without a status'!r}")
        records = data.get("collection")
        if not isinstance(records, list):
            raise ParseError(f"{url}: status ok but no 'collection' list")
        read = _papers(records, url, options)
        return Listing(read.papers, _next_page(url, message, len(records)), read.problems)


def _api_category(name: str) -> str:
    """A category as the API's filter spells it: lower case, underscores for spaces."""
    return "_".join(name.lower().split())


def _same_category(a: str, b: str) -> bool:
    """Whether two spellings name one category (`Cell Biology`, `cell_biology`)."""
    return _api_category(a.replace("_", " ")) == _api_category(b.replace("_", " "))


def _message(data: Any, url: str) -> Mapping[str, Any]:
    """The first entry of `messages`, where the API puts its status and cursor."""
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
        raise ParseError(f"{url}: expected bioRxiv's {{messages: [...], collection: [...]}} JSON")
    message: Mapping[str, Any] = messages[0]
    return message


def _papers(records: list[Any], url: str, options: BiorxivOptions) -> ItemsRead:
    """The page's papers, one per DOI (its latest version), in the wanted categories."""
    newest: dict[str, int] = {}

    def build(record: Any, notes: ItemNotes) -> Paper | None:
        """The record's paper; None for another category or a version older than one read."""
        paper, version = paper_from_record(record, options.server, notes)
        if options.categories and not any(
            _same_category(c, category) for c in options.categories for category in paper.categories
        ):
            return None
        if version <= newest.get(paper.id, 0):
            return None
        newest[paper.id] = version
        return paper

    read = read_items(records, build, url=url, noun=("record", "records"))
    latest: dict[str, Paper] = {}
    for paper in read.papers:  # a later one of the same DOI is a newer version
        latest[paper.id] = paper
    return ItemsRead(tuple(latest.values()), read.problems)


def paper_from_record(record: Any, server: str, notes: ItemNotes) -> tuple[Paper, int]:
    """A paper and its version number from one collection record."""
    if not isinstance(record, dict):
        raise EntryError(f"expected an object, got {shown(record)}")
    doi = doi_from(text_field(record, "doi", notes))
    title = entity_text(text_field(record, "title", notes))
    notes.named(doi or title)
    if not doi:
        raise EntryError("no DOI")
    if not title:
        raise EntryError("no title")
    version = int_field(record, "version", notes) or 1
    host = _server(text_field(record, "server", notes), server, notes)
    page = f"https://www.{host}.org/content/{doi}v{version}"
    category = entity_text(text_field(record, "category", notes))
    paper = Paper(
        id=canonical_id(doi=doi),
        title=title,
        authors=tuple(
            split_authors(entity_text(text_field(record, "authors", notes, expected=True)))
        ),
        abstract=entity_text(text_field(record, "abstract", notes, expected=True)),
        url=page,
        doi=doi,
        published=date_field(record, "date", notes),
        categories=(category,) if category else (),
        links=_links(page, doi, text_field(record, "published", notes)),
    )
    return paper, version


def _server(value: str, configured: str, notes: ItemNotes) -> str:
    """The record's server when it is one of the two, else the configured one (links' host)."""
    name = value.strip().lower()
    if name in _SERVERS:
        return name
    if name:
        notes.note("server", f"{shown(value)} is neither biorxiv nor medrxiv")
    return configured


def split_authors(authors: str) -> list[str]:
    """bioRxiv's `Naka, A.; Shababo, B.` as names in reading order: `A. Naka`, `B. Shababo`."""
    names: list[str] = []
    for name in author_list(authors):
        last, comma, first = name.partition(",")
        names.append(f"{collapse(first)} {collapse(last)}" if comma and first.strip() else name)
    return list(dict.fromkeys(names))


def _links(page: str, doi: str, published: str) -> tuple[Link, ...]:
    """The preprint's page, its DOI and, once published, the journal version's DOI."""
    links = [Link("page", page), Link("doi", doi_url(doi))]
    journal = doi_from(published) if published and published.upper() != "NA" else None
    if journal and journal != doi:
        links.append(Link("journal", doi_url(journal)))
    return tuple(links)


def _next_page(url: str, message: Mapping[str, Any], count: int) -> str | None:
    """The URL of the page after this one, while records remain."""
    cursor = int_field(message, "cursor") or 0
    count = int_field(message, "count") or count
    total = int_field(message, "total")
    if count <= 0 or total is None or cursor + count >= total:
        return None
    parts = urlsplit(url)
    if not _CURSOR.search(parts.path):
        return None
    path = _CURSOR.sub(lambda m: f"/{cursor + count}{m.group(2) or ''}", parts.path)
    return urlunsplit(parts._replace(path=path))
