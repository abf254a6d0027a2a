"""`paperbot status` for monitoring, on a controlled clock: a source failing longer than
`--max-age` is flagged and makes the exit code 1 (one failing an hour ago, or a quiet
source, does not); `--runs N` shows the run history. Real `paperbot once` runs against a
real HTTP server record what status reads from the real SQLite file.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from time_machine import TimeMachineFixture

from bot.store.health import FetchRecord
from bot.store.rows import utcnow
from bot.store.store import Store
from tests.cli import run_paperbot
from tests.feedmaker import GrowingFeed
from tests.httpserver import LocalHTTPServer
from tests.integration.test_once import run, write_config
from tests.integration.test_operator_alerts import UTC, Switchable, at


def status(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `paperbot status` in this process: exit code, stdout, stderr."""
    capsys.readouterr()
    code = run(config, "status", *args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def source_line(out: str, name: str) -> str:
    """The status line of one source."""
    [line] = [line for line in out.splitlines() if line.startswith(f"  {name}: ")]
    return line


@pytest.fixture
def sources(http_server: LocalHTTPServer) -> dict[str, Any]:
    """A good feed, a quiet one (never an item) and one the test breaks and repairs."""
    good, quiet, flaky = GrowingFeed(), GrowingFeed(), Switchable(GrowingFeed())
    good.add("Grokking in deep networks")
    http_server.handle("/good.xml", good.reply)
    http_server.handle("/quiet.xml", quiet.reply)
    http_server.handle("/flaky.xml", flaky.reply)
    return {"good": good, "quiet": quiet, "flaky": flaky}


def config_with(tmp_path: Path, http_server: LocalHTTPServer, *names: str) -> Path:
    """A config reading these of the served feeds (no SMTP: digests go to the outbox)."""
    return write_config(
        tmp_path,
        sources=[
            {"name": name, "kind": "rss", "url": http_server.url(f"/{name}.xml")} for name in names
        ],
        subscribers=[{"email": "ada@example.org", "keywords": ["grokking"]}],
    )


def test_a_source_failing_longer_than_max_age_is_flagged_and_fails_status(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    sources: dict[str, Any],
    time_machine: TimeMachineFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = config_with(tmp_path, http_server, "good", "quiet", "flaky")
    at(time_machine, 2025, 6, 2, 9, 0)
    assert run(config, "once") == 0
    assert status(config, capsys)[0] == 0

    sources["flaky"].mode = "500"
    at(time_machine, 2025, 6, 2, 10, 0)
    assert run(config, "once") == 1
    at(time_machine, 2025, 6, 2, 11, 0)
    code, out, err = status(config, capsys)
    assert code == 0, "one failure an hour ago is not a problem yet"
    assert "failing since 2025-06-02 10:00 UTC" in source_line(out, "flaky")
    assert "FAILING" not in out
    assert err == ""

    at(time_machine, 2025, 6, 3, 11, 0)  # 25 h after the first failure, still failing
    assert run(config, "once") == 1
    assert status(config, capsys)[0] == 0

    at(time_machine, 2025, 6, 3, 12, 1)  # 26 h and a minute
    assert run(config, "once") == 1
    code, out, err = status(config, capsys)
    assert code == 1
    assert "last good run: 2025-06-03 12:01 UTC" in out, "runs go on: only the source is wrong"
    assert "more than 26 h: FAILING" in source_line(out, "flaky")
    [reason] = err.splitlines()
    assert reason.startswith(
        "paperbot status: source flaky has failed since 2025-06-02 10:00 UTC"
        " (3 fetches in a row), more than 26 h: http://127.0.0.1:"
    )
    assert reason.endswith("/flaky.xml: HTTP 500 Internal Server Error")
    assert source_line(out, "quiet").startswith("  quiet: empty"), "quiet every day, never failing"
    assert "FAILING" not in source_line(out, "quiet")
    assert status(config, capsys, "--max-age", "48")[0] == 0

    sources["flaky"].mode = "feed"
    at(time_machine, 2025, 6, 3, 13, 0)
    assert run(config, "once") == 0
    code, out, _ = status(config, capsys)
    assert code == 0
    assert "failing since" not in source_line(out, "flaky")


def test_a_source_that_never_worked_since_it_was_added_fails_status_after_max_age(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    sources: dict[str, Any],
    time_machine: TimeMachineFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    at(time_machine, 2025, 6, 2, 9, 0)
    assert run(config_with(tmp_path, http_server, "good"), "once") == 0
    sources["flaky"].mode = "html"  # a page, not a feed: broken from the start
    config = config_with(tmp_path, http_server, "good", "flaky")
    at(time_machine, 2025, 6, 5, 9, 0)  # added three days later
    assert run(config, "once") == 1
    code, out, _ = status(config, capsys)
    assert code == 0, "added an hour ago: not yet"
    assert "last success never" in source_line(out, "flaky")

    at(time_machine, 2025, 6, 6, 11, 1)
    assert run(config, "once") == 1
    code, _, err = status(config, capsys)
    assert code == 1
    assert err.startswith(
        "paperbot status: source flaky has never been fetched successfully since its first try"
        " at 2025-06-05 09:00 UTC, more than 26 h ago:"
    )

    # dropped from the config, it is shown but no longer judged
    config = config_with(tmp_path, http_server, "good")
    code, out, err = status(config, capsys)
    assert code == 0, err
    assert source_line(out, "flaky").endswith("(no longer in the config)")


def test_runs_shows_the_history_newest_first(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    sources: dict[str, Any],
    time_machine: TimeMachineFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = config_with(tmp_path, http_server, "good", "flaky")
    at(time_machine, 2025, 6, 2, 9, 0)
    assert run(config, "once") == 0
    sources["flaky"].mode = "500"
    at(time_machine, 2025, 6, 3, 9, 0)
    assert run(config, "once") == 1
    # a worker's fetch run that took 95 s and whose error spans lines
    store = Store.open(tmp_path / "paperbot.db")
    started = datetime(2025, 6, 3, 10, 0, tzinfo=UTC)
    run_id = store.health.start_run(started)
    store.health.finish_run(
        run_id,
        "partial",
        {"new_papers": 2, "matched": 1, "errors": ["source x: bad page\n  at line 3", "two"]},
        now=started + timedelta(seconds=95),
    )
    store.health.start_run(datetime(2025, 6, 3, 11, 0, tzinfo=UTC))  # killed: never finished
    store.close()

    code, out, _ = status(config, capsys, "--runs", "3")
    assert code == 0
    runs = out.splitlines()[out.splitlines().index("runs, newest first:") + 1 :]
    assert [line.replace(http_server.url("/"), "URL/") for line in runs] == [
        "  2025-06-03 11:00 UTC, unfinished, unfinished: - new papers, - matched, - sent, - failed",
        "  2025-06-03 10:00 UTC, 1 min 35 s, partial: 2 new papers, 1 matched, - sent, - failed;"
        " source x: bad page (and 1 more)",
        "  2025-06-03 09:00 UTC, 0 s, partial: 0 new papers, 0 matched, 0 sent, 0 failed;"
        " source flaky: URL/flaky.xml: HTTP 500 Internal Server Error",
    ]
    _, out, _ = status(config, capsys, "--runs", "10")
    assert "  2025-06-02 09:00 UTC, 0 s, ok: 1 new papers, 1 matched, 1 sent, 0 failed" in out
    assert "runs, newest first:" not in status(config, capsys)[1], "only when asked"


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--runs", "0", "a whole number from 1 to 100000"),
        ("--runs", "-3", "a whole number from 1 to 100000"),
        ("--runs", "many", "a whole number from 1 to 100000"),
        # more than SQLite's integers hold was an internal error
        ("--runs", "99999999999999999999", "a whole number from 1 to 100000"),
        ("--runs", "²", "a whole number from 1 to 100000"),
        ("--max-age", "0", "a number of hours above 0 and at most 87600"),
        ("--max-age", "nan", "a number of hours above 0 and at most 87600"),
        ("--max-age", "1e300", "a number of hours above 0 and at most 87600"),
    ],
)
def test_status_options_are_checked(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    expected: str,
) -> None:
    with pytest.raises(SystemExit) as stopped:
        run(config_with(tmp_path, http_server, "good"), "status", option, value)
    assert stopped.value.code == 2
    [*_usage, error] = capsys.readouterr().err.splitlines()
    assert error.endswith(f"{option}: expected {expected}, not {value!r}")


def test_status_as_cron_runs_it(tmp_path: Path, http_server: LocalHTTPServer) -> None:
    """The real command in a child process, on a store whose history is hours old."""
    config = config_with(tmp_path, http_server, "good", "flaky")
    now = utcnow()
    store = Store.open(tmp_path / "paperbot.db")
    for hours_ago, flaky in ((40, "ok"), (30, "error"), (1, "error")):
        started = now - timedelta(hours=hours_ago)
        run_id = store.health.start_run(started)
        store.health.record_fetch(run_id, FetchRecord("good", "ok", 3), started)
        error = "HTTP 503" if flaky == "error" else None
        store.health.record_fetch(run_id, FetchRecord("flaky", flaky, error=error), started)
        store.health.finish_run(run_id, "partial" if error else "ok", {"errors": []}, now=started)
    store.close()

    result = run_paperbot(config, "status", "--runs", "2")
    assert result.returncode == 1
    [reason] = result.stderr.splitlines()
    assert reason.startswith("paperbot status: source flaky has failed since")
    assert reason.endswith("(2 fetches in a row), more than 26 h: HTTP 503")
    assert "FAILING" in source_line(result.stdout, "flaky")
    assert "FAILING" not in source_line(result.stdout, "good")
    *_, heading, newest, older = result.stdout.splitlines()
    assert heading == "runs, newest first:"
    assert newest > older, "the two newest runs (started an hour and 30 hours ago), newest first"
    assert "partial: - new papers" in newest
    assert "partial: - new papers" in older, "the run 40 hours ago (ok) is not among them"
    assert run(config, "status", "--max-age", "31") == 0
