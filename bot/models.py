"""Frozen data types that flow between the pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

#: how often a subscriber is mailed
Frequency = Literal["daily", "weekly"]
#: where a subscriber's alerts are kept: the config file or the web page
Origin = Literal["config", "web"]
#: a subscriber: mailed (`active`), not confirmed yet (`pending`), gone by their own link
#: (`unsubscribed`), gone from the config file (`removed`), or stopped by hard bounces
#: (`suspended`)
SubscriberStatus = Literal["active", "pending", "unsubscribed", "removed", "suspended"]
#: a digest in the outbox: waiting, accepted by the server, refused for good, sent twice
#: without a verdict (`unconfirmed`), marked delivered by `--no-send` (`skipped`), or left
#: unsent because its subscriber left (`dropped`)
DigestStatus = Literal["pending", "sent", "failed", "unconfirmed", "skipped", "dropped"]
#: one fetch of a source: papers read (`ok`), none (`empty`), unchanged since the last
#: (`not_modified`), not fetched (`error`), or not what its kind reads (`broken`)
FetchStatus = Literal["ok", "empty", "not_modified", "error", "broken"]
#: one run: all well, some source or send failed (`partial`), every source failed
#: (`failed`), or stopped by a signal (`interrupted`)
RunStatus = Literal["ok", "partial", "failed", "interrupted"]
#: what a subscriber said of a paper through a digest's links
Verdict = Literal["more", "less"]
#: a seed looked up outside the store: found (with its text) or not known there
SeedStatus = Literal["found", "unknown"]
#: the reason kind of a paper recommended by the learned model rather than matched by an alert
RECOMMENDED = "recommended"
#: papers recommended per digest unless a subscriber says otherwise (`recommend:`)
DEFAULT_RECOMMEND = 5


@dataclass(frozen=True, slots=True)
class Link:
    """A labelled URL of a paper: `abs`, `pdf`, `code`, `hf`, `alphaxiv`, `page`, `doi`..."""

    label: str
    url: str


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper as a source lists it, or as the store knows it after merging sources.

    `id` is the canonical id (see `bot.text.ids.canonical_id`): the arXiv id without version
    (`2411.01234`, `hep-ph/9411242`), else `doi:<lowercased DOI>`, else `title:<hash>`.
    """

    id: str
    title: str
    authors: tuple[str, ...] = ()
    abstract: str = ""
    url: str = ""
    arxiv_id: str | None = None
    doi: str | None = None
    published: datetime | None = None
    categories: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    sources: tuple[str, ...] = ()
    announce_type: str | None = None
    votes: int | None = None
    stars: int | None = None
    keywords: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    first_seen: datetime | None = None

    def link(self, label: str) -> str | None:
        """The URL with this label, if the paper has one."""
        return next((lk.url for lk in self.links if lk.label == label), None)


@dataclass(frozen=True, slots=True)
class Validators:
    """What a server said identifies a document's version, sent back on the next GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Listing:
    """What a parser read from one fetched document: its papers and the next page, if any.

    `problems` has one line per item that was skipped or read without a field (see
    `bot.ingest.sources.items`); the pipeline logs them with the source's name. `complete` is
    False when the document ends before its end (a truncated download): its papers are
    kept, but not its validators, so that the next fetch asks for the whole of it again.
    """

    papers: tuple[Paper, ...]
    next_url: str | None = None
    problems: tuple[str, ...] = ()
    complete: bool = True


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a paper matched: the alert that fired (`kind` keyword/author/...) and the words hit."""

    kind: str
    alert: str
    terms: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.kind}: {self.alert}"


@dataclass(frozen=True, slots=True)
class Match:
    """A paper matched for one subscriber, with every reason and a ranking score."""

    paper_id: str
    reasons: tuple[Reason, ...]
    score: float = 0.0


#: the most papers a digest may hold (`max_papers`). A paper takes about 1 KB of the HTML
#: part with its abstract cut to two lines (600-900 bytes without it: title, authors,
#: reasons and links with their inlined styles), so 100 KB, Gmail's limit, holds about 100
MAX_PAPERS = 100


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A subscriber, their alerts and their cadence, as the pipeline sees them (config or web).

    `likes` and `recommend` drive the "Recommended for you" section (bot.recommend);
    `send_at`/`timezone` None mean "whenever a run finds something" and the config's zone;
    `weekday` (0 = Monday) matters only for `frequency == "weekly"`.
    """

    email: str
    keywords: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_papers: int = 50
    name: str | None = None
    frequency: Frequency = "daily"
    weekday: int = 0
    send_at: str | None = None
    timezone: str | None = None
    origin: Origin = "config"
    status: SubscriberStatus = "active"
    #: seed papers they like, as seed keys (see `bot.recommend.seeds.Seed.key`)
    likes: tuple[str, ...] = ()
    #: how many recommended papers a digest may hold (0: none)
    recommend: int = DEFAULT_RECOMMEND


@dataclass(frozen=True, slots=True)
class Digest:
    """One email's worth of matched papers for one subscriber, ranked."""

    subscriber: Subscriber
    entries: tuple[DigestEntry, ...]
    message_id: str
    omitted: int = 0
    created: datetime | None = None
    #: the matched papers past `max_papers`, ranked (`omitted` counts them)
    left_out: tuple[DigestEntry, ...] = ()
    #: "Recommended for you", after the alert matches: best first, at most `recommend`
    recommended: tuple[DigestEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """A paper in a digest with the reasons it matched."""

    paper: Paper
    reasons: tuple[Reason, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Feedback:
    """A subscriber's "more like this" or "less like this" on a paper, and when."""

    paper_id: str
    verdict: Verdict
    at: datetime


@dataclass(frozen=True, slots=True)
class SeedPaper:
    """A seed looked up outside the store (the arXiv API): its text, or that none was found."""

    key: str
    status: SeedStatus
    title: str = ""
    abstract: str = ""
    categories: tuple[str, ...] = ()
    looked_up: datetime | None = None
