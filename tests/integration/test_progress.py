"""What a person sees: progress bars on a terminal, plain log lines in cron and pipes."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.feedmaker import GrowingFeed
from tests.httpserver import LocalHTTPServer, Reply, Request
from tests.integration.test_once import smtp_section, write_config
from tests.smtpserver import SmtpTestServer


def slow_feed_config(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> Path:
    feed = GrowingFeed()
    feed.add("Grokking on a terminal")

    def slow(request: Request) -> Reply:
        return Reply(200, feed.xml(), content_type="application/rss+xml", delay=0.5)

    http_server.handle("/feed.xml", slow)
    return write_config(
        tmp_path,
        sources=[{"name": "journal", "kind": "rss", "url": http_server.url("/feed.xml")}],
        smtp=smtp_section(smtp_server),
        subscribers=[{"email": f"r{n}@example.org", "keywords": ["grokking"]} for n in range(3)],
    )


def on_a_terminal(args: list[str]) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal; the exit code and everything it drew."""
    master, slave = pty.openpty()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return process.wait(timeout=30), b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_progress_bars(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    config = slow_feed_config(tmp_path, http_server, smtp_server)
    code, screen = on_a_terminal([sys.executable, "-m", "bot", "--config", str(config), "once"])
    assert code == 0, screen
    assert "fetching sources" in screen
    assert "sending digests" in screen
    assert "\x1b[" in screen, "drawn with terminal control sequences"
    assert "paperbot: done: 1 new papers, 3 matches, 3 digests sent" in screen, "logs print too"
    assert len(smtp_server.messages) == 3


def test_cron_and_pipes_get_plain_log_lines(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    config = slow_feed_config(tmp_path, http_server, smtp_server)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config), "once"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stderr
    assert "fetching sources" not in done.stderr
    lines = done.stderr.splitlines()
    assert "paperbot: source journal: ok, 1 items, 1 new" in lines
    assert all(line.startswith("paperbot: ") for line in lines)

    quiet = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config), "-q", "once"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (quiet.returncode, quiet.stderr) == (0, ""), "cron mails only when something fails"
