"""Delivery: send the outbox's pending digests over a few connections, marking each at once.

The store's outbox is read a batch at a time and each digest is rendered just before it
is sent, so memory stays flat however many subscribers there are. `connections` workers
each keep one SMTP connection busy; an optional rate limit spaces messages out. A digest
is marked sent the moment the server accepts it: a run killed at any point and started
again sends each pending digest once, except the messages in flight at the kill (at most
one per connection), which go again with the same Message-ID.

Each digest's status is looked up again just before it is sent: one unsubscribed in the web
app (another process) after its batch was read is not sent.

A large outbox (RENDER_PROCESS_THRESHOLD digests or more) is rendered in a helper process
(`bot.mail.renderproc`) that reads its own batches from the same SQLite file, a few batches
ahead of the sending, so that building messages and talking SMTP use both cores; this
process alone still sends and marks. If the helper cannot start or dies, the rest is
rendered here (one error logged). Each digest's email is made by `bot.mail.compose`.

Failures: a 4xx or a lost connection is retried with back-off within the run, then left
pending for the next run; a 5xx for one recipient fails that digest (a hard bounce, a
warning, not a run failure; the `max_hard_bounces`-th in a row suspends the subscriber)
and the others go on; a server that stays unreachable or keeps putting every message off
(421, a 4xx to MAIL FROM), refuses our login or fails TLS stops the run with one error and
leaves everything else pending, and so does a circuit breaker after
`max_failures_in_a_row` timeouts or lost connections in a row. A server that turns a
connection away while it serves another takes fewer: that worker ends, nobody pauses.

At most twice, ever: a message whose verdict never came after its final dot (a timeout, a
lost connection, a kill) may be with the server. Each digest's transmissions are counted
in the store right before the final dot (a refusal gives the count back); one that went
out MAX_TRANSMISSIONS times without a verdict is `unconfirmed`: never sent again, its
papers count as delivered. Every copy carries the digest's one Message-ID.

Over 500 lines: the send loop (`_Delivery`) is one state machine whose parts (pauses,
retries, the circuit breaker, connections retired, stops) share its counters and queue;
split apart, each part would reach into the others' state.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from bot.errors import (
    ConnectionTrouble,
    DeliveryUnconfirmed,
    FatalSendError,
    RecipientRefused,
    SendError,
    ServerUnavailable,
    Withheld,
)
from bot.mail.caches import CACHES
from bot.mail.compose import Addressee, Letterhead, load_papers, message_or_error
from bot.mail.links import bounce_tag, verp_address
from bot.mail.mime import DigestMessage, PrebuiltMessage
from bot.mail.renderproc import RENDER_PROCESS_THRESHOLD, Prebuilt, RenderAhead
from bot.mail.senders import Sender
from bot.mail.senders.base import envelope_sender, one_line
from bot.models import Paper
from bot.store.outbox import PendingDigest
from bot.store.store import Store

log = logging.getLogger(__name__)

#: errors listed one by one in the report and the log; the rest are counted
MAX_LISTED_ERRORS = 20
#: times a digest may go out whole without a verdict, ever (the second is the one retry)
MAX_TRANSMISSIONS = 2
#: the longest pause before a retry, however many retries doubled it
MAX_RETRY_DELAY = 600.0


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """How the outbox went: sent, refused for good, left pending, and the errors."""

    sent: int = 0
    failed: int = 0
    pending: int = 0
    errors: tuple[str, ...] = ()
    bounced: int = 0
    suspended: int = 0
    #: digests whose subscriber left (or was suspended) after the run had read them
    withdrawn: int = 0
    #: digests that went out MAX_TRANSMISSIONS times without a verdict (never sent again)
    unconfirmed: int = 0


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """How hard and how fast to push: connections, rate, retries, bounce threshold."""

    connections: int = 1
    messages_per_second: float | None = None
    retries: int = 2
    retry_delay: float = 5.0
    max_hard_bounces: int = 3
    batch_size: int = 500
    max_failures_in_a_row: int = 5
    #: each digest's envelope sender names its subscriber (`bot+b-<tag>@…`, bounces: verp)
    verp: bool = False


# --- the run --------------------------------------------------------------------------------


async def deliver(
    store: Store,
    sender: Sender,
    head: Letterhead,
    settings: DeliverySettings,
    *,
    render_process_threshold: int | None = RENDER_PROCESS_THRESHOLD,
    stop: asyncio.Event | None = None,
) -> DeliveryReport:
    """Send every pending digest; mark each sent only once the server has accepted it.

    From `render_process_threshold` pending digests on (None: never) they are rendered in
    a helper process. Once `stop` is set, no message is started and no pause (a server
    given time to come back, a retry, the rate limit) is waited out: the rest stays pending.
    """
    run = _Delivery(store, sender, head, settings, render_process_threshold, stop)
    return await run.run()


def skip_pending(store: Store) -> DeliveryReport:
    """`--no-send`: mark every pending digest as delivered without sending it."""
    store.outbox.skip_all_pending()
    return DeliveryReport()


@dataclass(slots=True)
class _Item:
    """A digest on its way: its message, and how many times this run has tried it."""

    pending: Addressee
    message: EmailMessage
    tries: int = 0


class _Transmission:
    """A send's `before_transmit` hook: counts the transmission in the store before it goes.

    A digest that may not go out (no longer pending, or sent MAX_TRANSMISSIONS times
    without a verdict) is Withheld. `count` is the digest's transmissions so far, 0 while
    this send has not reached its final dot.
    """

    __slots__ = ("count", "digest_id", "store")

    def __init__(self, store: Store, digest_id: int) -> None:
        self.store, self.digest_id, self.count = store, digest_id, 0

    def __call__(self) -> None:
        count = self.store.outbox.begin_transmission(self.digest_id, MAX_TRANSMISSIONS)
        if count is None:
            raise Withheld("no longer to be sent (withdrawn, or already sent without a verdict)")
        self.count = count

    def refused(self) -> None:
        """The server answered with a refusal (or it never went out): take the count back."""
        if self.count:
            self.store.outbox.take_back_transmission(self.digest_id)
            self.count = 0


class RateLimiter:
    """Spaces calls evenly: at most `per_second` on average and never in bursts."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0

    async def wait(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Return when the next message may go (`sleep` waits, maybe less)."""
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval  # reserved before sleeping: no lock needed
        if slot > now:
            await sleep(slot - now)


class _Delivery:
    """One delivery run: a producer renders, `connections` workers send, the store records."""

    def __init__(
        self,
        store: Store,
        sender: Sender,
        head: Letterhead,
        settings: DeliverySettings,
        render_process_threshold: int | None = RENDER_PROCESS_THRESHOLD,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.store, self.sender, self.head, self.settings = store, sender, head, settings
        self.render_process_threshold = render_process_threshold
        self.queue: asyncio.Queue[_Item | None] = asyncio.Queue(maxsize=4 * settings.connections)
        self.limiter = RateLimiter(settings.messages_per_second)
        self.papers: dict[str, Paper] = {}
        self.outstanding = 0  # queued, being sent, or waiting for a retry
        self.drained = asyncio.Event()
        #: set when a stop is asked for (SIGTERM): pauses end, nothing more is started
        self.stop_asked = stop or asyncio.Event()
        self.retrying: set[asyncio.Task[None]] = set()
        self.stopped = False
        self.paused_until = 0.0
        self.server_failures = 0
        self.troubles_in_a_row = 0  # timeouts and lost connections since the last acceptance
        self.workers = settings.connections  # connections in use (a crowded server takes fewer)
        self.sending = 0  # messages on their way to the server right now
        self.retiring = 0  # workers to end: the server would not take their connection
        self.sent = self.failed = self.bounced = self.suspended = self.withdrawn = 0
        self.unconfirmed = 0
        self.errors: list[str] = []
        self.error_count = 0
        self.pending_at_start = 0

    async def run(self) -> DeliveryReport:
        """Open the sender (retrying a server that is down), send everything, close."""
        self._settle_unconfirmed()
        self.pending_at_start = self.store.outbox.pending_count()
        if self.pending_at_start and await self._open():
            # what exists now (config, papers, the index's leftovers) lives through the run:
            # frozen, the collector's full passes skip it instead of walking it again and
            # again while each digest allocates thousands of short-lived objects
            gc.freeze()
            try:
                await self._send_all()
            finally:
                gc.unfreeze()
                await self.sender.close()
                CACHES.clear()
        return self._report()

    def _settle_unconfirmed(self) -> None:
        """Digests a killed run left after their last allowed transmission: never again."""
        settled = self.store.outbox.settle_unconfirmed(MAX_TRANSMISSIONS)
        if settled:
            self.unconfirmed += settled
            log.warning(
                "send: %d digests went out %d times without a verdict (a run was stopped while"
                " waiting for it): not sent again, their papers count as delivered",
                settled,
                MAX_TRANSMISSIONS,
            )

    async def _send_all(self) -> None:
        """The producer and the workers; a bug in any of them stops all (never a hang)."""
        tasks = [asyncio.create_task(self._produce())]
        tasks += [asyncio.create_task(self._worker()) for _ in range(self.settings.connections)]
        watch = asyncio.create_task(self._stop_when_asked())
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # re-raises the first unexpected error
        finally:
            others = [*tasks, *self.retrying, watch]
            for task in others:
                task.cancel()
            # waited for, their errors dropped: they are the first one again (a locked store)
            # or its echo, and a send still unwinding must not find the sender closed under it
            await asyncio.gather(*others, return_exceptions=True)

    async def _stop_when_asked(self) -> None:
        """A stop ends the waits for retries at once (their digests stay pending)."""
        await self.stop_asked.wait()
        self._stop("stopping: shutdown requested; left pending for the next run")

    async def _nap(self, seconds: float) -> None:
        """Sleep `seconds`, or until a stop is asked for."""
        if seconds > 0 and not self.stop_asked.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self.stop_asked.wait()

    async def _open(self) -> bool:
        for attempt in range(self.settings.retries + 1):
            try:
                await self.sender.open()
                return True
            except ServerUnavailable as exc:
                if attempt == self.settings.retries:
                    self._error(f"{exc} (tried {attempt + 1} times)")
                    return False
                await self._nap(self._backoff(attempt))
            except SendError as exc:  # authentication, TLS, an unusable outbox folder
                self._error(str(exc))
                return False
        return False

    # --- producer ---------------------------------------------------------------------------

    async def _produce(self) -> None:
        """Render each pending digest into the queue; then wait for the stragglers."""
        after = 0  # the digests up to this id are queued (or failed) already
        database = self._render_process_database()
        if database is not None:
            after = await self._produce_elsewhere(database)
        if not self.stopped:
            await self._produce_here(after)
        if self.outstanding:
            await self.drained.wait()
        for _ in range(self.settings.connections):
            await self.queue.put(None)

    async def _produce_here(self, after: int) -> None:
        """Render the pending digests after id `after` in this process."""
        for batch in self.store.outbox.pending_batches(self.settings.batch_size, after=after):
            load_papers(self.store, self.papers, batch)
            for pending in batch:
                if self.stopped:
                    return
                item = self._item(pending)
                if item is not None:
                    await self._put(item)

    def _render_process_database(self) -> Path | None:
        """The SQLite file a render process would read, when this run is worth one."""
        threshold = self.render_process_threshold
        if threshold is None or self.pending_at_start < threshold:
            return None
        return self.store.db.file()

    async def _produce_elsewhere(self, database: Path) -> int:
        """Have a render process build the digests, a few batches ahead; up to where.

        Returns the id up to which every digest is queued: all of them, or, when the render
        process fails, those before the batch it could not deliver (the caller renders the
        rest).
        """
        helper = RenderAhead.start(self.store, database, self.head, self.settings.batch_size)
        if helper is None:
            return 0
        log.info("rendering %d digests in a helper process", self.pending_at_start)
        after = 0
        try:
            while not self.stopped:
                try:
                    built = await helper.next()
                except Exception as exc:  # it died, could not start, or raised: go on here
                    log.error(
                        "render process failed (%s: %s); rendering the rest in this process,"
                        " nothing is lost",
                        type(exc).__name__,
                        one_line(exc),
                    )
                    return after
                if built is None:
                    break
                upto, digests = built
                await self._queue_prebuilt(digests)
                after = upto
            return after
        finally:
            helper.close()

    async def _queue_prebuilt(self, built: list[Prebuilt]) -> None:
        for digest in built:
            if self.stopped:
                return
            if digest.error is not None:
                self._unbuildable(digest.addressee, digest.error)
            else:
                await self._put(
                    _Item(digest.addressee, PrebuiltMessage(digest.wire, digest.headers))
                )

    async def _put(self, item: _Item) -> None:
        self._track(+1)
        await self.queue.put(item)

    def _item(self, pending: PendingDigest) -> _Item | None:
        message = message_or_error(self.head, pending, self.papers)
        if isinstance(message, str):
            self._unbuildable(Addressee.of(pending), message)
            return None
        return _Item(Addressee.of(pending), message)

    def _unbuildable(self, addressee: Addressee, reason: str) -> None:
        error = f"{addressee.email}: {reason}"
        self.store.outbox.mark_attempt_failed(addressee.id, error, permanent=True)
        self.failed += 1
        self._error(error)

    def _track(self, change: int) -> None:
        self.outstanding += change
        if self.outstanding:
            self.drained.clear()
        else:
            self.drained.set()

    # --- workers ----------------------------------------------------------------------------

    async def _worker(self) -> None:
        while (item := await self.queue.get()) is not None:
            await self._pause()
            await self.limiter.wait(self._nap)
            if self.stopped:
                self._track(-1)  # left pending for the next run
                continue
            await self._send(item)
            if self.retiring:  # one connection fewer from now on: this one
                self.retiring -= 1
                self.workers -= 1
                return

    async def _pause(self) -> None:
        """Wait while the server is being given time to come back."""
        await self._nap(self.paused_until - time.monotonic())

    async def _send(self, item: _Item) -> None:
        pending = item.pending
        if not self.store.outbox.still_sendable(pending.id):
            self._withdrawn(pending)
            return
        transmission = _Transmission(self.store, pending.id)
        try:
            await self._hand_over(item, transmission)
        except DeliveryUnconfirmed as exc:  # the server may have it: the count stands
            self._unconfirmed(item, exc, transmission.count)
        except SendError as exc:
            transmission.refused()
            self._failed(item, exc)
        else:
            self.store.outbox.mark_sent(pending.id)
            self.sent += 1
            self.server_failures = self.troubles_in_a_row = 0
            if pending.hard_bounces:
                self.store.bounces.clear(pending.subscriber_id)
            self._track(-1)

    async def _hand_over(self, item: _Item, transmission: _Transmission) -> None:
        """The send itself, counted while it is on its way (see `_crowded`)."""
        self.sending += 1
        if self.settings.verp and self.head.secret and isinstance(item.message, DigestMessage):
            # signed once per digest: a bounce to this address names its subscriber
            tag = bounce_tag(self.head.secret, item.pending.subscriber_id)
            item.message.envelope_from = verp_address(envelope_sender(item.message), tag)
        try:
            await self.sender.send(item.message, before_transmit=transmission)
        finally:
            self.sending -= 1

    def _withdrawn(self, pending: Addressee) -> None:
        # unsubscribed (or dropped, suspended) since its batch was read: never send it
        log.info("not sent: %s is no longer subscribed", pending.email)
        self.withdrawn += 1
        self._track(-1)

    def _failed(self, item: _Item, exc: SendError) -> None:
        """A send that did not reach the server, or that the server refused."""
        if isinstance(exc, ServerUnavailable) and self._crowded():
            self._retire(item, exc)
        elif isinstance(exc, ServerUnavailable):
            self._server_down(item, exc)
        elif isinstance(exc, FatalSendError):  # every further message would fail alike
            self._stop(str(exc))  # (or a stop was asked for: its message is withheld too)
            self._track(-1)
        elif isinstance(exc, Withheld):
            self._withdrawn(item.pending)
        elif not exc.permanent:
            if isinstance(exc, ConnectionTrouble):
                self._trouble(exc)
            self._retry_or_leave(item, exc)
        else:
            self._refused(item.pending, exc)
            self._track(-1)

    def _unconfirmed(self, item: _Item, exc: DeliveryUnconfirmed, transmissions: int) -> None:
        """No verdict after the final dot: try once more at most, ever; then never again."""
        self._trouble(exc)
        if transmissions < MAX_TRANSMISSIONS:
            self._retry_or_leave(item, exc)
            return
        self.store.outbox.mark_unconfirmed(item.pending.id, str(exc))
        self.unconfirmed += 1
        self.failed += 1
        self._error(
            f"{exc}; it went out {transmissions} times without a verdict, with the same"
            " Message-ID: not sent again"
        )
        self._track(-1)

    def _trouble(self, exc: ConnectionTrouble) -> None:
        """A timeout or a lost connection: `max_failures_in_a_row` of them stop the sending."""
        self.troubles_in_a_row += 1
        if self.troubles_in_a_row >= self.settings.max_failures_in_a_row:
            self._stop(
                f"stopped sending after {self.troubles_in_a_row} timeouts or lost connections"
                f" in a row with {self.sender.where} (last: {exc}); the rest waits for the"
                " next run"
            )

    def _refused(self, pending: Addressee, exc: SendError) -> None:
        """A permanent refusal: the digest fails; a refused recipient is a hard bounce.

        A bounce is about one address, not about the run: a warning, not a run error.
        """
        self.failed += 1
        if not isinstance(exc, RecipientRefused):
            self._error(str(exc))
            self.store.outbox.mark_attempt_failed(pending.id, str(exc), permanent=True)
            return
        log.warning("send: hard bounce: %s", exc)
        self.bounced += 1
        limit = self.settings.max_hard_bounces
        if self.store.bounces.record(
            pending.id, pending.subscriber_id, str(exc), suspend_after=limit
        ):
            self.suspended += 1
            log.warning(
                "operator notice: subscriber %s suspended after %d hard bounces in a row; last: %s",
                pending.email,
                limit,
                exc,
            )

    def _retry_or_leave(self, item: _Item, exc: SendError) -> None:
        """A 4xx or a lost connection: try again after a pause, or leave it for the next run."""
        item.tries += 1
        if item.tries <= self.settings.retries and not self.stopped:
            self._later(item, self._backoff(item.tries - 1))
            return
        self.store.outbox.mark_attempt_failed(item.pending.id, str(exc), permanent=False)
        if self.stopped:  # the stop's own error line says why the rest waits
            log.info("send: %s (left pending: sending stopped)", exc)
        else:
            self._error(f"{exc} (left pending after {item.tries} tries)")
        self._track(-1)

    def _crowded(self) -> bool:
        """Whether the server turned a connection away while it serves another one: it takes
        fewer connections than `connections` (a relay's limit per client), it is not down."""
        return self.sending > 0 and self.workers - self.retiring > 1

    def _retire(self, item: _Item, exc: ServerUnavailable) -> None:
        """Go on with one connection fewer (this worker ends); the message goes back at once."""
        self.retiring += 1
        log.warning(
            "send: %s takes fewer connections than smtp.connections (%d): going on with %d"
            " (it said: %s)",
            self.sender.where,
            self.settings.connections,
            self.workers - self.retiring,
            exc,
        )
        self._later(item, 0.0)

    def _server_down(self, item: _Item, exc: ServerUnavailable) -> None:
        """The server went away: everyone pauses, the message waits; give up after retries."""
        now = time.monotonic()
        if now >= self.paused_until:  # several workers notice one outage: count it once
            self.server_failures += 1
            if self.server_failures > self.settings.retries:
                self._stop(f"{exc} (tried {self.server_failures} times)")
                self._track(-1)
                return
            self.paused_until = now + self._backoff(self.server_failures - 1)
        self._later(item, max(0.0, self.paused_until - now))

    def _later(self, item: _Item, delay: float) -> None:
        if self.stopped:  # nothing more is sent: no retry to wait for, it stays pending
            self._track(-1)
            return

        async def requeue() -> None:
            await asyncio.sleep(delay)
            await self.queue.put(item)

        task = asyncio.create_task(requeue())
        self.retrying.add(task)
        task.add_done_callback(self._requeue_done)

    def _requeue_done(self, task: asyncio.Task[None]) -> None:
        self.retrying.discard(task)
        # the run stopped: the digest stays pending. Counted here, not in the coroutine: a
        # task cancelled before it first ran never runs its coroutine at all
        if task.cancelled():
            self._track(-1)

    def _backoff(self, attempt: int) -> float:
        return min(float(self.settings.retry_delay * 2**attempt), MAX_RETRY_DELAY)

    def _stop(self, error: str) -> None:
        """Send nothing more: what is queued or waiting stays pending for the next run."""
        if not self.stopped:
            self.stopped = True
            self._error(error)
            for task in self.retrying:
                task.cancel()

    def _error(self, error: str) -> None:
        self.error_count += 1
        if self.error_count <= MAX_LISTED_ERRORS:
            self.errors.append(error)
            log.error("send: %s", error)

    def _report(self) -> DeliveryReport:
        errors = list(self.errors)
        if self.error_count > len(errors):
            more = f"... and {self.error_count - len(errors)} more send errors"
            errors.append(more)
            log.error("send: %s", more)
        return DeliveryReport(
            sent=self.sent,
            failed=self.failed,
            pending=self.store.outbox.pending_count(),
            errors=tuple(errors),
            bounced=self.bounced,
            suspended=self.suspended,
            withdrawn=self.withdrawn,
            unconfirmed=self.unconfirmed,
        )
