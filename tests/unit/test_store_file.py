"""The file at the database path, on real SQLite files: only a missing file is a new
install; an empty, truncated or foreign file is refused and left as it was; a new store
appears whole or not at all; disk full and a locked database are named as such."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlite_utils

from bot.errors import StoreBusy, StoreFull, StoreUnusable
from bot.models import Paper
from bot.store.file import APPLICATION_ID, create, header_problem
from bot.store.schema import MIGRATIONS, SCHEMA_VERSION
from bot.store.store import Store

#: schema versions that shipped before stores carried paperbot's application_id
BEFORE_APPLICATION_ID = 6


def paper(number: int) -> Paper:
    """A paper with an abstract long enough that a few hundred fill many pages."""
    arxiv_id = f"2411.{number:05d}"
    return Paper(
        id=arxiv_id,
        arxiv_id=arxiv_id,
        title=f"A study of neural collapse, part {number}",
        authors=("Ada Lovelace",),
        abstract=f"Paper {number} revisits neural collapse. " * 40,
        url=f"https://arxiv.org/abs/{arxiv_id}",
    )


def filled_store(path: Path, papers: int = 300) -> Path:
    """A real store with `papers` papers in it, closed (its WAL checkpointed away)."""
    store = Store.open(path)
    store.papers.record("arxiv", [paper(n) for n in range(papers)])
    store.close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_refused(path: Path, *words: str) -> None:
    """Store.open refuses the file with one line naming it, and leaves it as it was."""
    before = digest(path)
    siblings = sorted(p.name for p in path.parent.iterdir())
    with pytest.raises(StoreUnusable) as refused:
        Store.open(path)
    message = str(refused.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message, message
    assert digest(path) == before, "the refused file is left as it was"
    assert sorted(p.name for p in path.parent.iterdir()) == siblings, "nothing made beside it"


# --- only a missing file is a new install -----------------------------------------------------


def test_a_missing_file_becomes_a_whole_new_store(tmp_path: Path) -> None:
    path = tmp_path / "data" / "paperbot.db"
    store = Store.open(path)
    assert store.db.schema_version() == SCHEMA_VERSION
    store.close()
    assert [p.name for p in path.parent.iterdir()] == ["paperbot.db"], "no temporary left"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    Store.open(path).close()  # and it opens again as paperbot's


def test_an_empty_file_is_refused_not_taken_for_a_new_install(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.db"
    path.write_bytes(b"")
    assert_refused(path, "is empty (0 bytes)", "restore it from a backup", "move it away")
    assert path.stat().st_size == 0


@pytest.mark.parametrize(
    "keep",
    [
        pytest.param(lambda size: size // 2, id="half"),
        pytest.param(lambda size: size - 4096, id="last-page-lost"),
        pytest.param(lambda size: 50, id="inside-the-header"),
    ],
)
def test_a_truncated_store_is_refused(tmp_path: Path, keep: object) -> None:
    path = filled_store(tmp_path / "paperbot.db")
    size = path.stat().st_size
    assert size > 100_000, "the store spans many pages"
    with path.open("r+b") as handle:
        handle.truncate(keep(size))  # type: ignore[operator]
    assert_refused(path, "is truncated", "restore it from a backup")


def freeze_with_wal(store_path: Path, copy_to: Path) -> None:
    """Copy a store and its WAL as a kill -9 leaves them: a commit not yet checkpointed."""
    conn = sqlite3.connect(store_path, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("INSERT INTO runs (started) VALUES ('2026-01-01T00:00:00+00:00')")
    copy_to.mkdir()
    for name in ("paperbot.db", "paperbot.db-wal"):
        shutil.copyfile(store_path.parent / name, copy_to / name)
    conn.close()


def test_a_store_left_by_a_crash_with_its_wal_opens_with_every_commit(tmp_path: Path) -> None:
    path = filled_store(tmp_path / "paperbot.db")
    freeze_with_wal(path, tmp_path / "crashed")
    store = Store.open(tmp_path / "crashed" / "paperbot.db")
    assert store.papers.count() == 300
    assert store.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    store.close()


def test_a_truncated_store_is_refused_even_beside_its_wal(tmp_path: Path) -> None:
    path = filled_store(tmp_path / "paperbot.db")
    freeze_with_wal(path, tmp_path / "crashed")
    crashed = tmp_path / "crashed" / "paperbot.db"
    with crashed.open("r+b") as handle:
        handle.truncate(crashed.stat().st_size // 2)
    assert_refused(crashed, "is truncated")


def test_a_checkpoint_cut_short_is_not_taken_for_truncation() -> None:
    """Page 1 is checkpointed first: the file lags its header while the WAL has the rest."""
    header = bytearray(100)
    header[:16] = b"SQLite format 3\x00"
    header[16:18] = (4096).to_bytes(2, "big")
    header[28:32] = (100).to_bytes(4, "big")  # 100 pages
    header[24:28] = header[92:96] = (7).to_bytes(4, "big")
    assert header_problem(bytes(header), 100 * 4096) is None
    assert header_problem(bytes(header), 90 * 4096, wal_size=20 * 4096) is None
    assert "truncated" in (header_problem(bytes(header), 90 * 4096) or "")
    assert "truncated" in (header_problem(bytes(header), 10 * 4096, wal_size=4 * 4096) or "")


# --- foreign files ---------------------------------------------------------------------------


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.db"
    path.write_text("database: data/paperbot.db\n" * 200, encoding="utf-8")
    assert_refused(path, "is not a SQLite database", "check `database:` in the config")


def test_a_folder_at_the_database_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.db"
    path.mkdir()
    with pytest.raises(StoreUnusable, match="is a folder, not a paperbot store"):
        Store.open(path)
    assert list(path.iterdir()) == []


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA application_id = 1196444487")  # what GeoPackage files carry
        conn.execute("CREATE TABLE papers (id TEXT)")
    assert_refused(path, "another application's SQLite database", "0x47504b47")


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ("CREATE TABLE notes (id INTEGER, text TEXT); PRAGMA user_version = 3;", "without"),
        ("CREATE TABLE t (x); DROP TABLE t;", "with no tables"),
    ],
    ids=["other-tables", "no-tables"],
)
def test_a_sqlite_database_without_paperbots_tables_is_refused(
    tmp_path: Path, schema: str, words: str
) -> None:
    path = tmp_path / "paperbot.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(schema)
    assert path.stat().st_size > 0
    assert_refused(path, words, "not a paperbot store")


def test_a_store_made_before_the_application_id_is_recognised_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    for migration in MIGRATIONS[:BEFORE_APPLICATION_ID]:
        migration(db)
    conn.execute(f"PRAGMA user_version = {BEFORE_APPLICATION_ID}")
    conn.execute("INSERT INTO runs (started) VALUES ('2025-01-01T00:00:00+00:00')")
    conn.close()

    store = Store.open(path)
    assert store.db.schema_version() == SCHEMA_VERSION
    assert store.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    assert store.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    store.close()


# --- a new store appears whole or not at all -------------------------------------------------


def test_a_crash_while_a_new_store_is_made_leaves_no_file_at_the_path(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.db"
    child = textwrap.dedent(
        f"""
        import os, signal, sqlite3
        from pathlib import Path
        from bot.store.file import create

        def half_made(temp):
            conn = sqlite3.connect(temp)
            conn.execute("CREATE TABLE papers (id TEXT)")
            conn.commit()
            os.kill(os.getpid(), signal.SIGKILL)  # the machine goes down mid-install

        create(Path({str(path)!r}), half_made)
        """
    )
    result = subprocess.run([sys.executable, "-c", child], timeout=60, check=False)
    assert result.returncode == -9
    assert not path.exists(), "a crash leaves nothing the next run would misread"
    store = Store.open(path)  # the next run makes a whole store
    assert store.db.schema_version() == SCHEMA_VERSION
    store.close()


def test_a_store_made_meanwhile_by_another_process_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.db"

    def slower_than_another(temp: Path) -> None:
        Store.open(path).close()  # another process creates the store first
        with sqlite3.connect(temp) as conn:
            conn.execute("CREATE TABLE ours (x)")

    create(path, slower_than_another)
    conn = sqlite3.connect(path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "papers" in tables
    assert "ours" not in tables
    assert [p.name for p in tmp_path.iterdir()] == ["paperbot.db"]


# --- disk full, locked -----------------------------------------------------------------------


def test_disk_full_is_named_and_the_step_is_rolled_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.db"
    store = Store.open(path)
    store.papers.record("arxiv", [paper(n) for n in range(5)])
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    # SQLite's own limit on the file's size: it reports SQLITE_FULL as a full disk does
    store.db.execute(f"PRAGMA max_page_count = {pages + 2}")

    with pytest.raises(StoreFull) as full:
        store.papers.record("arxiv", [paper(n) for n in range(5, 300)])
    assert str(full.value) == (
        f"disk full writing {path}: free some space; nothing was lost, the next run continues"
    )
    assert not store.db.conn.in_transaction
    assert store.papers.count() == 5, "nothing of the failed step was kept"

    store.db.execute("PRAGMA max_page_count = 1073741823")  # space was freed
    assert len(store.papers.record("arxiv", [paper(n) for n in range(300)]).new) == 295
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()


def test_a_locked_database_is_named_and_reads_go_on(tmp_path: Path) -> None:
    path = filled_store(tmp_path / "paperbot.db", papers=3)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is writing and does not finish
    other.execute("INSERT INTO runs (started) VALUES ('2026-01-01T00:00:00+00:00')")
    try:
        store = Store.open(path, busy_timeout=0.2)
        assert store.papers.count() == 3, "a reader is never blocked by a writer"
        with pytest.raises(StoreBusy) as busy:
            store.papers.record("arxiv", [paper(10)])
        assert str(busy.value).startswith(
            f"the database {path} is locked by another process (waited 0.2 s)"
        )
        assert not store.db.conn.in_transaction
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.papers.record("arxiv", [paper(10)]).new == ("2411.00010",)
    store.close()
