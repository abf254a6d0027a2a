"""A real TCP server on 127.0.0.1 that answers HTTP with exactly the bytes a test scripts.

`tests/httpserver.py` speaks correct HTTP; hostile servers do not. Here each path is a
script: a function that gets the connected socket and the request head (its request line
and headers, as bytes) and writes whatever it likes (a Content-Length that lies, a gzip
body with a bad checksum, a chunked body that never ends, a reset in the middle), then the
connection is closed::

    with RawHTTPServer() as server:
        server.script("/feed.xml", answer(b"200 OK", {"Content-Length": "9999"}, body))
        url = server.url("/feed.xml")

A script may block (a server that never finishes); it is woken when the server stops.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

#: what a script gets: the socket, the request head, and an event set when the server stops
Script = Callable[[socket.socket, bytes, threading.Event], None]

#: the most a request head may take before the server gives up on it
_MAX_HEAD = 65_536


class RawHTTPServer:
    """Accepts connections on 127.0.0.1 (port 0); each request is answered by its path's script."""

    def __init__(self) -> None:
        self._scripts: dict[str, Script] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []
        self.requests: list[str] = []

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._listener.getsockname()[1])

    def url(self, path: str, *, host: str = "127.0.0.1") -> str:
        """An absolute URL on this server."""
        return f"http://{host}:{self.port}/{path.lstrip('/')}"

    def script(self, path: str, script: Script) -> None:
        """Answer requests for `path` (query string ignored) with `script`."""
        with self._lock:
            self._scripts[path] = script

    def start(self) -> Self:
        """Accept connections in a daemon thread."""
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop accepting, wake blocked scripts and close every connection."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)

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

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _address = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.append(connection)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            request = _read_head(connection)
            if request is None:
                return
            path = urlsplit(request.split(b" ", 2)[1].decode("latin-1")).path
            with self._lock:
                self.requests.append(path)
                script = self._scripts.get(path, answer(b"404 Not Found", {}, b"no script"))
            with contextlib.suppress(OSError):
                script(connection, request, self._stopping)


def _read_head(connection: socket.socket) -> bytes | None:
    """The request line and headers, or None when the client went away first."""
    data = b""
    connection.settimeout(10)
    while b"\r\n\r\n" not in data:
        try:
            chunk = connection.recv(4096)
        except OSError:
            return None
        if not chunk or len(data) > _MAX_HEAD:
            return None
        data += chunk
    connection.settimeout(None)
    return data.split(b"\r\n\r\n", 1)[0]


def request_header(request: bytes, name: str) -> str | None:
    """A header of a request head, by case-insensitive name (None when absent)."""
    for line in request.split(b"\r\n")[1:]:
        key, _colon, value = line.decode("latin-1").partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def head(status: bytes, headers: Mapping[str, str]) -> bytes:
    """A response head: the status line and headers, exactly as given (no header is added)."""
    lines = [b"HTTP/1.1 " + status] + [f"{k}: {v}".encode("latin-1") for k, v in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def answer(status: bytes, headers: Mapping[str, str], body: bytes) -> Script:
    """A script that sends this head and body, then closes the connection."""

    def script(connection: socket.socket, _head: bytes, _stopping: threading.Event) -> None:
        connection.sendall(head(status, {"Connection": "close", **headers}) + body)

    return script


def reset_after(status: bytes, headers: Mapping[str, str], body: bytes) -> Script:
    """A script that sends the head and `body`, then resets the connection (TCP RST)."""

    def script(connection: socket.socket, _head: bytes, _stopping: threading.Event) -> None:
        connection.sendall(head(status, headers) + body)
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return script


def endless_chunks(headers: Mapping[str, str], first: bytes, every: float = 0.05) -> Script:
    """A chunked answer that starts with `first` and then sends a small chunk forever."""

    def script(connection: socket.socket, _head: bytes, stopping: threading.Event) -> None:
        chunked = {**headers, "Transfer-Encoding": "chunked"}
        connection.sendall(head(b"200 OK", chunked) + _chunk(first))
        while not stopping.wait(every):
            connection.sendall(_chunk(b"<!-- more -->"))

    return script


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"
