"""`paperbot run`: the long-lived worker. APScheduler fetches each source on its schedule
and looks for due digests on the `scheduling.deliver` schedule (every minute by default).

Every job takes the run lock for its own duration, not for the worker's lifetime, so a
cron `paperbot once` (or `paperbot once` by hand) waits for the job in progress, does its
work, and the worker's next job waits for it in turn: they interleave, never overlap.
A fetch job ends by its sources' deadlines (`fetch.deadline`, a source's `deadline:`), so
a stuck server never keeps the lock from the others for longer.
Jobs never overlap themselves (`max_instances=1`), and a job missed while the machine
slept runs once when it wakes (`coalesce`) if it is late by less than `misfire_grace`.
Delivery does not depend on a job firing at an exact moment: who is due is worked out
from the store (bot.timing.cadence), so any later tick serves a missed slot, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.config.settings import Config, SourceSpec
from bot.config.wiring import make_sender
from bot.errors import PaperbotError
from bot.ingest.sources import get_kind
from bot.run.bounces import read_in_worker
from bot.run.lock import RunLock
from bot.run.pipeline import alert_operator, deliver_stage, fetch_stage, run_status
from bot.run.retention import apply_retention
from bot.run.shutdown import Shutdown
from bot.store.rows import utcnow
from bot.store.store import Store
from bot.timing.schedule import Schedule, cron_trigger, next_fire

log = logging.getLogger(__name__)

#: how often the worker reads the bounce mailbox (after a delivery job), and applies retention
BOUNCE_READ_EVERY, RETENTION_EVERY = timedelta(minutes=15), timedelta(hours=24)


@dataclass
class Chore:
    """Work the worker does after a delivery job at most once per `every`; the first time
    at once (so a worker just started reads the mailbox and applies retention)."""

    every: timedelta
    next_time: datetime | None = None

    def due(self, now: datetime) -> bool:
        """True when it is time (and then the next time is `every` from now)."""
        if self.next_time is not None and now < self.next_time:
            return False
        self.next_time = now + self.every
        return True


def source_schedule(spec: SourceSpec) -> Schedule:
    """When the worker fetches this source: its `schedule:`, else its kind's default."""
    if spec.options.schedule:
        return Schedule(spec.options.schedule)
    return get_kind(spec.kind).default_schedule


def schedule_groups(sources: Sequence[SourceSpec]) -> dict[Schedule, list[SourceSpec]]:
    """Sources by schedule: those fetched at the same moments share one job (and one client,
    so that per-host politeness holds across them)."""
    groups: dict[Schedule, list[SourceSpec]] = {}
    for spec in sources:
        groups.setdefault(source_schedule(spec), []).append(spec)
    return groups


def overdue(
    schedule: Schedule, timezone: str, last_attempt: datetime | None, now: datetime
) -> bool:
    """Whether a fetch the schedule asked for since `last_attempt` has not happened."""
    if last_attempt is None:
        return True
    fire = next_fire(schedule, timezone, last_attempt)
    return fire is not None and fire <= now


@dataclass(frozen=True, slots=True)
class EmbeddedWeb:
    """A web server run in the worker's event loop (`run --web`): how to serve, how to stop."""

    serve: Callable[[], Coroutine[Any, Any, None]]
    stop: Callable[[], None]


def embedded_web(config: Config, host: str, port: int) -> EmbeddedWeb:
    """The subscription web app (`bot.web.server`) on uvicorn; SIGTERM/SIGINT stay the worker's."""
    try:
        import uvicorn

        from bot.web.server import create_app, listen
    except ImportError as exc:
        raise PaperbotError(f"run --web: the web app is not available here ({exc})") from None

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the worker's Shutdown handles SIGTERM/SIGINT and stops the server

    app = create_app(config)
    try:
        listener = listen(host, port)
    except OSError as exc:
        raise PaperbotError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    # the same settings as `paperbot web`: no access log (links carry tokens), our log format
    server = Server(
        uvicorn.Config(
            app, log_config=None, access_log=False, proxy_headers=True, server_header=False
        )
    )
    log.info("serving the web app on http://%s:%d/", host, listener.getsockname()[1])

    def stop() -> None:
        server.should_exit = True

    return EmbeddedWeb(serve=lambda: server.serve(sockets=[listener]), stop=stop)


class Worker:
    """The scheduler, its jobs, and a clean stop."""

    def __init__(self, config: Config, shutdown: Shutdown | None = None) -> None:
        self.config = config
        self.shutdown = shutdown or Shutdown()
        self.lock = RunLock(config.database, "paperbot run")
        self.groups = schedule_groups(config.sources)
        self._turn = asyncio.Lock()  # one job at a time inside this process too
        self._running: set[asyncio.Task[Any]] = set()
        # the delivery job runs every minute; its chores need not: a mailbox login, or a
        # retention pass over the whole ledger, each minute would be work for nothing
        self._bounce_reads = Chore(BOUNCE_READ_EVERY)
        self._retention = Chore(RETENTION_EVERY)

    # --- lifetime ----------------------------------------------------------------------------

    async def run(self, web: EmbeddedWeb | None = None) -> int:
        """Catch up, then run the jobs until SIGTERM/SIGINT; 0 after a clean stop."""
        self.shutdown.install()
        server: asyncio.Task[None] | None = None
        try:
            self._sync_subscribers()
            if web is not None:
                server = asyncio.create_task(web.serve())
            await self.catch_up()
            scheduler = self._scheduler()
            if not self.shutdown.requested:
                scheduler.start()
                self._log_plan(scheduler)
                await self.shutdown.event.wait()
                scheduler.pause()  # no new job; the running ones finish first
            await self._drain()
            if scheduler.running:
                scheduler.shutdown(wait=False)
        finally:
            if web is not None and server is not None:
                web.stop()
                await server
            self.shutdown.uninstall()
        log.info("worker stopped")
        return 0

    def _sync_subscribers(self) -> None:
        with self._store() as store:
            store.subscribers.sync_config(self.config.subscribers)

    async def catch_up(self) -> None:
        """Fetch the sources whose scheduled fetch was missed while no worker ran, then
        deliver what is due: a restart never waits a day for the next arXiv listing."""
        await self.deliver_job()

    def _scheduler(self) -> AsyncIOScheduler:
        timezone = self.config.timezone
        scheduler = AsyncIOScheduler(
            timezone=ZoneInfo(timezone),
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(self.config.scheduling.misfire_grace),
            },
        )
        for schedule, specs in self.groups.items():
            names = ", ".join(spec.name for spec in specs)
            scheduler.add_job(
                self.fetch_job,
                schedule.trigger(timezone),
                args=[specs],
                id=f"fetch {names}",
                name=f"fetch {names} at {schedule.describe(timezone)}",
            )
        scheduler.add_job(
            self.deliver_job,
            cron_trigger(self.config.scheduling.deliver, timezone),
            id="deliver",
            name=f"deliver due digests at {self.config.scheduling.deliver} ({timezone})",
        )
        return scheduler

    def _log_plan(self, scheduler: AsyncIOScheduler) -> None:
        for job in scheduler.get_jobs():
            log.info("scheduled: %s; next %s", job.name, job.next_run_time)

    async def _drain(self) -> None:
        """Wait for the jobs in progress: fetches are cancelled, a send finishes its message."""
        running = [task for task in self._running if not task.done()]
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    # --- jobs --------------------------------------------------------------------------------

    async def fetch_job(self, specs: Sequence[SourceSpec]) -> None:
        """Fetch, record and match these sources (one run in the store), then alert if needed.

        Only when a fetch their schedule asked for has not happened yet: the job that
        fires on time, a delivery that comes first after a sleep, or a restart may get
        there first, and a fetch is never done twice for one scheduled time.
        """
        schedule = source_schedule(specs[0])

        async def work(store: Store) -> None:
            now = utcnow()
            last = {h.source: h.last_attempt for h in store.health.sources()}
            timezone = self.config.timezone
            if not any(overdue(schedule, timezone, last.get(s.name), now) for s in specs):
                return
            run_id = store.health.start_run(now)
            fetches, matched = await fetch_stage(
                self.config, store, run_id, specs, now=now, shutdown=self.shutdown
            )
            status = run_status(fetches, interrupted=self.shutdown.requested)
            errors = [f"source {f.source}: {f.error}" for f in fetches if f.error]
            new = sum(f.new for f in fetches)
            store.health.finish_run(
                run_id, status, {"new_papers": new, "matched": matched, "errors": errors}
            )
            level = logging.INFO if new or errors else logging.DEBUG
            log.log(
                level, "fetched %s: %s, %d new, %d matches", _names(specs), status, new, matched
            )
            if not self.shutdown.requested:
                await alert_operator(self.config, store, now=now)

        await self._run_job(f"fetch {_names(specs)}", work)

    async def deliver_job(self) -> None:
        """Make the digests that are due and send what is pending, then alert if needed.

        Overdue fetches go first, so that a worker waking from a sleep delivers the
        listing it missed, not yesterday's.
        """
        for specs in self.groups.values():
            await self.fetch_job(specs)

        async def work(store: Store) -> None:
            now = utcnow()
            report = await deliver_stage(
                self.config, store, make_sender(self.config), now=now, shutdown=self.shutdown
            )
            if report.sent or report.errors:
                log.info(
                    "delivered: %d sent, %d failed, %d pending",
                    report.sent,
                    report.failed,
                    report.pending,
                )
            await alert_operator(
                self.config, store, now=now, delivery=report, shutdown=self.shutdown
            )
            if not self.shutdown.requested and self._bounce_reads.due(now):
                await read_in_worker(self.config)  # after delivery: it never stops the mail
            if not self.shutdown.requested and self._retention.due(now):
                apply_retention(self.config, store, now)

        await self._run_job("deliver", work)

    async def _run_job(self, name: str, work: Callable[[Store], Awaitable[None]]) -> None:
        """One job's turn: the in-process turn, the run lock, an open store; errors logged."""
        task = asyncio.current_task()
        if self.shutdown.requested or task is None:
            return
        self._running.add(task)
        try:
            async with self._turn:
                if not await self._take_lock():
                    return
                try:
                    with self._store() as store:
                        await work(store)
                finally:
                    self.lock.release()
        except PaperbotError as exc:
            log.error("%s: %s", name, exc)
        except Exception:  # a bug in one job must not end the worker
            log.exception("%s: unexpected error", name)
        finally:
            self._running.discard(task)

    async def _take_lock(self) -> bool:
        """Wait for a `paperbot once` in progress; False when a stop ended the wait."""
        if self.shutdown.requested:
            return False
        try:
            with self.shutdown.cancellable():
                await self.lock.acquire_async(self.config.scheduling.misfire_grace)
        except asyncio.CancelledError:
            if not self.shutdown.requested:
                raise
            self.shutdown.absorb()
            return False
        return True

    @contextlib.contextmanager
    def _store(self) -> Iterator[Store]:
        store = Store.open(self.config.database, busy_timeout=self.config.scheduling.database_wait)
        try:
            yield store
        finally:
            store.close()


def _names(specs: Sequence[SourceSpec]) -> str:
    return ", ".join(spec.name for spec in specs)
