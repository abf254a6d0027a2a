"""Benchmark of the web app (not a test): what a preview and a sign-up cost.

    .venv/bin/python bench/web.py [--papers 2000 10000 30000] [--requests 200] [--seed 1]

A preview runs the edited alerts over every paper first seen in the last 7 days; arXiv's
busiest categories together announce a few thousand a day, so 10,000-30,000 is a heavy
week. For each count, in a fresh SQLite file, random papers are recorded, then the app
(in this process, through httpx's ASGI transport: no network, so the figures are the
app's own) answers `--requests` previews of three keywords and an author, and as many
front-page loads; sign-ups are timed with mail going to an .eml outbox. Prints median and
95th-percentile milliseconds per request.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bot.config.load import parse_config
from bot.models import Paper
from bot.store.store import Store
from bot.web.limits import RateLimits
from bot.web.server import create_app

#: filler vocabulary; the benchmark's alerts hit about 3% of the papers, as real ones do
FILLER = [f"w{n:04d}" for n in range(3000)]
TOPICS = ("diffusion", "graph neural network", "protein folding")
NAMES = ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Guillaume Lajoie", "Yoshua Bengio")


def text(rng: random.Random, words: int) -> str:
    """Filler words, with one of the alerts' topics one time in a hundred."""
    chosen = rng.choices(FILLER, k=words)
    if rng.random() < 0.01:
        chosen[rng.randrange(words)] = rng.choice(TOPICS)
    return " ".join(chosen)


def papers(count: int, rng: random.Random) -> list[Paper]:
    """`count` papers with random titles, abstracts and authors."""
    return [
        Paper(
            id=f"2501.{n:05d}",
            arxiv_id=f"2501.{n:05d}",
            title=text(rng, 10).capitalize(),
            abstract=text(rng, 150),
            authors=(*rng.sample(FILLER, 4), rng.choice(NAMES) if rng.random() < 0.01 else "Z"),
            categories=(rng.choice(("cs.LG", "stat.ML", "cs.CL")),),
            url=f"https://arxiv.org/abs/2501.{n:05d}",
        )
        for n in range(count)
    ]


def summary(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[int(len(ms) * 0.95) - 1]
    return f"  {label:<12} median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms"


async def run(count: int, requests: int, rng: random.Random) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        config = parse_config(
            f"database: {folder}/bench.db\noutbox: {folder}/outbox\n"
            "base_url: http://bench.invalid\n"
        )
        store = Store.open(config.database)
        store.papers.record("bench", papers(count, rng))
        store.close()
        limits = RateLimits(mails_per_ip=10**9, mails_per_address=10**9, previews_per_ip=10**9)
        app = create_app(config, secret="bench-secret-bench-secret", limits=limits)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.invalid") as c:
            front = await c.get("/")
            token = re.search(r'name="csrf_token" value="([^"]+)"', front.text)
            assert token is not None
            form = {
                "csrf_token": token.group(1),
                "keywords": "diffusion\ngraph neural network\nprotein*",
                "authors": "G. Lajoie",
                "frequency": "daily",
                "weekday": "0",
                "hour": "",
                "timezone": "UTC",
            }
            timings: dict[str, list[float]] = {"front page": [], "preview": [], "sign-up": []}
            for n in range(requests):
                timings["front page"].append(await timed(c.get("/")))
                timings["preview"].append(await timed(c.post("/preview", data=form)))
                signup = {**form, "email": f"reader{n}@example.org", "action": "subscribe"}
                timings["sign-up"].append(await timed(c.post("/", data=signup)))
    print(f"{count} papers in the last 7 days, {requests} requests each:")
    for label, seconds in timings.items():
        print(summary(label, seconds))


async def timed(call: object) -> float:
    start = time.perf_counter()
    response = await call  # type: ignore[misc]
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text[:300]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, nargs="+", default=[2000, 10000, 30000])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for count in args.papers:
        asyncio.run(run(count, args.requests, random.Random(args.seed)))


if __name__ == "__main__":
    main()
