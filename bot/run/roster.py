"""The operator's subscriber list (`paperbot subscribers`): list, show, add, remove, suspend,
unsuspend, import and export, without opening SQLite.

Config-file subscribers are the file's: they are listed (origin `config`) but never edited
here. Everyone added here is a store subscriber like a web sign-up (origin `web`), checked
by the config file's rules (`subscriber_entry`) and given the web form's defaults; without
`--confirm` they get the same double opt-in mail as a web sign-up (`confirmation`).

An import reads and checks every row before it writes anything, then writes all rows in one
transaction. Its opt-in mails are sent afterwards, one after the other, paced at the smtp
`rate_limit` (else `OPTIN_PER_SECOND`): a burst of mail to a new list is what receiving
servers take for spam. A mail that fails leaves its address pending; `add` mails it again.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.config.load import subscriber_entry
from bot.config.settings import Config
from bot.config.wiring import make_sender
from bot.errors import ConfigError, FatalSendError, SendError
from bot.mail.deliver import RateLimiter
from bot.mail.links import SECRET_ENV, secret_from_env
from bot.models import Subscriber
from bot.store.store import Store
from bot.store.subscribers import RosterDetails, RosterEntry, SubscriberRecord
from bot.timing.cadence import WEEKDAYS, describe_cadence
from bot.web.forms import category_problems
from bot.web.mail import alert_lines, confirmation, mail_settings

#: the CSV's columns, in the order export writes them (`weekday` matters for weekly ones)
COLUMNS = (
    "email",
    "keywords",
    "authors",
    "categories",
    "exclude",
    "frequency",
    "send_at",
    "timezone",
    "weekday",
)
#: the columns an import needs in its header (`weekday` may be left out)
REQUIRED = COLUMNS[:-1]
LISTS = ("keywords", "authors", "categories", "exclude")
#: opt-in mails per second when the smtp section sets no `rate_limit`
OPTIN_PER_SECOND = 1.0
STATUSES = ("active", "pending", "suspended", "unsubscribed", "removed")
ORIGINS = ("config", "web")


@dataclass(frozen=True, slots=True)
class BadRow:
    """One CSV row that cannot be imported: its line and why."""

    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}" if self.line else self.problem


def open_store(config: Config) -> Store:
    """The store, its config-file subscribers brought in step with the file first (as a
    run does), so that the list shows them as they are."""
    store = Store.open(config.database, busy_timeout=config.scheduling.database_wait)
    store.subscribers.sync_config(config.subscribers)
    return store


def file_wins(config: Config, email: str, listed: set[str] | None = None) -> str | None:
    """The refusal for an address the config file lists, else None (`listed`: the file's
    addresses in lower case, when they are already at hand)."""
    if email.lower() in (listed if listed is not None else file_addresses(config)):
        where = config.path or "the config file"
        return f"{email} is in the config file, which wins: edit {where} instead"
    return None


def file_addresses(config: Config) -> set[str]:
    """The config file's addresses, in lower case."""
    return {s.email.lower() for s in config.subscribers}


# --- list and show -------------------------------------------------------------------------


def table_lines(entries: Sequence[RosterEntry]) -> list[str]:
    """The list as a table, then the counts per status and origin."""
    lines = [f"{'email':40} {'origin':6} {'status':12} {'bounces':>7}  last digest"]
    for entry in entries:
        sub = entry.subscriber
        served = entry.served_at.strftime("%Y-%m-%d %H:%M") if entry.served_at else "never"
        lines.append(
            f"{sub.email:40} {sub.origin:6} {sub.status:12} {entry.hard_bounces:>7}  {served}"
        )
    return [*lines, count_line(entries)]


def count_line(entries: Sequence[RosterEntry]) -> str:
    """`3 subscribers: 2 active, 1 pending; 1 from the config file, 2 from the store`."""
    statuses = _tally(e.subscriber.status for e in entries)
    config = sum(e.subscriber.origin == "config" for e in entries)
    per_status = ", ".join(f"{n} {status}" for status, n in statuses.items())
    return (
        f"{len(entries)} subscribers{': ' + per_status if per_status else ''};"
        f" {config} from the config file, {len(entries) - config} from the store"
    )


def roster_json(entries: Sequence[RosterEntry]) -> str:
    """The list for scripts: every subscriber's settings and state, and the counts."""
    return json.dumps(
        {
            "subscribers": [_entry_json(e) for e in entries],
            "counts": {
                "total": len(entries),
                "status": _tally(e.subscriber.status for e in entries),
                "origin": _tally(e.subscriber.origin for e in entries),
            },
        },
        ensure_ascii=False,
        indent=1,
    )


def _entry_json(entry: RosterEntry) -> dict[str, Any]:
    sub = entry.subscriber
    return {
        **{name: list(getattr(sub, name)) for name in LISTS},
        "email": sub.email,
        "origin": sub.origin,
        "status": sub.status,
        "frequency": sub.frequency,
        "weekday": WEEKDAYS[sub.weekday],
        "send_at": sub.send_at,
        "timezone": sub.timezone,
        "hard_bounces": entry.hard_bounces,
        "last_digest": entry.served_at.isoformat() if entry.served_at else None,
        "subscribed": entry.created.isoformat() if entry.created else None,
    }


def _tally(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def detail_lines(details: RosterDetails, config: Config) -> list[str]:
    """Everything about one subscriber, a line each."""
    entry = details.entry
    sub = entry.subscriber
    origin = "config file (the file wins)" if sub.origin == "config" else "store (web or CLI)"
    return [
        f"email: {sub.email}",
        f"origin: {origin}",
        f"status: {sub.status}",
        "alerts:",
        *(f"  {line}" for line in alert_lines(sub) or ["none"]),
        f"cadence: {describe_cadence(sub, config.timezone)}",
        f"papers per digest: at most {sub.max_papers}, {sub.recommend} recommended",
        f"likes: {len(sub.likes)} papers; feedback: {details.feedback} papers",
        f"subscribed: {_when(entry.created)}; confirmed: {_when(details.confirmed_at)}",
        f"last digest: {_when(details.last_digest)}",
        f"hard bounces in a row: {entry.hard_bounces}",
        f"pending digests: {details.pending_digests}",
    ]


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


# --- add, import, export -------------------------------------------------------------------


def entry_of(fields: dict[str, Any]) -> Subscriber:
    """A subscriber from the given fields, by the config file's rules and the web form's
    rule for category names (ConfigError if not)."""
    given = {k: v for k, v in fields.items() if v not in (None, "", [], ())}
    sub = subscriber_entry(given)
    problems = category_problems(sub.categories)
    if problems:
        raise ConfigError("categories", problems[0])
    return sub


def optin_refusal(config: Config) -> str | None:
    """Why no opt-in mail can be sent (its link goes to the web app), else None."""
    if not config.base_url:
        return "the opt-in mail links to the web app: set base_url (or use --confirm)"
    if not secret_from_env():
        return f"the opt-in mail's link is signed: set {SECRET_ENV} (or use --confirm)"
    return None


def read_csv(path: Path, config: Config) -> tuple[list[Subscriber], list[BadRow]]:
    """Every row of the file checked: the subscribers, or every bad row with its line."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _read_rows(csv.reader(handle), config)
    except OSError as exc:
        return [], [BadRow(0, f"cannot read {path}: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return [], [BadRow(0, f"{path} is not UTF-8 text ({exc.reason})")]
    except csv.Error as exc:
        return [], [BadRow(0, f"{path} is not a CSV file: {exc}")]


def _read_rows(rows: Any, config: Config) -> tuple[list[Subscriber], list[BadRow]]:
    header = [name.strip().lower() for name in next(rows, [])]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        problem = f"the header must name {', '.join(REQUIRED)} (and may name weekday)"
        return [], [BadRow(1, f"{problem}; missing: {missing}, unknown: {unknown}")]
    subscribers: list[Subscriber] = []
    bad: list[BadRow] = []
    seen: dict[str, int] = {}
    listed = file_addresses(config)
    line = rows.line_num + 1
    for row in rows:
        start, line = line, rows.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        problem, sub = _check_row(dict(zip(header, row, strict=False)), len(row), header, listed)
        if sub is not None and sub.email.lower() in seen:
            problem, sub = f"{sub.email} is also on line {seen[sub.email.lower()]}", None
        if sub is None:
            bad.append(BadRow(start, problem))
            continue
        seen[sub.email.lower()] = start
        subscribers.append(sub)
    return subscribers, bad


def _check_row(
    cells: dict[str, str], width: int, header: Sequence[str], listed: set[str]
) -> tuple[str, Subscriber | None]:
    """(problem, None) or ("", the subscriber) for one row's cells."""
    if width != len(header):
        return f"{width} cells, the header has {len(header)}", None
    fields: dict[str, Any] = {k: v.strip() for k, v in cells.items()}
    for name in LISTS:
        fields[name] = [part.strip() for part in fields[name].split(";") if part.strip()]
    try:
        sub = entry_of(fields)
    except ConfigError as exc:
        return str(exc), None
    if sub.email.lower() in listed:
        return f"{sub.email} is in the config file, which wins: edit it instead", None
    return "", sub


def write_csv(path: Path, subscribers: Sequence[Subscriber]) -> None:
    """The subscribers as the CSV an import reads (lists `;`-separated)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for sub in subscribers:
            writer.writerow(
                [
                    sub.email,
                    *(";".join(getattr(sub, name)) for name in LISTS),
                    sub.frequency,
                    sub.send_at or "",
                    sub.timezone or "",
                    WEEKDAYS[sub.weekday],
                ]
            )


async def send_optins(
    config: Config, records: Sequence[SubscriberRecord], report: Callable[[str], None]
) -> list[str]:
    """Mail each pending subscriber the double opt-in link, paced; the addresses not mailed."""
    secret = secret_from_env()
    base = config.base_url
    assert secret, "checked by optin_refusal first"
    assert base, "checked by optin_refusal first"
    settings = mail_settings(config, base)
    max_age = timedelta(hours=config.web.confirm_hours)
    rate = (config.smtp.messages_per_second or OPTIN_PER_SECOND) if config.smtp else None
    pace = RateLimiter(rate)
    unsent: list[str] = []
    done = 0
    try:
        async with make_sender(config) as sender:
            for record in records:
                email = record.subscriber.email
                await pace.wait()
                try:
                    await sender.send(confirmation(settings, secret, record, max_age))
                except FatalSendError:
                    raise
                except SendError as exc:
                    report(f"opt-in mail to {email} not sent: {exc}")
                    unsent.append(email)
                done += 1
    except FatalSendError as exc:  # the server is gone: every later mail would fail too
        if done < len(records):  # (not when closing the connection after the last one)
            report(f"opt-in mails stopped at {records[done].subscriber.email}: {exc}")
            unsent += [r.subscriber.email for r in records[done:]]
    return unsent
