"""Matches: which paper was matched for which subscriber, and why.

A paper is matched at most once per subscriber: that row is the "never twice" ledger. A
match waits for a digest (`outbox`), which then points at it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.models import DigestStatus, Match
from bot.store.database import Database
from bot.store.rows import from_iso, iso, marks, reasons_json, reasons_of, utcnow
from bot.store.subscribers import Subscribers


@dataclass(frozen=True, slots=True)
class RecentMatch:
    """A paper matched for a subscriber: why, when, and the digest it was put in (if yet)."""

    match: Match
    matched_at: datetime
    digest_id: int | None = None
    #: None: not in a digest yet
    digest_status: DigestStatus | None = None
    digest_created: datetime | None = None


class Matches:
    """The matches table, the ledger of what each subscriber was matched."""

    def __init__(self, db: Database, subscribers: Subscribers) -> None:
        self.db = db
        self.subscribers = subscribers

    def add(
        self,
        matches: Mapping[str, Sequence[Match]],
        now: datetime | None = None,
        *,
        matched: Iterable[str] = (),
    ) -> int:
        """Record new matches, and that the `matched` papers are done, in one transaction.

        A paper already matched for a subscriber is never added again.
        """
        stamp = (now or utcnow()).astimezone(UTC).isoformat()
        rows = _match_rows(matches, self.subscribers.active_ids(), stamp)
        with self.db.transaction():
            before = self.db.conn.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO matches (subscriber_id, paper_id, reasons, score,"
                " matched_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            added = self.db.conn.total_changes - before
            self.db.executemany(
                "UPDATE papers SET pending_match = 0 WHERE id = ?", [(pid,) for pid in matched]
            )
            return added

    def undelivered(self, email: str) -> list[Match]:
        """Matches of this subscriber not yet in a sent digest (for a preview)."""
        rows = self.db.execute(
            "SELECT m.paper_id, m.reasons, m.score FROM matches m"
            " JOIN subscribers s ON s.id = m.subscriber_id"
            " LEFT JOIN digests d ON d.id = m.digest_id"
            " WHERE s.email = ? AND (m.digest_id IS NULL OR d.status = 'pending')",
            (email,),
        )
        return [Match(pid, reasons_of(reasons), score) for pid, reasons, score in rows]

    def recent(self, email: str, since: datetime, limit: int) -> list[RecentMatch]:
        """This subscriber's matches recorded since `since`, newest first, at most `limit`:
        those a digest left out for room as well as those it showed."""
        rows = self.db.execute(
            "SELECT m.paper_id, m.reasons, m.score, m.matched_at, d.id, d.status, d.created"
            " FROM matches m JOIN subscribers s ON s.id = m.subscriber_id"
            " LEFT JOIN digests d ON d.id = m.digest_id"
            " WHERE s.email = ? AND m.matched_at >= ?"
            " ORDER BY m.matched_at DESC, m.digest_id DESC LIMIT ?",
            (email, iso(since), limit),
        )
        return [
            RecentMatch(
                Match(pid, reasons_of(reasons), score),
                from_iso(at) or since,
                did,
                status,
                from_iso(made),
            )
            for pid, reasons, score, at, did, status, made in rows
        ]

    def paper_ids(self, email: str) -> set[str]:
        """Every paper ever matched for this subscriber (delivered or waiting)."""
        rows = self.db.execute(
            "SELECT m.paper_id FROM matches m JOIN subscribers s ON s.id = m.subscriber_id"
            " WHERE s.email = ?",
            (email,),
        )
        return {pid for (pid,) in rows}

    def matched_among(
        self, subscriber_ids: Iterable[int], paper_ids: Iterable[str]
    ) -> dict[int, set[str]]:
        """Which of these papers each of these subscribers was ever matched or recommended
        (those with none are absent); one query, by the ledger's primary key."""
        rows = self.db.execute(
            "SELECT subscriber_id, paper_id FROM matches"
            " WHERE subscriber_id IN (SELECT value FROM json_each(?))"
            " AND paper_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(subscriber_ids)), json.dumps(list(paper_ids))),
        )
        found: dict[int, set[str]] = {}
        for subscriber_id, paper_id in rows:
            found.setdefault(subscriber_id, set()).add(paper_id)
        return found

    def of_digests(self, digest_ids: Sequence[int]) -> dict[int, tuple[Match, ...]]:
        """The matches each of these digests holds, by digest id (one query)."""
        found: dict[int, list[Match]] = {}
        rows = self.db.execute(
            "SELECT digest_id, paper_id, reasons, score FROM matches"
            f" WHERE digest_id IN ({marks(len(digest_ids))})",
            list(digest_ids),
        )
        for digest_id, pid, reasons, score in rows:
            found.setdefault(digest_id, []).append(Match(pid, reasons_of(reasons), score))
        return {digest_id: tuple(matches) for digest_id, matches in found.items()}


def _match_rows(
    matches: Mapping[str, Sequence[Match]], ids: Mapping[str, int], stamp: str
) -> Iterator[tuple[int, str, str, float, str]]:
    """The `matches` rows to insert, one by one: a day of 100,000 subscribers has a million.

    One Match object serves every subscriber of its alert, so its reasons are turned into
    JSON once, looked up by identity (they stay alive in `matches` meanwhile).
    """
    texts: dict[int, str] = {}
    for email, found in matches.items():
        if (sid := ids.get(email)) is None:
            continue
        for match in found:
            if (text := texts.get(id(match.reasons))) is None:
                text = texts[id(match.reasons)] = reasons_json(match.reasons)
            yield sid, match.paper_id, text, match.score, stamp
