"""Array helpers shared by the compiler, the phrase finder and the matcher (numpy)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
U64 = npt.NDArray[np.uint64]


def ramp(counts: Ints) -> Ints:
    """0, 1, ..., counts[0]-1, 0, 1, ..., counts[1]-1, ...: positions inside each run."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


def runs(starts: Ints, counts: Ints) -> Ints:
    """Every index of the runs starts[i] .. starts[i] + counts[i] - 1, run after run."""
    indices: Ints = np.repeat(starts, counts) + ramp(counts)
    return indices


def stable_order(values: npt.NDArray[np.integer]) -> npt.NDArray[np.intp]:
    """`np.argsort(values, kind="stable")` for values in 0 .. 2**32 - 1, several times faster.

    Two stable sorts of 16-bit halves, which numpy does by radix sort in linear time (its
    stable sort of wider keys is a merge sort).
    """
    low = np.argsort((values & 0xFFFF).astype(np.uint16), kind="stable")
    high = np.argsort((values[low] >> 16).astype(np.uint16), kind="stable")
    order: npt.NDArray[np.intp] = low[high]
    return order


def power_series(base: int, size: int) -> U64:
    """1, base, base**2, ... (`size` of them) modulo 2**64."""
    series = np.full(size, base, dtype=np.uint64)
    series[0] = 1
    with np.errstate(over="ignore"):
        out: U64 = np.cumprod(series, dtype=np.uint64)
    return out
