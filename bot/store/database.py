"""The store's one connection: opened through `file`'s checks, migrated, in WAL mode, with
explicit transactions and SQLite's complaints (busy, full, damaged) named with the file.

Every part of the store (`papers`, `subscribers`, `outbox`...) works through one
`Database`. Statements run in autocommit mode; `transaction()` makes a step whole.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.errors import StoreError, StoreUnusable
from bot.store.file import BUSY_TIMEOUT, Connection, check_file, check_orphans, connect, recognise
from bot.store.file import create as create_file
from bot.store.schema import MIGRATIONS, SCHEMA_VERSION


class Database:
    """A connection to the store file, migrated to the current schema."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        #: sqlite-utils over the same connection: rows as dicts, scripts inside a transaction
        self.utils = sqlite_utils.Database(conn)

    @classmethod
    def open(cls, path: Path, *, busy_timeout: float = BUSY_TIMEOUT) -> Database:
        """Open the store at `path`; only when no file is there, make one (and its folder).

        A file that is not paperbot's store (empty, truncated, another application's) is
        refused with StoreUnusable; `busy_timeout` is how long a statement waits for
        another process's write.
        """
        if not path.exists():
            check_orphans(path)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{path}: cannot create its folder: {exc.strerror}") from None
            create_file(path, lambda temp: cls._build(temp, path))
        check_file(path)
        db = cls._connect(path, busy_timeout)
        try:
            db._recognise(path)  # before anything is written, WAL mode included
            db._configure()
            db._migrate()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreUnusable(f"{path}: not a usable paperbot database: {exc}") from None
        except BaseException:
            db.close()
            raise
        return db

    @classmethod
    def _connect(cls, path: Path, busy_timeout: float, shown: Path | None = None) -> Database:
        try:
            conn = connect(path, busy_timeout=busy_timeout, shown=shown)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{shown or path}: cannot open the database: {exc}") from None
        return cls(conn)

    @classmethod
    def _build(cls, temp: Path, path: Path) -> None:
        """Make a new store's whole schema in `temp` (its errors name `path`).

        The schema is written with a rollback journal, straight into the file, so that a
        full disk fails a statement here; in WAL mode it would fail only the checkpoint
        at close, which SQLite does not report, and leave a half-written file.
        """
        db = cls._connect(temp, BUSY_TIMEOUT, shown=path)
        try:
            db.execute("PRAGMA journal_mode=DELETE")
            db._migrate()
            db._configure()
        finally:
            db.close()

    def backup_to(self, path: Path) -> Database:
        """A copy of this database at `path`, open."""
        target = connect(path)
        self.conn.backup(target)
        copy = Database(target)
        copy._configure()
        return copy

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def file(self) -> Path | None:
        """The database file this is connected to (None for an in-memory database)."""
        for _, name, file in self.execute("PRAGMA database_list"):
            if name == "main" and file:
                return Path(file)
        return None

    def _configure(self) -> None:
        self.execute("PRAGMA journal_mode=WAL")
        self.execute("PRAGMA synchronous=NORMAL")
        self.execute("PRAGMA foreign_keys=ON")

    def _recognise(self, path: Path) -> None:
        """StoreUnusable unless this is paperbot's store, of a version this code can read."""
        application_id = self.execute("PRAGMA application_id").fetchone()[0]
        tables = [
            row[0] for row in self.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        recognise(path, application_id, self.schema_version(), tables, SCHEMA_VERSION)

    def _migrate(self) -> None:
        for number in range(self.schema_version(), SCHEMA_VERSION):
            with self.transaction():
                MIGRATIONS[number](self.utils)
                self.execute(f"PRAGMA user_version={number + 1}")

    def schema_version(self) -> int:
        """The schema version the database is at."""
        return int(self.execute("PRAGMA user_version").fetchone()[0])

    # --- statements --------------------------------------------------------------------------

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        """Run one statement (committed at once outside a transaction)."""
        return self.conn.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any]) -> sqlite3.Cursor:
        """Run one statement for each set of parameters, in one call."""
        return self.conn.executemany(sql, parameters)

    def query(self, sql: str, parameters: Any = ()) -> Iterator[dict[str, Any]]:
        """The rows of a SELECT as dicts (where reading columns by name is clearer)."""
        return self.utils.query(sql, parameters)

    def fill_temp_ids(
        self, table: str, ids: Iterable[int | str], column: str = "id INTEGER PRIMARY KEY"
    ) -> None:
        """A temporary table of ids (a filter too long for `IN (?, ?, ...)`: one SQL variable
        each would pass SQLite's limit, 32,766 in a stock build)."""
        self.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({column})")
        self.execute(f"DELETE FROM temp.{table}")
        self.executemany(f"INSERT OR IGNORE INTO temp.{table} VALUES (?)", ((i,) for i in ids))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One logical step: everything inside commits together or not at all.

        A failed step is rolled back unless SQLite already did (it does on disk full), so
        that the error reported is the one that stopped the step.
        """
        self.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.execute("COMMIT")
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, sqlite3.Error):  # raised by a cursor (a script): name it too
                named = self._named(exc)
                if named is not exc:
                    raise named from exc
            raise

    def _named(self, exc: sqlite3.Error) -> Exception:
        conn = self.conn
        return conn.named(exc) if isinstance(conn, Connection) else exc

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            with suppress(sqlite3.Error, StoreError):  # the first error is the one to report
                self.execute("ROLLBACK")
