"""One run at a time: an exclusive lock on a file next to the database, shared by every process.

`paperbot once` holds it for its whole cycle; the worker takes it for each job, so a cron
`once` and a running worker interleave and never work on the store at the same moment.
The kernel drops an flock when its process dies, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

from bot.errors import LockBusy, PaperbotError, StoreFull

log = logging.getLogger(__name__)

#: how often a waiting run looks again
POLL_SECONDS = 0.05


def lock_path(database: Path) -> Path:
    """The lock file of a store: `<database>.lock`, beside the file itself (a symlink to the
    store and the store's own path must name one lock)."""
    real = Path(os.path.realpath(database))
    return real.with_name(real.name + ".lock")


class RunLock:
    """An exclusive `flock` on `<database>.lock`; the holder writes who it is into the file."""

    def __init__(self, database: Path, label: str) -> None:
        self.path = lock_path(database)
        self.database = database
        self.label = label
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never wait."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this process")
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        self._write_holder(fd)
        return True

    def acquire(self, wait: float) -> None:
        """Take the lock, waiting up to `wait` seconds; LockBusy (one line) if still held."""
        deadline = time.monotonic() + wait
        if not self.try_acquire():
            self._log_wait(wait)
        while not self.held and not self.try_acquire():
            if time.monotonic() >= deadline:
                raise self._busy(wait)
            time.sleep(POLL_SECONDS)

    async def acquire_async(self, wait: float) -> None:
        """`acquire` without blocking the event loop while waiting."""
        deadline = time.monotonic() + wait
        if not self.try_acquire():
            self._log_wait(wait)
        while not self.held and not self.try_acquire():
            if time.monotonic() >= deadline:
                raise self._busy(wait)
            await asyncio.sleep(POLL_SECONDS)

    def release(self) -> None:
        """Let the next run in (the file stays: removing it would race with a waiting run)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        # closing the descriptor drops the flock
        os.close(fd)

    @contextlib.contextmanager
    def holding(self, wait: float) -> Iterator[None]:
        """Hold the lock for the body of a `with`."""
        self.acquire(wait)
        try:
            yield
        finally:
            self.release()

    @contextlib.asynccontextmanager
    async def holding_async(self, wait: float) -> AsyncIterator[None]:
        """Hold the lock for the body of an `async with`."""
        await self.acquire_async(wait)
        try:
            yield
        finally:
            self.release()

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it (best effort: it may just have left)."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        return text or "unknown process"

    def _open(self) -> int:
        """The lock file's descriptor (created with its folder); one line when it cannot be."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreFull(f"disk full creating {self.path}: free some space") from None
            raise PaperbotError(f"cannot open {self.path}: {exc.strerror or exc}") from None

    def _write_holder(self, fd: int) -> None:
        since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}, {self.label}, since {since}\n".encode(), 0)
        except OSError as exc:  # only a note for whoever waits: the lock is held all the same
            log.debug("cannot write who holds %s: %s", self.path, exc.strerror or exc)

    def _log_wait(self, wait: float) -> None:
        if wait >= 1:  # a short wait needs no notice (and a refusal stays one line)
            log.info("waiting up to %g s for another paperbot run (%s)", wait, self.holder())

    def _busy(self, wait: float) -> LockBusy:
        return LockBusy(
            f"another paperbot run is working on {self.database} ({self.holder()}); "
            f"gave up after waiting {wait:g} s, nothing was done"
        )
