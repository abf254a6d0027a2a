"""A real HTTP server on 127.0.0.1 for tests: fixture files, programmed replies, a request log.

Import the fixtures into `tests/conftest.py`::

    from tests.httpserver import http_server, http_server_factory  # noqa: F401

`http_server` serves `tests/fixtures/`; `http_server_factory(directory)` starts more servers.
Use `server.url(path, host="localhost")` when a test needs a second host name.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import io
import mimetypes
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import pytest

#: the directory `http_server` serves
FIXTURES = Path(__file__).parent / "fixtures"

#: what feeds and APIs really send; mimetypes alone knows neither .rss nor .atom
CONTENT_TYPES = {
    ".atom": "application/atom+xml",
    ".csv": "text/csv; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".rss": "application/rss+xml",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
}


@dataclass(frozen=True)
class Reply:
    """One programmed answer: status, body, headers, and seconds to wait before answering.

    `chunked=True` streams the body with chunked transfer encoding (no Content-Length),
    as a server that does not know the length in advance would. `trickle` > 0 sends the
    status line and headers at once, then the body one byte every `trickle` seconds, as a
    hostile or overloaded server does to a client whose timeouts count per read.
    """

    status: int = 200
    body: bytes | str = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str | None = None
    chunked: bool = False
    trickle: float = 0.0

    def payload(self) -> bytes:
        """The body as bytes (str bodies are UTF-8)."""
        return self.body.encode() if isinstance(self.body, str) else self.body


@dataclass(frozen=True)
class Request:
    """One request as the server received it; `time` is time.monotonic() at arrival."""

    method: str
    path: str
    headers: Message
    time: float
    body: bytes = b""

    @property
    def host(self) -> str:
        """The Host header without the port (`127.0.0.1`, `localhost`)."""
        return (self.headers.get("Host") or "").rsplit(":", 1)[0]

    def header(self, name: str) -> str | None:
        """A request header by case-insensitive name, None when absent."""
        value = self.headers.get(name)
        return None if value is None else str(value)


Handler = Callable[[Request], Reply]


class _Sequence:
    """Replies handed out in order; the last one repeats forever."""

    def __init__(self, replies: Sequence[Reply]) -> None:
        if not replies:
            raise ValueError("a reply sequence needs at least one reply")
        self._replies = list(replies)
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        with self._lock:
            return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]


class LocalHTTPServer:
    """A real threaded HTTP/1.1 server on 127.0.0.1 (port 0) running in a background thread."""

    def __init__(self, directory: Path | str | None = None) -> None:
        """Serve files from `directory` (if given) plus whatever routes a test programs."""
        self.directory = Path(directory).resolve() if directory is not None else None
        self._routes: dict[str, Handler] = {}
        self._log: list[Request] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        """Bind a free port and serve in a daemon thread."""
        self._httpd = _Server(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake delayed replies and drop open keep-alive connections."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> Self:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    # -- addresses ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    def url(self, path: str = "/", *, host: str = "127.0.0.1") -> str:
        """An absolute URL on this server; `host="localhost"` gives a second host name."""
        return f"http://{host}:{self.port}/{path.lstrip('/')}"

    # -- programming -------------------------------------------------------------------

    def route(
        self,
        path: str,
        *,
        status: int = 200,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        content_type: str | None = None,
        chunked: bool = False,
        trickle: float = 0.0,
    ) -> None:
        """Answer `path` (with or without its query string) with this reply, every time."""
        reply = Reply(status, body, dict(headers or {}), delay, content_type, chunked, trickle)
        self.handle(path, lambda _request: reply)

    def route_sequence(self, path: str, replies: Iterable[Reply]) -> None:
        """Answer `path` with these replies in order; the last one repeats."""
        self.handle(path, _Sequence(list(replies)))

    def handle(self, path: str, handler: Handler) -> None:
        """Answer `path` by calling `handler(request)` in the server thread."""
        with self._lock:
            self._routes[_normalize(path)] = handler

    def clear(self) -> None:
        """Forget every route and logged request."""
        with self._lock:
            self._routes.clear()
            self._log.clear()

    # -- the request log ---------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, in arrival order."""
        with self._lock:
            return list(self._log)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Request]:
        """The log once it holds `count` requests (for clients that gave up before the answer).

        Raises AssertionError if they have not all arrived within `timeout` seconds.
        """
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._log) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self._log)}")
            return list(self._log)

    def requests_to(self, path: str) -> list[Request]:
        """The requests whose path (query string ignored unless given) is `path`."""
        wanted = _normalize(path)
        if "?" in wanted:
            return [r for r in self.requests if r.path == wanted]
        return [r for r in self.requests if _path_only(r.path) == wanted]

    # -- used by the request handler ---------------------------------------------------

    def _record(self, request: Request) -> None:
        with self._arrived:
            self._log.append(request)
            self._arrived.notify_all()

    def _reply_for(self, request: Request) -> Reply:
        with self._lock:
            handler = self._routes.get(request.path) or self._routes.get(_path_only(request.path))
        if handler is not None:
            return handler(request)
        return self._file_reply(_path_only(request.path))

    def _file_reply(self, path: str) -> Reply:
        """The file at `path` under the served directory, with ETag and Last-Modified."""
        file = self._resolve(path)
        if file is None:
            return Reply(404, f"no route or file for {path}\n", content_type="text/plain")
        data = file.read_bytes()
        headers = {
            "ETag": f'"{hashlib.sha256(data).hexdigest()[:20]}"',
            "Last-Modified": email.utils.formatdate(file.stat().st_mtime, usegmt=True),
        }
        return Reply(200, data, headers, content_type=content_type_for(file.name))

    def _resolve(self, path: str) -> Path | None:
        if self.directory is None:
            return None
        file = (self.directory / unquote(path).lstrip("/")).resolve()
        # Refuse `..` escapes: tests must never read outside the fixture directory.
        if not file.is_relative_to(self.directory) or not file.is_file():
            return None
        return file


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its owner and can drop its open connections."""

    daemon_threads = True

    def __init__(self, owner: LocalHTTPServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open client socket so their handler threads end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # Already closed by the client is fine: the thread ends either way.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, size cap) is expected in these tests, not an error.
        pass


class _RequestHandler(BaseHTTPRequestHandler):
    """Logs each request, then answers with the programmed reply or a served file."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_POST(self) -> None:
        self._answer(send_body=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log replaces stderr noise

    def _answer(self, *, send_body: bool) -> None:
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        owner = self.server.owner
        request = Request(self.command, self.path, self.headers, arrived, body)
        owner._record(request)
        reply = owner._reply_for(request)
        if reply.delay and owner._stopping.wait(reply.delay):
            self.close_connection = True
            return
        reply = _conditional(request, reply)
        try:
            if reply.trickle > 0:
                self._send_trickled(reply, send_body=send_body)
                return
            self._send(reply, send_body=send_body)
        except (ConnectionError, OSError):
            self.close_connection = True  # the client hung up (timeout, size cap)

    def _send(self, reply: Reply, *, send_body: bool) -> None:
        payload = b"" if reply.status in (204, 304) else reply.payload()
        self.send_response(reply.status)
        headers = {k.lower(): v for k, v in reply.headers.items()}
        if reply.status not in (204, 304) and "content-type" not in headers:
            self.send_header("Content-Type", reply.content_type or "application/octet-stream")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.chunked and reply.status not in (204, 304):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if send_body:
                self._send_chunked(payload)
            return
        if "content-length" not in headers:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if send_body:
            self.wfile.write(payload)

    def _send_trickled(self, reply: Reply, *, send_body: bool) -> None:
        """Send the head at once, then the body byte by byte, `reply.trickle` seconds apart."""
        real, self.wfile = self.wfile, io.BytesIO()
        try:
            self._send(replace(reply, trickle=0.0), send_body=send_body)
            data = self.wfile.getvalue()
        finally:
            self.wfile = real
        self.close_connection = True
        head, separator, body = data.partition(b"\r\n\r\n")
        self.wfile.write(head + separator)
        for index in range(len(body)):
            if self.server.owner._stopping.wait(reply.trickle):
                return
            self.wfile.write(body[index : index + 1])

    def _send_chunked(self, payload: bytes, size: int = 16_384) -> None:
        for start in range(0, len(payload), size):
            chunk = payload[start : start + size]
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


def _conditional(request: Request, reply: Reply) -> Reply:
    """Turn a 200 into a 304 when the client already holds this version (RFC 9110 §13)."""
    if reply.status != 200:
        return reply
    headers = {k.lower(): v for k, v in reply.headers.items()}
    if_none_match = request.header("If-None-Match")
    if if_none_match is not None:
        fresh = "etag" in headers and _etag_matches(if_none_match, headers["etag"])
    else:
        since = request.header("If-Modified-Since")
        fresh = _not_modified_since(since, headers.get("last-modified"))
    if not fresh:
        return reply
    kept = {k: v for k, v in reply.headers.items() if k.lower() in ("etag", "last-modified")}
    return Reply(304, b"", kept)


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison, as If-None-Match requires."""
    if if_none_match.strip() == "*":
        return True
    wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag.strip().removeprefix("W/") in wanted


def _not_modified_since(if_modified_since: str | None, last_modified: str | None) -> bool:
    if not if_modified_since or not last_modified:
        return False
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
        modified = email.utils.parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False
    return modified <= since


def content_type_for(name: str) -> str:
    """The Content-Type the server sends for a file name."""
    suffix = Path(name).suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _encoding = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def closed_port() -> int:
    """A local port nothing listens on (bound then released), for connection-refused tests."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _normalize(path: str) -> str:
    return "/" + path.lstrip("/")


def _path_only(path: str) -> str:
    return urlsplit(path).path


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    """A fresh server serving tests/fixtures/ for one test (routes and log start empty)."""
    with LocalHTTPServer(FIXTURES) as server:
        yield server


@pytest.fixture
def http_server_factory() -> Iterator[Callable[[Path | str | None], LocalHTTPServer]]:
    """Start servers on demand (`factory(directory)`); all are stopped after the test."""
    servers: list[LocalHTTPServer] = []

    def start(directory: Path | str | None = None) -> LocalHTTPServer:
        server = LocalHTTPServer(directory).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
