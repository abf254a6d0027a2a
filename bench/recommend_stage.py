"""Benchmark of the recommend stage in a run (not a test): profiles from a real store.

    .venv/bin/python bench/recommend_stage.py [--subscribers 100000] [--seeds 10]

A real SQLite store gets the first `--stored` (1,000) papers of bench/data, matched; then
`--subscribers` config subscribers, each with one rare keyword alert and `--seeds` liked
papers drawn (fixed seed) from those stored papers; then the rest of bench/data as the new
batch. It times `match_pending`, the run's match step: the alert index, the recommend stage
(profiles from the store: seeds, feedback, the ledger, the exclude and category gates; the
model fitted on the store's papers; scoring and explaining) and the one commit of both.
The stage's own time is its log line; the peak RSS is the process's.
"""

from __future__ import annotations

import argparse
import logging
import random
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.recommend import DATA, read_days
from bot.models import Subscriber
from bot.run.pipeline import match_pending
from bot.store.store import Store

RARE_KEYWORDS = ("grokking", "neural collapse", "quasar", "lensing", "tokenizer")


def main() -> None:
    """Build the store, then time one match step with every subscriber profiled."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=10, help="liked papers per subscriber")
    parser.add_argument("--stored", type=int, default=1_000, help="papers stored before")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="  %(message)s", force=True)
    logging.getLogger("bot.run.pipeline").setLevel(logging.WARNING)
    # as an arXiv source stores them: the arXiv id is what a `like:` entry finds
    papers = [replace(p, arxiv_id=p.id) for day in read_days([DATA]) for p in day.papers]
    stored, batch = papers[: args.stored], papers[args.stored :]
    rng = random.Random(1)
    subscribers = [
        Subscriber(
            f"s{n}@example.org",
            keywords=(rng.choice(RARE_KEYWORDS),),
            likes=tuple(p.id for p in rng.sample(stored, args.seeds)),
        )
        for n in range(args.subscribers)
    ]
    with tempfile.TemporaryDirectory() as folder, Store.open(Path(folder) / "p.db") as store:
        store.papers.record("before", stored)
        match_pending(store)
        store.subscribers.sync_config(subscribers)
        store.papers.record("today", batch)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        matched = match_pending(store)
        took = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"{args.subscribers:,} subscribers x {args.seeds} seeds, {len(batch):,} new papers:"
        f" match step {took:.1f} s, {matched:,} matches;"
        f" peak RSS {before / 1024:.0f} -> {peak / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
