"""A broken store file, a locked database and a full disk, through real `paperbot once` and
`paperbot status` child processes: exit 2 and one line for a file that is not a store (never
a new install that mails everything again), one line naming a full disk or a lock, and the
next run after it continues with nothing lost and nothing sent twice."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from bot.store.store import Store
from tests.cli import paperbot_command, run_paperbot
from tests.httpserver import LocalHTTPServer
from tests.integration.test_once import arxiv_source, mails_to, run, smtp_section, write_config

ADA, REMY = "ada@example.org", "remy@example.org"


@pytest.fixture
def config(tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any) -> Path:
    """Two subscribers who each get one digest from the served arXiv capture."""
    return write_config(
        tmp_path,
        sources=[arxiv_source(http_server)],
        smtp=smtp_section(smtp_server),
        scheduling={"database_wait": 0.5},
        subscribers=[
            {"email": ADA, "keywords": ["diffusion"], "max_papers": 500},
            {"email": REMY, "authors": ["Benjamin Rémy"]},
        ],
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line paperbot wrote to stderr (no traceback, no internal error)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    return lines[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def each_got_one_digest(smtp_server: Any) -> None:
    assert len(mails_to(smtp_server, ADA)) == 1
    assert len(mails_to(smtp_server, REMY)) == 1
    assert len(smtp_server.messages) == 2


# --- not a store: exit 2, one line, the file left alone, nothing mailed ----------------------


def test_an_empty_database_file_is_exit_2_not_a_new_install(
    tmp_path: Path, config: Path, smtp_server: Any
) -> None:
    database = tmp_path / "paperbot.db"
    database.write_bytes(b"")
    for command in ("once", "status"):
        result = run_paperbot(config, command)
        assert result.returncode == 2, result.stderr
        line = one_error_line(result)
        assert str(database) in line, line
        assert "is empty (0 bytes)" in line, line
        assert "restore it from a backup, or move it away to start afresh" in line
    assert database.stat().st_size == 0
    assert smtp_server.messages == [], "nobody is mailed their whole backlog again"


def test_a_store_cut_in_half_is_exit_2_and_sends_nothing_again(
    tmp_path: Path, config: Path, smtp_server: Any
) -> None:
    assert run(config, "-q", "once") == 0
    each_got_one_digest(smtp_server)
    database = tmp_path / "paperbot.db"
    with database.open("r+b") as handle:
        handle.truncate(database.stat().st_size // 2)
    cut = sha256(database)

    for command in ("once", "status"):
        result = run_paperbot(config, command)
        assert result.returncode == 2, result.stderr
        line = one_error_line(result)
        assert str(database) in line, line
        assert "is truncated" in line, line
    assert sha256(database) == cut
    each_got_one_digest(smtp_server)


def test_another_applications_database_is_exit_2_and_left_alone(
    tmp_path: Path, config: Path, smtp_server: Any
) -> None:
    database = tmp_path / "paperbot.db"
    conn = sqlite3.connect(database)
    conn.executescript("CREATE TABLE bookmarks (url TEXT, title TEXT); PRAGMA user_version = 4;")
    conn.close()
    before = sha256(database)

    result = run_paperbot(config, "once")
    assert result.returncode == 2
    line = one_error_line(result)
    assert str(database) in line, line
    assert "not a paperbot store" in line, line
    assert "check `database:` in the config" in line
    assert sha256(database) == before
    beside = {p.name for p in tmp_path.iterdir() if p.name.startswith("paperbot.db")}
    assert beside <= {"paperbot.db", "paperbot.db.lock"}, "no WAL beside another's database"
    assert smtp_server.messages == []


def test_a_store_with_damaged_pages_is_exit_2_when_they_are_read(
    tmp_path: Path, config: Path, smtp_server: Any
) -> None:
    smtp_server.stop()  # the digests wait in the outbox, their papers to be read again
    assert run(config, "-q", "once") == 1
    smtp_server.start()
    database = tmp_path / "paperbot.db"
    conn = sqlite3.connect(database)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    try:
        pages = [
            row[0]
            for row in conn.execute("SELECT pageno FROM dbstat WHERE name = 'papers'")
            if row[0] != 1
        ]
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat table to find the papers' pages")
    finally:
        conn.close()
    with database.open("r+b") as handle:  # a disk that lost the pages holding the papers
        for page in pages:
            handle.seek((page - 1) * page_size)
            handle.write(bytes(page_size))

    for command in (["preview", ADA], ["-q", "once"]):
        result = run_paperbot(config, *command)
        assert result.returncode == 2, result.stderr
        line = one_error_line(result)
        assert line.startswith(f"paperbot: error: {database} is damaged ("), line
        assert line.endswith("restore it from a backup, or move it away to start afresh")
    assert smtp_server.messages == []


# --- locked ----------------------------------------------------------------------------------


def test_a_locked_database_is_named_and_the_next_run_sends_each_digest_once(
    tmp_path: Path, config: Path, smtp_server: Any
) -> None:
    database = tmp_path / "paperbot.db"
    Store.open(database).close()  # an installed store
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # e.g. a sqlite3 shell left in a write transaction
    other.execute("INSERT INTO runs (started) VALUES ('2026-01-01T00:00:00+00:00')")
    try:
        result = run_paperbot(config, "-q", "once")
        status = run_paperbot(config, "status")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert result.returncode == 1
    assert one_error_line(result) == (
        f"paperbot: error: the database {database} is locked by another process (waited"
        " 0.5 s): let it finish (a long run, a sqlite3 shell, a backup) and try again;"
        " nothing was lost"
    )
    # reading goes on while another process writes: status reports, about the store
    assert one_error_line(status) == "paperbot status: no run has succeeded yet"
    assert "papers: 0, active subscribers: 0" in status.stdout
    assert smtp_server.messages == []

    assert run(config, "-q", "once") == 0  # the lock is gone: the next run does it all
    each_got_one_digest(smtp_server)


# --- disk full: a real file system that fills up ---------------------------------------------

DISK_FULL_SCRIPT = """
set -u
mount -t tmpfs -o size={size} paperbot-test "$MNT" || exit 97
if [ "$FILL" = 1 ]; then head -c {size} /dev/zero >"$MNT/filler" 2>/dev/null; fi
"$PY" -m bot --config "$CFG" -q once >"$OUT/1.out" 2>"$OUT/1.err"; echo $? >"$OUT/1.rc"
# the test looks at the mail server, then says go on
while [ ! -e "$OUT/go" ]; do sleep 0.05; done
rm -f "$MNT/filler"
mount -o remount,size=16m "$MNT"
"$PY" -m bot --config "$CFG" -q once >"$OUT/2.out" 2>"$OUT/2.err"; echo $? >"$OUT/2.rc"
"$PY" -m bot --config "$CFG" -q once >"$OUT/3.out" 2>"$OUT/3.err"; echo $? >"$OUT/3.rc"
cp "$MNT"/paperbot.db "$OUT/store.db"
"""


def wait_for(path: Path, child: subprocess.Popen[bytes], seconds: float = 120) -> None:
    """Until `path` exists; fail if the child ended first or the deadline passed."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert child.poll() is None, f"the script ended early ({child.returncode})"
        assert time.monotonic() < deadline, f"no {path.name} after {seconds} s"
        time.sleep(0.05)


def tmpfs_available() -> bool:
    """Whether this machine lets a test mount a small tmpfs in its own mount namespace."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k probe /mnt"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not tmpfs_available(), reason="needs unshare and tmpfs (Linux namespaces)")
@pytest.mark.parametrize(
    ("size", "fill", "when"),
    [
        ("64k", True, "full from the start: no room for the lock's note or a new store"),
        ("256k", False, "while the day's papers are recorded"),
    ],
)
def test_disk_full_is_named_and_the_run_after_space_is_freed_sends_each_digest_once(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: Any,
    size: str,
    fill: bool,
    when: str,
) -> None:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    config = write_config(
        tmp_path,
        database=str(mount / "paperbot.db"),
        sources=[arxiv_source(http_server)],
        smtp=smtp_section(smtp_server),
        subscribers=[
            {"email": ADA, "keywords": ["diffusion"], "max_papers": 500},
            {"email": REMY, "authors": ["Benjamin Rémy"]},
        ],
    )
    script = textwrap.dedent(DISK_FULL_SCRIPT.format(size=size))
    env = {**os.environ, "MNT": str(mount), "CFG": str(config), "OUT": str(out)}
    env["FILL"] = "1" if fill else "0"
    env["PY"] = paperbot_command(config)[0]
    child = subprocess.Popen(["unshare", "-rm", "sh", "-c", script], env=env)
    try:
        wait_for(out / "1.rc", child)
        code, errors = int((out / "1.rc").read_text()), (out / "1.err").read_text()
        messages_after_the_full_disk = len(smtp_server.messages)
        (out / "go").touch()
        assert child.wait(timeout=240) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert code == 1, f"{when}: {errors}"
    assert errors.strip() == (
        f"paperbot: error: disk full writing {mount / 'paperbot.db'}: free some space;"
        " nothing was lost, the next run continues"
    ), when
    assert messages_after_the_full_disk == 0, "the full disk stopped the run before any mail"

    def result(n: int) -> tuple[int, str]:
        return int((out / f"{n}.rc").read_text()), (out / f"{n}.err").read_text()

    assert result(2) == (0, ""), "after space was freed, the next run did everything"
    assert result(3) == (0, "")
    each_got_one_digest(smtp_server)
    conn = sqlite3.connect(out / "store.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM digests WHERE status = 'sent'").fetchone()[0] == 2
    conn.close()
