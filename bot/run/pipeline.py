"""One cycle: fetch every source, record, match, queue digests, send them.

A failure is data until the run ends: a broken source or a refused recipient is recorded
and reported, and everything else is still delivered. The cycle is two stages the worker
also runs on their own schedules: `fetch_stage` (fetch, record, match) and
`deliver_stage` (digests for the subscribers who are due, then the outbox).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from bot.alerts.index import AlertIndex, release_freed_memory
from bot.config.settings import Config, SourceSpec
from bot.config.wiring import (
    delivery_settings,
    letterhead,
    make_sender,
    message_domain,
    sender_address,
)
from bot.errors import FetchError, ParseError, StoreError
from bot.ingest.fetch import HOST_INTERVALS as HOST_INTERVALS  # where the source tests look
from bot.ingest.fetch import Deadline, Fetcher, user_agent_for
from bot.ingest.lookup import LookupReport, look_up_seeds
from bot.ingest.sources import FetchWindow, get_kind
from bot.ingest.sources.checks import clean_text
from bot.mail.deliver import DeliveryReport, deliver, skip_pending
from bot.mail.senders import OutboxSender, Sender
from bot.models import FetchStatus, Match, Paper, RunStatus, Subscriber, Validators
from bot.run.bounces import read_after_run
from bot.run.lock import RunLock
from bot.run.operator import SMTP, notify, smtp_problem, source_problems
from bot.run.progress import NO_PROGRESS, Progress
from bot.run.recommending import recommendations
from bot.run.retention import apply_retention
from bot.run.shutdown import GuardedSender, Shutdown
from bot.store.health import FetchRecord
from bot.store.rows import utcnow
from bot.store.store import Store
from bot.timing.cadence import is_due

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """What fetching one source produced: its papers, validators to keep, and its record."""

    spec: SourceSpec
    record: FetchRecord
    started: datetime
    papers: tuple[Paper, ...] = ()
    validators: tuple[tuple[str, Validators], ...] = ()


@dataclass(frozen=True, slots=True)
class RunReport:
    """The outcome of one cycle."""

    fetches: tuple[FetchRecord, ...]
    new_papers: int
    matched: int
    delivery: DeliveryReport
    errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when every source and every send went well."""
        return not self.errors

    @property
    def exit_code(self) -> int:
        """0 when all went well, 1 when a source or a send failed."""
        return 0 if self.ok else 1


# --- fetch + parse ------------------------------------------------------------------------


def source_deadline(config: Config, spec: SourceSpec) -> float:
    """Seconds one fetch of this source may take: its own `deadline:`, else `fetch.deadline`."""
    return spec.options.deadline or config.fetch.deadline


async def fetch_source(
    fetcher: Fetcher, spec: SourceSpec, store: Store, now: datetime, deadline: float
) -> SourceOutcome:
    """Fetch and parse every page of one source; any failure becomes the outcome's record.

    `deadline` seconds bound the whole fetch: its pages, retries, back-off, Retry-After and
    the waits for its host's turn. Past them the source is an `error` naming the deadline.
    """
    started = utcnow()
    clock = time.monotonic()
    status: FetchStatus
    try:
        async with fetcher.within(deadline) as watch:
            papers, validators, not_modified = await _fetch_pages(fetcher, spec, store, now, watch)
    except ParseError as exc:
        status, error = "broken", str(exc)
    except FetchError as exc:
        status, error = "error", _explained(exc, spec)
    except Exception as exc:  # a bug in one kind must not stop the other sources
        log.debug("source %s: unexpected error", spec.name, exc_info=True)
        status, error = "error", clean_text(f"unexpected {type(exc).__name__}: {exc}")[:300]
    else:
        status = "ok" if papers else ("not_modified" if not_modified else "empty")
        record = FetchRecord(spec.name, status, len(papers), 0, time.monotonic() - clock)
        return SourceOutcome(spec, record, started, tuple(papers), tuple(validators))
    record = FetchRecord(spec.name, status, 0, 0, time.monotonic() - clock, error)
    return SourceOutcome(spec, record, started)


def _explained(exc: FetchError, spec: SourceSpec) -> str:
    """The error's line, and what the server's error answer says when the kind can read it."""
    try:
        detail = get_kind(spec.kind).explain(exc.body) if exc.body else None
    except Exception:  # the body of an error answer is hostile too: it only ever adds words
        log.debug("source %s: its error answer could not be read", spec.name, exc_info=True)
        detail = None
    return f"{exc}: {clean_text(detail)[:300]}" if detail else str(exc)


async def _fetch_pages(
    fetcher: Fetcher, spec: SourceSpec, store: Store, now: datetime, deadline: Deadline
) -> tuple[list[Paper], list[tuple[str, Validators]], bool]:
    kind = get_kind(spec.kind)
    last = store.health.last_success(spec.name)
    window = FetchWindow(today=now.date(), last_success=last.date() if last else None)
    papers: dict[str, Paper] = {}
    validators: list[tuple[str, Validators]] = []
    not_modified = False
    for start in kind.start_urls(spec.options, window):
        url: str | None = start
        for _page in range(kind.max_pages(spec.options)):
            if url is None:
                break
            response = await fetcher.get(url, store.health.validators(url), deadline=deadline)
            if response.not_modified:
                not_modified = True
                break
            listing = kind.parse(response.body, url, spec.options)
            for problem in listing.problems:
                log.warning("source %s: %s: %s", spec.name, url, problem)
            for paper in listing.papers:
                papers.setdefault(paper.id, paper)
            if listing.complete:  # a truncated document is asked for in full next time
                validators.append((url, response.validators))
            url = listing.next_url
    return list(papers.values()), validators, not_modified


async def fetch_all(
    config: Config,
    store: Store,
    now: datetime,
    specs: Sequence[SourceSpec] | None = None,
    progress: Progress = NO_PROGRESS,
    *,
    fetcher: Fetcher | None = None,
) -> list[SourceOutcome]:
    """Fetch these sources (default: every one) concurrently through one polite client
    (`fetcher`, else one of its own)."""
    specs = config.sources if specs is None else specs

    async def one(fetcher: Fetcher, spec: SourceSpec) -> SourceOutcome:
        outcome = await fetch_source(fetcher, spec, store, now, source_deadline(config, spec))
        progress.advance("fetch", spec.name)
        return outcome

    progress.start("fetch", len(specs))
    try:
        if fetcher is not None:
            return list(await asyncio.gather(*(one(fetcher, spec) for spec in specs)))
        async with make_fetcher(config) as own:
            return list(await asyncio.gather(*(one(own, spec) for spec in specs)))
    finally:
        progress.finish("fetch")


def make_fetcher(config: Config) -> Fetcher:
    """The one polite HTTP client of a run, as the config sets it."""
    return Fetcher(
        user_agent=user_agent_for(config.contact),
        timeout=config.fetch.timeout,
        retries=config.fetch.retries,
        backoff=config.fetch.backoff,
        max_bytes=config.fetch.max_bytes,
        max_retry_after=config.fetch.max_retry_after,
        host_intervals=config.fetch.hosts,
        default_interval=config.fetch.default_interval,
    )


async def look_up_liked(config: Config, store: Store, fetcher: Fetcher) -> LookupReport:
    """Look up the seeds of active subscribers who want recommendations that the store does
    not know (see bot.ingest.lookup): after recording, so that today's papers are known."""
    keys = store.subscribers.liked_keys()
    if not keys:
        return LookupReport()
    settings = config.recommendations
    return await look_up_seeds(
        fetcher, store, keys, url=settings.lookup_url, deadline=settings.lookup_deadline
    )


# --- record + match -----------------------------------------------------------------------


def record_outcomes(
    store: Store, run_id: int, outcomes: Sequence[SourceOutcome]
) -> list[FetchRecord]:
    """Store each source's papers and fetch record (with its count of new papers).

    Whatever goes wrong while one source's papers are stored becomes that source's error
    (nothing of them is kept: `store.papers.record` is one transaction); the others are stored.
    A StoreError (disk full, locked, damaged) is about the store, not the source: it stops
    the run with its own one line.
    """
    records: list[FetchRecord] = []
    for outcome in outcomes:
        try:
            record = _record_papers(store, outcome)
        except StoreError:
            raise
        except Exception as exc:  # one source's data must not stop the run
            log.debug("source %s: storing its papers failed", outcome.spec.name, exc_info=True)
            problem = clean_text(f"{type(exc).__name__}: {exc}")[:300]
            error = f"storing what it listed failed ({problem})"
            record = replace(outcome.record, status="error", items=0, new=0, error=error)
        try:
            store.health.record_fetch(run_id, record, outcome.started)
        except StoreError:
            raise
        except Exception as exc:
            log.error("source %s: its fetch could not be recorded: %s", record.source, exc)
        records.append(record)
        _log_fetch(record)
    return records


def _record_papers(store: Store, outcome: SourceOutcome) -> FetchRecord:
    """Store one source's papers, then its validators; its record with the count of new ones."""
    record = outcome.record
    if outcome.papers:
        result = store.papers.record(outcome.spec.name, outcome.papers)
        record = replace(record, new=len(result.new))
    # validators only after the papers are safe, so a 304 never hides unrecorded papers
    for url, validators in outcome.validators:
        store.health.save_validators(url, validators)
    return record


def _log_fetch(record: FetchRecord) -> None:
    if record.error:
        log.error("source %s: %s: %s", record.source, record.status, record.error)
    else:
        log.info(
            "source %s: %s, %d items, %d new",
            record.source,
            record.status,
            record.items,
            record.new,
        )


def match_pending(store: Store) -> int:
    """Match every paper waiting for it against all active subscribers; commit both at once."""
    papers = store.papers.to_match()
    if not papers:
        return 0
    try:
        return _match(store, papers)
    finally:
        release_freed_memory()  # the index and the matches are gone by now


def _match(store: Store, papers: list[Paper]) -> int:
    """Build the index, match, recommend, store both in one commit (all freed on return)."""
    subscribers = store.subscribers.active()
    found = AlertIndex.build(subscribers).match(papers)
    for email, recommended in _recommended(store, subscribers, papers, found).items():
        found[email] = [*found.get(email, ()), *recommended]
    return store.matches.add(found, matched=[p.id for p in papers])


def _recommended(
    store: Store, subscribers: list[Subscriber], papers: list[Paper], found: dict[str, list[Match]]
) -> dict[str, list[Match]]:
    """The recommend stage's matches; none, with one error line, when it fails (a bug there
    must not cost anyone their alert matches)."""
    try:
        return recommendations(store, subscribers, papers, found)
    except StoreError:
        raise
    except Exception as exc:
        log.debug("recommendations failed", exc_info=True)
        problem = clean_text(f"{type(exc).__name__}: {exc}")[:300]
        log.error("recommendations: %s; this batch is matched without them", problem)
        return {}


# --- deliver: see bot/mail/deliver.py ---------------------------------------------------------


# --- the cycle ----------------------------------------------------------------------------


async def run_once(
    config: Config,
    *,
    send: bool = True,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: Progress = NO_PROGRESS,
    shutdown: Shutdown | None = None,
) -> RunReport:
    """One full cycle, holding the run lock (LockBusy if another run keeps it too long).

    `dry_run` works on a copy of the store and writes .eml files only (it needs no lock).
    """
    lock = RunLock(config.database, "paperbot once")
    if not dry_run:
        await lock.acquire_async(config.scheduling.lock_wait)
    try:
        store = Store.open(config.database, busy_timeout=config.scheduling.database_wait)
        scratch = None
        if dry_run:
            scratch = tempfile.TemporaryDirectory(prefix="paperbot-dry-run-")
            live, store = store, store.backup_to(Path(scratch.name) / "dry-run.db")
            live.close()
        try:
            return await _cycle(
                config,
                store,
                send=send,
                dry_run=dry_run,
                now=now or utcnow(),
                progress=progress,
                shutdown=shutdown or Shutdown(),
            )
        finally:
            store.close()
            if scratch:
                scratch.cleanup()
    finally:
        lock.release()


async def _cycle(
    config: Config,
    store: Store,
    *,
    send: bool,
    dry_run: bool,
    now: datetime,
    progress: Progress,
    shutdown: Shutdown,
) -> RunReport:
    store.subscribers.sync_config(config.subscribers)
    run_id = store.health.start_run(now)
    fetches, matched = await fetch_stage(
        config, store, run_id, config.sources, now=now, progress=progress, shutdown=shutdown
    )
    delivery = DeliveryReport()
    if not send:
        store.outbox.drop_inactive()
        store.outbox.create(message_domain(config), now)  # priming: everyone, due or not
        delivery = skip_pending(store)
    elif not shutdown.requested:
        sender = OutboxSender(config.outbox) if dry_run else make_sender(config)
        delivery = await deliver_stage(
            config, store, sender, now=now, progress=progress, shutdown=shutdown
        )
    errors = tuple(f"source {f.source}: {f.error}" for f in fetches if f.error) + delivery.errors
    if send and not dry_run and not shutdown.requested:
        bounce_error = read_after_run(config, store)  # after delivery: it never stops the mail
        errors += (bounce_error,) if bounce_error else ()
    if shutdown.requested:
        stopped = f"stopped by {shutdown.signal_name}; what is left waits for the next run"
        log.warning("%s", stopped)
        errors += (stopped,)
    new_papers = sum(f.new for f in fetches)
    report = RunReport(tuple(fetches), new_papers, matched, delivery, errors)
    status = run_status(fetches, delivery, interrupted=shutdown.requested)
    store.health.finish_run(run_id, status, _summary(report))
    if send and not dry_run:
        await alert_operator(config, store, now=now, delivery=delivery, shutdown=shutdown)
    if not dry_run:  # a dry run's store is a scratch copy, thrown away
        apply_retention(config, store, now)
    return report


async def fetch_stage(
    config: Config,
    store: Store,
    run_id: int,
    specs: Sequence[SourceSpec],
    *,
    now: datetime,
    progress: Progress = NO_PROGRESS,
    shutdown: Shutdown | None = None,
) -> tuple[list[FetchRecord], int]:
    """Fetch these sources, record what they list, match what is new; ([], 0) when stopped.

    A stop cancels the fetch itself: nothing of it is recorded yet, so nothing is lost.
    """
    shutdown = shutdown or Shutdown()
    async with make_fetcher(config) as fetcher:
        try:
            with shutdown.cancellable():
                outcomes = await fetch_all(config, store, now, specs, progress, fetcher=fetcher)
        except asyncio.CancelledError:
            if not shutdown.requested:
                raise
            shutdown.absorb()
            return [], 0
        fetches = record_outcomes(store, run_id, outcomes)
        # the seeds go through the sources' fetcher: export.arxiv.org's interval holds for both
        try:
            with shutdown.cancellable():
                await look_up_liked(config, store, fetcher)
        except asyncio.CancelledError:
            if not shutdown.requested:
                raise
            shutdown.absorb()  # what was recorded is still matched; the lookup waits
    return fetches, match_pending(store)


def due_subscriber_ids(config: Config, store: Store, now: datetime) -> list[int]:
    """The active subscribers whose digest is due at `now` (see bot.timing.cadence)."""
    return [
        subscriber_id
        for subscriber_id, subscriber, served in store.subscribers.cadence_marks()
        if is_due(subscriber, now, served, config.timezone)
    ]


async def deliver_stage(
    config: Config,
    store: Store,
    sender: Sender,
    *,
    now: datetime,
    progress: Progress = NO_PROGRESS,
    shutdown: Shutdown | None = None,
) -> DeliveryReport:
    """Put the due subscribers' matches into digests, then send every pending digest.

    After a stop no new message is started; the one in flight finishes and is marked.
    """
    stop = shutdown or Shutdown()
    store.outbox.drop_inactive()
    due = due_subscriber_ids(config, store, now)
    made = store.outbox.create(message_domain(config), now, subscriber_ids=due, served=True)
    if due:
        log.debug("%d subscribers due now, %d new digests", len(due), made)
    if progress.enabled:
        progress.start("send", store.outbox.pending_count())
    guarded = GuardedSender(
        sender,
        stop,
        on_sent=lambda message: progress.advance("send", str(message["To"])),
    )
    try:
        return await deliver(
            store, guarded, letterhead(config), delivery_settings(config), stop=stop.event
        )
    finally:
        progress.finish("send")


def run_status(
    fetches: Sequence[FetchRecord],
    delivery: DeliveryReport | None = None,
    *,
    interrupted: bool = False,
) -> RunStatus:
    """`ok`; `partial` (some source or send failed); `failed` (every source failed).

    Monitoring (`paperbot status --max-age`) counts `ok` and `partial` runs as alive.
    """
    if interrupted:
        return "interrupted"
    failed = sum(1 for f in fetches if f.error)
    if fetches and failed == len(fetches):
        return "failed"
    return "partial" if failed or (delivery and delivery.errors) else "ok"


async def alert_operator(
    config: Config,
    store: Store,
    *,
    now: datetime,
    delivery: DeliveryReport | None = None,
    shutdown: Shutdown | None = None,
) -> None:
    """Tell the operator what broke or recovered (sources always; mail after a delivery)."""
    names = [spec.name for spec in config.sources]
    watched, problems = source_problems(
        store.health.sources(), names, config.alerts.source_failures
    )
    stopped = shutdown is not None and shutdown.requested
    if delivery is not None and not stopped:
        smtp = smtp_problem(delivery.sent, delivery.pending, delivery.errors)
        if smtp is not None:
            watched.add(SMTP)
            problems |= smtp
    try:
        await notify(
            config,
            store,
            make_sender(config),
            from_address=sender_address(config),
            watched=watched,
            problems=problems,
            now=now,
        )
    except Exception:  # an alert must never cost a run its result
        log.exception("operator alerts failed")


def _summary(report: RunReport) -> dict[str, object]:
    return {
        "new_papers": report.new_papers,
        "matched": report.matched,
        "sent": report.delivery.sent,
        "failed": report.delivery.failed,
        "bounced": report.delivery.bounced,
        "unconfirmed": report.delivery.unconfirmed,
        "pending": report.delivery.pending,
        "errors": list(report.errors),
    }
