"""Benchmark of the worker's per-tick work (not a test): who is due, among N subscribers.

    .venv/bin/python bench/cadence.py [--subscribers 1000 10000 100000] [--seed 1]

The worker asks this every minute (`scheduling.deliver`), so it must stay far below a
minute. For each count, in a fresh SQLite file: subscribers with random daily/weekly
cadences, send times and time zones are synced, then one deliver-tick's bookkeeping is
timed: reading them with their last-served time (`store.subscribers.cadence_marks`), deciding who is
due (`bot.timing.cadence.is_due`), and marking them served in one transaction
(`store.outbox.create(..., served=True)`, no matches, so no digest). Prints seconds per
step and subscribers per second for the decision.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.models import Subscriber
from bot.store.store import Store
from bot.timing.cadence import WEEKDAYS, is_due

ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney")


def subscribers(count: int, rng: random.Random) -> list[Subscriber]:
    """`count` subscribers with mixed cadences."""
    return [
        Subscriber(
            email=f"reader{n}@example.org",
            keywords=("grokking",),
            frequency=rng.choice(("daily", "daily", "weekly")),
            weekday=rng.randrange(len(WEEKDAYS)),
            send_at=rng.choice((None, f"{rng.randrange(24):02d}:{rng.randrange(60):02d}")),
            timezone=rng.choice((None, *ZONES)),
        )
        for n in range(count)
    ]


def bench(count: int, rng: random.Random) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(Path(folder) / "bench.db")
        store.subscribers.sync_config(subscribers(count, rng), datetime(2025, 6, 1, tzinfo=UTC))
        now = datetime(2025, 6, 4, 9, 0, tzinfo=UTC)
        started = time.perf_counter()
        marks = store.subscribers.cadence_marks()
        read = time.perf_counter() - started
        started = time.perf_counter()
        due = [sid for sid, sub, served in marks if is_due(sub, now, served, "UTC")]
        decide = time.perf_counter() - started
        started = time.perf_counter()
        store.outbox.create("bench.example.org", now, subscriber_ids=due, served=True)
        mark = time.perf_counter() - started
        store.close()
    print(
        f"{count:>7} subscribers: read {read:.3f} s, decide {decide:.3f} s"
        f" ({count / decide:,.0f}/s, {len(due)} due), mark served {mark:.3f} s,"
        f" tick total {read + decide + mark:.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for count in args.subscribers:
        bench(count, rng)


if __name__ == "__main__":
    main()
