"""`paperbot backup FILE` as an operator runs it, in a child process, against a real store
that another real process keeps writing to: the copy opens, passes SQLite's integrity
check and is one consistent snapshot; FILE is never replaced without --force; restoring
is copying it back."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.models import Paper
from bot.store.store import Store
from tests.cli import run_paperbot
from tests.integration.test_once import write_config

#: papers the writer records per transaction: a snapshot holds a whole number of batches
BATCH = 7

#: a child process that records batches of made-up papers (hand-made: only their count
#: matters) until killed, and touches `ready` once it has committed a few. It never
#: checkpoints, as when a reader holds checkpoints back: its commits are only in the WAL,
#: which a copy of the file alone would miss
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from bot.models import Paper
    from bot.store.store import Store

    database, ready, batch = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    with Store.open(database, busy_timeout=30) as store:
        store.db.execute("PRAGMA wal_autocheckpoint=0")
        n = 0
        while True:
            papers = [
                Paper(id=f"title:w{n}-{i}", title=f"Written paper {n} {i}", abstract="x" * 500)
                for i in range(batch)
            ]
            store.papers.record("writer", papers)
            n += 1
            if n == 20:
                ready.touch()
    """
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose store exists, with one web-style subscriber in it."""
    path = write_config(tmp_path, sources=[])
    with Store.open(tmp_path / "paperbot.db") as store:
        store.db.execute(
            "INSERT INTO subscribers (email, keywords, authors, categories, exclude, max_papers,"
            " origin, status, created, updated) VALUES ('ada@example.org', '[]', '[]', '[]',"
            " '[]', 50, 'web', 'active', '2026-01-01', '2026-01-01')"
        )
    return path


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The writing child process, once it has committed its first batches; killed after."""
    ready = tmp_path / "writer-ready"
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "paperbot.db"), str(ready), str(BATCH)]
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert process.poll() is None, "the writer died"
            assert time.monotonic() < deadline, "the writer never got going"
            time.sleep(0.05)
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def snapshot_counts(path: Path) -> tuple[int, int, int]:
    """(papers, their source rows, their title rows) of the store at `path`."""
    with Store.open(path) as store:
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return tuple(  # type: ignore[return-value]
            store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("papers", "paper_sources", "paper_titles")
        )


def test_backup_while_another_process_writes_is_a_whole_snapshot(
    tmp_path: Path, config: Path, writer: subprocess.Popen[bytes]
) -> None:
    target = tmp_path / "backups" / "paperbot-backup.db"
    target.parent.mkdir()

    result = run_paperbot(config, "backup", str(target))

    assert result.returncode == 0, result.stderr
    assert writer.poll() is None, "the writer kept writing through the backup"
    [line] = result.stdout.strip().splitlines()
    papers, sources, titles = snapshot_counts(target)
    assert papers >= 20 * BATCH, "the batches committed before the backup are in it"
    assert papers % BATCH == 0, "no half transaction: whole batches only"
    assert papers == sources == titles, "every table from the same moment"
    assert line == (
        f"backup written to {target}: {target.stat().st_size:,} bytes, {papers} papers,"
        " 1 subscribers"
    )
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name], "no leftovers"


def test_backup_refuses_to_replace_a_file_without_force(tmp_path: Path, config: Path) -> None:
    target = tmp_path / "old-backup.db"
    target.write_bytes(b"an older backup")

    refused = run_paperbot(config, "backup", str(target))

    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"paperbot: error: {target}: exists (use --force to replace it)"
    )
    assert target.read_bytes() == b"an older backup"

    replaced = run_paperbot(config, "backup", "--force", str(target))

    assert replaced.returncode == 0, replaced.stderr
    assert snapshot_counts(target) == (0, 0, 0)


def test_restoring_is_copying_the_backup_back(tmp_path: Path, config: Path) -> None:
    database = tmp_path / "paperbot.db"
    with Store.open(database) as store:
        store.papers.record("somewhere", [Paper(id="title:kept", title="kept")])
    backup = tmp_path / "backup.db"
    assert run_paperbot(config, "backup", str(backup)).returncode == 0
    with Store.open(database) as store:
        store.papers.record("somewhere", [Paper(id="title:later", title="later")])

    for leftover in tmp_path.glob("paperbot.db*"):  # paperbot is stopped: its files go
        leftover.unlink()
    shutil.copyfile(backup, database)

    with Store.open(database) as store:
        titles = [p.title for p in store.papers.seen_since(datetime(2000, 1, 1, tzinfo=UTC))]
    assert titles == ["kept"], "the store is as it was at the backup"
    status = run_paperbot(config, "status")
    assert "Traceback" not in status.stderr


def test_backup_of_no_store_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, sources=[])

    result = run_paperbot(config, "backup", str(tmp_path / "b.db"))

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"paperbot: error: {tmp_path / 'paperbot.db'}: no store there yet: nothing to back up"
    )
    assert not (tmp_path / "b.db").exists()
