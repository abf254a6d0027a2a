"""Source health through `paperbot once` and `paperbot status`, for every new kind: a page that
lost its structure or an error document is `broken` (saying what changed) while the other
sources still deliver; a legitimately empty day is `empty`. Also the multi-request fetches
(Hugging Face day by day, alphaXiv and bioRxiv pages) against a real HTTP server.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.store.health import FetchRecord
from bot.store.store import Store
from tests.httpserver import FIXTURES, LocalHTTPServer, Reply, Request
from tests.integration.test_cross_source import lab_source
from tests.integration.test_once import mails_to, run, smtp_section, write_config

GOOD_PAGE = "huggingface/papers_date_2024-11-28_handwritten.html"
BIORXIV_PAGE0 = "/bx/biorxiv/2018-10-29/2018-10-31/0/json"
BIORXIV_PAGE1 = "/bx/biorxiv/2018-10-29/2018-10-31/3/json"


def fixture(name: str) -> bytes:
    """A fixture file's bytes."""
    return (FIXTURES / name).read_bytes()


def source_under_test(kind: str, server: LocalHTTPServer, name: str) -> dict[str, Any]:
    """A source of `kind` reading the fixture file `name` from the server."""
    if kind == "html":
        source = lab_source(server)
        server.route("/lab/en/research/publications", body=fixture(name), content_type="text/html")
        return {**source, "name": "under-test"}
    if kind == "biorxiv":
        server.route(BIORXIV_PAGE0, body=fixture(name), content_type="application/json")
        return {"name": "under-test", "kind": kind, "url": server.url(BIORXIV_PAGE0)}
    extra = {"search_query": "all:electron"} if kind == "arxiv-api" else {}
    return {"name": "under-test", "kind": kind, "url": server.url(name), **extra}


def status_lines(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """What `paperbot status` prints."""
    capsys.readouterr()
    assert run(config, "status") == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("kind", "name", "what"),
    [
        ("huggingface", "huggingface/papers_layout_changed_handwritten.html", "DailyPapers"),
        ("huggingface", "huggingface/api_error_handwritten.json", "answered with an error"),
        (
            "alphaxiv",
            "alphaxiv/feed_renamed_fields_handwritten.json",
            "none of 2 items could be read (item 1 skipped: missing required field",
        ),
        ("arxiv-api", "arxiv/api_error_handwritten.xml", "arXiv API error: incorrect id"),
        (
            "html",
            "html/mila_publications_redesigned_handwritten.html",
            "selector 'article.publication-card' matched nothing",
        ),
        ("biorxiv", "biorxiv/details_error_status_handwritten.json", "interval not recognised"),
    ],
    ids=["hf-page", "hf-error", "alphaxiv", "arxiv-api", "lab-page", "biorxiv"],
)
def test_a_broken_source_is_reported_and_the_others_deliver(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: Any,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    name: str,
    what: str,
) -> None:
    config = write_config(
        tmp_path,
        sources=[
            source_under_test(kind, http_server, name),
            {"name": "good", "kind": "huggingface", "url": http_server.url(GOOD_PAGE)},
        ],
        smtp=smtp_section(smtp_server),
        subscribers=[{"email": "ada@example.org", "keywords": ["tailored architectures"]}],
    )
    assert run(config, "once") == 1, "a broken source makes the run's exit code 1"
    assert len(mails_to(smtp_server, "ada@example.org")) == 1, "the good source delivered"
    out = status_lines(config, capsys)
    assert re.search(rf"under-test: broken\b.*{re.escape(what)}", out), out
    assert re.search(r"good: ok\b", out)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("huggingface", "huggingface/api_daily_papers_empty_weekend_handwritten.json"),
        ("arxiv-rss", "arxiv/rss_empty_feed_2024-11-28.xml"),
        ("arxiv-api", "arxiv/api_empty_2025-08_oldformat.xml"),
        ("alphaxiv", "alphaxiv/feed_empty_handwritten.json"),
        ("biorxiv", "biorxiv/details_no_posts_found_handwritten.json"),
    ],
    ids=["hf-weekend", "arxiv-empty-channel", "arxiv-api-no-result", "alphaxiv", "biorxiv"],
)
def test_a_legitimately_empty_day_is_empty_not_broken(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    name: str,
) -> None:
    config = write_config(
        tmp_path,
        sources=[source_under_test(kind, http_server, name)],
        subscribers=[{"email": "ada@example.org", "keywords": ["diffusion"]}],
    )
    assert run(config, "once") == 0
    out = status_lines(config, capsys)
    assert re.search(r"under-test: empty\b", out), out
    assert "failures in a row" not in out


# --- fetches of several requests ----------------------------------------------------------


def daily_papers(days: dict[str, bytes]) -> Any:
    """An `/api/daily_papers` handler: the listed days' answers, `[]` for any other day."""

    def answer(request: Request) -> Reply:
        day = parse_qs(urlsplit(request.path).query).get("date", [""])[0]
        return Reply(200, days.get(day, b"[]"), content_type="application/json")

    return answer


def asked_days(server: LocalHTTPServer) -> list[str]:
    """The `date=` of every request the API got, in order."""
    return [
        parse_qs(urlsplit(r.path).query)["date"][0] for r in server.requests_to("/api/daily_papers")
    ]


def test_hugging_face_api_catches_up_every_missed_day(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any
) -> None:
    today = datetime.now(UTC).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    http_server.handle(
        "/api/daily_papers",
        daily_papers(
            {yesterday: fixture("huggingface/api_daily_papers_2024-11-28_handwritten.json")}
        ),
    )
    config = write_config(
        tmp_path,
        sources=[
            {"name": "hf", "kind": "huggingface", "url": http_server.url("/api/daily_papers")}
        ],
        smtp=smtp_section(smtp_server),
        subscribers=[{"email": "ada@example.org", "keywords": ["tailored architectures"]}],
    )
    assert run(config, "once") == 0
    assert asked_days(http_server) == [yesterday], "a first fetch reads the last full day"
    assert len(mails_to(smtp_server, "ada@example.org")) == 1

    # the bot was down: the last success was four days ago
    store = Store.open(tmp_path / "paperbot.db")
    try:
        run_id = store.health.start_run()
        four_days_ago = datetime.now(UTC) - timedelta(days=4)
        store.health.record_fetch(run_id, FetchRecord("hf", "ok"), four_days_ago)
    finally:
        store.close()
    http_server.clear()
    http_server.handle("/api/daily_papers", daily_papers({}))
    assert run(config, "once") == 0
    expected = [(today - timedelta(days=n)).isoformat() for n in range(5, 0, -1)]
    assert asked_days(http_server) == expected, "one request per day, oldest first, none today"
    assert len(mails_to(smtp_server, "ada@example.org")) == 1, "nothing new, nothing mailed"


def test_alphaxiv_pages_are_followed_while_full(
    tmp_path: Path, http_server: LocalHTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    def page(request: Request) -> Reply:
        number = parse_qs(urlsplit(request.path).query)["pageNum"][0]
        name = f"alphaxiv/feed_hot_7days_page{number}_handwritten.json"
        return Reply(200, fixture(name), content_type="application/json")

    http_server.handle("/papers/v3/feed", page)
    config = write_config(
        tmp_path,
        sources=[
            {
                "name": "ax",
                "kind": "alphaxiv",
                "url": http_server.url("/papers/v3/feed"),
                "page_size": 2,
                "max_pages": 5,
            }
        ],
        subscribers=[{"email": "ada@example.org", "keywords": ["acoustic emission"]}],
    )
    assert run(config, "once") == 0
    pages = [parse_qs(urlsplit(r.path).query)["pageNum"] for r in http_server.requests]
    assert pages == [["0"], ["1"]], "page 1 was short: no page 2"
    assert re.search(r"ax: ok, .* 3 items / 3 new", status_lines(config, capsys))


def test_biorxiv_cursor_pages_give_one_paper_per_doi(
    tmp_path: Path, http_server: LocalHTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    http_server.route(
        BIORXIV_PAGE0,
        body=fixture("biorxiv/details_2018-10-29_2018-10-31_cursor0_handwritten.json"),
        content_type="application/json",
    )
    http_server.route(
        BIORXIV_PAGE1,
        body=fixture("biorxiv/details_2018-10-29_2018-10-31_cursor3_handwritten.json"),
        content_type="application/json",
    )
    config = write_config(
        tmp_path,
        sources=[{"name": "bx", "kind": "biorxiv", "url": http_server.url(BIORXIV_PAGE0)}],
        subscribers=[{"email": "ada@example.org", "keywords": ["somatostatin"]}],
    )
    assert run(config, "once") == 0
    assert [r.path for r in http_server.requests] == [BIORXIV_PAGE0, BIORXIV_PAGE1]
    assert re.search(r"bx: ok, .* 3 items / 3 new", status_lines(config, capsys))
    with sqlite3.connect(tmp_path / "paperbot.db") as conn:
        rows = conn.execute("SELECT id FROM papers WHERE doi = '10.1101/456574'").fetchall()
    assert rows == [("doi:10.1101/456574",)]
