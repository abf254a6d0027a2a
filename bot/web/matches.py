"""A subscriber's recent matches as the web page lists them: by digest, in digest order (pure).

Every paper matched for the subscriber lately is listed, the ones a digest showed and the
ones it left out (`max_papers`, or its size), so that a digest can point at this page.
Papers not yet in a digest come first, then each digest, newest first; within a digest,
papers are in the order the digest ranks them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.mail.digest import rank
from bot.models import DigestEntry, DigestStatus, Paper
from bot.store.matches import RecentMatch

#: days of matches the page lists
MATCHES_DAYS = 30
#: papers per page
PAGE_SIZE = 100
#: the most matches read for the page (the newest); a subscriber matched more is told so
MATCHES_LIMIT = 5000

#: what a digest's status means to its reader
_STATUS_WORDS: dict[DigestStatus, str] = {
    "pending": "being sent",
    "sent": "sent",
    "skipped": "not mailed (the operator skipped it)",
    "failed": "could not be delivered",
    "dropped": "not sent",
}


@dataclass(frozen=True, slots=True)
class MatchGroup:
    """The papers of one digest (or not yet in one) on this page, from number `start`."""

    title: str
    size: int
    start: int
    entries: tuple[DigestEntry, ...]


@dataclass(frozen=True, slots=True)
class MatchList:
    """One page of the list: its groups, which page of how many, and how many in all."""

    groups: tuple[MatchGroup, ...]
    total: int
    page: int
    pages: int
    #: more matches than MATCHES_LIMIT: the oldest are not listed
    capped: bool


def match_list(
    matches: Sequence[RecentMatch], papers: Mapping[str, Paper], page: int = 1
) -> MatchList:
    """Page `page` (from 1; clamped) of the matches whose papers are known, grouped."""
    groups = _groups([m for m in matches if m.match.paper_id in papers], papers)
    flat = [
        (index, number, entry)
        for index, (_, entries) in enumerate(groups)
        for number, entry in enumerate(entries, start=1)
    ]
    pages = max(1, -(-len(flat) // PAGE_SIZE))
    page = min(max(1, page), pages)
    shown: list[MatchGroup] = []
    last = -1
    for index, number, entry in flat[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
        title, entries = groups[index]
        if index == last:
            group = shown[-1]
            shown[-1] = MatchGroup(title, group.size, group.start, (*group.entries, entry))
        else:
            shown.append(MatchGroup(title, len(entries), number, (entry,)))
        last = index
    return MatchList(tuple(shown), len(flat), page, pages, len(matches) >= MATCHES_LIMIT)


def _groups(
    matches: Sequence[RecentMatch], papers: Mapping[str, Paper]
) -> list[tuple[str, tuple[DigestEntry, ...]]]:
    """(heading, entries) by digest: none yet first, then newest first; each ranked as its
    digest ranks them."""
    by_digest: dict[int | None, list[RecentMatch]] = {}
    for match in matches:
        by_digest.setdefault(match.digest_id, []).append(match)
    groups = []
    for digest_id in sorted(by_digest, key=lambda d: (d is not None, -(d or 0))):
        group = by_digest[digest_id]
        ranked = rank([m.match for m in group], papers)
        entries = tuple(DigestEntry(papers[m.paper_id], m.reasons) for m in ranked)
        groups.append((_heading(group[0]), entries))
    return groups


def _heading(match: RecentMatch) -> str:
    """A group's heading: the digest's date and what became of it."""
    if match.digest_id is None:
        return "Waiting for your next digest"
    status = match.digest_status
    said = _STATUS_WORDS.get(status, status) if status is not None else ""
    return f"Digest of {_when(match.digest_created)} ({said})"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "an unknown date"
