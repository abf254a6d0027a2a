"""Servers that break HTTP on purpose, against `paperbot once` in a real child process.

Each source here is served by `tests/rawserver.py`, which writes exactly the bytes a test
scripts: a gzip stream cut short, a Content-Length smaller than the body, a 304 to a
request that asked for no revalidation, a checksum that does not match, a reset, headers
larger than any client reads, a redirect to `file:`, a maintenance page with 200, JSON
with a number of 5,000 digits or nested 100,000 deep. The feeds they serve are the real
captures of `tests/fixtures/`; the breakage is hand-made. Beside them good sources must
be delivered, every problem must be one line that names its source, and nothing may be
mailed twice.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from tests.cli import run_paperbot
from tests.httpserver import FIXTURES
from tests.integration.test_deadlines import outbox_digests, text_of
from tests.integration.test_once import expected_titles, write_config
from tests.rawserver import RawHTTPServer, Script, answer, head, request_header, reset_after

ARXIV = "arxiv/rss_all-archives_2024-11-28_trimmed.xml"
XML = {"Content-Type": "application/rss+xml"}
JSON = {"Content-Type": "application/json"}


def whole(path: str) -> bytes:
    """A fixture's bytes."""
    return (FIXTURES / path).read_bytes()


def feed_of(title: str, doi: str, count: int = 1) -> bytes:
    """An RSS document listing `count` papers, numbered when more than one (hand-made)."""
    items = "".join(
        f"<item><title>{title}{f' {n}' if count > 1 else ''}</title>"
        f"<link>https://doi.org/{doi}{n}</link><description>On diffusion.</description></item>"
        for n in range(1, count + 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://journal.example.org/</link><description>d</description>{items}"
        "</channel></rss>"
    ).encode()


def sized(body: bytes, **headers: str) -> Script:
    """A 200 answer with this body and an honest Content-Length."""
    return answer(b"200 OK", {**headers, "Content-Length": str(len(body))}, body)


class CutThenWhole:
    """A feed server whose first answer is cut short, and which honours If-None-Match.

    The first answer carries ETag "v1" and only part of the feed (`how`: a gzip stream cut
    in the middle, or a Content-Length that stops halfway); every later one answers 304 to
    If-None-Match "v1" and the whole feed otherwise. Were the validators of the cut answer
    kept, the rest of the feed would never be read.
    """

    def __init__(self, body: bytes, how: str) -> None:
        self.body = body
        self.how = how
        self.conditional: list[str | None] = []
        self._lock = threading.Lock()

    def __call__(self, connection: Any, request: bytes, _stopping: threading.Event) -> None:
        """Answer one request (a `tests.rawserver` script)."""
        with self._lock:
            self.conditional.append(request_header(request, "If-None-Match"))
            first = len(self.conditional) == 1
        tag = {"ETag": '"v1"', "Connection": "close", **XML}
        if first and self.how == "gzip":
            cut = gzip.compress(self.body)[: len(gzip.compress(self.body)) // 2]
            headers = {**tag, "Content-Encoding": "gzip", "Content-Length": str(len(cut))}
            connection.sendall(head(b"200 OK", headers) + cut)
        elif first:
            half = str(len(self.body) // 2)
            connection.sendall(head(b"200 OK", {**tag, "Content-Length": half}) + self.body)
        elif self.conditional[-1] == '"v1"':
            connection.sendall(head(b"304 Not Modified", tag))
        else:
            headers = {**tag, "Content-Length": str(len(self.body))}
            connection.sendall(head(b"200 OK", headers) + self.body)


def hostile_scripts() -> dict[str, Script]:
    """Every broken server of the test, by source name (all hand-made breakage)."""
    good = feed_of("Diffusion, the good part", "10.5555/good")
    crc = bytearray(gzip.compress(feed_of("Diffusion, bad checksum", "10.5555/crc")))
    crc[-8:-4] = b"\0\0\0\0"
    items = json.loads(whole("huggingface/api_daily_papers_2024-10-25_first4_trimmed.json"))
    items[0]["paper"]["upvotes"] = 918273645
    long_number = json.dumps(items).replace("918273645", "9" * 5_000).encode()
    maintenance = b"<!DOCTYPE html><html><body><h1>Down for maintenance</h1></body></html>"
    return {
        "not-conditional-304": answer(b"304 Not Modified", {}, b""),
        "bad-checksum": sized(bytes(crc), **XML, **{"Content-Encoding": "gzip"}),
        "reset": reset_after(b"200 OK", {**XML, "Content-Length": str(len(good))}, good[:90]),
        "huge-headers": sized(good, **XML, **{"X-Padding": "x" * 200_000}),
        "to-a-file": answer(b"302 Found", {"Location": "file:///etc/passwd"}, b""),
        "maintenance": sized(maintenance, **{"Content-Type": "text/html"}),
        "deep-json": sized(b"[" * 100_000 + b"]" * 100_000, **JSON),
        "long-number": sized(long_number, **JSON),
        "unknown-encoding": sized(good, **XML, **{"Content-Encoding": "x-unheard-of"}),
        "utf16": sized(
            feed_of("Diffusion in UTF-16", "10.5555/utf16")
            .decode()
            .replace("UTF-8", "UTF-16")
            .encode("utf-16"),
            **XML,
        ),
    }


def test_cut_short_answers_are_read_in_part_and_asked_for_whole_next_time(
    tmp_path: Path,
) -> None:
    gzipped = CutThenWhole(whole(ARXIV), "gzip")
    short = CutThenWhole(feed_of("Diffusion, cut by its length", "10.5555/short", 6), "length")
    with RawHTTPServer() as server:
        server.script("/cut.xml", gzipped)
        server.script("/short.xml", short)
        config = write_config(
            tmp_path,
            sources=[
                {"name": "cut", "kind": "arxiv-rss", "url": server.url("/cut.xml")},
                {"name": "short", "kind": "rss", "url": server.url("/short.xml")},
            ],
            subscribers=[
                {"email": "ada@example.org", "keywords": ["diffusion"], "max_papers": 100}
            ],
        )
        first = run_paperbot(config, "once")
        second = run_paperbot(config, "once")
        third = run_paperbot(config, "once")

    for result in (first, second, third):
        assert "Traceback" not in result.stderr
        assert "internal error" not in result.stderr
    cut_lines = [line for line in first.stderr.splitlines() if "stops before its end" in line]
    assert sorted(line.split(": ")[1] for line in cut_lines) == ["source cut", "source short"]
    # the cut answer's ETag was not kept: the second fetch asks for the whole feed
    assert gzipped.conditional == [None, None, '"v1"']
    assert short.conditional == [None, None, '"v1"']
    mailed = [text_of(m) for m in outbox_digests(tmp_path / "outbox")]
    assert len(mailed) == 2, "the first run mails the first half, the second the rest"
    everything = " ".join(" ".join(text.split()) for text in mailed)
    titles = expected_titles(ARXIV, "diffusion")
    assert titles
    for title in titles:  # every paper of the feed is mailed, and each once
        assert everything.count(" ".join(title.split()[:6])) == 1, title
    for n in range(1, 7):
        assert everything.count(f"Diffusion, cut by its length {n} ") == 1


def test_broken_servers_are_one_line_each_and_the_good_ones_are_delivered(
    tmp_path: Path,
) -> None:
    scripts = hostile_scripts()
    kinds = {"deep-json": "huggingface", "long-number": "huggingface"}
    with RawHTTPServer() as server:
        for name, script in scripts.items():
            server.script(f"/{name}", script)
        good = feed_of("Diffusion, the good part", "10.5555/good")
        server.script("/good", sized(good, **XML))
        names = [*scripts, "good"]
        config = write_config(
            tmp_path,
            sources=[
                {"name": name, "kind": kinds.get(name, "rss"), "url": server.url(f"/{name}")}
                for name in names
            ],
            subscribers=[
                {
                    "email": "ada@example.org",
                    "keywords": ["diffusion", "knowledge editing"],
                    "max_papers": 100,
                }
            ],
        )
        result = run_paperbot(config, "once")

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    assert "unexpected" not in result.stderr, "no exception from inside a library is shown"
    with sqlite3.connect(tmp_path / "paperbot.db") as conn:
        statuses = dict(conn.execute("SELECT source, status FROM fetches"))
        errors = dict(conn.execute("SELECT source, error FROM fetches WHERE error IS NOT NULL"))
    assert statuses == {
        "not-conditional-304": "error",
        "bad-checksum": "error",
        "reset": "error",
        "huge-headers": "error",
        "to-a-file": "error",
        "maintenance": "broken",
        "deep-json": "broken",
        "long-number": "ok",
        "unknown-encoding": "ok",
        "utf16": "ok",
        "good": "ok",
    }
    assert "not conditional" in errors["not-conditional-304"]
    assert "the compressed body is corrupt" in errors["bad-checksum"]
    assert errors["huge-headers"].endswith("the answer's headers are larger than 64 KB")
    assert "nested too deep" in errors["deep-json"]
    for name, error in errors.items():
        [line] = [line for line in result.stderr.splitlines() if f"source {name}: " in line]
        assert line.endswith(error)
    [number_line] = [
        line
        for line in result.stderr.splitlines()
        if "source long-number: " in line and ": item 1 (" in line
    ]
    assert "upvotes" in number_line
    [digest] = outbox_digests(tmp_path / "outbox")
    text = " ".join(text_of(digest).split())
    for title in ("Diffusion, the good part", "Diffusion in UTF-16"):
        assert text.count(title) == 1
    assert "Can Knowledge Editing Really Correct Hallucinations" in text
