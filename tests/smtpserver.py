"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), with refusals and failures on demand.

Import the fixtures into `tests/conftest.py`::

    from tests.smtpserver import smtp_server, smtp_server_factory, tls_certificate  # noqa: F401

`smtp_server` is a plain server (no TLS, no AUTH) on a free port. `smtp_server_factory(...)`
starts more, with `auth=(user, password)` and/or `security="starttls"|"tls"` (the latter
two use `tls_certificate`, a throwaway self-signed certificate made with `openssl`).
A server can `stop()` and `start()` again on the same port ("SMTP down, then up"), keep
a whole message and then drop the connection or never answer (`after_data`), or greet
and then never answer a command (`stall`). Hostile servers, on the wire: a greeting that
never comes or is a refusal (`greet`), a command answered with any line instead (`answer`:
a bogus code, a 421, `CLOSE` to hang up, `ENDLESS` for a multi-line reply that never
ends), every reply late (`slow`) or trickled byte by byte (`trickle`), every Nth
connection dropped (`drop_every`), connections past a limit turned away with a 421
(`limit_connections`), a verdict other than 250 after DATA (`data_verdict`).
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

HOST = "127.0.0.1"
#: the one account servers made with `auth=True` accept
USER, PASSWORD = "paperbot", "s3cret"

Security = Literal["none", "starttls", "tls"]
#: what the server does once it has read a whole message (up to the final dot)
AfterData = Literal["answer", "drop", "stall"]
#: long enough to outlast any test: a stalled handler is cancelled when the client leaves
FOREVER = 3600.0
#: `answer(command, CLOSE)`: hang up instead of answering
CLOSE = "<close>"
#: `answer(command, ENDLESS)`: a multi-line reply (`250-...`) whose last line never comes
ENDLESS = "<endless>"
#: how often an ENDLESS reply sends another line
ENDLESS_INTERVAL = 0.05


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope, the raw bytes, and the parsed message."""

    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    mail_options: tuple[str, ...] = ()
    login: str | None = None
    tls: bool = False
    #: the client's (host, port): one value per connection
    peer: tuple[str, int] | None = None


@dataclass(frozen=True)
class TlsCertificate:
    """A self-signed certificate for 127.0.0.1 and localhost, and contexts for both ends."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """What the test server presents."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this certificate (verification stays on)."""
        return ssl.create_default_context(cafile=str(self.cert))


@dataclass
class Behaviour:
    """What the server does to incoming mail; tests change it while the server runs."""

    #: address (lowercase) -> reply code for RCPT TO, e.g. 550 or 451
    refuse: dict[str, int] = field(default_factory=dict)
    #: the next this-many DATA commands get 451
    fail_next: int = 0
    #: seconds to sit on DATA before answering (client timeouts)
    data_delay: float = 0.0
    #: after the final dot: answer; or keep the message and drop the connection, or never
    #: answer (the client cannot know that the server has it)
    after_data: AfterData = "answer"
    #: commands never answered ("EHLO", "MAIL", "QUIT"): a server that greets, then hangs
    stall: frozenset[str] = frozenset()
    #: the greeting: "" as aiosmtpd says it, None never, else this line (a 4xx or 5xx
    #: greeting is followed by hanging up)
    greeting: str | None = ""
    #: command -> the line(s) said instead of handling it (CLOSE, ENDLESS, "999 what?")
    answers: dict[str, str] = field(default_factory=dict)
    #: seconds the greeting and every command's reply wait before they are written
    reply_delay: float = 0.0
    #: seconds between the bytes of every reply (0: whole replies)
    trickle: float = 0.0
    #: every this-many-th connection is closed before the greeting (0: none)
    drop_every: int = 0
    #: connections open at once beyond this are greeted with a 421 and closed (0: no limit)
    max_connections: int = 0
    #: what DATA's verdict is after the whole message (None: 250, or a 451 for fail_next)
    data_verdict: str | None = None


class RecordingHandler:
    """aiosmtpd handler: applies the Behaviour and keeps what it accepted."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.received: list[Received] = []
        #: how many times each stalled command was asked for
        self.stalled: dict[str, int] = {}
        #: connections accepted so far (dropped ones included), and open now
        self.connections = 0
        self.open_connections = 0
        self.lock = threading.Lock()

    def connection_dropped(self) -> bool:
        """Count a new connection; whether `drop_every` says to close it at once."""
        with self.lock:
            self.connections += 1
            every = self.behaviour.drop_every
            return bool(every) and self.connections % every == 0

    async def _maybe_stall(self, command: str) -> None:
        if command in self.behaviour.stall:
            with self.lock:
                self.stalled[command] = self.stalled.get(command, 0) + 1
            await asyncio.sleep(FOREVER)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """Answer EHLO as aiosmtpd does, unless the test stalls it."""
        await self._maybe_stall("EHLO")
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> Any:
        """Accept the sender as aiosmtpd does, unless the test stalls MAIL."""
        await self._maybe_stall("MAIL")
        return MISSING

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> Any:
        """Say goodbye as aiosmtpd does, unless the test stalls QUIT."""
        await self._maybe_stall("QUIT")
        return MISSING

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        """Accept the recipient unless the test told us to refuse it."""
        code = self.behaviour.refuse.get(address.lower())
        if code is not None and code >= 500:
            return f"{code} 5.1.1 <{address}>: Recipient address rejected: no such user"
        if code is not None:
            return f"{code} 4.2.0 <{address}>: Recipient address rejected: try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message (parsed with the modern policy), or fail it as told."""
        if self.behaviour.data_delay:
            await asyncio.sleep(self.behaviour.data_delay)
        with self.lock:
            if self.behaviour.fail_next > 0:
                self.behaviour.fail_next -= 1
                return "451 4.3.0 Temporary local problem, try again later"
            if self.behaviour.data_verdict is not None:  # refused: nothing is kept
                return self.behaviour.data_verdict
        raw = bytes(envelope.original_content or envelope.content)
        # aiosmtpd's own Message handler parses with compat32; the tests want EmailMessage
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        received = Received(
            mail_from=envelope.mail_from,
            recipients=tuple(envelope.rcpt_tos),
            raw=raw,
            message=message,
            mail_options=tuple(envelope.mail_options),
            login=login.decode() if login else None,
            # session.ssl is only set by STARTTLS; implicit TLS shows on the transport
            tls=session.ssl is not None or bool(server.transport.get_extra_info("ssl_object")),
            peer=tuple(session.peer) if session.peer else None,
        )
        with self.lock:
            self.received.append(received)
        if self.behaviour.after_data == "drop":
            server.transport.close()  # the message is kept; its verdict never leaves
        if self.behaviour.after_data != "answer":
            await asyncio.sleep(FOREVER)
        return "250 2.0.0 Ok: queued"


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (USER, PASSWORD)
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class _HostileSMTP(SMTP):
    """aiosmtpd's server, with the Behaviour's faults on the wire: greeting, answers, pace."""

    def __init__(self, handler: RecordingHandler, **options: Any) -> None:
        super().__init__(handler, **options)
        self.behaviour = handler.behaviour
        self.recorder = handler
        self._greeted = False
        for name, method in list(self._smtp_methods.items()):
            self._smtp_methods[name] = functools.update_wrapper(
                functools.partial(self._command, name, method), method
            )

    async def _handle_client(self) -> None:
        if self.recorder.connection_dropped():
            assert self.transport is not None
            self.transport.close()
            return
        recorder, limit = self.recorder, self.behaviour.max_connections
        with recorder.lock:
            recorder.open_connections += 1
            crowded = bool(limit) and recorder.open_connections > limit
        try:
            if crowded:  # as a server limiting each client's connections says it
                self._greeted = True
                await self.push("421 4.7.0 Too many concurrent connections, try again later")
                self._hang_up()
                return
            await super()._handle_client()
        finally:
            with recorder.lock:
                recorder.open_connections -= 1

    async def _command(self, name: str, method: Any, arg: str | None) -> None:
        if self.behaviour.reply_delay:
            await asyncio.sleep(self.behaviour.reply_delay)
        answer = self.behaviour.answers.get(name)
        if answer is None:
            await method(arg)
        elif answer == CLOSE:
            self._hang_up()
        elif answer == ENDLESS:
            while self.transport is not None and not self.transport.is_closing():
                await self.push("250-and one more thing")
                await asyncio.sleep(ENDLESS_INTERVAL)
        else:
            await self.push(answer)
            if answer.startswith("421"):  # RFC 5321: 421 closes the channel
                self._hang_up()

    def _hang_up(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def push(self, status: Any) -> None:
        """Write a reply as the Behaviour says: another greeting, late, or a byte at a time."""
        behaviour = self.behaviour
        greeting = not self._greeted
        self._greeted = True
        if greeting and behaviour.greeting is None:
            await asyncio.sleep(FOREVER)
        if greeting and behaviour.greeting:
            status = behaviour.greeting
        if greeting and behaviour.reply_delay:  # a command's reply waits in `_command`
            await asyncio.sleep(behaviour.reply_delay)
        line = (status.encode() if isinstance(status, str) else status) + b"\r\n"
        if behaviour.trickle:
            for byte in line:
                self._writer.write(bytes([byte]))
                await self._writer.drain()
                await asyncio.sleep(behaviour.trickle)
        else:
            self._writer.write(line)
            await self._writer.drain()
        if greeting and behaviour.greeting and behaviour.greeting[:1] in ("4", "5"):
            self._hang_up()


class _Controller(Controller):
    def factory(self) -> Any:
        with warnings.catch_warnings():
            # AUTH without TLS is deliberate here: it tests the credentials, not the channel
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return _HostileSMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # port 0 asks for a free port; aiosmtpd 1.4 would then poke port 0 itself
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


def _forget_trigger(handler: RecordingHandler) -> None:
    """aiosmtpd connects once to a server it starts: that connection is not a client's."""
    deadline = time.monotonic() + 5
    while handler.connections < 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    with handler.lock:
        handler.connections = 0


class SmtpTestServer:
    """A running aiosmtpd server on 127.0.0.1 that records what it accepts."""

    def __init__(
        self,
        *,
        auth: bool = False,
        security: Security = "none",
        certificate: TlsCertificate | None = None,
    ) -> None:
        if security != "none" and certificate is None:
            raise ValueError(f"security={security!r} needs a certificate")
        self.host = HOST
        self.port = 0
        self.auth = auth
        self.security = security
        self.certificate = certificate
        self.behaviour = Behaviour()
        self.handler = RecordingHandler(self.behaviour)
        self._controller: _Controller | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen (again, on the same port once it has one)."""
        if self._controller is not None:
            return self
        controller = _Controller(
            self.handler, hostname=self.host, port=self.port, **self._options()
        )
        controller.start()
        self.port = controller.port
        _forget_trigger(self.handler)
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection (connects are refused until start)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._controller is not None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"server_hostname": "smtp.test", "ready_timeout": 10.0}
        if self.auth:
            # plain AUTH without TLS is what a test of the credentials needs
            options.update(
                authenticator=_authenticate,
                auth_required=True,
                # aiosmtpd sees TLS only when it came by STARTTLS
                auth_require_tls=self.security == "starttls",
            )
        if self.certificate and self.security == "starttls":
            options.update(tls_context=self.certificate.server_context(), require_starttls=True)
        if self.certificate and self.security == "tls":
            options.update(ssl_context=self.certificate.server_context())
        return options

    # --- behaviour -------------------------------------------------------------------------

    def refuse(self, address: str, code: int = 550) -> None:
        """Answer RCPT TO for this address with `code` (550: for good; 451: try later)."""
        self.behaviour.refuse[address.lower()] = code

    def fail_next(self, count: int = 1) -> None:
        """Answer the next `count` DATA commands with 451."""
        with self.handler.lock:
            self.behaviour.fail_next = count

    def delay_data(self, seconds: float) -> None:
        """Wait this long before answering DATA."""
        self.behaviour.data_delay = seconds

    def after_data(self, what: AfterData) -> None:
        """After each whole message: `answer`, or keep it and `drop` the connection / `stall`."""
        self.behaviour.after_data = what

    def stall(self, *commands: str) -> None:
        """Never answer these commands (`EHLO`, `MAIL`, `QUIT`); none: answer everything."""
        self.behaviour.stall = frozenset(command.upper() for command in commands)

    def greet(self, line: str | None) -> None:
        """Greet with this line instead (None: never greet; a 4xx/5xx one then hangs up)."""
        self.behaviour.greeting = line

    def answer(self, command: str, line: str) -> None:
        """Say `line` to `command` instead of handling it (CLOSE hangs up, ENDLESS never ends)."""
        self.behaviour.answers[command.upper()] = line

    def slow(self, seconds: float) -> None:
        """Write every reply `seconds` late."""
        self.behaviour.reply_delay = seconds

    def trickle(self, seconds: float) -> None:
        """Write every reply one byte at a time, `seconds` apart (0: whole replies)."""
        self.behaviour.trickle = seconds

    def drop_every(self, count: int) -> None:
        """Close every `count`-th connection before the greeting (0: none)."""
        self.behaviour.drop_every = count

    def limit_connections(self, count: int) -> None:
        """Greet connections beyond `count` open at once with a 421 and hang up (0: no limit)."""
        self.behaviour.max_connections = count

    def data_verdict(self, line: str | None) -> None:
        """Answer each whole message with `line` (e.g. a 554) and keep nothing; None: 250."""
        self.behaviour.data_verdict = line

    def healthy(self) -> None:
        """Back to a well-behaved server (the messages received so far are kept)."""
        fresh = Behaviour()
        for name in fresh.__dataclass_fields__:
            setattr(self.behaviour, name, getattr(fresh, name))

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self.handler.lock:
            return self.handler.connections

    def stalled(self, command: str) -> int:
        """How many times a stalled command has been asked for."""
        with self.handler.lock:
            return self.handler.stalled.get(command.upper(), 0)

    # --- what arrived ------------------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        """Every accepted message with its envelope, in arrival order."""
        with self.handler.lock:
            return list(self.handler.received)

    @property
    def messages(self) -> list[EmailMessage]:
        """Every accepted message, parsed with `email.policy.default`."""
        return [r.message for r in self.received]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The received messages once there are at least `count` (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} messages after {timeout}s")
            time.sleep(0.01)
        return self.received


def make_certificate(directory: Path) -> TlsCertificate:
    """A fresh self-signed certificate for 127.0.0.1/localhost (needs the `openssl` command)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return TlsCertificate(cert, key)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> TlsCertificate:
    """A self-signed certificate for the test servers' TLS (skips without `openssl`)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """A plain SMTP server (no TLS, no AUTH) on 127.0.0.1, stopped after the test."""
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def smtp_server_factory(
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., SmtpTestServer]]:
    """`factory(auth=True, security="starttls")` -> a started server; all stopped afterwards."""
    servers: list[SmtpTestServer] = []

    def factory(*, auth: bool = False, security: Security = "none") -> SmtpTestServer:
        certificate = None
        if security != "none":
            certificate = request.getfixturevalue("tls_certificate")
        server = SmtpTestServer(auth=auth, security=security, certificate=certificate)
        servers.append(server.start())
        return server

    yield factory
    for server in servers:
        server.stop()
