"""Operator alerts to `admin_email`: a broken source, a failing mail server, a suspended
subscriber, and the recovery afterwards.

Each recurring problem has a key (`source:arxiv`, `smtp`) and a state in the store. The
operator hears of a problem when it starts, at most once a day while it lasts, and once
more when it is over; a flapping source cannot flood them. An alert that cannot be mailed
(the mail server is the problem, or there is no `admin_email`) goes to the log in full,
and counts as told: trying again through a broken channel on every run would only repeat
the same failure, and the recovery mail later tells the story.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from bot.config.settings import Config
from bot.errors import SendError
from bot.mail.senders import Sender
from bot.store.health import SourceHealth
from bot.store.notices import AlertState, Event
from bot.store.store import Store

log = logging.getLogger(__name__)

#: never more than one alert per problem in this long
ALERT_INTERVAL = timedelta(days=1)
SMTP = "smtp"


@dataclass(frozen=True, slots=True)
class Notice:
    """One mail to the operator."""

    problem: str
    subject: str
    body: str


def source_key(name: str) -> str:
    """The problem key of a source."""
    return f"source:{name}"


def source_problems(
    health: Iterable[SourceHealth], names: Iterable[str], failures: int
) -> tuple[set[str], dict[str, str]]:
    """Which configured sources are watched (have been fetched) and which are broken, and why.

    Broken: the last fetch found the page changed or an error document (`broken`), or
    `failures` fetches in a row failed.
    """
    configured = set(names)
    watched: set[str] = set()
    problems: dict[str, str] = {}
    for source in health:
        if source.source not in configured or source.last_status is None:
            continue
        key = source_key(source.source)
        watched.add(key)
        if source.last_status == "broken":
            problems[key] = f"source {source.source} is broken: {source.last_error}"
        elif source.consecutive_failures >= failures:
            problems[key] = (
                f"source {source.source} failed {source.consecutive_failures} times in a row:"
                f" {source.last_error}"
            )
    return watched, problems


def smtp_problem(sent: int, pending: int, errors: Sequence[str]) -> dict[str, str] | None:
    """The mail server's state after a delivery, or None when nothing was tried.

    A problem when digests stay pending because of an error (server unreachable, login
    refused, 4xx); one recipient refused for good is a bounce, not a server problem.
    """
    if pending and errors:
        return {SMTP: f"mail could not be sent, {pending} digests wait: {errors[0]}"}
    if sent:
        return {}
    return None


def plan(
    states: Mapping[str, AlertState],
    watched: Iterable[str],
    problems: Mapping[str, str],
    now: datetime,
) -> tuple[list[AlertState], list[Notice]]:
    """What to remember and what to mail, for the watched problem keys (pure)."""
    updates: list[AlertState] = []
    notices: list[Notice] = []
    for key in sorted(set(watched)):
        old = states.get(key)
        if key in problems:
            new, notice = _still_wrong(old, key, problems[key], now)
        elif old is not None and old.state == "problem":
            new, notice = _recovered(old, now)
        else:
            continue
        if new != old:
            updates.append(new)
        if notice is not None:
            notices.append(notice)
    return updates, notices


def _still_wrong(
    old: AlertState | None, key: str, message: str, now: datetime
) -> tuple[AlertState, Notice | None]:
    ongoing = old is not None and old.state == "problem"
    since = old.since if old is not None and ongoing else now
    quiet = old is not None and old.last_alert is not None and now - old.last_alert < ALERT_INTERVAL
    if quiet and old is not None:
        return AlertState(key, "problem", message, since, old.told, old.last_alert), None
    body = (
        f"{message}\n\nSince {_when(since)}. paperbot goes on with everything else;"
        " `paperbot status` shows the details. You will hear again when it recovers, or"
        " in a day if it does not."
    )
    notice = Notice(key, f"problem: {message}", body)
    return AlertState(key, "problem", message, since, "problem", now), notice


def _recovered(old: AlertState, now: datetime) -> tuple[AlertState, Notice | None]:
    new = AlertState(old.problem, "ok", old.message, now, old.told, old.last_alert)
    if old.told != "problem":
        return new, None
    what = "mail delivery" if old.problem == SMTP else old.problem.replace(":", " ", 1)
    body = (
        f"{what} works again (at {_when(now)}).\n\nThe problem, since {_when(old.since)}:"
        f"\n{old.message}"
    )
    return AlertState(old.problem, "ok", old.message, now, "ok", old.last_alert), Notice(
        old.problem, f"recovered: {what}", body
    )


def event_notices(events: Iterable[Event]) -> list[Notice]:
    """One notice per operator event (a subscriber suspended after hard bounces)."""
    notices = []
    for event in events:
        what = event.kind.replace("_", " ")
        who = f" {event.email}" if event.email else ""
        notices.append(
            Notice(
                f"event:{event.id}",
                f"{what}:{who}",
                f"{what}:{who} at {_when(event.at)}\n{event.detail}",
            )
        )
    return notices


async def notify(
    config: Config,
    store: Store,
    sender: Sender,
    *,
    from_address: str,
    watched: Iterable[str],
    problems: Mapping[str, str],
    now: datetime,
) -> list[Notice]:
    """Work out, mail and remember the operator alerts due now; return what was told."""
    updates, notices = plan(store.notices.alert_states(), watched, problems, now)
    events = store.notices.unnotified_events()
    notices += event_notices(events)
    if notices:
        await _tell(config, sender, from_address, notices, now)
    for update in updates:
        store.notices.save_alert_state(update)
    if events:
        store.notices.mark_events_notified((event.id for event in events), now)
    return notices


async def _tell(
    config: Config, sender: Sender, from_address: str, notices: Sequence[Notice], now: datetime
) -> None:
    if config.admin_email is None:
        for notice in notices:
            log.warning("operator alert (no admin_email to mail it to): %s", notice.subject)
        return
    try:
        async with sender:
            for notice in notices:
                await sender.send(_message(notice, from_address, config, now))
                log.info("operator alert sent to %s: %s", config.admin_email, notice.subject)
    except SendError as exc:
        log.error("cannot mail operator alerts to %s: %s", config.admin_email, exc)
        for notice in notices:
            log.error("operator alert: %s", notice.subject)


def _message(notice: Notice, from_address: str, config: Config, now: datetime) -> EmailMessage:
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = config.admin_email
    message["Subject"] = f"[{config.list_name}] {notice.subject}"[:900]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("alert", domain=domain)
    # RFC 3834: mail robots must not answer this one
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(notice.body + "\n")
    return message


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
