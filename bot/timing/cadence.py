"""When a subscriber's digest is due: pure functions of (subscriber, now, last served time).

A subscriber's delivery *slots* are the moments `send_at` on the wall clock of their time
zone: every day (`daily`) or on their weekday (`weekly`). A digest is due when a slot has
passed since the subscriber was last served, so a run that comes late (a worker asleep,
a cron job that missed its minute) still serves the slot once, and a second run in the
same period finds nothing due. Slots are computed on the local calendar with zoneinfo,
so 07:30 stays 07:30 across daylight-saving changes; a time that does not exist on a
spring-forward day is served just after the gap, an ambiguous one at its first occurrence.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.models import Subscriber

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK = re.compile(r"(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)(?::(?P<second>[0-5]\d))?")
#: a weekly subscriber without `send_at` is served at the start of their weekday
_MIDNIGHT = time(0, 0)


def parse_clock(text: str) -> time:
    """`07:30` (or `7:30`, or `07:30:15`) as a time of day; ValueError if it is not one."""
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a time of day {text!r}: write it as HH:MM, e.g. 07:30")
    return time(int(match["hour"]), int(match["minute"]), int(match["second"] or 0))


def format_clock(moment: time) -> str:
    """`07:30`, or `07:30:15` when the seconds matter."""
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")


def parse_weekday(text: str) -> int:
    """`monday` (or `mon`, any case) as 0 ... `sunday` as 6; ValueError otherwise."""
    name = text.strip().lower()
    for index, day in enumerate(WEEKDAYS):
        if name in (day, day[:3]):
            return index
    raise ValueError(f"not a weekday {text!r}: one of {', '.join(WEEKDAYS)}")


def subscriber_zone(subscriber: Subscriber, default_timezone: str) -> ZoneInfo:
    """The zone the subscriber's clock reads in: their own, else the config's."""
    return ZoneInfo(subscriber.timezone or default_timezone)


def slot_on(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The moment (UTC) the wall clock in `zone` shows `at` on `day`.

    In a spring-forward gap the offset before the change applies, which lands just after
    the gap (02:30 on a day that jumps from 02:00 to 03:00 is served at 03:30); in a
    fall-back overlap the first occurrence counts (fold=0).
    """
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def latest_slot(subscriber: Subscriber, now: datetime, default_timezone: str) -> datetime | None:
    """The subscriber's most recent delivery slot at or before `now` (None: no fixed time)."""
    if subscriber.send_at is None and subscriber.frequency != "weekly":
        return None
    at = parse_clock(subscriber.send_at) if subscriber.send_at else _MIDNIGHT
    zone = subscriber_zone(subscriber, default_timezone)
    # aware datetimes of one zone compare by wall clock: compare in UTC only
    now = now.astimezone(UTC)
    day = now.astimezone(zone).date()
    for back in range(9):  # today, or one of the last 8 days for a weekly cadence
        candidate = day - timedelta(days=back)
        if subscriber.frequency == "weekly" and candidate.weekday() != subscriber.weekday:
            continue
        slot = slot_on(candidate, at, zone)
        if slot <= now:
            return slot
    raise AssertionError("unreachable: a slot within 8 days always exists")


def next_slot(subscriber: Subscriber, now: datetime, default_timezone: str) -> datetime | None:
    """The subscriber's first delivery slot strictly after `now` (None: no fixed time)."""
    if subscriber.send_at is None and subscriber.frequency != "weekly":
        return None
    at = parse_clock(subscriber.send_at) if subscriber.send_at else _MIDNIGHT
    zone = subscriber_zone(subscriber, default_timezone)
    now = now.astimezone(UTC)
    day = now.astimezone(zone).date()
    for ahead in range(9):
        candidate = day + timedelta(days=ahead)
        if subscriber.frequency == "weekly" and candidate.weekday() != subscriber.weekday:
            continue
        slot = slot_on(candidate, at, zone)
        if slot > now:
            return slot
    raise AssertionError("unreachable: a slot within 8 days always exists")


def is_due(
    subscriber: Subscriber, now: datetime, served: datetime | None, default_timezone: str
) -> bool:
    """Whether a digest should be made for the subscriber now.

    `served` is when the subscriber was last served (a digest made, or nothing to send at
    their slot), else when they subscribed; None means never. Without `send_at` (and not
    weekly) a subscriber is always due: they get whatever a run finds.
    """
    slot = latest_slot(subscriber, now, default_timezone)
    if slot is None:
        return True
    return served is None or served.astimezone(UTC) < slot


def describe_cadence(subscriber: Subscriber, default_timezone: str) -> str:
    """`daily at 07:30 (Europe/Paris)`, `weekly on monday at 08:00 (UTC)`, or `every run`."""
    zone = subscriber.timezone or default_timezone
    if subscriber.frequency == "weekly":
        at = f" at {subscriber.send_at}" if subscriber.send_at else ""
        return f"weekly on {WEEKDAYS[subscriber.weekday]}{at} ({zone})"
    if subscriber.send_at:
        return f"daily at {subscriber.send_at} ({zone})"
    return "after every run that finds papers"
