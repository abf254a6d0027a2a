"""Turn a subscriber's stored matches into a ranked, capped digest (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.match import rank
from bot.models import Digest, DigestEntry, Match, Paper, Subscriber


def build_digest(
    subscriber: Subscriber,
    matches: Sequence[Match],
    papers: Mapping[str, Paper],
    *,
    message_id: str,
    created: datetime | None = None,
) -> Digest:
    """Rank the matches, keep the first `max_papers`, and count what was left out."""
    present = [m for m in matches if m.paper_id in papers]
    ranked = rank(present, papers)
    kept = ranked[: subscriber.max_papers]
    return Digest(
        subscriber=subscriber,
        entries=tuple(DigestEntry(papers[m.paper_id], m.reasons) for m in kept),
        message_id=message_id,
        omitted=len(ranked) - len(kept),
        created=created,
    )
