"""Huge numbers and bad items do not stop `paperbot once`, in a real child process, run after run.

Served over a real HTTP server: the real Hugging Face capture with votes and stars past
2**63 (what made every run fail with `internal error` and send nothing), the alphaXiv page
with a vote count past 2**63, the bioRxiv page holding the real record with one record
broken, and the real arXiv feed. The numbers and broken fields are hand-made. Every source
is read, every subscriber's digest is written, nothing prints a traceback, and the next run
(with one more paper on Hugging Face) still works: the store is not poisoned.
"""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.cli import run_paperbot
from tests.httpserver import FIXTURES, LocalHTTPServer
from tests.integration.test_once import write_config

HUGE = 2**63
HF_PATH = "/hf/daily.json"
AX_PATH = "/ax/feed"
BIO_PATH = "/bio/details/biorxiv/2018-10-29/2018-10-31/0/json"


def hf_items(count: int) -> bytes:
    """The first `count` items of the real 2024-10-25 answer, with absurd numbers."""
    items: list[dict[str, Any]] = json.loads(
        (FIXTURES / "huggingface/api_daily_papers_2024-10-25_first4_trimmed.json").read_text()
    )[:count]
    for item in items:
        item["paper"]["upvotes"] = HUGE
        item["paper"]["githubStars"] = 10**25
    return json.dumps(items).encode()


def alphaxiv_page() -> bytes:
    """Page 0 of the feed with a vote count past 2**63."""
    data = json.loads((FIXTURES / "alphaxiv/feed_hot_7days_page0_handwritten.json").read_text())
    data["papers"][0]["metrics"]["public_total_votes"] = HUGE
    return json.dumps(data).encode()


def biorxiv_page() -> bytes:
    """The details page with its real record broken: `"³"` for a version, no author list."""
    data = json.loads(
        (FIXTURES / "biorxiv/details_2018-10-29_2018-10-31_cursor0_handwritten.json").read_text()
    )
    record = data["collection"][1]
    record.update(version="³", authors=None, date=HUGE)
    data["collection"].append({"doi": "10.1101/000000", "title": None})  # no title: skipped
    return json.dumps(data).encode()


def config_for(tmp_path: Path, server: LocalHTTPServer) -> Path:
    """Four sources and one subscriber for each."""
    return write_config(
        tmp_path,
        sources=[
            {"name": "hf-huge", "kind": "huggingface", "url": server.url(HF_PATH)},
            {"name": "ax-huge", "kind": "alphaxiv", "url": server.url(AX_PATH)},
            {"name": "bio-bad", "kind": "biorxiv", "url": server.url(BIO_PATH), "max_pages": 1},
            {
                "name": "arxiv",
                "kind": "arxiv-rss",
                "url": server.url("arxiv/rss_all-archives_2024-11-28_trimmed.xml"),
            },
        ],
        subscribers=[
            {"email": "hf@example.org", "keywords": ["knowledge editing", "question synthesis"]},
            {"email": "ax@example.org", "keywords": ["tailored architectures"]},
            {"email": "bio@example.org", "keywords": ["somatostatin"]},
            {"email": "arxiv@example.org", "keywords": ["diffusion"], "max_papers": 500},
        ],
    )


def digests(outbox: Path) -> dict[str, str]:
    """The text part of each digest in the outbox, by recipient (the latest per recipient)."""
    found: dict[str, str] = {}
    for path in sorted(outbox.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        found[str(message["To"])] = str(body.get_content())
    return found


def assert_clean_run(result: Any) -> None:
    """Exit 0, and nothing but one-line messages on stderr."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr


def test_huge_numbers_and_bad_items_do_not_stop_the_run(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    http_server.route(HF_PATH, body=hf_items(3), content_type="application/json")
    http_server.route(AX_PATH, body=alphaxiv_page(), content_type="application/json")
    http_server.route(BIO_PATH, body=biorxiv_page(), content_type="application/json")
    config = config_for(tmp_path, http_server)

    first = run_paperbot(config, "once")

    assert_clean_run(first)
    warnings = [
        line for line in first.stderr.splitlines() if ": item " in line or ": record " in line
    ]
    assert any(
        line.startswith("paperbot: source hf-huge: ") and "upvotes" in line for line in warnings
    )
    assert any(line.startswith("paperbot: source ax-huge: ") for line in warnings)
    assert any("source bio-bad: " in line and "version: '³'" in line for line in warnings)
    assert any("source bio-bad: " in line and "skipped: no title" in line for line in warnings)
    mail = digests(tmp_path / "outbox")
    assert set(mail) == {"hf@example.org", "ax@example.org", "bio@example.org", "arxiv@example.org"}
    assert "arxiv.org/abs/2410.16251" in mail["hf@example.org"]  # Can Knowledge Editing...
    assert "arxiv.org/abs/2410.18693" not in mail["hf@example.org"]  # not listed yet
    assert "somatostatin" in mail["bio@example.org"].lower()

    # the next run: Hugging Face lists one more paper, with the same absurd numbers
    http_server.route(HF_PATH, body=hf_items(4), content_type="application/json")
    second = run_paperbot(config, "once")

    assert_clean_run(second)
    latest = digests(tmp_path / "outbox")
    assert "arxiv.org/abs/2410.18693" in latest["hf@example.org"]  # ...Question Synthesis...
    assert "arxiv.org/abs/2410.16251" not in latest["hf@example.org"]  # not mailed twice
