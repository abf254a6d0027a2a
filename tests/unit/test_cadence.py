"""When a digest is due: local wall-clock time across DST changes, weekly cadence, catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.models import Subscriber
from bot.timing.cadence import is_due, latest_slot, next_slot, parse_clock, parse_weekday

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def daily(at: str, zone: str | None = "Europe/Paris") -> Subscriber:
    return Subscriber(email="ada@example.org", send_at=at, timezone=zone)


def weekly(weekday: int, at: str | None = "08:00", zone: str = "UTC") -> Subscriber:
    return Subscriber(
        email="ada@example.org", frequency="weekly", weekday=weekday, send_at=at, timezone=zone
    )


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


def deliveries(sub: Subscriber, start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Simulate a run every `step` from start to end; return when a digest was made."""
    # step in UTC: aware arithmetic in a DST zone would walk the wall clock through the gap
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    served: datetime | None = start
    made = []
    now = start
    while now <= end:
        if is_due(sub, now, served, "UTC"):
            made.append(now)
            served = now
        now += step
    return made


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        ((2025, 3, 29), 6),  # CET, UTC+1
        ((2025, 3, 30), 5),  # the clocks went forward at 02:00: CEST, UTC+2
        ((2025, 3, 31), 5),
        ((2025, 10, 25), 5),  # last day of CEST
        ((2025, 10, 26), 6),  # back to CET at 03:00
    ],
)
def test_daily_slot_stays_at_local_0730_across_dst_in_paris(
    day: tuple[int, int, int], utc_hour: int
) -> None:
    sub = daily("07:30")
    evening = local(PARIS, *day, 23, 0)
    assert latest_slot(sub, evening, "UTC") == datetime(*day, utc_hour, 30, tzinfo=UTC)
    assert latest_slot(sub, evening, "UTC") == local(PARIS, *day, 7, 30)


def test_a_run_every_ten_minutes_across_the_spring_change_mails_once_a_day_at_0730() -> None:
    sub = daily("07:30")
    made = deliveries(
        sub,
        start=local(PARIS, 2025, 3, 28, 12, 0),
        end=local(PARIS, 2025, 4, 1, 12, 0),
        step=timedelta(minutes=10),
    )
    assert [m.astimezone(PARIS).strftime("%m-%d %H:%M") for m in made] == [
        "03-29 07:30",
        "03-30 07:30",
        "03-31 07:30",
        "04-01 07:30",
    ]


def test_new_york_autumn_change_mails_once_at_the_first_0130() -> None:
    # 2025-11-02: 01:30 happens twice in New York (EDT, then EST an hour later)
    sub = daily("01:30", "America/New_York")
    made = deliveries(
        sub,
        start=local(NEW_YORK, 2025, 11, 1, 12, 0),
        end=local(NEW_YORK, 2025, 11, 3, 12, 0),
        step=timedelta(minutes=15),
    )
    assert [m.astimezone(UTC).strftime("%m-%d %H:%M") for m in made] == [
        "11-02 05:30",  # 01:30 EDT; the second 01:30 (06:30 UTC) is not a new day
        "11-03 06:30",  # 01:30 EST
    ]


def test_new_york_spring_gap_time_is_served_once_just_after_the_gap() -> None:
    # 2025-03-09: 02:00 jumps to 03:00 in New York; 02:30 does not exist that day
    sub = daily("02:30", "America/New_York")
    made = deliveries(
        sub,
        start=local(NEW_YORK, 2025, 3, 8, 12, 0),
        end=local(NEW_YORK, 2025, 3, 10, 12, 0),
        step=timedelta(minutes=15),
    )
    assert [m.astimezone(NEW_YORK).strftime("%m-%d %H:%M") for m in made] == [
        "03-09 03:30",
        "03-10 02:30",
    ]


def test_weekly_subscriber_gets_one_digest_a_week_on_their_weekday() -> None:
    sub = weekly(parse_weekday("wednesday"), "09:15")
    made = deliveries(
        sub,
        start=datetime(2025, 6, 2, 0, 0, tzinfo=UTC),  # a Monday
        end=datetime(2025, 6, 22, 23, 0, tzinfo=UTC),
        step=timedelta(hours=1),
    )
    assert [m.strftime("%a %d %H:%M") for m in made] == [
        "Wed 04 10:00",  # the first hourly run after 09:15
        "Wed 11 10:00",
        "Wed 18 10:00",
    ]


def test_weekly_without_time_is_served_from_the_start_of_the_weekday() -> None:
    sub = weekly(parse_weekday("fri"), None)
    friday = datetime(2025, 6, 6, 0, 0, tzinfo=UTC)
    assert latest_slot(sub, friday + timedelta(hours=5), "UTC") == friday
    assert next_slot(sub, friday, "UTC") == friday + timedelta(days=7)


def test_a_missed_slot_is_served_once_when_the_run_comes_late() -> None:
    sub = daily("07:30", "UTC")
    served = datetime(2025, 6, 1, 7, 30, tzinfo=UTC)
    asleep_until = datetime(2025, 6, 4, 15, 0, tzinfo=UTC)  # three slots missed
    assert is_due(sub, asleep_until, served, "UTC")
    assert not is_due(sub, asleep_until + timedelta(minutes=1), asleep_until, "UTC")
    assert is_due(sub, datetime(2025, 6, 5, 7, 30, tzinfo=UTC), asleep_until, "UTC")


def test_a_new_subscriber_waits_for_their_first_slot() -> None:
    sub = daily("07:30", "UTC")
    subscribed = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)  # after today's slot
    assert not is_due(sub, subscribed + timedelta(hours=3), subscribed, "UTC")
    assert is_due(sub, datetime(2025, 6, 2, 7, 30, tzinfo=UTC), subscribed, "UTC")


def test_without_send_at_a_subscriber_is_always_due() -> None:
    sub = Subscriber(email="ada@example.org")
    now = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
    assert is_due(sub, now, now, "UTC")
    assert latest_slot(sub, now, "UTC") is None


def test_the_subscribers_zone_defaults_to_the_configs() -> None:
    sub = daily("07:30", None)
    now = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
    assert latest_slot(sub, now, "Asia/Tokyo") == datetime(2025, 1, 9, 22, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["7:30", "07:30", " 07:30 ", "07:30:00"])
def test_clock_times_are_read_leniently(text: str) -> None:
    assert parse_clock(text).strftime("%H:%M") == "07:30"


@pytest.mark.parametrize("text", ["24:00", "7h30", "07:60", "", "noon"])
def test_bad_clock_times_say_how_to_write_them(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_clock(text)


def test_weekday_names() -> None:
    assert [parse_weekday(n) for n in ("Monday", "tue", "SUNDAY")] == [0, 1, 6]
    with pytest.raises(ValueError, match="monday"):
        parse_weekday("someday")
