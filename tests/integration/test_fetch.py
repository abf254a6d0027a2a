"""The Fetcher against a real HTTP server on 127.0.0.1: bodies, 304s, caps, retries, politeness,
deadlines.

httpx.MockTransport appears only where a local server cannot produce the situation: a
connect that stalls, and real host names (rss.arxiv.org) for suffix matching and the
default interval of hosts that are not this machine (there with the clock/sleep seams).
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import bot
from bot.errors import FetchDeadline, FetchError
from bot.ingest.fetch import Fetcher, Response, is_loopback, user_agent_for
from bot.models import Validators
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
    transport = httpx.MockTransport(stall)
    error = fetch_error(url, retries=2, timeout=7, transport=transport, default_interval=0)

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


def test_a_retry_after_that_is_not_a_number_is_backed_off_from(
    http_server: LocalHTTPServer,
) -> None:
    # "²" is a digit to str.isdigit but not to int(): the header is unusable, not a crash
    busy = Reply(503, "busy", headers={"Retry-After": "²"})
    http_server.route_sequence("/busy", [busy, Reply(200, "ready")])

    assert fetch(http_server.url("busy"), retries=1).body == b"ready"
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
    assert len(arrivals) == len(urls)
    assert all(b - a >= 0.25 for a, b in itertools.pairwise(arrivals)), arrivals


class FakeTime:
    """The Fetcher's clock and sleep, moved by hand: intervals are read off exactly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def request_starts(urls: list[str], **options: Any) -> list[float]:
    """The fake-clock moments at which each GET reached the transport (one Fetcher)."""
    fake = FakeTime()
    starts: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        starts.append(fake.clock())
        return httpx.Response(200, content=b"ok")

    async def go() -> None:
        transport = httpx.MockTransport(answer)
        async with make_fetcher(
            transport=transport, clock=fake.clock, sleep=fake.sleep, **options
        ) as fetcher:
            await asyncio.gather(*(fetcher.get(url) for url in urls))

    asyncio.run(go())
    return starts


@pytest.mark.parametrize(
    ("host", "options", "expected"),
    [
        ("papers.example.org", {}, [0.0, 1.0, 2.0]),
        ("papers.example.org", {"default_interval": 2.5}, [0.0, 2.5, 5.0]),
        ("papers.example.org", {"host_intervals": {"example.org": 0.5}}, [0.0, 0.5, 1.0]),
        ("export.arxiv.org", {}, [0.0, 3.0, 6.0]),
        ("export.arxiv.org", {"host_intervals": {"arxiv.org": 0.5}}, [0.0, 0.5, 1.0]),
        ("127.0.0.1", {}, [0.0, 0.0, 0.0]),
        ("localhost", {"default_interval": 5}, [0.0, 0.0, 0.0]),
        ("[::1]", {}, [0.0, 0.0, 0.0]),
        ("127.0.0.1", {"host_intervals": {"127.0.0.1": 0.5}}, [0.0, 0.5, 1.0]),
        ("[::1]", {"host_intervals": {"[::1]": 0.5}}, [0.0, 0.5, 1.0]),
    ],
    ids=[
        "unlisted-host-default",
        "default-configured",
        "listed-suffix",
        "built-in-arxiv",
        "built-in-overridden",
        "loopback-exempt",
        "localhost-exempt",
        "ipv6-loopback-exempt",
        "loopback-listed",
        "ipv6-loopback-listed",
    ],
)
def test_request_starts_are_spaced_by_the_hosts_interval(
    host: str, options: dict[str, Any], expected: list[float]
) -> None:
    assert request_starts([f"http://{host}/feed"] * 3, **options) == expected


def test_loopback_is_this_machine_only() -> None:
    assert all(
        map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "a.localhost"])
    )
    assert not any(map(is_loopback, ["10.0.0.1", "example.org", "localhost.example.org", "::2"]))


# -- deadlines --------------------------------------------------------------------------------


def fetch_within(url: str, seconds: float, **options: Any) -> Response:
    """One GET under a deadline of `seconds` (the way a source fetch runs)."""

    async def go() -> Response:
        async with make_fetcher(**options) as fetcher, fetcher.within(seconds) as deadline:
            return await fetcher.get(url, deadline=deadline)

    return asyncio.run(go())


def deadline_error(url: str, seconds: float, **options: Any) -> FetchError:
    """The FetchError a GET under a deadline of `seconds` raises (one line)."""
    with pytest.raises(FetchError) as info:
        fetch_within(url, seconds, **options)
    assert "\n" not in str(info.value)
    return info.value


def test_deadline_cuts_a_body_trickled_byte_by_byte(http_server: LocalHTTPServer) -> None:
    # Each byte comes long before the 10 s read timeout: only the deadline can end this.
    http_server.route("/trickle", body=b"x" * 1000, trickle=0.05)
    url = http_server.url("trickle")

    error = deadline_error(url, 0.5)

    assert isinstance(error, FetchDeadline)
    assert re.fullmatch(
        rf"gave up after the 0.5 s deadline \(page 1 of {re.escape(url)}: still reading,"
        r" [1-9][0-9]* bytes so far\)",
        str(error),
    ), str(error)


def test_deadline_cuts_a_server_that_never_answers(http_server: LocalHTTPServer) -> None:
    http_server.route("/stall", body="never", delay=60)
    url = http_server.url("stall")

    error = deadline_error(url, 0.5, retries=3)

    assert (
        str(error) == f"gave up after the 0.5 s deadline (page 1 of {url}: waiting for an answer)"
    )
    assert len(http_server.wait_for_requests(1)) == 1, "the deadline ended the first attempt"


def test_retry_after_past_the_deadline_is_not_waited_for(http_server: LocalHTTPServer) -> None:
    http_server.route("/busy", status=503, headers={"Retry-After": "120"})
    url = http_server.url("busy")

    error = deadline_error(url, 3, retries=3)

    # not a FetchDeadline: the fetch gave up at once instead of waiting for the deadline
    assert type(error) is FetchError
    assert re.fullmatch(
        rf"{re.escape(url)}: HTTP 503 Service Unavailable: server asks to retry after 120 s,"
        r" past the 3 s deadline \([0-9.]+ s left\)",
        str(error),
    ), str(error)
    assert len(http_server.requests) == 1


def test_back_off_past_the_deadline_is_not_waited_for(http_server: LocalHTTPServer) -> None:
    http_server.route("/down", status=500)
    url = http_server.url("down")

    error = deadline_error(url, 3, retries=3, backoff=60)

    assert type(error) is FetchError
    assert str(error) == (
        f"{url}: HTTP 500 Internal Server Error"
        " (not retried: the next would start after the 3 s deadline)"
    )
    assert len(http_server.requests) == 1


@pytest.mark.parametrize(("retry_after", "waited"), [("4", [4.0]), ("6", [])])
def test_retry_after_is_waited_for_only_within_the_deadline(
    retry_after: str, waited: list[float]
) -> None:
    # The clock/sleep seams: the deadline is 5 s of the Fetcher's clock, not of real time.
    fake = FakeTime()
    answers = iter([httpx.Response(503, headers={"Retry-After": retry_after}), httpx.Response(200)])
    transport = httpx.MockTransport(lambda request: next(answers))

    async def go() -> Response:
        async with (
            make_fetcher(
                transport=transport, clock=fake.clock, sleep=fake.sleep, retries=1
            ) as fetcher,
            fetcher.within(5) as deadline,
        ):
            return await fetcher.get("http://127.0.0.1/feed", deadline=deadline)

    if waited:
        assert asyncio.run(go()).status == 200
    else:
        with pytest.raises(FetchError, match="asks to retry after 6 s, past the 5 s deadline"):
            asyncio.run(go())
    assert fake.sleeps == waited


def test_the_wait_for_the_hosts_turn_counts_against_the_deadline(
    http_server: LocalHTTPServer,
) -> None:
    # Two sources on one host that asks for 30 s between requests: the first is answered at
    # once, the second's turn would come long after its 1 s deadline.
    http_server.route("/feed", body="ok")
    url = http_server.url("feed")

    async def one(fetcher: Fetcher) -> Response | FetchError:
        try:
            async with fetcher.within(1) as deadline:
                return await fetcher.get(url, deadline=deadline)
        except FetchError as exc:
            return exc

    async def go() -> list[Response | FetchError]:
        async with make_fetcher(host_intervals={"127.0.0.1": 30}) as fetcher:
            return list(await asyncio.gather(one(fetcher), one(fetcher)))

    outcomes = asyncio.run(go())

    [answered] = [o for o in outcomes if isinstance(o, Response)]
    [late] = [o for o in outcomes if isinstance(o, FetchError)]
    assert answered.body == b"ok"
    assert str(late) == (
        f"gave up after the 1 s deadline (page 1 of {url}: waiting for its turn at 127.0.0.1)"
    )
    assert len(http_server.requests) == 1
