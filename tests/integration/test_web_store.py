"""The web app when its database is locked by another process or is not a store: a short 503
page with Retry-After and the security headers of every page, and a /healthz that really
asks the database (a real server, a real second SQLite connection holding the write lock)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bot.web.errorpages import RETRY_AFTER
from bot.web.guard import SECURITY_HEADERS
from tests.webapp import WebSite, page_title, sign_up, subscribe

ADA, BO = "ada@example.org", "bo@example.org"


@contextmanager
def write_locked(database: Path) -> Iterator[None]:
    """Another process holds the database's write lock (e.g. a long transaction)."""
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO runs (started) VALUES ('2026-01-01T00:00:00+00:00')")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def assert_unavailable_page(answer: httpx.Response, title: str) -> None:
    """A short 503 HTML page saying when to come back, with every security header."""
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == str(RETRY_AFTER)
    assert answer.headers["content-type"].startswith("text/html")
    assert page_title(answer.text) == title
    assert len(answer.content) < 20_000
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value, name


def quick_site(factory: Callable[..., WebSite]) -> WebSite:
    """A site whose requests wait at most 0.3 s for another process's write."""
    return factory(scheduling={"database_wait": 0.3})


def test_a_write_locked_database_gives_a_503_page_and_reads_go_on(
    web_site_factory: Callable[..., WebSite],
) -> None:
    site = quick_site(web_site_factory)
    client = site.client()
    manage = subscribe(site, client, ADA, keywords="diffusion")

    with write_locked(site.config.database):
        refused = sign_up(site.client(), BO, keywords="grokking")
        assert_unavailable_page(refused, "Busy right now")
        assert client.get(manage).status_code == 200, "a page that only reads still works"
        health = client.get("/healthz")
    assert site.mails_to(BO) == []

    assert health.status_code == 503
    assert health.text == "database unavailable\n"
    assert health.headers["retry-after"] == str(RETRY_AFTER)
    assert health.headers["x-content-type-options"] == "nosniff"

    assert client.get("/healthz").text == "ok\n"  # the lock is gone
    assert sign_up(site.client(), BO, keywords="grokking").status_code == 200
    assert len(site.mails_to(BO)) == 1


def test_a_file_that_is_not_a_store_gives_503s_and_is_left_alone(
    web_site_factory: Callable[..., WebSite],
) -> None:
    site = quick_site(web_site_factory)
    database = site.config.database
    database.write_bytes(b"")
    client = site.client()

    assert_unavailable_page(sign_up(client, BO, keywords="grokking"), "Temporarily unavailable")
    health = client.get("/healthz")
    assert (health.status_code, health.text) == (503, "database unavailable\n")
    assert database.stat().st_size == 0
    assert site.mails_to(BO) == []


def test_healthz_says_ok_for_a_working_store(web_site: WebSite) -> None:
    answer = web_site.client().get("/healthz")
    assert (answer.status_code, answer.text) == (200, "ok\n")
    assert answer.headers["cache-control"] == "no-store"
