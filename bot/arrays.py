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


def none_in_runs(flags: Bools, counts: Ints) -> Bools:
    """For flags laid out in runs (`counts[i]` of them for run i): is no flag of run i set?"""
    owners = np.repeat(np.arange(len(counts)), counts)
    clear: Bools = np.bincount(owners, weights=flags, minlength=len(counts)) == 0
    return clear


def position(ordered: Ints | U64, values: Ints | U64) -> Ints:
    """Where each of `values` is in `ordered` (ascending, no repeats), or -1 if it is not."""
    if not len(ordered):
        return np.full(np.shape(values), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(ordered, values), len(ordered) - 1)
    found: Ints = np.where(ordered[at] == values, at, -1)
    return found


def equal_runs(ordered: Ints, values: Ints) -> tuple[Ints, Ints]:
    """For each of `values`: where its run of equals in `ordered` (ascending) starts, and
    how long that run is (0 if it is not there)."""
    low = np.searchsorted(ordered, values, "left")
    counts: Ints = np.searchsorted(ordered, values, "right") - low
    return low, counts
