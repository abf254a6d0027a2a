"""Retention through real `paperbot once` and `paperbot retention` child processes, on a
real store: old unmatched papers, fetch log rows and runs go and their space comes back;
the "never twice" ledger stays, so a paper a subscriber was mailed, arriving again after
retention, is not mailed again."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.config.load import load_config
from bot.models import Paper
from bot.run.retention import apply_retention
from bot.store.store import Store
from tests.cli import run_paperbot
from tests.httpserver import LocalHTTPServer
from tests.integration.test_once import arxiv_source, mails_to, smtp_section, write_config

ADA = "ada@example.org"
#: long before any retention window: rows are dated back to it to stand for time passing
LONG_AGO = "2020-01-01T00:00:00+00:00"


@pytest.fixture
def config(tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any) -> Path:
    """Ada follows "diffusion" in the served arXiv capture (a few of its 243 papers)."""
    return write_config(
        tmp_path,
        sources=[arxiv_source(http_server)],
        smtp=smtp_section(smtp_server),
        subscribers=[{"email": ADA, "keywords": ["diffusion"], "max_papers": 500}],
    )


def age_everything(database: Path) -> None:
    """Date every paper, fetch and run long ago, as if the store had sat for years."""
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE papers SET first_seen = ?, updated = ?", (LONG_AGO, LONG_AGO))
        conn.execute("UPDATE fetches SET started = ?", (LONG_AGO,))
        conn.execute("UPDATE runs SET started = ?, finished = ?", (LONG_AGO, LONG_AGO))
        conn.execute("UPDATE matches SET matched_at = ?", (LONG_AGO,))
        conn.execute("UPDATE digests SET created = ?, sent_at = ?", (LONG_AGO, LONG_AGO))
        # the subscribers' digests are due again: a new match would be mailed at once
        conn.execute("UPDATE subscribers SET served_at = ?", (LONG_AGO,))
        # and the feed is read whole again (no 304), as a new day's listing would be
        conn.execute("DELETE FROM validators")
    conn.close()


def count(database: Path, sql: str) -> int:
    """One number from the store."""
    with sqlite3.connect(database) as conn:
        value = int(conn.execute(sql).fetchone()[0])
    conn.close()
    return value


def add_old_unmatched_papers(database: Path, n: int) -> None:
    """Bulk, hand-made papers nobody follows (volume, so that VACUUM is worth it)."""
    papers = [
        Paper(id=f"title:bulk-{i}", title=f"Bulk paper {i}", abstract=f"words {i} " * 200)
        for i in range(n)
    ]
    with Store.open(database) as store:
        store.papers.record("bulk", papers)
        store.matches.add({}, matched=[p.id for p in papers])  # matched: nobody wanted them


def test_retention_forgets_old_unmatched_papers_but_never_the_ledger(
    tmp_path: Path, config: Path, smtp_server: Any
) -> None:
    database = tmp_path / "paperbot.db"
    assert run_paperbot(config, "once").returncode == 0
    [digest] = mails_to(smtp_server, ADA)
    mailed = count(database, "SELECT count(*) FROM matches")
    assert mailed > 0
    add_old_unmatched_papers(database, 3000)
    total = count(database, "SELECT count(*) FROM papers")
    # a second run: the first run's fetch becomes history that may go
    assert run_paperbot(config, "once").returncode == 0
    age_everything(database)
    size_before = database.stat().st_size

    result = run_paperbot(config, "retention")

    assert result.returncode == 0, result.stderr
    assert count(database, "SELECT count(*) FROM papers") == mailed, "only the mailed stay"
    assert count(database, "SELECT count(*) FROM matches") == mailed, "the ledger is whole"
    assert (
        count(
            database,
            "SELECT count(*) FROM papers p WHERE NOT EXISTS"
            " (SELECT 1 FROM matches m WHERE m.paper_id = p.id)",
        )
        == 0
    )
    assert (
        count(
            database,
            "SELECT count(*) FROM paper_sources WHERE paper_id NOT IN (SELECT id FROM papers)",
        )
        == 0
    ), "no orphan rows"
    assert count(database, "SELECT count(*) FROM fetches") == 1, "the source's last success"
    assert count(database, "SELECT count(*) FROM runs") == 1, "the last (good) run"
    [line] = result.stdout.strip().splitlines()
    assert line.startswith(f"retention: removed {total - mailed} papers, 1 fetch log rows, 1 runs")
    assert database.stat().st_size < size_before / 2, "the space came back"
    reclaimed = int(line.rsplit("; ", 1)[1].removesuffix(" bytes reclaimed").replace(",", ""))
    assert reclaimed > size_before / 2, "and the line says how much"

    # the same papers arrive again: the ones Ada got are known as got
    assert run_paperbot(config, "once").returncode == 0
    assert mails_to(smtp_server, ADA) == [digest], "nothing is mailed twice"


def test_each_run_applies_retention_and_zero_keeps_forever(
    tmp_path: Path, config: Path, smtp_server: Any
) -> None:
    database = tmp_path / "paperbot.db"
    assert run_paperbot(config, "once").returncode == 0
    papers = count(database, "SELECT count(*) FROM papers")
    mailed = count(database, "SELECT count(*) FROM matches")
    age_everything(database)
    keep = write_config(tmp_path, sources=[], retention={"papers_days": 0, "fetches_days": None})

    assert run_paperbot(keep, "once").returncode == 0

    assert count(database, "SELECT count(*) FROM papers") == papers, "0 keeps them forever"
    assert count(database, "SELECT count(*) FROM fetches") == 1

    forget = write_config(tmp_path, sources=[], retention={"papers_days": 30})
    assert run_paperbot(forget, "once").returncode == 0

    assert count(database, "SELECT count(*) FROM papers") == mailed, "after the run, by itself"
    assert count(database, "SELECT count(*) FROM matches") == mailed


def test_check_config_shows_retention(tmp_path: Path) -> None:
    config = write_config(tmp_path, sources=[], retention={"papers_days": 10, "runs_days": 0})

    result = run_paperbot(config, "check-config")

    assert result.returncode == 0, result.stderr
    assert (
        "retention: unmatched papers 10 days, fetch log 30 days, runs forever; the sent ledger,"
        " digests, seeds and feedback forever"
    ) in result.stdout.splitlines()


def test_a_bad_retention_value_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, sources=[], retention={"papers_days": -1})

    result = run_paperbot(config, "check-config")

    assert result.returncode == 2
    assert "retention.papers_days" in result.stderr


def test_retention_that_fails_is_one_warning_never_a_failed_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(write_config(tmp_path, sources=[]))
    with Store.open(config.database) as store:
        store.db.execute("DROP TABLE paper_titles")  # hostile: a store missing a table

        with caplog.at_level(logging.WARNING):
            assert apply_retention(config, store) is None

    [record] = caplog.records
    assert record.getMessage() == "retention: skipped this time: no such table: paper_titles"
