"""Benchmark of the whole daily cycle (not a test): feed over HTTP -> ... -> SMTP sink.

    .venv/bin/python bench/deliver.py [--subscribers 10000 100000] [--papers 2000]
                                      [--connections 4] [--seed 1]

For each subscriber count, in a fresh process and a fresh SQLite file: a synthetic
arXiv-like day of `--papers` papers (bench/match.py's generator: ~10-word titles,
~180-word abstracts, Zipf-like topics and authors) is served as an arXiv RSS feed by a
local HTTP server, and subscribers with ~5 phrases and ~3 followed authors each are
synced from the config; links are signed with a throwaway secret, so every digest carries
its subscriber's own manage and unsubscribe links, as deployed. The cycle then runs
stage by stage as `paperbot once` does (sync, fetch + parse, record, match, digests,
deliver) against a local aiosmtpd sink on `--connections` connections. The HTTP server
and the sink run in another process, so they do not share this one's event loop (the
machine's second core goes to the sink).
Then the same cycle runs again the same day (`run_once`, as `paperbot once` does): it
must send nothing.

Prints the time per stage, digests/s (deliver stage and end to end), peak memory (max
RSS of the measuring process, which holds the config's subscribers but not the data
generator), and the sink's message count and CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import pickle
import random
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.match import World, make_paper, make_subscriber
from bot.alerts.index import AlertIndex, release_freed_memory
from bot.config.load import parse_config
from bot.config.settings import Config
from bot.config.wiring import delivery_settings, letterhead, make_sender, message_domain
from bot.mail.deliver import deliver
from bot.mail.links import SECRET_ENV
from bot.models import Paper, Subscriber
from bot.run.pipeline import fetch_all, record_outcomes, run_once
from bot.store.rows import utcnow
from bot.store.store import Store

HOST = "127.0.0.1"


# --- data -------------------------------------------------------------------------------------


def generate(folder: Path, papers: int, subscribers: int, seed: int) -> None:
    """Write the day's feed and the subscribers (pickled) into `folder`."""
    world = World(random.Random(seed))
    day = [make_paper(world, i) for i in range(papers)]
    (folder / "feed.xml").write_bytes(arxiv_rss(day))
    people = [make_subscriber(world, i) for i in range(subscribers)]
    (folder / "subscribers.pickle").write_bytes(pickle.dumps(people))


def arxiv_rss(papers: list[Paper]) -> bytes:
    """The papers as rss.arxiv.org writes its daily feed."""
    date = format_datetime(utcnow().replace(hour=0, minute=0, second=0, microsecond=0))
    items = "".join(_item(paper, date) for paper in papers)
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<rss xmlns:arxiv="http://arxiv.org/schemas/atom"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0"><channel>'
        "<title>cs updates on arXiv.org</title><link>http://rss.arxiv.org/rss/cs</link>"
        f"<description>cs updates</description><pubDate>{date}</pubDate>"
        f"{items}</channel></rss>\n"
    ).encode()


def _item(paper: Paper, date: str) -> str:
    categories = "".join(f"<category>{c}</category>" for c in paper.categories)
    return (
        f"<item><title>{escape(paper.title)}</title>"
        f"<link>https://arxiv.org/abs/{paper.id}</link>"
        f"<description>arXiv:{paper.id}v1 Announce Type: new \n"
        f"Abstract: {escape(paper.abstract)}</description>"
        f'<guid isPermaLink="false">oai:arXiv.org:{paper.id}v1</guid>{categories}'
        f"<pubDate>{date}</pubDate><arxiv:announce_type>new</arxiv:announce_type>"
        f"<dc:creator>{escape(', '.join(paper.authors))}</dc:creator></item>"
    )


# --- the HTTP server and the SMTP sink (another process) ---------------------------------------


def serve_feed(feed: Path) -> Any:
    """Serve the feed file over HTTP on a free port, in a thread; returns the server."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = feed.read_bytes()

    class Feed(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer((HOST, 0), Feed)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    return http


def services(feed: Path, ports: Any, stop: Any, results: Any) -> None:
    """Serve the feed over HTTP and sink SMTP mail until `stop` is set; report the count."""
    from aiosmtpd.smtp import SMTP

    http = serve_feed(feed)

    class Sink:
        count = 0
        size = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            Sink.count += 1
            Sink.size += len(envelope.content)
            return "250 2.0.0 Ok: queued"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Sink(), hostname="sink"), HOST, 0)
        ports.put((http.server_address[1], server.sockets[0].getsockname()[1]))
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.close()

    asyncio.run(main())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put((Sink.count, Sink.size, usage.ru_utime + usage.ru_stime))


@contextlib.contextmanager
def running_services(feed: Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(http port, smtp port, results) while the services process runs."""
    context = multiprocessing.get_context("spawn")
    ports, results, stop = context.Queue(), context.Queue(), context.Event()
    process = context.Process(target=services, args=(feed, ports, stop, results))
    process.start()
    outcome: dict[str, Any] = {"pid": process.pid}
    try:
        http_port, smtp_port = ports.get(timeout=60)
        yield http_port, smtp_port, outcome
    finally:
        stop.set()
        outcome["count"], outcome["bytes"], outcome["cpu"] = results.get(timeout=60)
        process.join()


# --- the cycle --------------------------------------------------------------------------------


def bench_config(folder: Path, http_port: int, smtp_port: int, connections: int) -> Config:
    """A config reading the served feed and sending to the sink."""
    return parse_config(
        f"""
database: {folder / "paperbot.db"}
outbox: {folder / "outbox"}
base_url: https://papers.example.org
sources:
  - {{name: arxiv, kind: arxiv-rss, url: "http://{HOST}:{http_port}/rss/cs"}}
smtp:
  host: {HOST}
  port: {smtp_port}
  security: none
  from: "paperbot <bot@example.org>"
  connections: {connections}
""",
        folder / "paperbot.yaml",
    )


class Stages:
    """Wall and CPU time per stage, printed as it goes."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage."""
        start, cpu = time.perf_counter(), time.process_time()
        yield
        self.times[name] = time.perf_counter() - start
        print(
            f"  {name:<20} {self.times[name]:8.2f} s wall {time.process_time() - cpu:8.2f} s CPU"
            f"   (max RSS {max_rss_mb():,.0f} MB)"
        )

    @property
    def cpu(self) -> float:
        """CPU seconds of this process since the first stage began."""
        return time.process_time() - self.cpu_start

    @property
    def total(self) -> float:
        """Seconds since the first stage began."""
        return time.perf_counter() - self.start


async def first_run(config: Config) -> tuple[Stages, int, int]:
    """The cycle stage by stage, as `pipeline._cycle` runs it; (stages, matches, sent)."""
    stages = Stages()
    store = Store.open(config.database)
    now = utcnow()
    with stages.stage("sync subscribers"):
        store.subscribers.sync_config(config.subscribers)
        run_id = store.health.start_run(now)
    with stages.stage("fetch + parse"):
        outcomes = await fetch_all(config, store, now)
    with stages.stage("record"):
        record_outcomes(store, run_id, outcomes)
    with stages.stage("match: build index"):
        papers = store.papers.to_match()
        index = AlertIndex.build(store.subscribers.active())
    with stages.stage("match: match"):
        found = index.match(papers)
    with stages.stage("match: store"):
        matched = store.matches.add(found, matched=[p.id for p in papers])
        del found, index
        release_freed_memory()  # as the pipeline does
    with stages.stage("create digests"):
        store.outbox.drop_inactive()
        digests = store.outbox.create(message_domain(config))
    with stages.stage("render + send"):
        report = await deliver(
            store, make_sender(config), letterhead(config), delivery_settings(config)
        )
    store.health.finish_run(run_id, "ok", {"sent": report.sent})
    store.close()
    print(f"  {digests:,} digests created, {report.sent:,} sent, {report.pending} pending,")
    print(f"  errors: {list(report.errors)[:3]}")
    return stages, matched, report.sent


def run_scale(folder: Path, subscribers: int, connections: int) -> None:
    """Both runs for one subscriber count, printing figures (in its own process)."""
    # as deployed: every digest carries its subscriber's signed manage/unsubscribe links
    os.environ.setdefault(SECRET_ENV, "bench-secret-" + "x" * 32)
    people: list[Subscriber] = pickle.loads((folder / "subscribers.pickle").read_bytes())
    with running_services(folder / "feed.xml") as (http_port, smtp_port, sink):
        config = replace(
            bench_config(folder, http_port, smtp_port, connections), subscribers=tuple(people)
        )
        del people
        print(f"{subscribers:,} subscribers, first run:")
        with MemoryWatch(leave_out=sink["pid"]) as memory:
            stages, matched, sent = asyncio.run(first_run(config))
        total, cpu = stages.total, stages.cpu
        deliver_time = stages.times["render + send"]
        print(f"  {matched:,} matches")
        print(
            f"  whole cycle {total:.1f} s ({cpu:.1f} s CPU): {sent / total:,.0f} digests/s end to"
            f" end; render + send {sent / deliver_time:,.0f} digests/s"
        )
        start = time.perf_counter()
        again = asyncio.run(run_once(config))
        print(
            f"second run the same day: {time.perf_counter() - start:.1f} s,"
            f" {again.delivery.sent} sent, {again.new_papers} new papers"
        )
    print(
        f"sink: {sink['count']:,} messages, {sink['bytes'] / max(sink['count'], 1) / 1000:.1f} KB"
        f" average, {sink['cpu']:.1f} s CPU"
    )
    print(f"peak memory (max RSS of the measuring process): {max_rss_mb():,.0f} MB")
    print(
        f"peak memory of paperbot's processes together (sampled): {memory.peak_mb:,.0f} MB"
        f" ({memory.split[0]:,.0f} MB sending, {memory.split[1]:,.0f} MB rendering)"
    )
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}\n")


class MemoryWatch:
    """Peak resident memory of this process and its children, summed (sampled 5 times a
    second): with a render process, paperbot is more than one process. The sink is not
    paperbot and is left out."""

    def __init__(self, leave_out: int) -> None:
        self.leave_out = leave_out
        self.peak_mb = 0.0
        self.split = (0.0, 0.0)  # at the peak: this process, its children
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            own = _rss_kb(os.getpid())
            others = sum(_rss_kb(pid) for pid in _children(os.getpid()) if pid != self.leave_out)
            if own + others > self.peak_mb * 1024:
                self.peak_mb, self.split = (own + others) / 1024, (own / 1024, others / 1024)


def _children(pid: int) -> list[int]:
    """The child processes of `pid`, and theirs (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return [grand for child in found for grand in (child, *_children(child))]


def _rss_kb(pid: int) -> int:
    """A process's resident memory in KiB, 0 if it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def max_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Generate the data, then measure each subscriber count in a fresh process."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    for count in args.subscribers:
        with tempfile.TemporaryDirectory(prefix="paperbot-bench-") as scratch:
            folder = Path(scratch)
            start = time.perf_counter()
            maker = context.Process(target=generate, args=(folder, args.papers, count, args.seed))
            maker.start()
            maker.join()
            print(
                f"generated {args.papers:,} papers and {count:,} subscribers"
                f" in {time.perf_counter() - start:.1f} s (seed {args.seed})"
            )
            runner = context.Process(target=run_scale, args=(folder, count, args.connections))
            runner.start()
            runner.join()


if __name__ == "__main__":
    main()
