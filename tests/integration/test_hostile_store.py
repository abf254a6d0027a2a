"""A held-out hostile world for the store: files and locks that get in the way.

Real SQLite files and real `paperbot` child processes: a database locked while digests are
being sent over several connections, stores of every older schema version, sidecar files
without their database, a stale hot journal, a symlink, stores copied while a run wrote,
two runs at once, and a run killed while it migrates. Each case checks the exit code, one
line on stderr (never a traceback), and that nothing is lost or sent twice.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import pytest

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
