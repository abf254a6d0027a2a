"""Seed papers looked up outside the store (the arXiv API), kept so each is asked for once.

They never go into `papers`: a seed is usually an old paper, and what is in `papers` is
matched against everyone's alerts and mailed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

from bot.models import Paper, SeedPaper, SeedStatus
from bot.store.database import Database
from bot.store.rows import chunked, from_iso, iso, marks, strings_json, strings_of


@dataclass(frozen=True, slots=True)
class KnownSeeds:
    """What the store knows of some seed keys: the stored paper of each it has, else what a
    lookup answered (found, or unknown); a key in neither waits for a lookup."""

    papers: dict[str, Paper]
    looked_up: dict[str, SeedPaper]

    def knows(self, key: str) -> bool:
        """True when the key has a stored paper or a lookup's answer."""
        return key in self.papers or key in self.looked_up


class SeedPapers:
    """The `seed_papers` table: a seed key → what the lookup found (or that it found none)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, keys: Iterable[str]) -> dict[str, SeedPaper]:
        """The looked-up seeds among these keys, by key."""
        found: dict[str, SeedPaper] = {}
        for chunk in chunked(keys):
            rows = self.db.execute(
                "SELECT key, status, title, abstract, categories, looked_up FROM seed_papers"
                f" WHERE key IN ({marks(len(chunk))})",
                chunk,
            )
            for key, status, title, abstract, categories, looked_up in rows:
                found[key] = SeedPaper(
                    key,
                    cast(SeedStatus, status),
                    title,
                    abstract,
                    strings_of(categories),
                    from_iso(looked_up),
                )
        return found

    def save(self, seed_papers: Sequence[SeedPaper]) -> None:
        """Keep what these lookups found, replacing earlier answers for the same keys."""
        rows = [
            (s.key, s.status, s.title, s.abstract, strings_json(s.categories), iso(s.looked_up))
            for s in seed_papers
        ]
        with self.db.transaction():
            self.db.executemany(f"INSERT OR REPLACE INTO seed_papers VALUES ({marks(6)})", rows)
