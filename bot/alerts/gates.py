"""What a subscriber's `exclude` entries and `categories` rule out, apart from any alert.

Recommendations are not alert matches, yet they must keep out what a subscriber excluded
and stay within the categories they chose: the same rules as the alerts', decided by the
same engine (an exclude entry is evaluated as an alert would be; `categories` by `admits`).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.alerts.index import AlertIndex, admits
from bot.models import Paper, Subscriber
from bot.text.fold import fold_label


def ruled_out(subscribers: Sequence[Subscriber], papers: Sequence[Paper]) -> dict[str, set[str]]:
    """For each subscriber (by email): the ids of `papers` that one of their exclude entries
    hits or that none of their `categories` admits. Those with none are absent."""
    found: dict[str, set[str]] = {}
    excluders = [Subscriber(s.email, keywords=s.exclude) for s in subscribers if s.exclude]
    if excluders and papers:
        for email, matches in AlertIndex.build(excluders).match(papers).items():
            found[email] = {m.paper_id for m in matches}
    restricted = [s for s in subscribers if s.categories]
    if restricted:
        folded = [(p.id, [fold_label(c) for c in p.categories]) for p in papers]
        for subscriber in restricted:
            outside = {pid for pid, cats in folded if not admits(subscriber.categories, cats)}
            if outside:
                found.setdefault(subscriber.email, set()).update(outside)
    return found
