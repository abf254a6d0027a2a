"""The one HTTP layer: polite, conditional, size-capped GETs with retries and deadlines (httpx).

Over 500 lines on purpose: politeness (per-host pauses), retries with Retry-After, the
deadline that bounds them all, redirects and the size cap are one loop around one request
whose parts share its state; split, each part would need the others' internals.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import math
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import httpx

from bot import __version__
from bot.errors import FetchDeadline, FetchError
from bot.models import Validators

#: where the User-Agent points people who wonder what this bot is
PROJECT_URL = "https://github.com/paperbot"
#: statuses worth another try: the server is overloaded or a proxy hiccupped
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: how much of an error answer's body is kept for the source's kind to explain
ERROR_BODY = 65_536
#: statuses whose Retry-After we honour (RFC 9110 §10.2.3, RFC 6585 §4)
RETRY_AFTER_STATUSES = frozenset({429, 503})
#: what h11 says of an answer whose status line and headers pass its 64 KB limit
_HEAD_TOO_LARGE = "Receive buffer too long"
#: transport failures that are usually transient (a dropped or refused connection, a stall)
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
#: hosts that ask for a pause between requests (arXiv: one request every 3 seconds; Hugging
#: Face allows ~100 pages per 5 minutes; bioRxiv and alphaXiv publish no limit, so be gentle);
#: `fetch.hosts` overrides and extends them
HOST_INTERVALS: Mapping[str, float] = {
    "arxiv.org": 3.0,
    "huggingface.co": 1.0,
    "biorxiv.org": 1.0,
    "alphaxiv.org": 1.0,
}
#: seconds between request starts to a host that is not listed (`fetch.default_interval`)
DEFAULT_INTERVAL = 1.0


def merge_intervals(configured: Mapping[str, float] | None = None) -> dict[str, float]:
    """The built-in HOST_INTERVALS, overridden and extended by `configured` (`fetch.hosts`)."""
    merged = {_normal_host(host): seconds for host, seconds in HOST_INTERVALS.items()}
    merged.update({_normal_host(host): seconds for host, seconds in (configured or {}).items()})
    return merged


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine (127.0.0.0/8, ::1, localhost), where politeness is moot."""
    host = _normal_host(host)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def user_agent_for(contact: str | None) -> str:
    """The User-Agent naming paperbot, its version and, when given, whom to contact."""
    parts = [f"+{PROJECT_URL}"]
    if contact:
        parts.append(contact if ":" in contact else f"mailto:{contact}")
    return f"paperbot/{__version__} ({'; '.join(parts)})"


@dataclass(frozen=True, slots=True)
class Response:
    """A fetched document: final URL (after redirects), status, body and new validators.

    `not_modified` is True on a 304 answer to a conditional GET; the body is then empty.
    `elapsed` is the seconds the successful attempt took, from request start to last byte.
    """

    url: str
    status: int
    body: bytes
    validators: Validators
    not_modified: bool
    elapsed: float


@dataclass(slots=True)
class Deadline:
    """One source's time (`at`, on the Fetcher's clock) and where its fetch is, for the error.

    The Fetcher keeps `page`, `url` and `doing` current, so that the line saying the deadline
    passed can also say what the fetch was waiting for.
    """

    seconds: float
    at: float
    page: int = 0
    url: str = ""
    doing: str = "starting"

    def error(self) -> FetchDeadline:
        """The one-line error for a fetch stopped here by this deadline."""
        where = f"page {self.page} of {self.url}: {self.doing}" if self.page else self.doing
        return FetchDeadline(self.url, self.seconds, where)


@dataclass(frozen=True, slots=True)
class _Failure:
    """Why one attempt failed, in one line, and whether another attempt may help."""

    what: str
    retryable: bool
    retry_after: float | None = None
    body: bytes = b""


@dataclass(slots=True)
class _HostGate:
    """One site's politeness state: a lock that serializes, and when the next start may be."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    not_before: float = 0.0


class Fetcher:
    """The HTTP client every source fetches through (use as an async context manager)."""

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float = 30.0,
        max_bytes: int = 25_000_000,
        retries: int = 3,
        backoff: float = 2.0,
        max_retry_after: float = 300.0,
        host_intervals: Mapping[str, float] | None = None,
        default_interval: float = DEFAULT_INTERVAL,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Configure politeness and limits; `retries` counts attempts after the first.

        `host_intervals` overrides and extends the built-in HOST_INTERVALS (by host suffix);
        any other host gets `default_interval`, except this machine (see `is_loopback`).
        `clock` (monotonic seconds) and `sleep` are the only sources of time, so a test can
        replace them; by default they are real time.
        """
        if timeout <= 0 or max_bytes <= 0 or retries < 0 or backoff < 0 or default_interval < 0:
            raise ValueError(
                "timeout and max_bytes must be > 0, retries, backoff and default_interval >= 0"
            )
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._attempts = retries + 1
        self._backoff = backoff
        self._max_retry_after = max_retry_after
        self._host_intervals = merge_intervals(host_intervals)
        self._default_interval = default_interval
        self._clock = clock
        self._sleep = sleep
        self._gates: dict[str, _HostGate] = {}
        self._client = httpx.AsyncClient(
            headers={"User-Agent": user_agent},
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        """Use the fetcher; its connections close when the block ends."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection pool."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    @asynccontextmanager
    async def within(self, seconds: float) -> AsyncIterator[Deadline]:
        """Run the block (one source's whole fetch) for at most `seconds`: FetchDeadline after.

        Pass the Deadline it yields to every `get` in the block: each request is then cut at
        the deadline however slowly the server trickles, no wait that would pass it is
        started, and the error says where the fetch was. The cut runs on the event loop's
        clock; the foresight on the Fetcher's own (`clock`, which a test may replace).
        """
        deadline = Deadline(seconds, self._clock() + seconds)
        scope = asyncio.timeout(seconds)
        try:
            async with scope:
                yield deadline
        except TimeoutError:
            if not scope.expired():
                raise  # a timeout of something else, not this deadline
            raise deadline.error() from None

    async def get(
        self,
        url: str,
        validators: Validators | None = None,
        *,
        min_interval: float = 0.0,
        deadline: Deadline | None = None,
    ) -> Response:
        """GET `url` politely (conditionally when `validators` are given); FetchError on failure.

        With a `deadline` (from `within`) no retry waits past it; without one only the
        retry limits bound the request.
        """
        host = _host_of(url)
        site = self._site_of(host)
        interval = max(min_interval, self.interval_for(host))
        headers = _conditional_headers(validators)
        watch = deadline or Deadline(math.inf, math.inf)
        watch.page += 1
        watch.url = url
        watch.doing = f"waiting for its turn at {site}"
        attempt = 1
        while True:
            outcome = await self._attempt(url, site, interval, headers, validators, watch)
            if isinstance(outcome, Response):
                return outcome
            delay = self._retry_delay(url, outcome, attempt, watch)
            watch.doing = f"waiting to retry after {outcome.what}"
            # Deferring the whole site (not just this URL) keeps concurrent requests to an
            # overloaded or rate-limiting server from hammering it while this one waits.
            self._defer(site, delay)
            attempt += 1

    def interval_for(self, host: str) -> float:
        """Minimum seconds between request starts to `host`.

        The longest interval of the listed suffixes it falls under; else the default
        interval, or none when the host is this machine.
        """
        listed = self._suffixes_of(host)
        if listed:
            return max(self._host_intervals[suffix] for suffix in listed)
        return 0.0 if is_loopback(host) else self._default_interval

    def _suffixes_of(self, host: str) -> list[str]:
        """The configured host suffixes `host` falls under, broadest first."""
        host = host.lower()
        matches = [s for s in self._host_intervals if host == s or host.endswith("." + s)]
        return sorted(matches, key=len)

    def _site_of(self, host: str) -> str:
        """Whose politeness budget a host draws on: its broadest configured suffix, else itself.

        arXiv's limit is for arXiv, not per name: rss.arxiv.org and export.arxiv.org
        share one queue when "arxiv.org" is configured.
        """
        return next(iter(self._suffixes_of(host)), host.lower())

    async def _attempt(
        self,
        url: str,
        site: str,
        interval: float,
        headers: Mapping[str, str],
        validators: Validators | None,
        watch: Deadline,
    ) -> Response | _Failure:
        """One request, waiting for the site's turn; a failure is returned, not raised."""
        async with self._turn(site, interval):
            started = self._clock()
            watch.doing = "waiting for an answer"
            try:
                async with self._client.stream("GET", url, headers=headers) as response:
                    return await self._read(response, validators, started, watch)
            except httpx.HTTPError as exc:
                return _failure_from(exc, self._timeout)
            except httpx.InvalidURL as exc:  # e.g. a redirect to a malformed Location
                return _Failure(f"invalid URL: {_one_line(exc)}", retryable=False)

    @asynccontextmanager
    async def _turn(self, site: str, interval: float) -> AsyncIterator[None]:
        """Wait until `site` may be asked again; hold it alone for the request when rate-limited."""
        gate = self._gates.setdefault(site, _HostGate())
        if interval <= 0:
            await self._wait_until(gate.not_before)
            yield
            return
        # The lock is held through the body read: a rate-limited host gets one connection
        # at a time (arXiv's rule), and the interval counts from one start to the next.
        async with gate.lock:
            await self._wait_until(gate.not_before)
            gate.not_before = max(gate.not_before, self._clock() + interval)
            yield

    async def _wait_until(self, moment: float) -> None:
        """Sleep until the monotonic clock reaches `moment` (no-op if it already has)."""
        delay = moment - self._clock()
        if delay > 0:
            await self._sleep(delay)

    def _defer(self, site: str, delay: float) -> None:
        """Start no request to `site` for `delay` seconds."""
        gate = self._gates.setdefault(site, _HostGate())
        gate.not_before = max(gate.not_before, self._clock() + delay)

    async def _read(
        self,
        response: httpx.Response,
        validators: Validators | None,
        started: float,
        watch: Deadline,
    ) -> Response | _Failure:
        """Turn a streamed answer into a Response, or say why it is a failure."""
        status = response.status_code
        if status in RETRY_STATUSES:
            retry_after = None
            if status in RETRY_AFTER_STATUSES:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return _Failure(_status_line(response), retryable=True, retry_after=retry_after)
        if status != 304 and not 200 <= status < 300:
            body = await self._read_start(response, ERROR_BODY) if 400 <= status < 500 else b""
            return _Failure(_status_line(response), retryable=False, body=body)
        if status == 304 and not _conditional_headers(validators):
            # "Not modified" since nothing: a broken server or cache, whose every answer
            # would otherwise pass for a quiet day while the source is never read
            return _Failure(
                f"{_status_line(response)} to a request that was not conditional", False
            )
        body = b""
        if status != 304:
            read = await self._read_capped(response, watch)
            if read is None:
                return _Failure(f"response larger than {self._max_bytes} bytes", retryable=False)
            body = read
        return Response(
            url=str(response.url),
            status=status,
            body=body,
            validators=_validators_from(response.headers, validators if status == 304 else None),
            not_modified=status == 304,
            elapsed=self._clock() - started,
        )

    async def _read_capped(self, response: httpx.Response, watch: Deadline) -> bytes | None:
        """The (decoded) body, or None as soon as it exceeds max_bytes."""
        declared = response.headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self._max_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        watch.doing = "still reading, no byte yet"
        # Counting decoded bytes also stops a small gzip bomb from filling memory.
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            watch.doing = f"still reading, {size:,} bytes so far"
            if size > self._max_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _read_start(self, response: httpx.Response, limit: int) -> bytes:
        """Up to `limit` bytes of the (decoded) body; b"" when it cannot be read."""
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= limit:
                    break
        except httpx.HTTPError:
            pass  # the status says enough; the body was only a bonus
        return b"".join(chunks)[:limit]

    def _retry_delay(self, url: str, failure: _Failure, attempt: int, watch: Deadline) -> float:
        """Seconds to wait before the next attempt; raises FetchError when giving up."""
        if not failure.retryable:
            raise FetchError(url, failure.what, body=failure.body)
        if failure.retry_after is not None and failure.retry_after > self._max_retry_after:
            # Sleeping for an hour would stall the whole run; report it and let the next run try.
            raise FetchError(
                url,
                f"{failure.what}: server asks to retry after {failure.retry_after:.0f}s,"
                f" more than the {self._max_retry_after:g}s limit",
            )
        if attempt >= self._attempts:
            suffix = f" (gave up after {attempt} attempts)" if attempt > 1 else ""
            raise FetchError(url, failure.what + suffix)
        delay = self._delay_for(failure, attempt)
        left = watch.at - self._clock()
        if delay > left:
            # A wait that cannot end before the deadline would only hold the run (and its
            # lock) for nothing: say now what the server asked.
            raise FetchError(url, _past_deadline(failure, attempt, delay, left, watch.seconds))
        return delay

    def _delay_for(self, failure: _Failure, attempt: int) -> float:
        """What the server asked for (Retry-After), else exponential back-off with jitter."""
        if failure.retry_after is not None:
            return failure.retry_after
        base = self._backoff * 2.0 ** (attempt - 1)
        # Jitter keeps several bot instances (or sources) from retrying in lock-step.
        return min(base + random.uniform(0, base / 2), self._max_retry_after)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # An HTTP-date is wall-clock time, so it is compared with the wall clock.
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _past_deadline(
    failure: _Failure, attempt: int, delay: float, left: float, seconds: float
) -> str:
    """Why a retry is not waited for: it would start after the source's deadline."""
    if failure.retry_after is not None:
        return (
            f"{failure.what}: server asks to retry after {_secs(delay)} s, past the"
            f" {seconds:g} s deadline ({_secs(max(left, 0.0))} s left)"
        )
    tried = f"gave up after {attempt} attempts" if attempt > 1 else "not retried"
    return f"{failure.what} ({tried}: the next would start after the {seconds:g} s deadline)"


def _secs(seconds: float) -> str:
    """Seconds for a message: `120`, `0.4`."""
    return f"{round(seconds, 1):g}"


def _normal_host(host: str) -> str:
    """A host as compared: lowercase, no trailing (or leading) dot, an IPv6 address bare."""
    return host.strip().strip("[]").strip(".").lower()


def _host_of(url: str) -> str:
    """The lowercased host of an http(s) URL; FetchError for anything else."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError(url, f"invalid URL: {_one_line(exc)}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError(url, "not an http(s) URL")
    return parsed.host.lower()


def _conditional_headers(validators: Validators | None) -> dict[str, str]:
    """If-None-Match / If-Modified-Since for what we already have."""
    headers: dict[str, str] = {}
    if validators is not None and validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators is not None and validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def _validators_from(headers: httpx.Headers, previous: Validators | None) -> Validators:
    """The validators a response carries; a 304 that omits them keeps the ones we sent."""
    etag = headers.get("ETag") or (previous.etag if previous else None)
    modified = headers.get("Last-Modified") or (previous.last_modified if previous else None)
    return Validators(etag=etag, last_modified=modified)


def _status_line(response: httpx.Response) -> str:
    """E.g. `HTTP 503 Service Unavailable`."""
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


def _failure_from(exc: httpx.HTTPError, timeout: float) -> _Failure:
    """Say in one line what a transport error means, and whether retrying may help."""
    retryable = isinstance(exc, _TRANSIENT)
    if isinstance(exc, httpx.ConnectTimeout):
        return _Failure(f"connection timed out after {timeout:g}s", retryable)
    if isinstance(exc, httpx.ReadTimeout):
        return _Failure(f"timed out after {timeout:g}s waiting for the server", retryable)
    if isinstance(exc, httpx.TimeoutException):
        return _Failure(f"timed out after {timeout:g}s", retryable)
    if isinstance(exc, httpx.ConnectError):
        return _Failure(_connect_problem(exc), retryable)
    if isinstance(exc, httpx.TooManyRedirects):
        return _Failure("too many redirects", retryable)
    if isinstance(exc, httpx.DecodingError):  # a corrupt or cut gzip stream: may be transient
        return _Failure(f"the compressed body is corrupt ({_one_line(exc)})", retryable=True)
    if _HEAD_TOO_LARGE in str(exc):  # h11 stops reading an answer's head past 64 KB
        return _Failure("the answer's headers are larger than 64 KB", retryable=False)
    if isinstance(exc, _TRANSIENT):
        return _Failure(f"connection lost: {_one_line(exc)}", retryable)
    return _Failure(_one_line(exc), retryable)


def _connect_problem(exc: httpx.ConnectError) -> str:
    """Name the root cause of a failed connect (httpx buries it under generic messages)."""
    for cause in _causes(exc):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "cannot resolve host name"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or _one_line(cause)}"
    return f"cannot connect: {_one_line(exc)}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """Every exception in `exc`'s cause/context chain, exception groups included."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (its type name if it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__
