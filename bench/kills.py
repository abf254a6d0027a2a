"""Kill -9 at random points, restart, and count what arrived (not a test: it takes minutes).

    .venv/bin/python bench/kills.py [--subscribers 10000] [--kills 4] [--seed 1]

A synthetic arXiv-like day (bench/match.py's generator) is served over local HTTP and
`--subscribers` subscribers are written into a config file; an aiosmtpd sink in another
process records every message's recipient and Message-ID. `paperbot once` runs in a child
process and is killed with SIGKILL after a random delay, `--kills` times (each kill lands
while digests are being sent); then it runs to the end. The script prints, and checks:
every subscriber with a digest received it, nobody got two different digests, and the
messages that arrived twice (the ones in flight at a kill) are at most one per open
connection per kill.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import pickle
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.deliver import HOST, generate, serve_feed

CONNECTIONS = 4


def sink(feed: Path, log: Path, ports: Any, stop: Any) -> None:
    """Serve the feed over HTTP and record each message's recipients and Message-ID."""
    from aiosmtpd.smtp import SMTP

    http = serve_feed(feed)
    out = log.open("a", buffering=1)

    class Recorder:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            head = envelope.content.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
            found = [line for line in head.split("\r\n") if line.lower().startswith("message-id:")]
            message_id = found[0].split(":", 1)[1].strip() if found else "?"
            for rcpt in envelope.rcpt_tos:
                out.write(f"{rcpt} {message_id}\n")
            return "250 2.0.0 Ok: queued"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Recorder(), hostname="sink"), HOST, 0)
        ports.put((http.server_address[1], server.sockets[0].getsockname()[1]))
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.close()

    asyncio.run(main())


@contextlib.contextmanager
def running_sink(feed: Path, log: Path) -> Iterator[tuple[int, int]]:
    """(http port, smtp port) while the sink process runs."""
    context = multiprocessing.get_context("spawn")
    ports, stop = context.Queue(), context.Event()
    process = context.Process(target=sink, args=(feed, log, ports, stop))
    process.start()
    try:
        yield ports.get(timeout=60)
    finally:
        stop.set()
        process.join()


def write_config(folder: Path, http_port: int, smtp_port: int) -> Path:
    """The config file: the served feed, the sink, and the generated subscribers."""
    people = pickle.loads((folder / "subscribers.pickle").read_bytes())
    config = {
        "database": str(folder / "paperbot.db"),
        "sources": [
            {"name": "arxiv", "kind": "arxiv-rss", "url": f"http://{HOST}:{http_port}/rss"}
        ],
        "smtp": {
            "host": HOST,
            "port": smtp_port,
            "security": "none",
            "from": "paperbot <bot@example.org>",
            "connections": CONNECTIONS,
        },
        "subscribers": [
            {"email": p.email, "keywords": list(p.keywords), "authors": list(p.authors)}
            for p in people
        ],
    }
    path = folder / "paperbot.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def arrived(log: Path) -> list[tuple[str, str]]:
    """(recipient, Message-ID) of every message the sink accepted."""
    return [tuple(line.split(" ", 1)) for line in log.read_text().splitlines()]  # type: ignore[misc]


def count(log: Path) -> int:
    """How many messages the sink has accepted so far."""
    return len(arrived(log)) if log.exists() else 0


def main() -> None:
    """Generate, kill and restart, check, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        generate(folder, args.papers, args.subscribers, args.seed)
        log = folder / "arrived.txt"
        with running_sink(folder / "feed.xml", log) as (http_port, smtp_port):
            config = write_config(folder, http_port, smtp_port)
            command = [sys.executable, "-m", "bot", "--config", str(config), "-q", "once"]
            for kill in range(args.kills):
                before = count(log)
                process = subprocess.Popen(command)
                # wait until sending has started, then kill at a random moment
                while process.poll() is None and count(log) == before:
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.2, 3.0))
                process.send_signal(signal.SIGKILL)
                process.wait()
                print(f"kill {kill + 1}: {count(log) - before:,} messages in that run")
            start = time.perf_counter()
            code = subprocess.run(command, check=False).returncode
            print(f"last run: exit {code} in {time.perf_counter() - start:.1f} s")

        with sqlite3.connect(folder / "paperbot.db") as db:
            digests = dict(
                db.execute(
                    "SELECT s.email, d.status FROM digests d JOIN subscribers s"
                    " ON s.id = d.subscriber_id"
                )
            )
        messages = arrived(log)
        per_recipient = Counter(rcpt for rcpt, _ in messages)
        ids_per_recipient: dict[str, set[str]] = {}
        for rcpt, message_id in messages:
            ids_per_recipient.setdefault(rcpt, set()).add(message_id)
        missing = [email for email in digests if email not in per_recipient]
        twice = [r for r, n in per_recipient.items() if n > 1]
        different = [r for r, ids in ids_per_recipient.items() if len(ids) > 1]
        unsent = [email for email, status in digests.items() if status != "sent"]
        print(
            f"{len(digests):,} digests, {len(messages):,} messages; missing {len(missing)},"
            f" not marked sent {len(unsent)}, received twice {len(twice)}"
            f" (allowed: {CONNECTIONS} per kill = {CONNECTIONS * args.kills}),"
            f" two different digests {len(different)}"
        )
        ok = not missing and not unsent and not different
        ok = ok and len(twice) <= CONNECTIONS * args.kills
        print("OK" if ok else "FAILED")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
