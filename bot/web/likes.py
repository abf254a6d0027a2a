"""The "Papers you like" part of the manage page: seeds typed one per line (pure), seeds
added to a subscriber's likes (each once, at most MAX_LIKES), and what the page lists of
their seeds and feedback, read from the store.

A seed shows its title when the store has its paper or a lookup found it, "not found" when
the lookup did not, and "looked up at the next run" before any lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.config.settings import MAX_LIKES
from bot.models import MAX_PAPERS
from bot.recommend.seeds import (
    MAX_EXPORT_BYTES,
    NOT_A_SEED,
    Problem,
    parse_seed,
    seed_from_key,
)
from bot.store.store import Store
from bot.store.subscribers import SubscriberRecord
from bot.web.forms import MAX_ENTRY_CHARS, FieldError

#: the seed field's name in the form (errors point at it)
SEEDS_FIELD = "seeds"
#: what a seed's status says on the page
SEED_STATUS = {"found": "", "unknown": "not found", "pending": "looked up at the next run"}


@dataclass(frozen=True, slots=True)
class SeedView:
    """One seed as the page lists it: its key, how it is named, its title, its status."""

    key: str
    label: str
    title: str
    status: str

    @property
    def status_text(self) -> str:
        """What the page says of the seed's lookup ("" once found)."""
        return SEED_STATUS[self.status]


@dataclass(frozen=True, slots=True)
class FeedbackView:
    """One "more/less like this" as the page lists it."""

    paper_id: str
    title: str
    verdict: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LikesView:
    """A subscriber's seeds (in their order) and feedback (newest first)."""

    seeds: tuple[SeedView, ...]
    feedback: tuple[FeedbackView, ...]
    recommend: int


@dataclass(frozen=True, slots=True)
class Added:
    """Likes after adding some keys: which were new, which were there, how many did not fit."""

    likes: tuple[str, ...]
    added: tuple[str, ...]
    already: int
    over: int


@dataclass(frozen=True, slots=True)
class UploadReport:
    """What an uploaded export gave: the file, its seeds added, and what it did not."""

    filename: str
    recognised: int
    added: tuple[SeedView, ...]
    already: int
    over: int
    problems: tuple[Problem, ...]


#: what the likes part of the manage page may be told after a change, and the defaults
_REPORTS: dict[str, Any] = {
    "likes_added": None,
    "likes_notice": "",
    "likes_refused": False,
    "seed_errors": {},
    "seed_text": "",
    "upload": None,
    "upload_error": "",
    "recommend_error": "",
    "feedback_notice": "",
}


def likes_context(likes: LikesView, context: dict[str, Any]) -> dict[str, Any]:
    """The template values of the likes part: `likes`, and `ctx` with the reports that
    `context` gives (taken out of it) and the limits the page states."""
    ctx = {name: context.pop(name, default) for name, default in _REPORTS.items()}
    ctx.update(max_likes=MAX_LIKES, max_export_mb=MAX_EXPORT_BYTES // 2**20, max_papers=MAX_PAPERS)
    return {"likes": likes, "ctx": ctx}


def seed_label(key: str) -> str:
    """How a seed key reads on the page: `arXiv:2411.01234`, `doi:10.1/x`, or its title."""
    seed = seed_from_key(key)
    if seed is None:
        return key
    if seed.kind == "arxiv":
        return f"arXiv:{seed.value}"
    return seed.key if seed.kind == "doi" else seed.value


def parse_seed_lines(text: str) -> tuple[tuple[str, ...], tuple[FieldError, ...]]:
    """The seed keys of a text field, one arXiv id, arXiv link, DOI or doi.org link per line;
    every line that names none is an error with its line number."""
    keys: list[str] = []
    errors: list[FieldError] = []
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if len(lines) > MAX_LIKES:
        return (), (FieldError(SEEDS_FIELD, f"at most {MAX_LIKES} papers at once"),)
    for number, entry in lines:
        if len(entry) > MAX_ENTRY_CHARS:
            errors.append(
                FieldError(SEEDS_FIELD, f"longer than {MAX_ENTRY_CHARS} characters", number)
            )
            continue
        seed = parse_seed(entry)
        if seed is None:
            shown = entry if len(entry) <= 60 else entry[:57] + "..."
            problem = f"{shown!r} {NOT_A_SEED}"
            errors.append(FieldError(SEEDS_FIELD, problem, number))
        else:
            keys.append(seed.key)
    return tuple(dict.fromkeys(keys)), tuple(errors)


def add_likes(likes: Sequence[str], keys: Sequence[str], limit: int = MAX_LIKES) -> Added:
    """`likes` with the new ones among `keys` after them, in order, up to `limit` in all."""
    have = dict.fromkeys(likes)
    new = [key for key in dict.fromkeys(keys) if key not in have]
    room = max(0, limit - len(have))
    added = tuple(new[:room])
    return Added((*have, *added), added, len(keys) - len(new), len(new) - len(added))


def load_likes(store: Store, record: SubscriberRecord) -> LikesView:
    """The subscriber's seeds with what is known of each, and their feedback with titles."""
    sub = record.subscriber
    return LikesView(seed_views(store, sub.likes), _feedback_views(store, sub.email), sub.recommend)


def seed_views(store: Store, keys: Sequence[str]) -> tuple[SeedView, ...]:
    """These seeds as the page lists them."""
    known = store.known_seeds(keys)
    views = []
    for key in keys:
        title, status = "", "pending"
        if key in known.papers:
            title, status = known.papers[key].title, "found"
        elif key in known.looked_up:
            seed_paper = known.looked_up[key]
            title, status = seed_paper.title, seed_paper.status
        views.append(SeedView(key, seed_label(key), title, status))
    return tuple(views)


def _feedback_views(store: Store, email: str) -> tuple[FeedbackView, ...]:
    subscriber_id = store.subscribers.id_of(email)
    if subscriber_id is None:
        return ()
    given = store.feedback.of_subscriber(subscriber_id)
    papers = store.papers.by_id(f.paper_id for f in given)
    return tuple(
        FeedbackView(
            f.paper_id,
            papers[f.paper_id].title if f.paper_id in papers else f.paper_id,
            f.verdict,
            f.at,
        )
        for f in given
    )
