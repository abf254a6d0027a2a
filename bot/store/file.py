"""The store's file on disk: made whole before it appears at its path, recognised before it
is used, and SQLite's complaints about it named (disk full, locked, damaged) with the file.

Only a missing file is a new install. Anything else at the path must be paperbot's store:
an empty, truncated or foreign file is refused (paperbot would otherwise take it for a new
install and mail every subscriber everything again).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sqlite3
import stat
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

from bot.errors import StoreBusy, StoreError, StoreFull, StoreUnusable

#: `PRAGMA application_id` of paperbot's stores ("PBot"); stores made before it carry 0
APPLICATION_ID = 0x50426F74
#: how long a statement waits for another process's write to finish, in seconds
BUSY_TIMEOUT = 30.0
#: tables every paperbot store has had since its first schema version
CORE_TABLES = frozenset({"papers", "paper_sources", "subscribers", "matches", "digests"})
#: what to do with a store that is damaged
ADVICE = "restore it from a backup, or move it away to start afresh"
#: what to do with a file that is something else than paperbot's store
OTHER_ADVICE = "check `database:` in the config, or move the file away to start afresh"

_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100
#: the most SQLite itself lets a database file lag behind its header while a WAL holds
#: the rest (the pending-byte page)
_WAL_SLACK = 65536
_NOT_SPACE = {errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV}


# --- is the file at the path a whole SQLite database? ------------------------------------


def check_file(path: Path) -> None:
    """StoreUnusable when the file at `path` cannot be a whole SQLite database.

    Cheap whatever the store's size: the 100-byte header and the file's size, compared
    with the page count and page size the header records. Only a regular file is opened
    (a FIFO would wait for a writer for ever).
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise StoreUnusable(
            f"{path} is not a regular file (a {_kind(mode)}), not a paperbot store: {OTHER_ADVICE}"
        )
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            header = handle.read(_HEADER_SIZE)
    except IsADirectoryError:
        raise StoreUnusable(f"{path} is a folder, not a paperbot store: {OTHER_ADVICE}") from None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    problem = header_problem(header, size, _wal_size(path))
    if problem:
        raise StoreUnusable(f"{path} {problem}")


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, as `ls -l` would tell."""
    for test, name in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def check_orphans(path: Path) -> None:
    """StoreUnusable when no database is at `path` but its -wal or -journal is, with content.

    They hold the latest changes of a database that was moved or deleted: a new store would
    be a fresh start that mails every subscriber their backlog again (and SQLite would
    replay the -wal into it).
    """
    for suffix in ("-wal", "-journal"):
        sidecar = path.parent / f"{path.name}{suffix}"
        with contextlib.suppress(OSError):
            if sidecar.stat().st_size:
                raise StoreUnusable(
                    f"{sidecar} is left without its database {path}: restore the database"
                    f" beside it (the {suffix} holds its latest changes), or move the"
                    f" {suffix} away to start afresh"
                )


def header_problem(header: bytes, size: int, wal_size: int = 0) -> str | None:
    """What is wrong with a database file of `size` bytes starting with `header` (and
    what to do about it), or None."""
    problem = _damage(header, size, wal_size)
    if problem:
        return f"{problem}: {ADVICE}"
    if not header.startswith(_MAGIC):
        return f"is not a SQLite database, not a paperbot store: {OTHER_ADVICE}"
    return None


def _damage(header: bytes, size: int, wal_size: int) -> str | None:
    if size == 0:
        return "is empty (0 bytes), not a paperbot store"
    if not header.startswith(_MAGIC[: len(header)]):
        return None  # not SQLite at all
    if len(header) < _HEADER_SIZE:
        return f"is truncated ({size:,} bytes, less than a SQLite header)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return "has a damaged SQLite header"
    pages = int.from_bytes(header[28:32], "big")
    # the header's page count is valid only when its version matches the change counter
    if pages == 0 or header[24:28] != header[92:96]:
        return None
    expected = pages * page_size
    # a checkpoint cut short leaves the file behind its header, the WAL holding the rest
    slack = wal_size + _WAL_SLACK if wal_size else 0
    if size + slack < expected:
        return f"is truncated ({size:,} of {expected:,} bytes)"
    return None


def _wal_size(path: Path) -> int:
    try:
        return (path.parent / f"{path.name}-wal").stat().st_size
    except OSError:
        return 0


def recognise(
    path: Path, application_id: int, version: int, tables: Collection[str], schema_version: int
) -> None:
    """StoreUnusable unless the open database is paperbot's store of a version this code reads.

    A store made before `APPLICATION_ID` existed is recognised by its version and tables.
    """
    if application_id not in (0, APPLICATION_ID):
        raise StoreUnusable(
            f"{path} is another application's SQLite database (application_id"
            f" {application_id:#x}), not a paperbot store: {OTHER_ADVICE}"
        )
    missing = sorted(CORE_TABLES - set(tables))
    if missing or version == 0:
        lacks = (
            "with no tables"
            if not tables
            else f"without paperbot's {', '.join(missing)} tables"
            if missing
            else "without a schema version"
        )
        raise StoreUnusable(
            f"{path} is a SQLite database {lacks}, not a paperbot store: {OTHER_ADVICE}"
        )
    if version > schema_version:
        raise StoreUnusable(
            f"{path}: database schema version {version} is newer than this paperbot"
            f" ({schema_version}); upgrade paperbot"
        )


# --- a new store appears whole or not at all ----------------------------------------------


def create(path: Path, build: Callable[[Path], None]) -> None:
    """Make a new store at `path`: `build` fills a file beside it, which is then linked into
    place. A crash leaves no file (or a whole one) at `path`, never an empty or half-made one;
    when another process made the store meanwhile, theirs is kept and ours dropped."""
    temp = path.parent / f".{path.name}.{secrets.token_hex(4)}.new"
    try:
        build(temp)
        _require_whole(temp, path)
        _fsync(temp)
        _link(temp, path)
    except OSError as exc:
        raise _creation_error(exc, path) from None
    finally:
        for leftover in _with_sidecars(temp):
            leftover.unlink(missing_ok=True)


def _require_whole(temp: Path, path: Path) -> None:
    """StoreError unless `temp` holds the whole new store (no WAL left to write back)."""
    with temp.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        header = handle.read(_HEADER_SIZE)
    if _wal_size(temp) or header_problem(header, size):
        raise StoreError(f"cannot create {path}: it was not written whole (is the disk full?)")


def _link(temp: Path, path: Path) -> None:
    """`path` becomes `temp` unless a file is already there (a hard link never replaces)."""
    try:
        os.link(temp, path)
    except FileExistsError:
        return
    except OSError as exc:
        if exc.errno not in _NOT_SPACE:
            raise
        if path.exists():  # a file system without hard links: rename, nearly as safe
            return
        temp.rename(path)
    _fsync_folder(path.parent)


def _with_sidecars(path: Path) -> Iterable[Path]:
    yield path
    for suffix in ("-wal", "-shm", "-journal"):
        yield path.parent / f"{path.name}{suffix}"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some systems cannot open a folder; the link is made all the same
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _creation_error(exc: OSError, path: Path) -> StoreError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(f"disk full creating {path}: free some space, then run again")
    return StoreError(f"cannot create {path}: {exc.strerror or exc}")


# --- SQLite's errors, named ---------------------------------------------------------------


class Connection(sqlite3.Connection):
    """A connection whose statements raise a named StoreError for what is wrong with the
    file or the disk (full, locked, damaged), and SQLite's own error for anything else."""

    #: the store's path as the user knows it (a new store is built under another name)
    shown_path: Path
    busy_timeout: float

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        """`sqlite3.Connection.execute`, errors named."""
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as exc:
            raise self.named(exc) from exc

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        """`sqlite3.Connection.executemany`, errors named."""
        try:
            return super().executemany(sql, parameters)
        except sqlite3.Error as exc:
            raise self.named(exc) from exc

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        """`sqlite3.Connection.executescript`, errors named."""
        try:
            return super().executescript(sql_script)
        except sqlite3.Error as exc:
            raise self.named(exc) from exc

    def named(self, exc: sqlite3.Error) -> Exception:
        """The StoreError that says what `exc` means for this store, or `exc` itself."""
        return named_error(exc, self.shown_path, self.busy_timeout)


def connect(
    path: Path, *, busy_timeout: float = BUSY_TIMEOUT, shown: Path | None = None
) -> Connection:
    """A `Connection` to `path` in autocommit mode (transactions are explicit)."""
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, factory=Connection)
    conn.shown_path = shown or path
    conn.busy_timeout = busy_timeout
    return conn


def named_error(exc: sqlite3.Error, path: Path, busy_timeout: float) -> Exception:
    """Disk full, locked, damaged, read-only or an I/O error as a one-line StoreError naming
    `path`; any other error (a bug, a constraint) is returned as it is."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return StoreFull(
            f"disk full writing {path}: free some space; nothing was lost, the next run continues"
        )
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreBusy(
            f"the database {path} is locked by another process (waited {busy_timeout:g} s):"
            " let it finish (a long run, a sqlite3 shell, a backup) and try again;"
            " nothing was lost"
        )
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StoreUnusable(f"{path} is damaged ({exc}): {ADVICE}")
    if code == sqlite3.SQLITE_READONLY:
        return StoreError(
            f"cannot write {path} ({exc}): check the permissions of it and its folder"
        )
    if code == sqlite3.SQLITE_CANTOPEN:
        return StoreError(f"cannot open {path} ({exc}): check that its folder is writable")
    if code == sqlite3.SQLITE_IOERR:
        return StoreError(f"cannot read or write {path} ({exc}): check the disk (is it full?)")
    return exc
