"""Cron mode on a controlled clock: `paperbot once` mails each subscriber at their local time,
once per period, across a DST change, weekly, and after a machine that slept through it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from time_machine import TimeMachineFixture

from tests.feedmaker import GrowingFeed
from tests.httpserver import LocalHTTPServer
from tests.integration.test_once import mails_to, run, smtp_section, text_part, write_config

PARIS = ZoneInfo("Europe/Paris")
UTC = ZoneInfo("UTC")


@pytest.fixture
def feed(http_server: LocalHTTPServer) -> GrowingFeed:
    """A feed that gains papers as the test's days go by."""
    grown = GrowingFeed()
    http_server.handle("/feed.xml", grown.reply)
    return grown


def cadence_config(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any, subscribers: list[dict]
) -> Path:
    return write_config(
        tmp_path,
        sources=[{"name": "journal", "kind": "rss", "url": http_server.url("/feed.xml")}],
        smtp=smtp_section(smtp_server),
        subscribers=subscribers,
    )


def at(clock: TimeMachineFixture, zone: ZoneInfo, *when: int) -> None:
    clock.move_to(datetime(*when, tzinfo=zone), tick=False)  # type: ignore[misc]


def titles_in(smtp_server: Any, address: str) -> list[set[str]]:
    """For each digest the address received, the test-paper titles it lists."""
    return [
        {line for line in text_part(m).splitlines() if line.startswith("Grokking ")}
        for m in mails_to(smtp_server, address)
    ]


def test_daily_digest_at_0730_paris_time_across_the_spring_dst_change(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: Any,
    feed: GrowingFeed,
    time_machine: TimeMachineFixture,
) -> None:
    config = cadence_config(
        tmp_path,
        http_server,
        smtp_server,
        [
            {
                "email": "ada@example.org",
                "keywords": ["grokking"],
                "send_at": "07:30",
                "timezone": "Europe/Paris",
            },
            {"email": "now@example.org", "keywords": ["grokking"]},  # no send_at: every run
        ],
    )
    feed.add("Grokking day one")
    at(time_machine, PARIS, 2025, 3, 29, 6, 0)  # Saturday, CET (UTC+1)
    assert run(config, "once") == 0
    assert titles_in(smtp_server, "ada@example.org") == [], "not 07:30 yet"
    assert titles_in(smtp_server, "now@example.org") == [{"Grokking day one"}]

    at(time_machine, PARIS, 2025, 3, 29, 7, 29)
    assert run(config, "once") == 0
    assert titles_in(smtp_server, "ada@example.org") == []

    at(time_machine, PARIS, 2025, 3, 29, 7, 31)
    assert run(config, "once") == 0
    assert titles_in(smtp_server, "ada@example.org") == [{"Grokking day one"}]

    feed.add("Grokking day two")
    at(time_machine, PARIS, 2025, 3, 29, 9, 0)
    assert run(config, "once") == 0
    assert len(titles_in(smtp_server, "ada@example.org")) == 1, "served today already"
    assert titles_in(smtp_server, "now@example.org")[-1] == {"Grokking day two"}

    # Sunday: clocks jump from 02:00 to 03:00; 07:30 is now 05:30 UTC, not 06:30
    at(time_machine, PARIS, 2025, 3, 30, 7, 25)
    assert run(config, "once") == 0
    assert len(titles_in(smtp_server, "ada@example.org")) == 1
    at(time_machine, UTC, 2025, 3, 30, 5, 31)
    assert run(config, "once") == 0
    assert titles_in(smtp_server, "ada@example.org")[-1] == {"Grokking day two"}

    feed.add("Grokking day three")
    at(time_machine, PARIS, 2025, 3, 31, 7, 31)
    assert run(config, "once") == 0
    assert titles_in(smtp_server, "ada@example.org") == [
        {"Grokking day one"},
        {"Grokking day two"},
        {"Grokking day three"},
    ]
    assert len(mails_to(smtp_server, "now@example.org")) == 3, "one per run that found papers"


def test_weekly_subscriber_gets_the_weeks_papers_on_their_weekday(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: Any,
    feed: GrowingFeed,
    time_machine: TimeMachineFixture,
) -> None:
    config = cadence_config(
        tmp_path,
        http_server,
        smtp_server,
        [
            {
                "email": "wes@example.org",
                "keywords": ["grokking"],
                "frequency": "weekly",
                "weekday": "wednesday",
                "send_at": "09:15",
            }
        ],
    )
    # a daily cron at 10:00 UTC from Monday 2 June 2025 for 10 days, one new paper a day
    for day in range(2, 12):
        feed.add(f"Grokking on June {day}")
        at(time_machine, UTC, 2025, 6, day, 10, 0)
        assert run(config, "once") == 0
    assert titles_in(smtp_server, "wes@example.org") == [
        {"Grokking on June 2", "Grokking on June 3", "Grokking on June 4"},  # Wednesday 4th
        {f"Grokking on June {day}" for day in range(5, 12)},  # Wednesday 11th
    ]


def test_a_machine_asleep_at_send_time_mails_once_when_it_wakes(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: Any,
    feed: GrowingFeed,
    time_machine: TimeMachineFixture,
) -> None:
    config = cadence_config(
        tmp_path,
        http_server,
        smtp_server,
        [{"email": "ada@example.org", "keywords": ["grokking"], "send_at": "07:30"}],
    )
    at(time_machine, UTC, 2025, 6, 2, 6, 0)
    assert run(config, "once") == 0
    feed.add("Grokking while asleep")
    # asleep through 07:30 on three days; the first run after waking sends one digest
    at(time_machine, UTC, 2025, 6, 5, 15, 0)
    assert run(config, "once") == 0
    at(time_machine, UTC, 2025, 6, 5, 15, 5)
    assert run(config, "once") == 0
    assert titles_in(smtp_server, "ada@example.org") == [{"Grokking while asleep"}]


def test_no_send_primes_every_subscriber_whatever_their_time(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: Any,
    feed: GrowingFeed,
    time_machine: TimeMachineFixture,
) -> None:
    config = cadence_config(
        tmp_path,
        http_server,
        smtp_server,
        [{"email": "ada@example.org", "keywords": ["grokking"], "send_at": "07:30"}],
    )
    feed.add("Grokking backlog")
    at(time_machine, UTC, 2025, 6, 2, 6, 0)
    assert run(config, "once", "--no-send") == 0
    feed.add("Grokking fresh")
    at(time_machine, UTC, 2025, 6, 2, 7, 45)
    assert run(config, "once") == 0
    assert titles_in(smtp_server, "ada@example.org") == [{"Grokking fresh"}]
