"""The recommend stage: papers like a subscriber's seeds and "more like this" clicks, chosen
from the batch being matched, stored as matches beside the alert matches (one commit).

Profiles are built from the store each run, so feedback given since the last run counts
at once. Only active subscribers with `recommend` > 0 and some seeds or feedback have a
profile; when nobody has one, no model is fitted and the stage costs two small queries.
A recommendation is a match with one reason (`kind` RECOMMENDED, the most similar liked
paper's title, the words they share): the ledger keeps it from ever coming twice, and a
paper matched by an alert, excluded, outside the subscriber's categories, disliked or a
seed of theirs is never recommended to them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.alerts.gates import ruled_out
from bot.models import RECOMMENDED, Feedback, Match, Paper, Reason, Subscriber
from bot.store.store import Store

if TYPE_CHECKING:  # imported when first needed: scikit-learn and SciPy take 80 MB and a second
    from bot.recommend.model import Example
    from bot.recommend.scorer import Profile

log = logging.getLogger(__name__)

#: the newest papers of the store the text model is fitted on (its words and their weights)
CORPUS = 20_000


@dataclass(frozen=True, slots=True)
class _Known:
    """What the store knows of the profiles' papers: seeds by key, feedback papers by id."""

    seeds: Mapping[str, Example]
    seed_ids: Mapping[str, str]
    feedback: Mapping[str, Paper]


def recommendations(
    store: Store,
    subscribers: Sequence[Subscriber],
    papers: Sequence[Paper],
    alert_matches: Mapping[str, Sequence[Match]],
) -> dict[str, list[Match]]:
    """The recommended papers among `papers` of each subscriber with a profile, by email."""
    ids = store.subscribers.active_ids()
    wanting = [s for s in subscribers if s.recommend > 0 and s.email in ids]
    if not wanting or not papers:
        return {}
    gave = store.feedback.subscriber_ids()
    users = [s for s in wanting if s.likes or ids[s.email] in gave]
    if not users:
        return {}
    started = time.monotonic()
    from bot.recommend.model import TextModel, paper_text  # late: see the imports
    from bot.recommend.scorer import recommend

    feedback = store.feedback.by_subscriber(ids[s.email] for s in users if ids[s.email] in gave)
    known = _known(store, users, feedback)
    profiles = _profiles(store, users, ids, feedback, known, papers, alert_matches)
    if not profiles:
        return {}
    model = TextModel.fit([paper_text(t, a) for t, a in store.papers.newest_texts(CORPUS)])
    emails = {ids[s.email]: s.email for s in users}
    found: dict[str, list[Match]] = {}
    for r in recommend(model, profiles, papers):
        reason = Reason(RECOMMENDED, r.because, r.shared)
        found.setdefault(emails[r.subscriber_id], []).append(Match(r.paper_id, (reason,), r.score))
    log.info(
        "recommendations: %d for %d of %d profiles in %.2f s",
        sum(map(len, found.values())),
        len(found),
        len(profiles),
        time.monotonic() - started,
    )
    return found


def _known(
    store: Store, users: Sequence[Subscriber], feedback: Mapping[int, list[Feedback]]
) -> _Known:
    """The seeds (in the store's papers, else looked up and found) and feedback papers."""
    from bot.recommend.model import Example, paper_text  # late: see the imports

    known = store.known_seeds(key for s in users for key in s.likes)
    seeds = {key: Example.of_paper(paper) for key, paper in known.papers.items()}
    for key, seed in known.looked_up.items():
        if seed.status == "found":
            seeds[key] = Example(key, seed.title, paper_text(seed.title, seed.abstract))
    fed = store.papers.by_id(f.paper_id for given in feedback.values() for f in given)
    return _Known(seeds, {key: paper.id for key, paper in known.papers.items()}, fed)


def _profiles(
    store: Store,
    users: Sequence[Subscriber],
    ids: Mapping[str, int],
    feedback: Mapping[int, list[Feedback]],
    known: _Known,
    papers: Sequence[Paper],
    alert_matches: Mapping[str, Sequence[Match]],
) -> list[Profile]:
    """One profile per user with something liked, in subscriber id order (deterministic)."""
    from bot.recommend.model import Example  # late: see the imports
    from bot.recommend.scorer import Profile

    candidates = [p.id for p in papers]
    ledger = store.matches.matched_among((ids[s.email] for s in users), candidates)
    gated = ruled_out(users, papers)
    profiles = []
    for subscriber in sorted(users, key=lambda s: ids[s.email]):
        sid = ids[subscriber.email]
        given = feedback.get(sid, [])
        less = {f.paper_id for f in given if f.verdict == "less"}
        liked = {key: known.seeds[key] for key in subscriber.likes if key in known.seeds}
        for f in given:
            if f.verdict == "more" and f.paper_id in known.feedback:
                liked.setdefault(f.paper_id, Example.of_paper(known.feedback[f.paper_id]))
        for key in less:  # the later word: a seed marked "less like this" is no longer liked
            liked.pop(key, None)
        if not liked:
            continue
        disliked = [
            Example.of_paper(known.feedback[p]) for p in sorted(less & known.feedback.keys())
        ]
        skip = (
            ledger.get(sid, set())
            | {m.paper_id for m in alert_matches.get(subscriber.email, ())}
            | gated.get(subscriber.email, set())
            | {f.paper_id for f in given}  # "less like this", and "more": they had it
            | set(subscriber.likes)
            | {known.seed_ids[k] for k in subscriber.likes if k in known.seed_ids}
        )
        profiles.append(
            Profile(
                sid, tuple(liked.values()), tuple(disliked), frozenset(skip), subscriber.recommend
            )
        )
    return profiles
