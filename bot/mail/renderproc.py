"""The render process: a helper process that builds a large outbox's digests ahead of the
sending, so that building messages and talking SMTP use both cores.

It reads its own batches (id ranges that the sending process hands it, so none is read
twice) from the same SQLite file, at most RENDER_AHEAD batches ahead, and returns each
digest as its bytes and envelope headers (`Prebuilt`); the sending process alone sends and
marks. It ends with the sending process even when that one is killed (no shutdown). If it
cannot start or dies, the caller renders the rest itself.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bot.mail.caches import CACHES
from bot.mail.compose import Addressee, Letterhead, load_papers, message_or_error
from bot.mail.mime import envelope_headers
from bot.mail.senders import message_bytes
from bot.mail.senders.base import one_line
from bot.models import Paper
from bot.store.outbox import PendingDigest
from bot.store.store import Store

log = logging.getLogger(__name__)

#: a run with at least this many pending digests renders them in a helper process
RENDER_PROCESS_THRESHOLD = 2000
#: batches the helper process may be ahead of the sending (bounded: memory stays flat)
RENDER_AHEAD = 3
#: how often the helper process checks that the sending process is still there
PARENT_CHECK_SECONDS = 1.0
#: rendered entries the helper process keeps: half the in-process cache, as the sending
#: process still holds its own memory (the whole of paperbot stays under 1 GB at 100,000)
RENDER_PROCESS_ENTRIES = 8192


@dataclass(frozen=True, slots=True)
class Prebuilt:
    """A digest built by the render process: its bytes and envelope headers, or why not."""

    addressee: Addressee
    wire: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    error: str | None = None


class RenderAhead:
    """The sending process's end of a render process: asks for batches, a few ahead."""

    def __init__(self, store: Store, pool: ProcessPoolExecutor, batch_size: int) -> None:
        self.store, self.pool, self.size = store, pool, batch_size
        #: batches asked for and not yet taken: (the last id of the batch, its digests)
        self.ahead: deque[tuple[int, asyncio.Future[list[Prebuilt]]]] = deque()
        self.requested = 0  # the digests up to this id are asked for

    @classmethod
    def start(
        cls, store: Store, database: Path, head: Letterhead, batch_size: int
    ) -> RenderAhead | None:
        """A render process for the store's file (started on the first request), or None
        (logged) when the file has gone: a helper would open another database."""
        try:
            identity = _file_identity(database)
        except OSError as exc:
            log.error("render process not started: %s; rendering here", one_line(exc))
            return None
        pool = ProcessPoolExecutor(
            max_workers=1,
            # not fork: this process runs an event loop, threads and an open SQLite connection
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_renderer,
            initargs=(database, identity, head),
        )
        return cls(store, pool, batch_size)

    async def next(self) -> tuple[int, list[Prebuilt]] | None:
        """The next batch built, as (the last id it covers, its digests); None when every
        pending digest has been. Raises what the render process raised, or that it died."""
        loop = asyncio.get_running_loop()
        while len(self.ahead) < RENDER_AHEAD and (
            ids := self.store.outbox.pending_ids(self.requested, self.size)
        ):
            task = loop.run_in_executor(
                self.pool, _render_range, self.requested, ids[-1], self.size
            )
            self.ahead.append((ids[-1], task))
            self.requested = ids[-1]
        if not self.ahead:
            return None
        upto, task = self.ahead.popleft()
        return upto, await task

    def close(self) -> None:
        """Drop the batches asked for and end the render process."""
        for _, task in self.ahead:
            task.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _file_identity(path: Path) -> tuple[int, int]:
    """(device, inode): the render process reads the very file this process has open."""
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


# --- in the render process ------------------------------------------------------------------


@dataclass(slots=True)
class _Renderer:
    """The render process's state: its own connection, the letterhead, the papers seen."""

    store: Store
    head: Letterhead
    papers: dict[str, Paper]


_renderer: _Renderer | None = None


def _start_renderer(database: Path, identity: tuple[int, int], head: Letterhead) -> None:
    """The render process's initializer: open the store the sending process has open."""
    global _renderer
    # Store.open would create an empty database where the file has gone: check it first
    if _file_identity(database) != identity:
        raise RuntimeError(f"{database} is no longer the database being delivered")
    _renderer = _Renderer(Store.open(database), head, {})
    CACHES.limit_entries(RENDER_PROCESS_ENTRIES)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """Ends the render process once the sending process is gone (killed: no shutdown).

    The pool's worker would otherwise wait for work forever, holding its memory and a
    connection to the database.
    """
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _render_range(after: int, upto: int, size: int) -> list[Prebuilt]:
    """In the render process: the pending digests with `after < id <= upto`, built."""
    if _renderer is None:
        raise RuntimeError("the render process was not initialized")
    built: list[Prebuilt] = []
    for batch in _renderer.store.outbox.pending_batches(size, after=after, upto=upto):
        load_papers(_renderer.store, _renderer.papers, batch)
        built += [_prebuilt(_renderer.head, pending, _renderer.papers) for pending in batch]
    return built


def _prebuilt(head: Letterhead, pending: PendingDigest, papers: Mapping[str, Paper]) -> Prebuilt:
    """A pending digest built, as every sender writes it by default (8bit, CRLF); another
    form is made from these bytes."""
    addressee = Addressee.of(pending)
    message = message_or_error(head, pending, papers)
    if isinstance(message, str):
        return Prebuilt(addressee, error=message)
    return Prebuilt(addressee, message_bytes(message), tuple(envelope_headers(message)))
