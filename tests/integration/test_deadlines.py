"""Deadlines and politeness with real parts: `paperbot once` and `paperbot run` as child
processes against hostile servers on 127.0.0.1 (trickling, silent, rate-limiting, endless).

Deadlines here are 1-2 s so that the file stays fast; every server outlasts them by far.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import threading
import zlib
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.cli import main
from tests.cli import run_paperbot
from tests.feedmaker import GrowingFeed
from tests.httpserver import LocalHTTPServer, Reply, Request
from tests.integration.test_once import write_config
from tests.integration.test_worker import STOP_TIMEOUT, paperbot, stop

#: a subscriber every test feed here matches
GROKKING = [{"email": "ada@example.org", "keywords": ["grokking"]}]


def feed_of(title: str) -> str:
    """An RSS document listing one paper, identified by a DOI of its own."""
    doi = f"10.5555/{zlib.crc32(title.encode()):08x}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        "<title>test feed</title><link>https://journal.example.org/</link>"
        f"<description>papers</description><item><title>{title}</title>"
        f"<link>https://doi.org/{doi}</link><description>About {title}.</description>"
        "</item></channel></rss>"
    )


def endless_page(request: Request) -> Reply:
    """Page N of a publications list that always has a page N+1 (hand-made, hostile)."""
    number = int(parse_qs(urlsplit(request.path).query)["page"][0])
    html = (
        f'<html><body><article><h2><a href="/paper/{number}">Grokking, part {number}</a></h2>'
        f'</article><a class="next" href="/pages?page={number + 1}">older</a></body></html>'
    )
    return Reply(200, html, content_type="text/html", delay=0.05)


def endless_source(server: LocalHTTPServer, **options: Any) -> dict[str, Any]:
    """An `html` source reading the endless pages, up to 50 of them."""
    return {
        "name": "endless",
        "kind": "html",
        "url": server.url("/pages?page=1"),
        "item": "article",
        "title": "h2 a",
        "next": "a.next",
        "max_pages": 50,
        **options,
    }


def titles_by_source(database: Path) -> dict[str, set[str]]:
    """The titles the store holds, by the source that listed them (read straight from SQLite)."""
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT s.source, p.title FROM paper_sources s JOIN papers p ON p.id = s.paper_id"
        ).fetchall()
    found: dict[str, set[str]] = {}
    for source, title in rows:
        found.setdefault(source, set()).add(title)
    return found


def fetch_statuses(database: Path) -> dict[str, str]:
    """Each source's recorded fetch status."""
    with sqlite3.connect(database) as conn:
        return dict(conn.execute("SELECT source, status FROM fetches"))


def outbox_digests(outbox: Path) -> list[EmailMessage]:
    """The digests written to the outbox as .eml files."""
    return [
        message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for path in sorted(outbox.glob("*.eml"))
    ]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_hostile_sources_end_at_their_deadline_and_the_rest_is_delivered(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    http_server.route(
        "/trickle.xml", body=feed_of("Grokking, trickled"), trickle=0.1, content_type="text/xml"
    )
    http_server.route("/silent.xml", body=feed_of("Grokking, never sent"), delay=120)
    http_server.route("/busy.xml", status=503, headers={"Retry-After": "120"})
    http_server.handle("/pages", endless_page)
    http_server.route("/good.xml", body=feed_of("Grokking, the good part"))
    # slower than fetch.deadline, but this source is given more time
    http_server.route("/patient.xml", body=feed_of("Grokking, worth the wait"), delay=2.5)
    served = http_server.url
    config = write_config(
        tmp_path,
        # the read timeout (10 s) never fires: only the deadlines can end these fetches
        fetch={"timeout": 10, "retries": 3, "backoff": 0, "deadline": 1.5},
        sources=[
            {"name": "trickle", "kind": "rss", "url": served("/trickle.xml")},
            {"name": "silent", "kind": "rss", "url": served("/silent.xml")},
            {"name": "busy", "kind": "rss", "url": served("/busy.xml")},
            endless_source(http_server, deadline=1),
            {"name": "good", "kind": "rss", "url": served("/good.xml", host="localhost")},
            {
                "name": "patient",
                "kind": "rss",
                "url": served("/patient.xml", host="localhost"),
                "deadline": 30,
            },
        ],
        subscribers=GROKKING,
    )

    result = run_paperbot(config, "once")

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 4, result.stderr

    def url(path: str) -> str:
        return re.escape(served(path))

    expected = {
        "trickle": rf"gave up after the 1\.5 s deadline \(page 1 of {url('/trickle.xml')}:"
        r" still reading, \d+ bytes so far\)",
        "silent": rf"gave up after the 1\.5 s deadline \(page 1 of {url('/silent.xml')}:"
        r" waiting for an answer\)",
        "busy": rf"{url('/busy.xml')}: HTTP 503 Service Unavailable: server asks to"
        r" retry after 120 s, past the 1\.5 s deadline \([\d.]+ s left\)",
        # more than one page was read: it is the whole walk that the deadline bounds
        "endless": r"gave up after the 1 s deadline \(page ([2-9]|\d\d) of http://127\.0\.0\.1:\d+"
        r"/pages\?page=\d+: [^)]+\)",
    }
    for name, pattern in expected.items():
        [line] = [e for e in errors if f"source {name}: error: " in e]
        assert re.fullmatch(rf"paperbot: source {name}: error: {pattern}", line), line
    assert len(http_server.requests_to("/busy.xml")) == 1, "a 120 s Retry-After is not waited for"

    database = tmp_path / "paperbot.db"
    assert titles_by_source(database) == {
        "good": {"Grokking, the good part"},
        "patient": {"Grokking, worth the wait"},
    }, "nothing of a source that ran out of time is recorded"
    statuses = fetch_statuses(database)
    assert statuses == {
        "trickle": "error",
        "silent": "error",
        "busy": "error",
        "endless": "error",
        "good": "ok",
        "patient": "ok",
    }
    [digest] = outbox_digests(tmp_path / "outbox")
    assert "ada@example.org" in str(digest["To"])
    mailed = set(re.findall(r"Grokking, [\w ]+", text_of(digest)))
    assert mailed == {"Grokking, the good part", "Grokking, worth the wait"}


#: how long a stuck request hangs unless the test ends first: far past any wait below
HANG = 120


def stalls_once(feed: GrowingFeed) -> tuple[Any, threading.Event]:
    """A handler whose first request hangs (until the test ends); later ones get `feed`."""
    release = threading.Event()
    calls = itertools.count()

    def handler(request: Request) -> Reply:
        if next(calls) == 0:
            release.wait(HANG)
            return Reply(500, "too late", content_type="text/plain")
        return feed.reply(request)

    return handler, release


def test_a_stuck_fetch_lets_the_run_lock_go_at_its_deadline(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    feed = GrowingFeed()
    feed.add("Grokking after the wait")
    handler, release = stalls_once(feed)
    http_server.handle("/feed.xml", handler)
    config = write_config(
        tmp_path,
        fetch={"timeout": 30, "retries": 0, "deadline": 1.5},
        # without the deadline the first run would hold the lock for all of the 30 s read
        # timeout, past this wait: the second would give up with "another paperbot run"
        scheduling={"lock_wait": 10},
        sources=[{"name": "journal", "kind": "rss", "url": http_server.url("/feed.xml")}],
        subscribers=GROKKING,
    )
    log = tmp_path / "worker.log"
    worker = paperbot(config, "run", log=log)
    try:
        http_server.wait_for_requests(1, timeout=STOP_TIMEOUT)  # stuck, holding the lock
        second = run_paperbot(config, "once")
    finally:
        code = stop(worker)
        release.set()

    assert second.returncode == 0, second.stderr
    assert code == 0, log.read_text()
    assert re.search(
        r"source journal: error: gave up after the 1\.5 s deadline \(page 1 of \S+:"
        r" waiting for an answer\)",
        log.read_text(),
    ), log.read_text()
    assert titles_by_source(tmp_path / "paperbot.db") == {"journal": {"Grokking after the wait"}}
    [digest] = outbox_digests(tmp_path / "outbox")
    assert "Grokking after the wait" in text_of(digest)


def test_a_stuck_once_lets_the_run_lock_go_at_its_deadline(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    feed = GrowingFeed()
    feed.add("Grokking after the wait")
    handler, release = stalls_once(feed)
    http_server.handle("/feed.xml", handler)
    config = write_config(
        tmp_path,
        fetch={"timeout": 30, "retries": 0, "deadline": 1.5},
        scheduling={"lock_wait": 10},
        sources=[{"name": "journal", "kind": "rss", "url": http_server.url("/feed.xml")}],
        subscribers=GROKKING,
    )
    first_log = tmp_path / "first.log"
    first = paperbot(config, "once", log=first_log)
    try:
        http_server.wait_for_requests(1, timeout=STOP_TIMEOUT)  # stuck, holding the lock
        second = run_paperbot(config, "once")
        first_code = first.wait(timeout=STOP_TIMEOUT)
    finally:
        release.set()
        if first.poll() is None:
            first.kill()

    assert first_code == 1, "the stuck source is an error"
    first_err = first_log.read_text()
    assert "gave up after the 1.5 s deadline" in first_err
    assert "Traceback" not in first_err
    assert second.returncode == 0, second.stderr
    [digest] = outbox_digests(tmp_path / "outbox")
    assert "Grokking after the wait" in text_of(digest)


def test_a_configured_host_interval_spaces_a_sources_pages(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    # 127.0.0.1 is this machine, exempt from the default interval: listed, it is honoured.
    http_server.handle("/pages", endless_page)
    config = write_config(
        tmp_path,
        fetch={"timeout": 10, "hosts": {"127.0.0.1": 0.4}},
        sources=[endless_source(http_server, max_pages=3)],
        subscribers=GROKKING,
    )

    assert main(["--config", str(config), "once"]) == 0

    starts = sorted(r.time for r in http_server.requests)
    assert len(starts) == 3
    spacing = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # unlisted, loopback pages come milliseconds apart; the margin is for a loaded machine,
    # where the server may note one arrival late and the next on time
    assert all(gap >= 0.2 for gap in spacing), spacing
