"""Benchmark of `paperbot subscribers import` and `export` (not a test): N rows of a CSV.

    .venv/bin/python bench/roster.py [--rows 10000 100000] [--seed 1]

For each count, in a fresh directory: a CSV of N subscribers with one to three keywords, an
author for one in three, categories, daily/weekly cadences, send times and time zones is
written; then `paperbot subscribers import FILE --confirm` runs as a child process (every
row checked by the config file's rules, all written in one transaction), then the same
import again (every address known: all updated), then `paperbot subscribers export`.
Prints the seconds of each child process, start-up included.
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ZONES = ("", "UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo")
WORDS = ("grokking", "diffusion", "transformer", "sparse coding", "bandits", "protein folding")


def write_rows(path: Path, count: int, rng: random.Random) -> None:
    """A CSV of `count` subscribers, as an operator would import them."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["email", "keywords", "authors", "categories", "exclude", "frequency", "send_at",
             "timezone"]
        )  # fmt: skip
        for n in range(count):
            writer.writerow(
                [
                    f"reader{n}@example.org",
                    ";".join(rng.sample(WORDS, rng.randint(1, 3))),
                    "G. Lajoie" if n % 3 == 0 else "",
                    rng.choice(("", "cs.LG", "cs.LG;stat.ML")),
                    "survey" if n % 5 == 0 else "",
                    rng.choice(("daily", "daily", "weekly")),
                    rng.choice(("", f"{rng.randrange(24):02d}:00")),
                    rng.choice(ZONES),
                ]
            )


def timed(config: Path, *args: str) -> float:
    """Seconds one `paperbot` child process takes; it must succeed."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config), "-q", *args],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def bench(count: int, rng: random.Random) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = root / "paperbot.yaml"
        config.write_text(yaml.safe_dump({"database": str(root / "p.db")}), encoding="utf-8")
        rows = root / "rows.csv"
        write_rows(rows, count, rng)
        first = timed(config, "subscribers", "import", str(rows), "--confirm")
        again = timed(config, "subscribers", "import", str(rows), "--confirm")
        export = timed(config, "subscribers", "export", str(root / "out.csv"))
    print(
        f"{count:>7} rows: import {first:.2f} s ({count / first:,.0f} rows/s),"
        f" import again (all known) {again:.2f} s, export {export:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for count in args.rows:
        bench(count, rng)


if __name__ == "__main__":
    main()
