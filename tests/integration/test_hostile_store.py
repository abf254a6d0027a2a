"""A held-out hostile world for the store: files and locks that get in the way.

Real SQLite files and real `paperbot` child processes: a database locked while digests are
being sent over several connections, stores of every older schema version, sidecar files
without their database, a stale hot journal, a symlink, stores copied while a run wrote,
two runs at once, and a run killed while it migrates. Each case checks the exit code, one
line on stderr (never a traceback), and that nothing is lost or sent twice.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from bot.store.schema import MIGRATIONS
from bot.store.store import Store
from tests.cli import paperbot_command, run_paperbot
from tests.httpserver import LocalHTTPServer
from tests.integration.test_once import arxiv_source, smtp_section, write_config
from tests.smtpserver import SmtpTestServer

READERS = [f"reader{n}@example.org" for n in range(12)]


@pytest.fixture
def config(tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer) -> Path:
    """Twelve readers of the served arXiv capture, mailed over four connections."""
    return write_config(
        tmp_path,
        sources=[arxiv_source(http_server)],
        smtp=smtp_section(smtp_server) | {"connections": 4},
        scheduling={"database_wait": 0.5},
        subscribers=[{"email": email, "keywords": ["diffusion"]} for email in READERS],
    )


def outbox(database: Path) -> Counter[str]:
    """Digests by status, straight from the SQLite file."""
    with sqlite3.connect(database) as conn:
        return Counter(dict(conn.execute("SELECT status, count(*) FROM digests GROUP BY 1")))


def copies(smtp_server: SmtpTestServer) -> Counter[str]:
    """Messages received per reader."""
    return Counter(r.recipients[0] for r in smtp_server.received)


def test_a_database_locked_while_sending_on_several_connections_is_one_line(
    tmp_path: Path, config: Path, smtp_server: SmtpTestServer
) -> None:
    database = tmp_path / "paperbot.db"
    smtp_server.delay_data(0.3)  # the lock lands while the four connections are busy
    run = subprocess.Popen(
        paperbot_command(config, "-q", "once"), stderr=subprocess.PIPE, text=True
    )
    try:
        smtp_server.wait_for(1, timeout=30)
        other = sqlite3.connect(database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # a sqlite3 shell, a backup: held past database_wait
        _, stderr = run.communicate(timeout=60)
        other.execute("ROLLBACK")
        other.close()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    assert run.returncode == 1
    assert stderr.splitlines() == [
        f"paperbot: error: the database {database} is locked by another process (waited"
        " 0.5 s): let it finish (a long run, a sqlite3 shell, a backup) and try again;"
        " nothing was lost"
    ], "one line: the other connections' errors are the same lock, not tracebacks"

    smtp_server.delay_data(0)
    assert run_paperbot(config, "-q", "once").returncode == 0
    assert sorted(copies(smtp_server)) == sorted(READERS)
    assert max(copies(smtp_server).values()) <= 2, "only messages in flight go twice"
    assert outbox(database) == {"sent": len(READERS)}


# --- what is at the path ----------------------------------------------------------------------


def test_a_fifo_at_the_database_path_is_refused_not_waited_on(
    tmp_path: Path, config: Path, smtp_server: SmtpTestServer
) -> None:
    os.mkfifo(tmp_path / "paperbot.db")  # reading it would wait for a writer for ever
    result = subprocess.run(
        paperbot_command(config, "-q", "once"), capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"paperbot: error: {tmp_path / 'paperbot.db'} is not a regular file (a FIFO), not a"
        " paperbot store: check `database:` in the config, or move the file away to start"
        " afresh"
    ]
    assert smtp_server.received == []


def test_a_wal_left_without_its_database_is_refused_not_taken_for_a_new_install(
    tmp_path: Path, config: Path, smtp_server: SmtpTestServer
) -> None:
    database = tmp_path / "paperbot.db"
    assert run_paperbot(config, "-q", "once").returncode == 0
    mailed = len(smtp_server.received)
    # the latest changes live in the -wal until a checkpoint: keep one there, then lose the
    # database file (moved, restored wrongly, deleted by hand) but not its -wal
    writer = sqlite3.connect(database)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO runs (started) VALUES ('2026-01-01T00:00:00+00:00')")
    writer.commit()
    saved = (tmp_path / "paperbot.db-wal").read_bytes()
    assert saved, "the change is in the -wal"
    writer.close()
    for leftover in tmp_path.glob("paperbot.db*"):
        leftover.unlink()
    (tmp_path / "paperbot.db-wal").write_bytes(saved)

    result = run_paperbot(config, "-q", "once")

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"paperbot: error: {database}-wal is left without its database {database}: restore"
        " the database beside it (the -wal holds its latest changes), or move the -wal away"
        " to start afresh"
    ]
    assert len(smtp_server.received) == mailed, "nobody got their backlog again"
    assert not database.exists()
    assert (tmp_path / "paperbot.db-wal").read_bytes() == saved, "left alone"


def test_a_run_through_a_symlink_waits_for_a_run_through_the_real_path(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "paperbot.db"
    (tmp_path / "paperbot.db").symlink_to(real)
    settings: dict[str, Any] = {
        "sources": [arxiv_source(http_server)],
        "smtp": smtp_section(smtp_server) | {"connections": 1},
        "scheduling": {"lock_wait": 0},
        "subscribers": [{"email": email, "keywords": ["diffusion"]} for email in READERS[:4]],
    }
    direct = write_config(tmp_path / "real", **settings)
    linked = write_config(tmp_path, **settings)  # its database: the symlink
    smtp_server.delay_data(1.5)  # the first run sends for six seconds, time for the second to start
    first = subprocess.Popen(paperbot_command(direct, "-q", "once"), stderr=subprocess.DEVNULL)
    try:
        smtp_server.wait_for(1, timeout=30)
        second = run_paperbot(linked, "-q", "once")
    finally:
        first.wait(timeout=60)
    assert second.returncode == 1, "one store, one run at a time, whatever path names it"
    assert "another paperbot run is working on" in second.stderr
    assert max(copies(smtp_server).values()) == 1


# --- stores of every older version -------------------------------------------------------------


def old_store(path: Path, version: int) -> None:
    """A store as paperbot at schema `version` left it (its real migrations), with a
    subscriber already served and a paper already seen."""
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    for number in range(version):
        conn.execute("BEGIN")
        MIGRATIONS[number](db)
        conn.execute(f"PRAGMA user_version = {number + 1}")
        conn.execute("COMMIT")
    stamp = "2026-01-01T00:00:00+00:00"
    conn.execute(
        "INSERT INTO subscribers (email, keywords, authors, categories, exclude, max_papers,"
        " origin, status, created, updated) VALUES"
        " (?, '[\"diffusion\"]', '[]', '[]', '[]', 50, 'config', 'active', ?, ?)",
        (READERS[0], stamp, stamp),
    )
    conn.close()


@pytest.mark.parametrize("version", range(1, len(MIGRATIONS) + 1))
def test_a_store_of_every_older_version_is_brought_up_to_date_whole(
    tmp_path: Path, version: int
) -> None:
    database = tmp_path / "paperbot.db"
    old_store(database, version)
    store = Store.open(database)
    try:
        assert store.db.schema_version() == len(MIGRATIONS)
        assert store.status().subscribers == 1
    finally:
        store.close()
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_the_first_run_on_a_first_version_store_delivers_once(
    tmp_path: Path, config: Path, smtp_server: SmtpTestServer
) -> None:
    old_store(tmp_path / "paperbot.db", 1)
    assert run_paperbot(config, "-q", "once").returncode == 0
    assert run_paperbot(config, "-q", "once").returncode == 0
    assert copies(smtp_server) == dict.fromkeys(READERS, 1)
