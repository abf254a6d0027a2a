"""The renderer's per-run caches: one owner (`CACHES`) makes them all and forgets them all.

A run renders the same papers with the same reasons into many subscribers' digests, so
the mail modules cache their pieces (views, highlighted titles and abstracts, skeletons,
whole entries, encoded headers). Every such cache is made through `CACHES`: `memo` for a
function's results (functools.lru_cache: its C look-up is what the per-digest paths can
afford), `table` and `paper_table` for caches the code fills itself. `CACHES.clear()`
forgets them all at the end of a run (a long-lived worker renders new papers daily); a
cache made elsewhere would escape it, so none is.

Not caches in this sense: the Jinja environment, templates, CSS inliner and CSS of
`bot.mail.templates`, built once per process from the package's own files.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, ParamSpec, TypeVar, cast

from bot.models import Paper

P = ParamSpec("P")
R = TypeVar("R")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Table(Generic[K, V]):
    """A least-recently-used table of at most `size` values."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value of `key` (now the most recently used), or None."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        """Remember `value` for `key` (the least recently used goes when full); `value`."""
        self._entries[key] = value
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value

    def resize(self, size: int) -> None:
        """Keep at most `size` values from now on (the least recently used go now)."""
        self.size = size
        while len(self._entries) > size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class PaperTable(Generic[V]):
    """A Table of values about one paper, by (paper id, key), checked by identity first.

    Hashing a whole Paper for a key costs more than the look-up saves; the papers of a run
    are the same objects in every digest, so `is` nearly always answers (`==` otherwise).
    """

    def __init__(self, table: Table[tuple[str, Hashable], tuple[Paper, V]]) -> None:
        self.table = table

    def get(self, paper: Paper, key: Hashable) -> V | None:
        """The value for this paper and key, or None."""
        # the table's dict itself: this runs for every entry of every digest
        entries, full_key = self.table._entries, (paper.id, key)
        hit = entries.get(full_key)
        if hit is not None and (hit[0] is paper or hit[0] == paper):
            entries.move_to_end(full_key)
            return hit[1]
        return None

    def put(self, paper: Paper, key: Hashable, value: V) -> V:
        """Remember `value` for this paper and key; `value`."""
        self.table.put((paper.id, key), (paper, value))
        return value


class RenderCaches:
    """Owner of every per-run cache of the mail renderer: each is made here, `clear` empties
    them all, `limit_entries` shrinks those that grow with the entries rendered."""

    def __init__(self) -> None:
        self._memos: list[functools._lru_cache_wrapper[Any]] = []
        self._tables: list[Table[Any, Any]] = []
        #: tables sized per rendered entry: (table, values per entry, size made with)
        self._per_entry: list[tuple[Table[Any, Any], int, int]] = []

    def memo(self, maxsize: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """A decorator: the function's last `maxsize` results, by its (hashable) arguments."""

        def decorate(function: Callable[P, R]) -> Callable[P, R]:
            cached = functools.lru_cache(maxsize=maxsize)(function)
            self._memos.append(cached)
            return cast(Callable[P, R], cached)

        return decorate

    def table(self, size: int, *, per_entry: int = 0) -> Table[Any, Any]:
        """A new Table of `size` values; `per_entry` > 0: resized by `limit_entries`."""
        table: Table[Any, Any] = Table(size)
        self._tables.append(table)
        if per_entry:
            self._per_entry.append((table, per_entry, size))
        return table

    def paper_table(self, size: int, *, per_entry: int = 0) -> PaperTable[Any]:
        """A new PaperTable of `size` values; `per_entry` as for `table`."""
        return PaperTable(self.table(size, per_entry=per_entry))

    def owns(self, cache: object) -> bool:
        """Whether `cache` (a memoized function or a table) was made here."""
        if isinstance(cache, PaperTable):
            cache = cache.table
        return any(cache is mine for mine in (*self._memos, *self._tables))

    def cached(self) -> int:
        """How many values are cached in all."""
        memos = sum(memo.cache_info().currsize for memo in self._memos)
        return memos + sum(map(len, self._tables))

    def limit_entries(self, entries: int | None) -> None:
        """Keep at most `per_entry` × `entries` values in each table sized by entries (a
        render process trades speed for memory); None: the sizes they were made with."""
        for table, per_entry, size in self._per_entry:
            table.resize(size if entries is None else per_entry * entries)

    def clear(self) -> None:
        """Forget every cached value (sizes stay as they are)."""
        for memo in self._memos:
            memo.cache_clear()
        for table in self._tables:
            table.clear()


#: the one owner of the renderer's per-run caches
CACHES = RenderCaches()
