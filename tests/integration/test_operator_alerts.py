"""Operator alerts and monitoring on a controlled clock: what `admin_email` receives, how
often, and when `paperbot status` exits non-zero."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from time_machine import TimeMachineFixture

from tests.feedmaker import GrowingFeed
from tests.httpserver import LocalHTTPServer, Reply, Request
from tests.integration.test_once import mails_to, run, smtp_section, text_part, write_config
from tests.smtpserver import SmtpTestServer

UTC = ZoneInfo("UTC")
ADMIN = "ops@example.org"


class Switchable:
    """A source the test breaks and repairs: a feed, an HTML page, or an HTTP 500."""

    def __init__(self, feed: GrowingFeed) -> None:
        self.feed = feed
        self.mode = "feed"

    def reply(self, request: Request) -> Reply:
        if self.mode == "html":
            return Reply(200, "<html><body>We moved!</body></html>", content_type="text/html")
        if self.mode == "500":
            return Reply(500, "oops", content_type="text/plain")
        return self.feed.reply(request)


@pytest.fixture
def feed(http_server: LocalHTTPServer) -> GrowingFeed:
    grown = GrowingFeed()
    http_server.handle("/feed.xml", grown.reply)
    return grown


@pytest.fixture
def flaky(http_server: LocalHTTPServer, feed: GrowingFeed) -> Switchable:
    source = Switchable(GrowingFeed())
    http_server.handle("/flaky.xml", source.reply)
    return source


def alert_config(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer, **extra: Any
) -> Path:
    settings: dict[str, Any] = {
        "admin_email": ADMIN,
        "sources": [
            {"name": "journal", "kind": "rss", "url": http_server.url("/feed.xml")},
            {"name": "flaky", "kind": "rss", "url": http_server.url("/flaky.xml")},
        ],
        "smtp": smtp_section(smtp_server) | {"retries": 0},
        "subscribers": [{"email": "ada@example.org", "keywords": ["grokking"]}],
    }
    return write_config(tmp_path, **(settings | extra))


def at(clock: TimeMachineFixture, *when: int) -> None:
    clock.move_to(datetime(*when, tzinfo=UTC), tick=False)  # type: ignore[misc]


def subjects(smtp_server: SmtpTestServer) -> list[str]:
    return [str(m["Subject"]) for m in mails_to(smtp_server, ADMIN)]


def test_a_broken_source_is_told_once_a_day_and_its_recovery_once(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    flaky: Switchable,
    time_machine: TimeMachineFixture,
) -> None:
    config = alert_config(tmp_path, http_server, smtp_server)
    flaky.mode = "html"
    at(time_machine, 2025, 6, 2, 9, 0)
    assert run(config, "once") == 1
    assert len(subjects(smtp_server)) == 1
    [alert] = mails_to(smtp_server, ADMIN)
    assert alert["Subject"].startswith("[paperbot] problem: source flaky is broken")
    assert alert["Auto-Submitted"] == "auto-generated"

    for hour in (10, 14, 20):  # the same day: nothing new for the operator
        at(time_machine, 2025, 6, 2, hour, 0)
        assert run(config, "once") == 1
    at(time_machine, 2025, 6, 3, 8, 59)
    assert run(config, "once") == 1
    assert len(subjects(smtp_server)) == 1

    at(time_machine, 2025, 6, 3, 9, 1)  # a day later and still broken: one reminder
    assert run(config, "once") == 1
    assert len(subjects(smtp_server)) == 2

    flaky.mode = "feed"
    at(time_machine, 2025, 6, 3, 10, 0)
    assert run(config, "once") == 0
    at(time_machine, 2025, 6, 3, 11, 0)
    assert run(config, "once") == 0
    assert subjects(smtp_server)[2:] == ["[paperbot] recovered: source flaky"]
    recovery = mails_to(smtp_server, ADMIN)[2]
    assert "We moved" not in text_part(recovery)
    assert "source flaky is broken" in text_part(recovery), "it says what the problem was"


def test_errors_alert_only_after_n_in_a_row(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    flaky: Switchable,
    time_machine: TimeMachineFixture,
) -> None:
    config = alert_config(tmp_path, http_server, smtp_server, alerts={"source_failures": 3})
    flaky.mode = "500"
    for hour in (1, 2):
        at(time_machine, 2025, 6, 2, hour, 0)
        assert run(config, "once") == 1
    assert subjects(smtp_server) == [], "two failures may be a hiccup"
    at(time_machine, 2025, 6, 2, 3, 0)
    assert run(config, "once") == 1
    [subject] = subjects(smtp_server)
    assert "source flaky failed 3 times in a row" in subject


def test_smtp_failure_is_logged_then_its_recovery_mailed(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    feed: GrowingFeed,
    flaky: Switchable,
    time_machine: TimeMachineFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = alert_config(tmp_path, http_server, smtp_server)
    feed.add("Grokking while the mail server is down")
    smtp_server.stop()
    at(time_machine, 2025, 6, 2, 9, 0)
    assert run(config, "once") == 1
    assert any(
        "operator alert: problem: mail could not be sent" in r.getMessage() for r in caplog.records
    ), "the alert cannot go by mail: it is in the log"

    smtp_server.start()
    at(time_machine, 2025, 6, 2, 10, 0)
    assert run(config, "once") == 0
    assert len(mails_to(smtp_server, "ada@example.org")) == 1, "the digest waited, now sent"
    [recovery] = mails_to(smtp_server, ADMIN)
    assert recovery["Subject"] == "[paperbot] recovered: mail delivery"
    assert "cannot connect to SMTP server" in text_part(recovery)


def test_a_suspended_subscriber_is_told_once(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    feed: GrowingFeed,
    flaky: Switchable,
    time_machine: TimeMachineFixture,
) -> None:
    config = alert_config(
        tmp_path,
        http_server,
        smtp_server,
        subscribers=[{"email": "gone@example.org", "keywords": ["grokking"]}],
    )
    smtp_server.refuse("gone@example.org", 550)
    for day in range(2, 7):  # a new paper every day, refused every day
        feed.add(f"Grokking on day {day}")
        at(time_machine, 2025, 6, day, 9, 0)
        run(config, "once")
    [subject] = subjects(smtp_server)
    assert "subscriber suspended" in subject
    assert "gone@example.org" in subject


def status(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run(config, "status", *args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_status_fails_for_monitoring_when_runs_stop_or_mail_is_stuck(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    feed: GrowingFeed,
    flaky: Switchable,
    time_machine: TimeMachineFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = alert_config(tmp_path, http_server, smtp_server)
    at(time_machine, 2025, 6, 2, 9, 0)
    code, out = status(config, capsys)
    assert code == 1
    assert "never run" in out

    assert run(config, "once") == 0
    code, out = status(config, capsys)
    assert code == 0
    assert "last good run: 2025-06-02 09:00 UTC" in out

    at(time_machine, 2025, 6, 3, 11, 1)  # 26 h and a minute later, no run since
    code, out = status(config, capsys)
    assert code == 1
    assert "last good run was at 2025-06-02 09:00 UTC, more than 26 h ago" in out
    assert status(config, capsys, "--max-age", "48")[0] == 0

    # runs go on, but mail does not: a digest waits longer than the threshold
    smtp_server.stop()
    feed.add("Grokking undelivered")
    assert run(config, "once") == 1
    at(time_machine, 2025, 6, 4, 14, 0)
    assert run(config, "once") == 1
    code, out = status(config, capsys)
    assert code == 1
    assert "mail is not going out" in out
    assert "problem since 2025-06-03 11:01 UTC: mail could not be sent" in out
    smtp_server.start()
    assert run(config, "once") == 0
    assert status(config, capsys)[0] == 0
