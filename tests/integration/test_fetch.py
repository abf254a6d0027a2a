"""The Fetcher against a real HTTP server on 127.0.0.1: bodies, 304s, caps, retries, politeness.

httpx.MockTransport appears only where a local server cannot produce the situation: a
connect that stalls, and real host names (rss.arxiv.org) for suffix matching.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import bot
from bot.errors import FetchError
from bot.fetch import Fetcher, Response, Validators, user_agent_for
from tests.httpserver import LocalHTTPServer, Reply, Request, closed_port

UA = user_agent_for("ops@example.org")
ServerFactory = Callable[[Path | str | None], LocalHTTPServer]


def make_fetcher(**options: Any) -> Fetcher:
    """A Fetcher with test-sized back-off (real time, small numbers)."""
    settings: dict[str, Any] = {"backoff": 0.01, "timeout": 10.0, **options}
    return Fetcher(user_agent=UA, **settings)


def fetch(url: str, validators: Validators | None = None, **options: Any) -> Response:
    """One GET through a fresh Fetcher."""

    async def go() -> Response:
        async with make_fetcher(**options) as fetcher:
            return await fetcher.get(url, validators)

    return asyncio.run(go())


def fetch_many(urls: list[str], *, min_interval: float = 0.0, **options: Any) -> list[Response]:
    """Concurrent GETs through one Fetcher."""

    async def go() -> list[Response]:
        async with make_fetcher(**options) as fetcher:
            gets = (fetcher.get(url, min_interval=min_interval) for url in urls)
            return list(await asyncio.gather(*gets))

    return asyncio.run(go())


def fetch_error(url: str, **options: Any) -> FetchError:
    """The FetchError one GET raises."""
    with pytest.raises(FetchError) as info:
        fetch(url, **options)
    assert info.value.url == url
    assert "\n" not in str(info.value)
    return info.value


def gaps(requests: list[Request]) -> list[float]:
    """Seconds between consecutive request arrivals."""
    times = sorted(r.time for r in requests)
    return [later - earlier for earlier, later in itertools.pairwise(times)]


# -- plain and conditional GETs -------------------------------------------------------------


def test_user_agent_names_bot_version_and_contact() -> None:
    expected = f"paperbot/{bot.__version__} (+https://github.com/paperbot; mailto:ops@example.org)"
    assert user_agent_for("ops@example.org") == expected
    assert user_agent_for("https://example.org/bot") == (
        f"paperbot/{bot.__version__} (+https://github.com/paperbot; https://example.org/bot)"
    )
    assert user_agent_for(None) == f"paperbot/{bot.__version__} (+https://github.com/paperbot)"


def test_get_returns_body_and_identifies_itself(
    http_server_factory: ServerFactory, tmp_path: Path
) -> None:
    (tmp_path / "feed.xml").write_bytes(b"<rss>items</rss>")
    server = http_server_factory(tmp_path)

    response = fetch(server.url("feed.xml"))

    assert response.status == 200
    assert response.body == b"<rss>items</rss>"
    assert not response.not_modified
    assert response.url == server.url("feed.xml")
    assert response.validators.etag
    assert response.validators.last_modified
    [request] = server.requests
    assert request.header("User-Agent") == UA
    assert request.header("If-None-Match") is None


def test_conditional_get_round_trip(http_server_factory: ServerFactory, tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"<rss>v1</rss>")
    server = http_server_factory(tmp_path)
    url = server.url("feed.xml")

    first = fetch(url)
    second = fetch(url, first.validators)

    assert (second.status, second.body, second.not_modified) == (304, b"", True)
    assert second.validators == first.validators
    sent = server.requests[1]
    assert sent.header("If-None-Match") == first.validators.etag
    assert sent.header("If-Modified-Since") == first.validators.last_modified

    feed.write_bytes(b"<rss>v2</rss>")
    third = fetch(url, first.validators)
    assert (third.status, third.body, third.not_modified) == (200, b"<rss>v2</rss>", False)
    assert third.validators.etag != first.validators.etag


def test_last_modified_alone_gives_a_conditional_get(http_server: LocalHTTPServer) -> None:
    stamp = "Wed, 01 Jan 2025 00:00:00 GMT"
    http_server.route("/page", body="hello", headers={"Last-Modified": stamp})

    first = fetch(http_server.url("page"))
    second = fetch(http_server.url("page"), first.validators)

    assert first.validators == Validators(etag=None, last_modified=stamp)
    assert second.not_modified
    assert second.validators == first.validators
    assert http_server.requests[1].header("If-Modified-Since") == stamp


def test_redirects_are_followed(http_server: LocalHTTPServer) -> None:
    http_server.route("/old", status=301, headers={"Location": "/new"})
    http_server.route("/new", body="moved here")

    response = fetch(http_server.url("old"))

    assert (response.url, response.body) == (http_server.url("new"), b"moved here")


# -- limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_size_cap_aborts_large_responses(http_server: LocalHTTPServer, chunked: bool) -> None:
    http_server.route("/big", body=b"x" * 200_000, chunked=chunked)

    error = fetch_error(http_server.url("big"), max_bytes=1000)

    assert str(error).endswith("response larger than 1000 bytes")
    assert len(http_server.requests) == 1


def test_body_exactly_at_the_cap_is_accepted(http_server: LocalHTTPServer) -> None:
    http_server.route("/fits", body=b"x" * 1000, chunked=True)

    assert fetch(http_server.url("fits"), max_bytes=1000).body == b"x" * 1000


def test_timeout_is_retried_then_reported(http_server: LocalHTTPServer) -> None:
    http_server.route("/slow", body="too late", delay=30)

    error = fetch_error(http_server.url("slow"), timeout=0.3, retries=1)

    expected = "timed out after 0.3s waiting for the server (gave up after 2 attempts)"
    assert str(error).endswith(expected)
    # the client hung up before any answer, so the log may trail it by a moment
    assert len(http_server.wait_for_requests(2)) == 2


def test_connect_timeout_is_retried() -> None:
    # A local server always accepts at once: only a transport can make a connect stall.
    calls: list[httpx.Request] = []

    def stall(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectTimeout("timed out", request=request)

    url = "https://papers.example.org/feed"
    error = fetch_error(url, retries=2, timeout=7, transport=httpx.MockTransport(stall))

    assert str(error) == f"{url}: connection timed out after 7s (gave up after 3 attempts)"
    assert len(calls) == 3


# -- retries ----------------------------------------------------------------------------------


def test_server_error_is_retried_then_fails_in_one_line(http_server: LocalHTTPServer) -> None:
    http_server.route("/down", status=500, body="oops")
    url = http_server.url("down")

    error = fetch_error(url, retries=2)

    assert str(error) == f"{url}: HTTP 500 Internal Server Error (gave up after 3 attempts)"
    assert len(http_server.requests) == 3


def test_retry_after_is_honoured(http_server: LocalHTTPServer) -> None:
    busy = Reply(503, "busy", headers={"Retry-After": "1"})
    http_server.route_sequence("/busy", [busy, Reply(200, "ready")])

    # back-off is 0.01 s, so only Retry-After can explain a one-second wait
    response = fetch(http_server.url("busy"), retries=1)

    assert response.body == b"ready"
    [wait] = gaps(http_server.requests)
    assert wait >= 0.9


def test_retry_after_as_a_past_http_date_retries_at_once(http_server: LocalHTTPServer) -> None:
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    limited = Reply(429, headers={"Retry-After": past})
    http_server.route_sequence("/busy", [limited, Reply(200, "ok")])

    assert fetch(http_server.url("busy"), retries=1).body == b"ok"
    assert len(http_server.requests) == 2


@pytest.mark.parametrize(
    "retry_after",
    ["3600", email.utils.formatdate(time.time() + 3600, usegmt=True)],
    ids=["seconds", "http-date"],
)
def test_retry_after_beyond_the_cap_fails_now(
    http_server: LocalHTTPServer, retry_after: str
) -> None:
    http_server.route("/limited", status=429, headers={"Retry-After": retry_after})

    error = fetch_error(http_server.url("limited"), max_retry_after=300)

    assert "HTTP 429 Too Many Requests: server asks to retry after 3" in str(error)
    assert str(error).endswith("more than the 300s limit")
    assert len(http_server.requests) == 1


def test_client_error_fails_without_retry(http_server: LocalHTTPServer) -> None:
    url = http_server.url("missing.xml")

    error = fetch_error(url, retries=3)

    assert str(error) == f"{url}: HTTP 404 Not Found"
    assert len(http_server.requests) == 1


def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{closed_port()}/feed"

    error = fetch_error(url, retries=1)

    assert str(error) == f"{url}: connection refused (gave up after 2 attempts)"


def test_non_http_url_is_refused_before_any_request() -> None:
    error = fetch_error("ftp://example.org/feed.xml")

    assert str(error) == "ftp://example.org/feed.xml: not an http(s) URL"


# -- politeness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host_intervals", "min_interval"),
    [({"127.0.0.1": 0.5}, 0.0), ({}, 0.5)],
    ids=["host_intervals", "min_interval"],
)
def test_requests_to_one_host_are_spaced(
    http_server: LocalHTTPServer, host_intervals: dict[str, float], min_interval: float
) -> None:
    http_server.route("/feed", body="ok")

    fetch_many(
        [http_server.url("feed")] * 3, min_interval=min_interval, host_intervals=host_intervals
    )

    spacing = gaps(http_server.requests)
    assert len(spacing) == 2
    assert all(gap >= 0.3 for gap in spacing), spacing


def test_rate_limited_host_gets_one_connection_at_a_time(http_server: LocalHTTPServer) -> None:
    lock = threading.Lock()
    in_flight = [0, 0]  # now, peak

    def slow(request: Request) -> Reply:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        time.sleep(0.2)
        with lock:
            in_flight[0] -= 1
        return Reply(200, "ok")

    http_server.handle("/feed", slow)

    fetch_many([http_server.url("feed")] * 3, host_intervals={"127.0.0.1": 0.01})

    assert in_flight[1] == 1


@pytest.mark.parametrize(
    ("hosts", "host_intervals"),
    [
        (("127.0.0.1", "localhost"), {"127.0.0.1": 60.0, "localhost": 60.0}),
        (("127.0.0.1", "127.0.0.1"), {}),
    ],
    ids=["two-rate-limited-hosts", "one-unlimited-host"],
)
def test_unrelated_requests_proceed_in_parallel(
    http_server: LocalHTTPServer, hosts: tuple[str, str], host_intervals: dict[str, float]
) -> None:
    # Each request is held until the other has arrived: they succeed only if both are in
    # flight together, so no clock is involved.
    meeting = threading.Barrier(2, timeout=10)

    def meet(request: Request) -> Reply:
        try:
            meeting.wait()
        except threading.BrokenBarrierError:
            return Reply(400, "came alone")
        return Reply(200, request.host)

    http_server.handle("/meet", meet)
    urls = [http_server.url("meet", host=host) for host in hosts]

    responses = fetch_many(urls, host_intervals=host_intervals, retries=0)

    assert [r.body.decode() for r in responses] == list(hosts)


def test_host_interval_covers_subdomains_as_one_site() -> None:
    # Real arXiv host names cannot reach a local server without touching DNS.
    arrivals: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        arrivals.append(time.monotonic())
        return httpx.Response(200, content=b"<rss/>")

    urls = [
        "https://rss.arxiv.org/rss/cs.LG",
        "https://export.arxiv.org/api/query?search_query=au:Lajoie_G",
        "https://rss.arxiv.org/rss/stat.ML",
    ]
    fetch_many(urls, host_intervals={"arxiv.org": 0.3}, transport=httpx.MockTransport(answer))

    arrivals.sort()
    assert all(b - a >= 0.25 for a, b in itertools.pairwise(arrivals)), arrivals
