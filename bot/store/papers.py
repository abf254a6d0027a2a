"""Papers by canonical id and the sources that listed them: recording a listing (one record
per paper, however many sources and ids it came under) and reading papers back.

A paper that matches several stored records (by arXiv id, DOI or title) makes them one,
under the strongest id (`identity`), and what pointed at the others (sources, titles,
matches) follows it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bot.models import Paper
from bot.store.database import Database
from bot.store.identity import Identity, matching_changed, merge_papers
from bot.store.rows import PAPER, chunked, iso, marks, utcnow
from bot.text.ids import normalize_title, title_key

#: shortest normalized title that may join two records with different ids
MIN_TITLE_KEY_LENGTH = 20

#: the papers table's columns: the Paper's, then the store's own
_COLUMNS = (*PAPER.names, "title_key", "updated")
_INSERT = (
    f"INSERT INTO papers ({', '.join(_COLUMNS)}, pending_match) VALUES ({marks(len(_COLUMNS))}, 1)"
)
_UPDATE = f"UPDATE papers SET {', '.join(f'{c} = ?' for c in _COLUMNS if c != 'id')} WHERE id = ?"
#: what `_StoredPaper.of` reads, in its order
_STORED = f"rowid, pending_match, {PAPER.select()}"


@dataclass(frozen=True, slots=True)
class RecordResult:
    """Which papers one `record` call saw for the first time, and which it enriched."""

    new: tuple[str, ...]
    changed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _StoredPaper:
    """A stored record of a paper, as `record` finds it before merging."""

    paper: Paper
    pending_match: bool
    rowid: int

    @classmethod
    def of(cls, row: Sequence[Any]) -> _StoredPaper:
        """The record from a row of `_STORED`."""
        return cls(PAPER.read(row[2:]), bool(row[1]), row[0])

    def age(self) -> tuple[datetime, int]:
        """Sort key: first seen first (the insertion order breaks ties)."""
        return (self.paper.first_seen or datetime.min.replace(tzinfo=UTC), self.rowid)


class Papers:
    """The papers table and what hangs on a paper's id (its sources and titles)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self, source: str, papers: Sequence[Paper], now: datetime | None = None
    ) -> RecordResult:
        """Upsert the papers one source listed; say which were new and which enriched.

        A paper that matches several stored records (by arXiv id, DOI or title) makes them
        one, under the strongest id, whatever order the sources came in.
        """
        now = now or utcnow()
        new: list[str] = []
        changed: list[str] = []
        with self.db.transaction():
            for paper in papers:
                paper = replace(paper, sources=(source,), first_seen=now)
                stored = self._records_of(paper)
                if not stored:
                    self._insert(paper, now)
                    new.append(paper.id)
                    stored_id = paper.id
                else:
                    stored_id, absorbed, enriched = self._merge_into(stored, paper, now)
                    if absorbed:  # ids reported earlier in this call may be gone now
                        new[:] = [stored_id if pid in absorbed else pid for pid in new]
                        changed[:] = [stored_id if pid in absorbed else pid for pid in changed]
                    if enriched:
                        changed.append(stored_id)
                self.db.execute(
                    "INSERT OR IGNORE INTO paper_sources VALUES (?, ?, ?, ?)",
                    (stored_id, source, paper.url, iso(now)),
                )
        return RecordResult(new=tuple(dict.fromkeys(new)), changed=tuple(dict.fromkeys(changed)))

    def by_id(self, ids: Iterable[str]) -> dict[str, Paper]:
        """The stored papers with these ids, by id."""
        result: dict[str, Paper] = {}
        for chunk in chunked(ids):
            rows = self.db.execute(
                f"SELECT {PAPER.select()} FROM papers WHERE id IN ({marks(len(chunk))})", chunk
            )
            for row in rows:
                paper = PAPER.read(row)
                result[paper.id] = paper
        return result

    def find_seed_papers(self, keys: Iterable[str]) -> dict[str, Paper]:
        """The stored papers these seed keys name (`2411.01234`, `doi:10.1/x`, `title:Text`),
        by key; a key the store has no paper for is left out."""
        found: dict[str, Paper] = {}
        wanted = list(dict.fromkeys(keys))
        # arXiv ids and DOIs a chunk at a time (a run asks for every subscriber's seeds)
        arxiv = {key: key for key in wanted if not key.startswith(("doi:", "title:"))}
        dois = {key[len("doi:") :]: key for key in wanted if key.startswith("doi:")}
        for column, by_value in (("arxiv_id", arxiv), ("doi", dois)):
            for chunk in chunked(by_value):
                rows = self.db.execute(
                    f"SELECT {PAPER.select()} FROM papers WHERE {column} IN ({marks(len(chunk))})"
                    " ORDER BY first_seen",
                    chunk,
                )
                for row in rows:
                    paper = PAPER.read(row)
                    value = paper.arxiv_id if column == "arxiv_id" else paper.doi
                    if value in by_value:
                        found.setdefault(by_value[value], paper)  # the first seen
        for key in wanted:
            if key.startswith("title:"):
                where, value = _seed_lookup(key)
                row = self.db.execute(
                    f"SELECT {PAPER.select()} FROM papers WHERE {where}"
                    " ORDER BY first_seen LIMIT 1",
                    (value,),
                ).fetchone()
                if row is not None:
                    found[key] = PAPER.read(row)
        return {key: found[key] for key in wanted if key in found}

    def to_match(self) -> list[Paper]:
        """Papers recorded (or enriched) whose matches are not committed yet.

        A run that dies between recording and matching leaves them here, so the next run
        matches them: a paper is never seen-but-unmatched.
        """
        rows = self.db.execute(f"SELECT {PAPER.select()} FROM papers WHERE pending_match = 1")
        return [PAPER.read(row) for row in rows]

    def seen_since(self, since: datetime) -> list[Paper]:
        """Papers first seen at or after `since`, newest first."""
        rows = self.db.execute(
            f"SELECT {PAPER.select()} FROM papers WHERE first_seen >= ? ORDER BY first_seen DESC",
            (iso(since),),
        )
        return [PAPER.read(row) for row in rows]

    def newest_texts(self, limit: int) -> list[tuple[str, str]]:
        """(title, abstract) of the `limit` papers first seen last, newest first."""
        rows = self.db.execute(
            "SELECT title, abstract FROM papers ORDER BY first_seen DESC, id LIMIT ?", (limit,)
        )
        return [(title, abstract) for title, abstract in rows]

    def fingerprint(self, since: datetime) -> tuple[int, str | None]:
        """(count, latest update) of the papers first seen since `since`: it changes whenever
        one of them is added, merged or re-keyed, so a copy in memory can be reused until then."""
        row = self.db.execute(
            "SELECT count(*), max(updated) FROM papers WHERE first_seen >= ?", (iso(since),)
        ).fetchone()
        return int(row[0]), row[1]

    def count(self) -> int:
        """How many distinct papers the store holds."""
        return int(self.db.execute("SELECT count(*) FROM papers").fetchone()[0])

    # --- one paper, many records --------------------------------------------------------------

    def _merge_into(
        self, stored: Sequence[_StoredPaper], paper: Paper, now: datetime
    ) -> tuple[str, set[str], bool]:
        """Merge the arriving paper and every stored record of it into one record.

        Returns the record's id, the ids merged into it (gone now), and whether anything
        alerts look at changed (the record then waits for matching again).
        """
        # oldest record first: it keeps its spelling when ids are equally strong
        merged = functools.reduce(merge_papers, [*(s.paper for s in stored), paper])
        keeper = next((s for s in stored if s.paper.id == merged.id), stored[0])
        if keeper.paper.id != merged.id:
            self.db.execute("UPDATE papers SET id = ? WHERE id = ?", (merged.id, keeper.paper.id))
            self._move_references(keeper.paper.id, merged.id)
        for other in stored:
            if other is not keeper:
                self._move_references(other.paper.id, merged.id)
                self.db.execute("DELETE FROM papers WHERE id = ?", (other.paper.id,))
        self._add_title_key(merged.id, paper.title)
        if len(stored) > 1 or merged != keeper.paper:
            self._update(merged, now)
        enriched = any(matching_changed(s.paper, merged) for s in stored)
        if enriched or (len(stored) > 1 and any(s.pending_match for s in stored)):
            self.db.execute("UPDATE papers SET pending_match = 1 WHERE id = ?", (merged.id,))
        return merged.id, {s.paper.id for s in stored} - {merged.id}, enriched

    def _records_of(self, paper: Paper) -> list[_StoredPaper]:
        """Every stored record of this paper, oldest first.

        Found by id, arXiv id, DOI or title, then by what those records carry (a journal
        record found by its DOI brings the lab page record found by its title). A record
        whose arXiv id or DOI differs from what the others say is another paper, and the
        title rule needs a title long enough to be distinctive.
        """
        found: dict[str, _StoredPaper] = {}
        identity = Identity(paper.arxiv_id, paper.doi)
        asked: set[tuple[str, str]] = set()
        probes = [paper]
        while probes:
            for record in self._candidates(probes.pop(), asked):
                if record.paper.id in found:
                    continue
                if record.paper.id != paper.id and not identity.admits(record.paper):
                    continue
                found[record.paper.id] = record
                identity = identity.joined(record.paper)
                probes.append(record.paper)
        return sorted(found.values(), key=_StoredPaper.age)

    def _candidates(self, probe: Paper, asked: set[tuple[str, str]]) -> list[_StoredPaper]:
        """Records sharing an id, arXiv id, DOI or distinctive title with `probe` that were
        not `asked` for yet; the strongest evidence first, so that it wins over a title
        when the two disagree."""
        key, distinctive = _title_facts(probe.title)
        keys = {"id": probe.id, "arxiv": probe.arxiv_id, "doi": probe.doi}
        keys["key"] = key if distinctive else None
        wanted = {k: v for k, v in keys.items() if v is not None and (k, v) not in asked}
        if not wanted:
            return []
        asked.update(wanted.items())
        rows = self.db.execute(
            f"SELECT {_STORED} FROM papers WHERE id = :id OR arxiv_id = :arxiv OR doi = :doi"
            " OR id IN (SELECT paper_id FROM paper_titles WHERE title_key = :key)"
            " ORDER BY CASE WHEN id = :id OR arxiv_id = :arxiv THEN 0"
            " WHEN doi = :doi THEN 1 ELSE 2 END, first_seen, rowid",
            {"id": None, "arxiv": None, "doi": None, "key": None, **wanted},
        ).fetchall()
        return [_StoredPaper.of(row) for row in rows]

    def _insert(self, paper: Paper, now: datetime) -> None:
        self.db.execute(_INSERT, _row(paper, now))
        self._add_title_key(paper.id, paper.title)

    def _update(self, paper: Paper, now: datetime) -> None:
        values = [value for c, value in zip(_COLUMNS, _row(paper, now), strict=True) if c != "id"]
        self.db.execute(_UPDATE, (*values, paper.id))

    def _add_title_key(self, paper_id: str, title: str) -> None:
        """Remember a title the paper was listed under: a later listing may use any of them."""
        self.db.execute(
            "INSERT OR IGNORE INTO paper_titles VALUES (?, ?)", (_title_facts(title)[0], paper_id)
        )

    def _move_references(self, old_id: str, new_id: str) -> None:
        """What points at `old_id` (sources, titles, feedback, matches) now points at `new_id`.

        A subscriber matched under both ids keeps one match: the one already delivered
        (or in a digest being sent) before one still waiting, else the older. A pending
        digest left without any paper by this is dropped, never sent empty.
        """
        for table in ("paper_sources", "paper_titles", "feedback"):
            self.db.execute(
                f"UPDATE OR IGNORE {table} SET paper_id = ? WHERE paper_id = ?", (new_id, old_id)
            )
            self.db.execute(f"DELETE FROM {table} WHERE paper_id = ?", (old_id,))
        old, new = _match_standing("o"), _match_standing("n")
        emptied = self.db.execute(
            "DELETE FROM matches WHERE rowid IN (SELECT CASE WHEN"
            f" {old} > {new} OR ({old} = {new} AND o.matched_at <= n.matched_at)"
            " THEN n.rowid ELSE o.rowid END FROM matches o JOIN matches n"
            " ON n.subscriber_id = o.subscriber_id AND n.paper_id = ? WHERE o.paper_id = ?)"
            " RETURNING digest_id",
            (new_id, old_id),
        ).fetchall()
        self.db.execute("UPDATE matches SET paper_id = ? WHERE paper_id = ?", (new_id, old_id))
        for (digest_id,) in emptied:
            self.db.execute(
                "UPDATE digests SET status = 'dropped' WHERE id = ? AND status = 'pending'"
                " AND NOT EXISTS (SELECT 1 FROM matches WHERE digest_id = ?)",
                (digest_id, digest_id),
            )


def _seed_lookup(key: str) -> tuple[str, str]:
    """The WHERE clause and its value that find a seed key's paper."""
    if key.startswith("doi:"):
        return "doi = ?", key[len("doi:") :]
    if key.startswith("title:"):
        title = key[len("title:") :]
        return "id IN (SELECT paper_id FROM paper_titles WHERE title_key = ?)", title_key(title)
    return "arxiv_id = ?", key


def _row(paper: Paper, now: datetime) -> tuple[Any, ...]:
    """The paper's values in `_COLUMNS` order, `now` as its update (and first sighting if new)."""
    if paper.first_seen is None:
        paper = replace(paper, first_seen=now)
    return (*PAPER.values(paper), _title_facts(paper.title)[0], iso(now))


@functools.lru_cache(maxsize=8192)
def _title_facts(title: str) -> tuple[str, bool]:
    """A title's key, and whether it is long enough to join records with different ids.

    Cached: recording one paper asks for its title several times.
    """
    return title_key(title), len(normalize_title(title)) >= MIN_TITLE_KEY_LENGTH


def _match_standing(alias: str) -> str:
    """SQL ranking a match row: 2 in a digest done with (sent, skipped, failed), 1 in a
    pending digest, 0 in none yet; of two matches of one paper the higher is kept."""
    return (
        f"(CASE WHEN {alias}.digest_id IS NULL THEN 0 WHEN (SELECT status FROM digests"
        f" WHERE id = {alias}.digest_id) = 'pending' THEN 1 ELSE 2 END)"
    )
