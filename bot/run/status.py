"""What `paperbot status` says, and why monitoring should worry (pure: text from the store's
status, run history and a clock).

Monitoring worries when no run went well for `max_age`, when a digest has waited that long,
or when a configured source has been failing that long: a source that failed once an hour
ago is not a problem yet, one that never worked since it was added a day ago is. A quiet day
(`empty`) is not a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from bot.store.health import RunRecord, SourceHealth
from bot.store.notices import AlertState
from bot.store.store import READ_BACK_DAYS, StoreStatus


def status_lines(
    status: StoreStatus,
    problems: Iterable[AlertState],
    configured: Sequence[str],
    now: datetime,
    max_age: timedelta,
) -> list[str]:
    """The report: last runs, counts, each source's health, open operator problems."""
    lines = [
        f"last run: {when(status.last_run)} ({status.last_run_status or 'never'})",
        f"last good run: {when(status.last_good_run)}",
        f"papers: {status.papers}, active subscribers: {status.subscribers}",
        _digest_line(status),
        *_bounce_lines(status),
        *_read_back_lines(status),
        "sources:",
    ]
    known = {health.source for health in status.sources}
    for health in status.sources:
        lines.append(_source_line(health, health.source in configured, now, max_age))
    lines += [f"  {name}: never fetched" for name in configured if name not in known]
    lines += [f"problem since {when(p.since)}: {p.message}" for p in problems]
    return lines


def _digest_line(status: StoreStatus) -> str:
    line = (
        f"digests: {status.sent_digests} sent, {status.pending_digests} pending,"
        f" {status.failed_digests} failed"
    )
    if status.unconfirmed_digests:
        line += f", {status.unconfirmed_digests} unconfirmed (sent twice without a verdict)"
    return line


def _bounce_lines(status: StoreStatus) -> list[str]:
    """Addresses refused for good at their last delivery, and how many are suspended."""
    if not (status.bounced_subscribers or status.suspended_subscribers):
        return []
    return [
        f"bounces: {status.bounced_subscribers} addresses refused at their last delivery,"
        f" {status.suspended_subscribers} subscribers suspended",
        *(
            f"  {bounce.email} ({bounce.status}, {bounce.in_a_row} in a row): {bounce.error}"
            for bounce in status.bounces
        ),
    ]


#: how each outcome of a message read back reads in `paperbot status`
_READ_BACK = {
    "hard_bounce": "hard",
    "soft_bounce": "soft",
    "unsubscribed": "unsubscribed by mail",
    "ignored": "for no subscriber",
    "reported": "left unread (not a bounce)",
}


def _read_back_lines(status: StoreStatus) -> list[str]:
    """What the bounce mailbox held lately (nothing when it was not read, or empty)."""
    if not status.read_back:
        return []
    counts = ", ".join(
        f"{status.read_back.get(outcome, 0)} {words}"
        for outcome, words in _READ_BACK.items()
        if status.read_back.get(outcome) or outcome in ("hard_bounce", "soft_bounce")
    )
    return [f"bounces read back in the last {READ_BACK_DAYS} days: {counts}"]


def _source_line(health: SourceHealth, configured: bool, now: datetime, max_age: timedelta) -> str:
    line = (
        f"  {health.source}: {health.last_status}, last success {when(health.last_success)},"
        f" {health.items} items / {health.new} new"
    )
    if health.consecutive_failures:
        line += f", {health.consecutive_failures} failures in a row: {health.last_error}"
    if health.failing_since is not None:
        line += f"; failing since {when(health.failing_since)}"
        if configured and failing_too_long(health, now, max_age):
            line += f", more than {hours(max_age)}: FAILING"
    if not configured:
        line += " (no longer in the config)"
    return line


def failing_too_long(health: SourceHealth, now: datetime, max_age: timedelta) -> bool:
    """Whether the source has had no successful fetch since failing began, `max_age` ago."""
    return health.failing_since is not None and now - health.failing_since > max_age


def stale_reasons(
    status: StoreStatus, configured: Sequence[str], now: datetime, max_age: timedelta
) -> list[str]:
    """Every reason monitoring should worry, one line each (none: all is well)."""
    reasons = [reason] if (reason := stale_reason(status, now, max_age)) else []
    for health in status.sources:
        if health.source in configured and failing_too_long(health, now, max_age):
            reasons.append(_failing_reason(health, max_age))
    return reasons


def stale_reason(status: StoreStatus, now: datetime, max_age: timedelta) -> str | None:
    """Why monitoring should worry about the whole bot (no good run lately, mail stuck)."""
    if status.last_good_run is None:
        return "no run has succeeded yet"
    if now - status.last_good_run > max_age:
        return (
            f"the last good run was at {when(status.last_good_run)}, more than {hours(max_age)} ago"
        )
    if status.oldest_pending and now - status.oldest_pending > max_age:
        return (
            f"a digest has waited since {when(status.oldest_pending)}, more than {hours(max_age)}:"
            " mail is not going out"
        )
    return None


def _failing_reason(health: SourceHealth, max_age: timedelta) -> str:
    error = first_line(health.last_error or health.last_status or "")
    if health.last_success is None:
        return (
            f"source {health.source} has never been fetched successfully since its first try"
            f" at {when(health.failing_since)}, more than {hours(max_age)} ago: {error}"
        )
    return (
        f"source {health.source} has failed since {when(health.failing_since)}"
        f" ({health.consecutive_failures} fetches in a row), more than {hours(max_age)}: {error}"
    )


def run_lines(runs: Sequence[RunRecord]) -> list[str]:
    """The run history, newest first: start, duration, outcome, counts, the first error."""
    if not runs:
        return ["runs: none yet"]
    return ["runs, newest first:", *(f"  {_run_line(run)}" for run in runs)]


def _run_line(run: RunRecord) -> str:
    took = duration(run.finished - run.started) if run.finished else "unfinished"
    counts = (
        f"{_count(run.new_papers)} new papers, {_count(run.matched)} matched,"
        f" {_count(run.sent)} sent, {_count(run.failed)} failed"
    )
    line = f"{when(run.started)}, {took}, {run.status or 'unfinished'}: {counts}"
    if run.errors:
        line += f"; {first_line(run.errors[0])}"
        if len(run.errors) > 1:
            line += f" (and {len(run.errors) - 1} more)"
    return line


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def first_line(text: str, limit: int = 200) -> str:
    """The first line of a message, at most `limit` characters."""
    line = text.strip().split("\n", 1)[0].strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def duration(span: timedelta) -> str:
    """`12 s`, `3 min 5 s`, `2 h 4 min`."""
    seconds = max(0, round(span.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def hours(span: timedelta) -> str:
    """`26 h`."""
    return f"{span.total_seconds() / 3600:g} h"


def when(moment: datetime | None) -> str:
    """`2025-06-02 09:00 UTC`, or `never`."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"
