"""Turn a subscriber's stored matches into a ranked, capped digest (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from bot.models import MAX_PAPERS, RECOMMENDED, Digest, DigestEntry, Match, Paper, Subscriber


def build_digest(
    subscriber: Subscriber,
    matches: Sequence[Match],
    papers: Mapping[str, Paper],
    *,
    message_id: str,
    created: datetime | None = None,
) -> Digest:
    """Rank the matches, keep the first `max_papers` (at most MAX_PAPERS), list the rest;
    the recommended ones apart, best first, the first `recommend` of them kept."""
    present = [m for m in matches if m.paper_id in papers]
    alerts = [m for m in present if not is_recommended(m)]
    ranked = [DigestEntry(papers[m.paper_id], m.reasons) for m in rank(alerts, papers)]
    best = sorted((m for m in present if is_recommended(m)), key=lambda m: (-m.score, m.paper_id))
    recommended = [DigestEntry(papers[m.paper_id], m.reasons) for m in best]
    # a store written before the bound existed may hold a larger max_papers
    cap = max(1, min(subscriber.max_papers, MAX_PAPERS))
    return Digest(
        subscriber=subscriber,
        entries=tuple(ranked[:cap]),
        message_id=message_id,
        omitted=max(0, len(ranked) - cap),
        created=created,
        left_out=tuple(ranked[cap:]),
        recommended=tuple(recommended[: max(0, min(subscriber.recommend, MAX_PAPERS))]),
    )


def is_recommended(match: Match) -> bool:
    """Whether the match is a recommendation (its one reason is RECOMMENDED), not an alert's."""
    return any(reason.kind == RECOMMENDED for reason in match.reasons)


def rank(matches: Iterable[Match], papers_by_id: Mapping[str, Paper]) -> list[Match]:
    """A digest's order: followed authors first, then score, then votes; stable otherwise."""

    def key(match: Match) -> tuple[bool, float, int]:
        paper = papers_by_id.get(match.paper_id)
        votes = paper.votes if paper is not None and paper.votes is not None else 0
        followed = any(r.kind == "author" for r in match.reasons)
        return (not followed, -match.score, -votes)

    return sorted(matches, key=key)
