"""One cycle: fetch every source, record, match, queue digests, send them.

A failure is data until the run ends: a broken source or a refused recipient is recorded
and reported, and everything else is still delivered.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

from bot.config import Config, SourceSpec
from bot.digest import build_digest
from bot.errors import FetchError, ParseError, SendError
from bot.fetch import Fetcher, Validators, user_agent_for
from bot.match import AlertIndex
from bot.models import Paper
from bot.render import build_message, render_digest
from bot.senders import OutboxSender, Sender, SmtpSender
from bot.sources import FetchWindow, get_kind
from bot.store import FetchRecord, PendingDigest, Store, utcnow

log = logging.getLogger("paperbot")

DEFAULT_FROM = "paperbot <paperbot@localhost>"
#: hosts that ask for a pause between requests (arXiv: one request every 3 seconds)
HOST_INTERVALS = {"arxiv.org": 3.0}


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """What fetching one source produced: its papers, validators to keep, and its record."""

    spec: SourceSpec
    record: FetchRecord
    started: datetime
    papers: tuple[Paper, ...] = ()
    validators: tuple[tuple[str, Validators], ...] = ()


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """How the outbox went: sent, refused for good, left pending, and the errors."""

    sent: int = 0
    failed: int = 0
    pending: int = 0
    errors: tuple[str, ...] = ()


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


async def fetch_source(
    fetcher: Fetcher, spec: SourceSpec, store: Store, now: datetime
) -> SourceOutcome:
    """Fetch and parse every page of one source; any failure becomes the outcome's record."""
    started = utcnow()
    clock = time.monotonic()
    try:
        papers, validators, not_modified = await _fetch_pages(fetcher, spec, store, now)
    except ParseError as exc:
        status, error = "broken", str(exc)
    except FetchError as exc:
        status, error = "error", str(exc)
    except Exception as exc:  # a bug in one kind must not stop the other sources
        log.exception("source %s: unexpected error", spec.name)
        status, error = "error", f"unexpected {type(exc).__name__}: {exc}"
    else:
        status = "ok" if papers else ("not_modified" if not_modified else "empty")
        record = FetchRecord(spec.name, status, len(papers), 0, time.monotonic() - clock)
        return SourceOutcome(spec, record, started, tuple(papers), tuple(validators))
    record = FetchRecord(spec.name, status, 0, 0, time.monotonic() - clock, error)
    return SourceOutcome(spec, record, started)


async def _fetch_pages(
    fetcher: Fetcher, spec: SourceSpec, store: Store, now: datetime
) -> tuple[list[Paper], list[tuple[str, Validators]], bool]:
    kind = get_kind(spec.kind)
    last = store.last_success(spec.name)
    window = FetchWindow(today=now.date(), last_success=last.date() if last else None)
    papers: dict[str, Paper] = {}
    validators: list[tuple[str, Validators]] = []
    not_modified = False
    for start in kind.start_urls(spec.options, window):
        url: str | None = start
        for _page in range(kind.max_pages(spec.options)):
            if url is None:
                break
            # politeness is per host (HOST_INTERVALS), so a mirror or test server is not slowed
            response = await fetcher.get(url, store.validators(url))
            if response.not_modified:
                not_modified = True
                break
            listing = kind.parse(response.body, url, spec.options)
            for paper in listing.papers:
                papers.setdefault(paper.id, paper)
            validators.append((url, response.validators))
            url = listing.next_url
    return list(papers.values()), validators, not_modified


async def fetch_all(config: Config, store: Store, now: datetime) -> list[SourceOutcome]:
    """Fetch every configured source concurrently through one polite client."""
    async with Fetcher(
        user_agent=user_agent_for(config.contact),
        timeout=config.fetch.timeout,
        retries=config.fetch.retries,
        backoff=config.fetch.backoff,
        max_bytes=config.fetch.max_bytes,
        host_intervals=HOST_INTERVALS,
    ) as fetcher:
        return list(
            await asyncio.gather(*(fetch_source(fetcher, s, store, now) for s in config.sources))
        )


# --- record + match -----------------------------------------------------------------------


def record_outcomes(
    store: Store, run_id: int, outcomes: Sequence[SourceOutcome]
) -> list[FetchRecord]:
    """Store each source's papers and fetch record (with its count of new papers)."""
    records: list[FetchRecord] = []
    for outcome in outcomes:
        record = outcome.record
        if outcome.papers:
            result = store.record(outcome.spec.name, outcome.papers)
            record = replace(record, new=len(result.new))
        # validators only after the papers are safe, so a 304 never hides unrecorded papers
        for url, validators in outcome.validators:
            store.save_validators(url, validators)
        store.record_fetch(run_id, record, outcome.started)
        records.append(record)
        _log_fetch(record)
    return records


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
    papers = store.papers_to_match()
    if not papers:
        return 0
    index = AlertIndex.build(store.active_subscribers())
    found = index.match(papers)
    return store.add_matches(found, matched=[p.id for p in papers])


# --- deliver ------------------------------------------------------------------------------


def make_sender(config: Config) -> Sender:
    """The SMTP sender when `smtp:` is configured, else the .eml outbox folder."""
    smtp = config.smtp
    if smtp is None:
        return OutboxSender(config.outbox)
    return SmtpSender(
        host=smtp.host,
        port=smtp.effective_port,
        security=smtp.security,
        username=smtp.username,
        password=smtp.password(),
        timeout=smtp.timeout,
    )


def sender_address(config: Config) -> str:
    """The From address of every digest."""
    return config.smtp.from_ if config.smtp else DEFAULT_FROM


def message_domain(config: Config) -> str:
    """The domain of Message-IDs: the From address's domain."""
    return parseaddr(sender_address(config))[1].rpartition("@")[2] or "localhost"


async def deliver(config: Config, store: Store, sender: Sender) -> DeliveryReport:
    """Send every pending digest; mark each sent only once the server has accepted it."""
    pending = store.pending_digests()
    if not pending:
        return DeliveryReport()
    sent = failed = 0
    errors: list[str] = []
    try:
        async with sender:
            for digest in pending:
                try:
                    await sender.send(_message_for(config, store, digest))
                except SendError as exc:
                    errors.append(f"{digest.subscriber.email}: {exc}")
                    if exc.fatal:
                        break
                    store.mark_attempt_failed(digest.id, str(exc), permanent=exc.permanent)
                    failed += exc.permanent
                    continue
                store.mark_sent(digest.id)
                sent += 1
    except SendError as exc:  # the server is unreachable or refuses us: nothing is marked
        errors.append(str(exc))
    for error in errors:
        log.error("send: %s", error)
    return DeliveryReport(sent, failed, len(pending) - sent - failed, tuple(errors))


def _message_for(config: Config, store: Store, pending: PendingDigest) -> EmailMessage:
    papers = store.papers(m.paper_id for m in pending.matches)
    digest = build_digest(
        pending.subscriber,
        pending.matches,
        papers,
        message_id=pending.message_id,
        created=pending.created,
    )
    rendered = render_digest(digest, list_name=config.list_name)
    return build_message(
        rendered,
        sender=sender_address(config),
        recipient=pending.subscriber.email,
        message_id=pending.message_id,
        date=utcnow(),
        list_id=f"{config.list_name} <{config.list_name}.{message_domain(config)}>",
    )


def skip_pending(store: Store) -> DeliveryReport:
    """`--no-send`: mark every pending digest as delivered without sending it."""
    pending = store.pending_digests()
    for digest in pending:
        store.mark_sent(digest.id, status="skipped")
    return DeliveryReport()


# --- the cycle ----------------------------------------------------------------------------


async def run_once(
    config: Config, *, send: bool = True, dry_run: bool = False, now: datetime | None = None
) -> RunReport:
    """One full cycle; `dry_run` works on a copy of the store and writes .eml files only."""
    store = Store.open(config.database)
    scratch = None
    if dry_run:
        scratch = tempfile.TemporaryDirectory(prefix="paperbot-dry-run-")
        live, store = store, store.backup_to(Path(scratch.name) / "dry-run.db")
        live.close()
    try:
        return await _cycle(config, store, send=send, dry_run=dry_run, now=now or utcnow())
    finally:
        store.close()
        if scratch:
            scratch.cleanup()


async def _cycle(
    config: Config, store: Store, *, send: bool, dry_run: bool, now: datetime
) -> RunReport:
    store.sync_config_subscribers(config.subscribers)
    run_id = store.start_run(now)
    outcomes = await fetch_all(config, store, now)
    fetches = record_outcomes(store, run_id, outcomes)
    matched = match_pending(store)
    store.drop_inactive_pending()
    store.create_digests(message_domain(config))
    if not send:
        delivery = skip_pending(store)
    else:
        sender = OutboxSender(config.outbox) if dry_run else make_sender(config)
        delivery = await deliver(config, store, sender)
    errors = tuple(f"source {f.source}: {f.error}" for f in fetches if f.error) + delivery.errors
    new_papers = sum(f.new for f in fetches)
    report = RunReport(tuple(fetches), new_papers, matched, delivery, errors)
    store.finish_run(run_id, "ok" if report.ok else "failed", _summary(report))
    return report


def _summary(report: RunReport) -> dict[str, object]:
    return {
        "new_papers": report.new_papers,
        "matched": report.matched,
        "sent": report.delivery.sent,
        "failed": report.delivery.failed,
        "pending": report.delivery.pending,
        "errors": list(report.errors),
    }
