"""Stopping cleanly on SIGTERM/SIGINT: fetches are abandoned, a send finishes its message.

A fetch in flight has recorded nothing yet (papers are stored after the fetch), so it is
cancelled and simply happens again next time. Sends go through `GuardedSender`: once a
stop was asked for, no message is started, and a conversation that has not yet sent its
message whole (connecting, a stalled MAIL or RCPT, waiting for DATA's 354) is cut at
once, since the server can have nothing of it. A message already on the wire is never
cut: the server may accept it, so its verdict is waited for (at most `smtp.timeout`) and
it is marked as usual. The rest stay pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from email.message import EmailMessage
from typing import Any

from bot.errors import Stopping
from bot.mail.senders import BeforeTransmit, Sender

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Shutdown:
    """SIGTERM/SIGINT turned into a request to stop, which long work checks or is cancelled by."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.event = asyncio.Event()
        self._cancellable: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def requested(self) -> bool:
        """Whether a stop has been asked for."""
        return self.signal_name is not None

    def install(self) -> None:
        """Catch SIGTERM and SIGINT in the running event loop (instead of dying mid-send)."""
        self._loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            self._loop.add_signal_handler(sig, self.request, sig.name)

    def uninstall(self) -> None:
        """Give SIGTERM and SIGINT back their default behaviour."""
        if self._loop is not None:
            for sig in SIGNALS:
                self._loop.remove_signal_handler(sig)
            self._loop = None

    def request(self, name: str = "stop") -> None:
        """Ask everything to stop: cancel what may be cancelled, let sends finish a message."""
        if self.requested:
            log.warning("%s again: still finishing the message in flight", name)
            return
        self.signal_name = name
        log.warning("%s: stopping after the message in flight (nothing is lost)", name)
        self.event.set()
        for task in list(self._cancellable):
            task.cancel()

    @contextlib.contextmanager
    def cancellable(self) -> Iterator[None]:
        """Work in this block is cancelled by a stop (CancelledError); use it for fetches."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Shutdown.cancellable outside a task")
        if self.requested:
            raise asyncio.CancelledError
        self._cancellable.add(task)
        try:
            yield
        finally:
            self._cancellable.discard(task)

    def hold(self) -> None:
        """From now on the current task's work is not cut by a stop (it must finish)."""
        task = asyncio.current_task()
        if task is not None:
            self._cancellable.discard(task)

    def absorb(self) -> None:
        """After catching our own cancellation: let the task await normally again."""
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()


class GuardedSender(Sender):
    """Wraps a sender: once a stop is asked for, a new message is refused (`Stopping`), and
    connecting or a message not yet sent whole is cut at once (`Stopping` too).

    `on_sent` is called after each message the server accepted (progress bars).
    """

    name = "guarded"

    def __init__(
        self,
        inner: Sender,
        shutdown: Shutdown,
        on_sent: Callable[[EmailMessage], None] | None = None,
    ) -> None:
        self.inner = inner
        self.shutdown = shutdown
        self.on_sent = on_sent
        self.signer = inner.signer

    def __getattr__(self, name: str) -> Any:
        # settings of the real sender (connections, rate) stay visible to the delivery loop
        return getattr(self.inner, name)

    @property
    def where(self) -> str:
        """Where the real sender sends."""
        return self.inner.where

    async def open(self) -> None:
        """Open the real sender, unless a stop is asked for first."""
        async with self._cut_by_stop():
            await self.inner.open()

    async def close(self) -> None:
        """Close the real sender."""
        await self.inner.close()

    async def send(
        self, message: EmailMessage, *, before_transmit: BeforeTransmit | None = None
    ) -> None:
        """Send through the real sender unless a stop is asked for before the message has
        gone out whole; from then on it finishes."""
        shutdown = self.shutdown

        def transmit() -> None:
            shutdown.hold()  # no await from here to the final dot: no stop in between
            if shutdown.requested:
                raise Stopping
            if before_transmit is not None:
                before_transmit()

        async with self._cut_by_stop():
            await self.inner.send(message, before_transmit=transmit)
        if self.on_sent is not None:
            self.on_sent(message)

    @contextlib.asynccontextmanager
    async def _cut_by_stop(self) -> AsyncIterator[None]:
        """Stopping instead of starting after a stop, or instead of the stop's cancellation."""
        if self.shutdown.requested:
            raise Stopping
        try:
            with self.shutdown.cancellable():
                yield
        except asyncio.CancelledError:
            if not self.shutdown.requested:  # not the stop's: someone else's to handle
                raise
            self.shutdown.absorb()
            raise Stopping from None
