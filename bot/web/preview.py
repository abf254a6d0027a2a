"""What a subscriber's alerts would have sent from a set of recent papers, and why (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.alerts.index import AlertIndex
from bot.mail.digest import rank
from bot.models import DigestEntry, Paper, Subscriber

#: days of stored papers a preview runs the alerts over
PREVIEW_DAYS = 7
#: most papers a preview lists (the rest are counted)
PREVIEW_LIMIT = 50


@dataclass(frozen=True, slots=True)
class AlertPreview:
    """The papers the alerts match, ranked as a digest would be, and how many matched in all."""

    entries: tuple[DigestEntry, ...]
    total: int
    searched: int

    @property
    def omitted(self) -> int:
        """Matches beyond the ones listed."""
        return self.total - len(self.entries)


def preview_alerts(
    subscriber: Subscriber, papers: Sequence[Paper], limit: int = PREVIEW_LIMIT
) -> AlertPreview:
    """Run one subscriber's (already validated) alerts over `papers`, best first."""
    by_id = {paper.id: paper for paper in papers}
    found = AlertIndex.build([subscriber]).match(list(by_id.values()))
    ranked = rank(found.get(subscriber.email, []), by_id)
    entries = tuple(DigestEntry(by_id[m.paper_id], m.reasons) for m in ranked[:limit])
    return AlertPreview(entries=entries, total=len(ranked), searched=len(by_id))
