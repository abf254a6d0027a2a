"""Cron schedules and cadence settings in the config: crontab meaning, one-line errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from bot.config.load import parse_config
from bot.errors import ConfigError, CronError
from bot.ingest.sources import get_kind
from bot.run.worker import overdue, schedule_groups, source_schedule
from bot.timing.schedule import Schedule, check_cron, cron_trigger, next_fire

MONDAY = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def fires(expression: str, start: datetime = MONDAY, count: int = 2) -> list[str]:
    """The first `count` moments the expression fires at or after `start`."""
    trigger = cron_trigger(expression, "UTC")
    out, previous, now = [], None, start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        out.append(fire.strftime("%a %H:%M:%S"))
        previous, now = fire, fire.replace(microsecond=1)
    return out


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 8 * * 0", ["Sun 08:00:00", "Sun 08:00:00"]),  # crontab: 0 is Sunday
        ("0 8 * * 7", ["Sun 08:00:00", "Sun 08:00:00"]),
        ("0 8 * * 1-5", ["Tue 08:00:00", "Wed 08:00:00"]),
        ("0 8 * * fri-sun", ["Fri 08:00:00", "Sat 08:00:00"]),
        ("30 13 * * *", ["Mon 13:30:00", "Tue 13:30:00"]),
        ("*/20 * * * * *", ["Mon 12:00:00", "Mon 12:00:20"]),  # six fields: seconds first
    ],
)
def test_crontab_meaning(expression: str, expected: list[str]) -> None:
    assert fires(expression) == expected


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 8 * *", "expected 5 fields"),
        ("61 * * * *", "61"),
        ("0 8 * * 8", "'8' is not a day"),
        ("0 8 * * sat-mon", "runs backwards"),
        ("0 25 * * *", "25"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression: str, problem: str) -> None:
    with pytest.raises(CronError, match=problem) as info:
        cron_trigger(expression)
    assert "\n" not in str(info.value)


def config_text(**settings: object) -> str:
    base: dict[str, object] = {
        "sources": [{"name": "feed", "kind": "rss", "url": "http://127.0.0.1/feed.xml"}]
    }
    return yaml.safe_dump(base | settings)


def test_a_bad_source_schedule_is_a_config_error_naming_its_place() -> None:
    text = config_text(
        sources=[
            {"name": "a", "kind": "rss", "url": "http://x/a"},
            {"name": "b", "kind": "rss", "url": "http://x/b", "schedule": "every day"},
        ]
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("paperbot.yaml"))
    assert str(info.value).startswith("sources[1].schedule: not a cron expression 'every day'")


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ({"send_at": "7h30"}, "send_at"),
        ({"weekday": "someday"}, "weekday"),
        ({"scheduling": {"deliver": "* * *"}}, "scheduling.deliver"),
        (
            {"subscribers": [{"email": "a@example.org", "send_at": "25:00"}]},
            "subscribers[0].send_at",
        ),
        (
            {"subscribers": [{"email": "a@example.org", "timezone": "Mars/Olympus"}]},
            "subscribers[0].timezone",
        ),
        (
            {"subscribers": [{"email": "a@example.org", "frequency": "hourly"}]},
            "subscribers[0].frequency",
        ),
    ],
)
def test_bad_cadence_settings_name_their_place(settings: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(config_text(**settings))
    assert info.value.path == where


def test_subscribers_inherit_the_top_level_cadence() -> None:
    config = parse_config(
        config_text(
            send_at="7:30",
            frequency="weekly",
            weekday="thursday",
            subscribers=[
                {"email": "a@example.org"},
                {"email": "b@example.org", "send_at": "18:00", "frequency": "daily"},
                {"email": "c@example.org", "weekday": "sun", "timezone": "Europe/Paris"},
            ],
        )
    )
    a, b, c = config.subscribers
    assert (a.frequency, a.weekday, a.send_at, a.timezone) == ("weekly", 3, "07:30", None)
    assert (b.frequency, b.send_at) == ("daily", "18:00")
    assert (c.weekday, c.send_at, c.timezone) == (6, "07:30", "Europe/Paris")


def test_sources_without_schedule_use_their_kinds_rhythm_and_share_jobs() -> None:
    config = parse_config(
        config_text(
            sources=[
                {"name": "ml", "kind": "arxiv-rss", "categories": ["cs.LG"]},
                {"name": "math", "kind": "arxiv-rss", "categories": ["math"]},
                {"name": "lab", "kind": "rss", "url": "http://x/a", "schedule": "0 */6 * * *"},
            ]
        )
    )
    ml, _, lab = config.sources
    assert source_schedule(ml) == get_kind("arxiv-rss").default_schedule
    assert source_schedule(ml).timezone == "America/New_York"
    assert source_schedule(lab) == Schedule("0 */6 * * *")
    groups = schedule_groups(config.sources)
    assert sorted(len(specs) for specs in groups.values()) == [1, 2]


def test_arxiv_default_fetch_comes_after_the_new_york_midnight_rebuild() -> None:
    schedule = get_kind("arxiv-rss").default_schedule
    # 2025-01-15 and 2025-07-15: the same local time in winter and summer
    for day, utc in (((2025, 1, 15), "05:30"), ((2025, 7, 15), "04:30")):
        fire = next_fire(schedule, "UTC", datetime(*day, 1, 0, tzinfo=UTC))
        assert fire is not None
        assert fire.astimezone(UTC).strftime("%H:%M") == utc


def test_a_source_never_fetched_or_past_its_fetch_time_is_overdue() -> None:
    hourly = Schedule("0 * * * *")
    now = datetime(2025, 6, 2, 12, 30, tzinfo=UTC)
    assert overdue(hourly, "UTC", None, now)
    assert overdue(hourly, "UTC", datetime(2025, 6, 2, 10, 59, tzinfo=UTC), now)
    assert not overdue(hourly, "UTC", datetime(2025, 6, 2, 12, 1, tzinfo=UTC), now)


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 31 4 *", "0 0 0 31 11 *"])
def test_a_schedule_that_never_fires_is_refused(expression: str) -> None:
    # hand-made: a date no month has; the worker took it and never fetched or mailed
    with pytest.raises(CronError, match="never fires"):
        check_cron(expression)


def test_a_schedule_that_fires_once_in_four_years_is_kept() -> None:
    assert check_cron("0 0 29 2 *") == "0 0 29 2 *"
