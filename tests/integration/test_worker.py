"""`paperbot run` for real: a subprocess against a local feed and a local SMTP server.

Schedules are seconds apart (six-field cron, `HH:MM:SS` send times) so that the whole file
runs in well under a minute of real time; the misfire test moves a controlled clock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from time_machine import TimeMachineFixture

from bot.config.load import load_config
from bot.run.shutdown import Shutdown
from bot.run.worker import Worker
from bot.store.store import Store
from tests.feedmaker import GrowingFeed
from tests.httpserver import LocalHTTPServer, Reply, Request
from tests.integration.test_once import mails_to, smtp_section, text_part, write_config
from tests.smtpserver import SmtpTestServer

#: a subprocess that has not stopped by then is a failure, not a hang
STOP_TIMEOUT = 20


@pytest.fixture
def feed(http_server: LocalHTTPServer) -> GrowingFeed:
    """A feed that gains papers while the worker runs."""
    grown = GrowingFeed()
    http_server.handle("/feed.xml", grown.reply)
    return grown


def paperbot(config: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """`python -m bot --config CONFIG ARGS` as a real process, stderr to `log`."""
    with log.open("wb") as stderr:  # the child has its own copy of the file
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "--config", str(config), *args],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Send `sig` and wait for the process to end; its exit code."""
    process.send_signal(sig)
    return process.wait(timeout=STOP_TIMEOUT)


def clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S")


def digests(database: Path) -> dict[str, int]:
    """Digest counts by status, read straight from the SQLite file."""
    with sqlite3.connect(database) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM digests GROUP BY status"))


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def subscribe(config_file: Path) -> None:
    """Put the config's subscribers in the store now (their digests count from now on)."""
    config = load_config(config_file)
    store = Store.open(config.database)
    try:
        store.subscribers.sync_config(config.subscribers)
    finally:
        store.close()


def test_worker_mails_each_subscriber_once_at_their_time_while_cron_runs_too(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer, feed: GrowingFeed
) -> None:
    feed.add("Grokking at dawn", "Grokking at noon")
    start = datetime.now(UTC)
    first, second = start + timedelta(seconds=7), start + timedelta(seconds=12)
    config = write_config(
        tmp_path,
        sources=[
            {
                "name": "journal",
                "kind": "rss",
                "url": http_server.url("/feed.xml"),
                "schedule": "*/2 * * * * *",
            }
        ],
        smtp=smtp_section(smtp_server),
        scheduling={"deliver": "* * * * * *"},
        subscribers=[
            {"email": "early@example.org", "keywords": ["grokking"], "send_at": clock(first)},
            {"email": "late@example.org", "keywords": ["grokking"], "send_at": clock(second)},
        ],
    )
    subscribe(config)  # now, before the slots, however slowly the processes start
    log = tmp_path / "worker.log"
    worker = paperbot(config, "run", log=log)
    cron_log = tmp_path / "cron.log"
    cron = paperbot(config, "once", log=cron_log)  # started at the same moment
    try:
        assert cron.wait(timeout=STOP_TIMEOUT) == 0, cron_log.read_text()
        [early] = [r.message for r in smtp_server.wait_for(1, timeout=15)]
        feed.add("Grokking at dusk")  # fetched by the worker before the second slot
        smtp_server.wait_for(2, timeout=15)
        time.sleep(2.5)  # two more deliver ticks and a fetch: nothing else may arrive
    finally:
        code = stop(worker)
    assert code == 0, log.read_text()
    assert "worker stopped" in log.read_text()

    [late] = mails_to(smtp_server, "late@example.org")
    assert mails_to(smtp_server, "early@example.org") == [early]
    assert len(smtp_server.messages) == 2, "no duplicate from the cron run or later ticks"
    assert parsedate_to_datetime(early["Date"]) >= first.replace(microsecond=0)
    assert parsedate_to_datetime(late["Date"]) >= second.replace(microsecond=0)
    assert "Grokking at dusk" not in text_part(early)
    assert "Grokking at dusk" in text_part(late)
    assert digests(tmp_path / "paperbot.db") == {"sent": 2}


@pytest.mark.parametrize("command", ["run", "once"])
def test_sigterm_mid_send_finishes_the_message_in_flight_and_loses_nothing(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    feed: GrowingFeed,
    command: str,
) -> None:
    feed.add("Grokking for everyone")
    people = [f"reader{n}@example.org" for n in range(5)]
    config = write_config(
        tmp_path,
        sources=[{"name": "journal", "kind": "rss", "url": http_server.url("/feed.xml")}],
        smtp=smtp_section(smtp_server) | {"connections": 1, "retries": 0},
        subscribers=[{"email": email, "keywords": ["grokking"]} for email in people],
    )
    smtp_server.delay_data(0.7)  # each message takes a while: SIGTERM lands mid-send
    log = tmp_path / "paperbot.log"
    process = paperbot(config, command, log=log)
    smtp_server.wait_for(1, timeout=15)
    code = stop(process)
    received = len(smtp_server.received)

    assert received < len(people), "stopped before the end of the outbox"
    assert digests(tmp_path / "paperbot.db") == {"sent": received, "pending": 5 - received}
    if command == "run":
        assert code == 0, log.read_text()
    else:
        assert code == 1
        assert "stopped by SIGTERM" in log.read_text()

    smtp_server.delay_data(0)
    rerun = paperbot(config, "once", log=tmp_path / "rerun.log")
    assert rerun.wait(timeout=STOP_TIMEOUT) == 0
    assert sorted(r.recipients[0] for r in smtp_server.received) == people, "each exactly once"
    assert digests(tmp_path / "paperbot.db") == {"sent": 5}


def named_config(tmp_path: Path, name: str, **settings: Any) -> Path:
    """A config file `name` in tmp_path (all of them share tmp_path's database)."""
    return write_config(tmp_path, **settings).rename(tmp_path / name)


def test_a_second_run_waits_briefly_then_gives_up_with_one_line(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer, feed: GrowingFeed
) -> None:
    feed.add("Grokking slowly")
    release = threading.Event()

    def slow(request: Request) -> Reply:
        release.wait(STOP_TIMEOUT)  # the first run holds the lock until the test says so
        return feed.reply(request)

    http_server.handle("/slow.xml", slow)
    common: dict[str, Any] = {
        "smtp": smtp_section(smtp_server),
        "subscribers": [{"email": "ada@example.org", "keywords": ["grokking"]}],
    }
    source = {"name": "journal", "kind": "rss", "url": http_server.url("/slow.xml")}
    holding = named_config(
        tmp_path, "holding.yaml", **common, sources=[source], fetch={"timeout": 15}
    )
    impatient = named_config(tmp_path, "impatient.yaml", **common, scheduling={"lock_wait": 0.5})
    patient = named_config(tmp_path, "patient.yaml", **common, scheduling={"lock_wait": 30})

    first = paperbot(holding, "once", log=tmp_path / "first.log")
    http_server.wait_for_requests(1, timeout=15)  # it holds the lock while it fetches
    second_log = tmp_path / "second.log"
    second = paperbot(impatient, "once", log=second_log)
    assert second.wait(timeout=STOP_TIMEOUT) == 1
    message = second_log.read_text()
    assert message.count("\n") == 1, message
    assert "another paperbot run is working on" in message
    assert f"pid {first.pid}, paperbot once" in message
    assert smtp_server.received == [], "the second run did nothing"

    log = tmp_path / "third.log"
    third = paperbot(patient, "once", log=log)  # waits for the first, then does its work
    wait_until(lambda: "waiting up to 30 s" in log.read_text(), STOP_TIMEOUT, "the third run")
    release.set()
    assert first.wait(timeout=STOP_TIMEOUT) == 0
    assert third.wait(timeout=STOP_TIMEOUT) == 0
    assert [r.recipients for r in smtp_server.received] == [("ada@example.org",)]


def test_a_worker_asleep_past_send_time_mails_once_when_it_wakes(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    feed: GrowingFeed,
    time_machine: TimeMachineFixture,
) -> None:
    time_machine.move_to(datetime(2025, 6, 2, 7, 0, tzinfo=UTC), tick=True)
    config = load_config(
        write_config(
            tmp_path,
            sources=[
                {
                    "name": "journal",
                    "kind": "rss",
                    "url": http_server.url("/feed.xml"),
                    "schedule": "0 8 * * *",
                }
            ],
            smtp=smtp_section(smtp_server),
            scheduling={"deliver": "* * * * * *", "misfire_grace": 6 * 3600},
            subscribers=[
                {"email": "ada@example.org", "keywords": ["grokking"], "send_at": "07:30"}
            ],
        )
    )
    feed.add("Grokking before the nap")
    fetches = lambda: len(http_server.requests_to("/feed.xml"))  # noqa: E731

    async def scenario() -> None:
        worker = Worker(config, Shutdown())
        task = asyncio.create_task(worker.run())
        await asyncio.to_thread(wait_until, lambda: fetches() == 1, 15, "the catch-up fetch")
        await asyncio.sleep(1.5)  # a few deliver ticks: 07:30 has not come yet
        assert smtp_server.received == []
        feed.add("Grokking during the nap")
        time_machine.shift(timedelta(hours=3))  # asleep through 07:30 and the 08:00 fetch
        await asyncio.to_thread(smtp_server.wait_for, 1, 15)
        await asyncio.sleep(2.5)  # more ticks after waking: nothing more may be sent
        worker.shutdown.request("test")
        assert await asyncio.wait_for(task, STOP_TIMEOUT) == 0

    asyncio.run(scenario())
    [digest] = mails_to(smtp_server, "ada@example.org")
    assert fetches() == 2, "the missed 08:00 fetch ran once, not once per missed tick"
    body = text_part(digest)
    assert "Grokking before the nap" in body
    assert "Grokking during the nap" in body, "the missed fetch ran before the delivery"


def test_run_with_web_serves_the_app_in_the_same_process(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer, feed: GrowingFeed
) -> None:
    feed.add("Grokking with a web page")
    config = write_config(
        tmp_path,
        base_url="https://papers.example.org",
        sources=[{"name": "journal", "kind": "rss", "url": http_server.url("/feed.xml")}],
        smtp=smtp_section(smtp_server),
        subscribers=[{"email": "ada@example.org", "keywords": ["grokking"]}],
    )
    log = tmp_path / "worker.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PAPERBOT_SECRET_KEY": "s" * 40}
    with log.open("wb") as stderr:  # the child has its own copy of the file
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "--config", str(config), "run", "--web", "--port", "0"],
            stderr=stderr,
            stdout=subprocess.DEVNULL,
            env=env,
        )
    try:
        wait_until(lambda: "serving the web app on" in log.read_text(), STOP_TIMEOUT, "the app")
        address = log.read_text().split("serving the web app on ")[1].split()[0]
        with urllib.request.urlopen(f"{address}healthz", timeout=10) as response:
            assert response.status == 200
        smtp_server.wait_for(1, timeout=15)  # the worker works meanwhile
    finally:
        code = stop(process)
    assert code == 0, log.read_text()
    assert [r.recipients for r in smtp_server.received] == [("ada@example.org",)]


def test_sigterm_during_a_slow_fetch_stops_at_once_and_records_nothing_half_done(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    release = threading.Event()

    def stuck(request: Request) -> Reply:
        release.wait(STOP_TIMEOUT)
        return Reply(500, "too late", content_type="text/plain")

    http_server.handle("/stuck.xml", stuck)
    config = write_config(
        tmp_path,
        sources=[{"name": "stuck", "kind": "rss", "url": http_server.url("/stuck.xml")}],
        fetch={"timeout": 60, "retries": 0},
        smtp=smtp_section(smtp_server),
        subscribers=[{"email": "ada@example.org", "keywords": ["grokking"]}],
    )
    log = tmp_path / "worker.log"
    process = paperbot(config, "run", log=log)
    try:
        http_server.wait_for_requests(1, timeout=15)
        code = stop(process)  # long before the 60 s fetch timeout
    finally:
        release.set()
    assert code == 0, log.read_text()
    with sqlite3.connect(tmp_path / "paperbot.db") as conn:
        assert conn.execute("SELECT count(*) FROM fetches").fetchone()[0] == 0
        [(status,)] = conn.execute("SELECT status FROM runs").fetchall()
    assert status == "interrupted"
