"""`paperbot backup FILE`: a consistent copy of the live store, made safely.

SQLite's online backup copies the store in one step, a snapshot, while a run or the web
app goes on writing (WAL readers do not block writers). The copy is written next to FILE
under a temporary name, checked (it opens as a paperbot store, `PRAGMA quick_check`), and
only then renamed to FILE: FILE is never a half backup. Restoring is copying it back while
paperbot is stopped.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bot.config.settings import Config
from bot.errors import BackupError, StoreError
from bot.store.store import Store


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What a backup holds: where, its size, its papers and subscribers."""

    path: Path
    size: int
    papers: int
    subscribers: int

    def describe(self) -> str:
        """The one line `paperbot backup` prints."""
        return (
            f"backup written to {self.path}: {self.size:,} bytes, {self.papers} papers,"
            f" {self.subscribers} subscribers"
        )


def backup(config: Config, target: Path, *, force: bool = False) -> BackupReport:
    """Copy the store at `config.database` to `target` (BackupError if it cannot)."""
    source = config.database
    if not source.exists():
        raise BackupError(f"{source}: no store there yet: nothing to back up")
    if target.exists() and (target.is_dir() or not force):
        why = "is a folder" if target.is_dir() else "exists (use --force to replace it)"
        raise BackupError(f"{target}: {why}")
    if target.exists() and target.resolve() == source.resolve():
        raise BackupError(f"{target}: is the store itself")
    if not target.parent.is_dir():
        raise BackupError(f"{target}: its folder does not exist")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        _copy(config, partial)
        report = _check(partial, target)
        os.replace(partial, target)
    except OSError as exc:
        raise BackupError(f"{target}: cannot write the backup: {exc.strerror}") from None
    finally:
        for leftover in (partial, *_sidecars(partial)):
            leftover.unlink(missing_ok=True)
    return report


def _copy(config: Config, partial: Path) -> None:
    """The online backup into `partial`, closed (its WAL folded back in: one file)."""
    with Store.open(config.database, busy_timeout=config.scheduling.database_wait) as store:
        copy = store.backup_to(partial)
        try:
            copy.db.execute("PRAGMA journal_mode=DELETE")  # the backup is one self-contained file
        finally:
            copy.close()


def _check(partial: Path, target: Path) -> BackupReport:
    """The copy opens as a paperbot store and passes `quick_check`: its counts."""
    try:
        with Store.open(partial) as copy:
            verdict = copy.db.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise BackupError(f"{target}: the copy failed its check: {verdict}")
            copy.db.execute("PRAGMA journal_mode=DELETE")
            papers = copy.papers.count()
            subscribers = int(copy.db.execute("SELECT count(*) FROM subscribers").fetchone()[0])
    except (StoreError, sqlite3.Error) as exc:
        raise BackupError(f"{target}: the copy does not open as a store: {exc}") from None
    with partial.open("rb+") as handle:
        os.fsync(handle.fileno())
    return BackupReport(target, partial.stat().st_size, papers, subscribers)


def _sidecars(path: Path) -> tuple[Path, ...]:
    return (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
