"""Seed lookup: the arXiv API asked for the seeds (`like:`) that the store has no paper for.

What it answers is kept in `store.seed_papers` (found, with title and abstract; or unknown:
an id it does not return), so each seed is asked for once. DOIs and titles are not looked
up: one the store does not have is unknown. A lookup that fails (server down, too slow,
not a feed) stores nothing and costs one warning line; the next run asks again. The whole
lookup has one deadline and never raises: seeds are a nicety, the mail must go out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.errors import FetchError, ParseError
from bot.ingest.fetch import Deadline, Fetcher
from bot.ingest.sources.arxiv_api import ArxivApiOptions, ArxivApiSource
from bot.ingest.sources.common import with_query
from bot.models import Paper, SeedPaper
from bot.store.rows import utcnow
from bot.store.store import Store
from bot.text.ids import arxiv_id_from

log = logging.getLogger(__name__)

#: ids asked for in one request (arXiv's API answers an id_list of this many at once)
BATCH = 100


@dataclass(frozen=True, slots=True)
class LookupReport:
    """What one lookup did: seeds found, seeds unknown, and whether a request failed."""

    found: int = 0
    unknown: int = 0
    failed: bool = False


def seeds_to_look_up(store: Store, keys: Iterable[str]) -> list[str]:
    """The seed keys neither the papers table nor earlier lookups know, in a stable order."""
    wanted = sorted(set(keys))
    if not wanted:
        return []
    known = store.known_seeds(wanted)
    return [key for key in wanted if not known.knows(key)]


async def look_up_seeds(
    fetcher: Fetcher,
    store: Store,
    keys: Iterable[str],
    *,
    url: str,
    deadline: float,
    now: datetime | None = None,
) -> LookupReport:
    """Look up the seeds of `keys` the store does not know and keep the answers; never raises.

    arXiv ids go to the API at `url` (`id_list`, BATCH at a time) within `deadline`
    seconds; DOIs and titles are unknown without asking.
    """
    try:
        missing = seeds_to_look_up(store, keys)
        if not missing:
            return LookupReport()
        stamp = now or utcnow()
        arxiv = [key for key in missing if arxiv_id_from(key) == key]
        others = [SeedPaper(key, "unknown", looked_up=stamp) for key in missing if key not in arxiv]
        found, failed = await _ask_arxiv(fetcher, arxiv, url, deadline, stamp)
        answers = others + found
        store.seed_papers.save(answers)
    except Exception as exc:  # a lookup is never worth a run: say so in one line, go on
        log.debug("seed lookup failed", exc_info=True)
        log.warning("seed lookup: %s: %s; tried again next run", type(exc).__name__, exc)
        return LookupReport(failed=True)
    report = LookupReport(
        found=sum(1 for s in answers if s.status == "found"),
        unknown=sum(1 for s in answers if s.status == "unknown"),
        failed=failed,
    )
    if answers:
        log.info("seed lookup: %d found, %d unknown", report.found, report.unknown)
    return report


async def _ask_arxiv(
    fetcher: Fetcher, ids: Sequence[str], url: str, deadline: float, stamp: datetime
) -> tuple[list[SeedPaper], bool]:
    """The answers of the batches that succeeded, and whether one failed (it is warned of)."""
    answers: list[SeedPaper] = []
    if not ids:
        return answers, False
    try:
        async with fetcher.within(deadline) as watch:
            for start in range(0, len(ids), BATCH):
                answers += await _ask_batch(fetcher, ids[start : start + BATCH], url, watch, stamp)
    except (FetchError, ParseError) as exc:
        log.warning("seed lookup: %s; tried again next run", exc)
        return answers, True
    return answers, False


async def _ask_batch(
    fetcher: Fetcher, ids: Sequence[str], url: str, watch: Deadline, stamp: datetime
) -> list[SeedPaper]:
    """One request for these ids: found for each paper returned, unknown for each id not."""
    query = with_query(url, {"id_list": ",".join(ids), "max_results": str(len(ids))})
    response = await fetcher.get(query, deadline=watch)
    listing = ArxivApiSource().parse(response.body, query, ArxivApiOptions(url=url))
    for problem in listing.problems:
        log.warning("seed lookup: %s: %s", query, problem)
    papers = {p.arxiv_id: p for p in listing.papers if p.arxiv_id and p.arxiv_id in ids}
    answers = [_found(key, paper, stamp) for key, paper in papers.items()]
    if listing.complete:  # a cut answer says nothing of the ids it did not get to
        answers += [SeedPaper(key, "unknown", looked_up=stamp) for key in ids if key not in papers]
    return answers


def _found(key: str, paper: Paper, stamp: datetime) -> SeedPaper:
    """What a lookup keeps of a paper the API returned."""
    return SeedPaper(key, "found", paper.title, paper.abstract, paper.categories, stamp)
