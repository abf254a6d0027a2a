"""Cron schedules: crontab expressions (5 fields, or 6 with seconds first) as APScheduler triggers.

Weekdays follow crontab, not APScheduler 3.x: `0` and `7` are Sunday, `1-5` is Monday to
Friday (APScheduler 3 counts from Monday; every numeric weekday is translated to a name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.errors import CronError

#: APScheduler's weekday names, Monday first
_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: crontab's weekday numbers: 0 (and 7) Sunday, 1 Monday ... 6 Saturday
_CRONTAB_DAY = {name: (index + 1) % 7 for index, name in enumerate(_NAMES)}
_DAY_TERM = re.compile(r"(?P<first>\*|\w+)(?:-(?P<last>\w+))?(?:/(?P<step>\d+))?")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron expression and the time zone it is read in (None: the config's `timezone`)."""

    cron: str
    timezone: str | None = None

    def trigger(self, default_timezone: str) -> CronTrigger:
        """The APScheduler trigger firing on this schedule."""
        return cron_trigger(self.cron, self.timezone or default_timezone)

    def describe(self, default_timezone: str) -> str:
        """`30 0 * * 1-5 (America/New_York)`, as check-config shows it."""
        return f"{self.cron} ({self.timezone or default_timezone})"


def cron_trigger(expression: str, timezone: str = "UTC") -> CronTrigger:
    """The trigger for `minute hour day month weekday`, or six fields with `second` first."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise CronError(
            f"not a cron expression {expression!r}: expected 5 fields "
            f"(minute hour day month weekday) or 6 (seconds first), got {len(fields)}"
        )
    second = fields.pop(0) if len(fields) == 6 else "0"
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_weekdays(weekday),
            timezone=ZoneInfo(timezone),
        )
    except (ValueError, KeyError) as exc:
        raise CronError(f"not a cron expression {expression!r}: {exc}") from None


def check_cron(expression: str) -> str:
    """The expression if it parses and ever fires (raises CronError otherwise); for config
    validation (`0 0 30 2 *` parses, and the worker would wait for it for ever)."""
    if cron_trigger(expression).get_next_fire_time(None, datetime.now(UTC)) is None:
        raise CronError(f"{expression!r} never fires: no month has that day")
    return expression


def next_fire(schedule: Schedule, default_timezone: str, since: datetime) -> datetime | None:
    """The first moment at or after `since` when the schedule fires (None: never again)."""
    fire: datetime | None = schedule.trigger(default_timezone).get_next_fire_time(None, since)
    return fire


def _weekdays(field: str) -> str:
    """A crontab weekday field in APScheduler 3's terms (explicit names, Sunday = 0 or 7)."""
    if field == "*":
        return field
    days: set[int] = set()
    for term in field.split(","):
        days |= _weekday_term(term.strip().lower(), field)
    return ",".join(_NAMES[(day - 1) % 7] for day in sorted(days, key=lambda d: (d - 1) % 7))


def _weekday_term(term: str, field: str) -> set[int]:
    match = _DAY_TERM.fullmatch(term)
    if match is None:
        raise CronError(f"weekday {field!r}: cannot read {term!r}")
    step = int(match["step"] or 1)
    if step < 1:
        raise CronError(f"weekday {field!r}: a step must be at least 1")
    if match["first"] == "*":
        if match["last"]:
            raise CronError(f"weekday {field!r}: cannot read {term!r}")
        first, last = 0, 6
    else:
        first = _day_number(match["first"], field)
        last = _day_number(match["last"], field) if match["last"] else first
        if match["last"] and last == 0:
            last = 7  # `fri-sun`, `5-0`: Sunday closes the week
        if match["step"] and not match["last"]:
            last = 6
    if last < first:
        raise CronError(f"weekday {field!r}: range {term!r} runs backwards")
    return {day % 7 for day in range(first, last + 1, step)}


def _day_number(text: str, field: str) -> int:
    if text.isascii() and text.isdigit() and int(text) <= 7:
        return int(text)
    if text[:3] in _CRONTAB_DAY and len(text) == 3:
        return _CRONTAB_DAY[text]
    raise CronError(f"weekday {field!r}: {text!r} is not a day (0-7 or sun..sat)")
