"""Seed lookup against a real HTTP server serving real arXiv API answers (id_list captures)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.ingest.fetch import Fetcher
from bot.ingest.lookup import BATCH, LookupReport, look_up_seeds
from bot.models import Paper
from bot.store.store import Store
from tests.httpserver import FIXTURES, LocalHTTPServer, Reply, Request

NOW = datetime(2026, 12, 7, 8, tzinfo=UTC)
ARXIV = FIXTURES / "arxiv"
#: the real answers by the ids they were asked for (the API returns no entry for the others)
CAPTURES = {
    frozenset({"2201.13452", "2201.13453", "2201.13454", "2201.13455"}): (
        "api_idlist_missing_ids_2025-11_newformat.xml"
    ),
    frozenset({"astro-ph/0601001"}): "api_idlist_old_style_2026-04_arxivpy.xml",
}
EMPTY = "api_empty_2025-11_newformat.xml"


def ids_of(request: Request) -> list[str]:
    """The ids a lookup request asks for."""
    query = parse_qs(urlsplit(request.path).query)
    return query["id_list"][0].split(",")


def serve_captures(request: Request) -> Reply:
    """The capture that answered these ids (or more of its ids: the API returns the same
    entries of them), else arXiv's empty answer."""
    asked = frozenset(ids_of(request))
    name = next((name for ids, name in CAPTURES.items() if asked <= ids), EMPTY)
    return Reply(body=(ARXIV / name).read_bytes(), content_type="application/atom+xml")


def look_up(
    store: Store, server: LocalHTTPServer, keys: list[str], deadline: float = 10.0
) -> LookupReport:
    """One lookup of these keys through a real Fetcher at the served API."""

    async def run() -> LookupReport:
        async with Fetcher(user_agent="paperbot-test", timeout=2, retries=0) as fetcher:
            url = server.url("/api/query")
            return await look_up_seeds(fetcher, store, keys, url=url, deadline=deadline, now=NOW)

    return asyncio.run(run())


def test_arxiv_seeds_are_looked_up_once_found_or_unknown(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    http_server.handle("/api/query", serve_captures)
    keys = ["2201.13455", "2201.13452", "2201.13453", "2201.13454"]
    with Store.open(tmp_path / "p.db") as store:
        report = look_up(store, http_server, keys)
        assert (report.found, report.unknown, report.failed) == (1, 3, False)
        got = store.seed_papers.get(keys)
        found = got["2201.13452"]
        assert found.status == "found"
        assert found.title.startswith("Asymptotic Analysis for a Nonlinear Reaction-Diffusion")
        assert "cholera" in found.abstract
        assert found.categories[0] == "math.AP"
        assert {got[k].status for k in ("2201.13453", "2201.13454", "2201.13455")} == {"unknown"}
        asked = http_server.requests_to("/api/query")
        assert len(asked) == 1
        assert sorted(ids_of(asked[0])) == sorted(keys)
        assert look_up(store, http_server, keys) == LookupReport()
        assert len(http_server.requests_to("/api/query")) == 1, "what is known is not asked again"


def test_old_style_ids_are_looked_up(tmp_path: Path, http_server: LocalHTTPServer) -> None:
    http_server.handle("/api/query", serve_captures)
    with Store.open(tmp_path / "p.db") as store:
        look_up(store, http_server, ["astro-ph/0601001"])
        seed = store.seed_papers.get(["astro-ph/0601001"])["astro-ph/0601001"]
        assert seed.status == "found"
        assert seed.title.startswith("Frequency of Hot Jupiters")


def test_seeds_in_the_store_dois_and_titles_are_not_asked_for(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    http_server.handle("/api/query", serve_captures)
    stored = Paper("2201.13455", "A paper the store has", arxiv_id="2201.13455")
    keys = ["2201.13455", "doi:10.1101/2024.01.01.123456", "title:Nowhere to be found"]
    with Store.open(tmp_path / "p.db") as store:
        store.papers.record("arxiv", [stored])
        report = look_up(store, http_server, keys)
        assert http_server.requests_to("/api/query") == []
        assert (report.found, report.unknown) == (0, 2)
        got = store.seed_papers.get(keys)
        assert set(got) == set(keys[1:])
        assert {s.status for s in got.values()} == {"unknown"}


def test_many_seeds_go_in_batches(tmp_path: Path, http_server: LocalHTTPServer) -> None:
    http_server.handle("/api/query", serve_captures)
    keys = [f"2301.{n:05d}" for n in range(BATCH + 20)]
    with Store.open(tmp_path / "p.db") as store:
        report = look_up(store, http_server, keys)
        sizes = [len(ids_of(r)) for r in http_server.requests_to("/api/query")]
        assert sorted(sizes) == [20, BATCH]
        assert report.unknown == len(keys)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(503, "down for maintenance", content_type="text/plain"),
        Reply(200, (ARXIV / "api_error_handwritten.xml").read_bytes()),
        Reply(200, b"<html>not a feed</html>", content_type="text/html"),
        Reply(200, (ARXIV / EMPTY).read_bytes(), delay=3.0),  # past the 0.5 s deadline
    ],
    ids=["503", "error-entry", "not-a-feed", "too-slow"],
)
def test_a_failed_lookup_stores_nothing_warns_once_and_is_tried_again(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    reply: Reply,
    caplog: pytest.LogCaptureFixture,
) -> None:
    http_server.route_sequence("/api/query", [reply])
    keys = ["2201.13452", "2201.13453", "2201.13454", "2201.13455"]
    with Store.open(tmp_path / "p.db") as store, caplog.at_level(logging.WARNING):
        report = look_up(store, http_server, keys, deadline=0.5)
        assert report.failed
        assert store.seed_papers.get(keys) == {}
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1
        assert "seed lookup" in warnings[0].getMessage()
        http_server.handle("/api/query", serve_captures)
        look_up(store, http_server, keys)
        assert store.seed_papers.get(keys)["2201.13452"].status == "found"
