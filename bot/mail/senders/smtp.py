"""The `smtp` sender: aiosmtplib over a few persistent connections, reused across messages.

Over 500 lines on purpose: connecting (TLS modes, login), one message's exchange under its
deadline, and turning every SMTP reply and lost connection into the `SendError` tree are
one protocol conversation; the reply mapping is most of it and has no other user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal, NoReturn

import aiosmtplib

from bot.errors import (
    ConnectionTrouble,
    DeliveryUnconfirmed,
    FatalSendError,
    RecipientRefused,
    SendError,
    ServerUnavailable,
    Withheld,
)
from bot.mail.mime import DigestMessage
from bot.mail.senders.base import (
    BeforeTransmit,
    MessageSigner,
    Sender,
    envelope_sender,
    one_line,
    recipients_of,
    register,
)

log = logging.getLogger(__name__)

Security = Literal["starttls", "tls", "none"]
_LINE_END = re.compile(rb"\r\n|\r|\n")
_CONNECT_PREFIX = re.compile(r"^Error connecting to \S+ on port \d+: ")
#: 552 at MAIL FROM is about this message's size, not about who we are
_SIZE_REFUSED = 552
#: "service not available, closing transmission channel" (RFC 5321): the server, not us
_CLOSING = 421
#: the longest wait for QUIT's answer: a courtesy once everything is sent
QUIT_WAIT = 2.0
#: how often a closing connection is looked at until its socket is gone
_CLOSE_POLL = 0.01
#: how far one message's conversation got: connecting, the envelope, or past the final dot
Stage = Literal["connect", "envelope", "sent"]


class _Broken(aiosmtplib.SMTPException):
    """A reply the conversation cannot go on from: the server closing it (421), or no SMTP
    reply at all (a bogus code, a malformed line, a success where none fits)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(_reply_text(code, message))
        self.code = code


def _breaks(code: int) -> bool:
    """Whether a reply that is not the expected success ends the conversation, rather than
    refusing this message or recipient (4xx, 5xx) in a conversation that goes on."""
    return code == _CLOSING or not 400 <= code < 600


def _reply_text(code: int, message: str) -> str:
    """`code message` on one line; aiosmtplib's -1 (no code could be read) is not shown."""
    text = one_line(message)
    return f"{code} {text}" if code >= 0 else text


@dataclass(slots=True)
class _Exchange:
    """One message's conversation: for whom, the caller's hook, and how far it got."""

    to: str
    before_transmit: BeforeTransmit | None
    stage: Stage = "envelope"

    def transmit(self) -> None:
        """The whole message is about to go out: the caller's last word, then no way back."""
        if self.before_transmit is not None:
            self.before_transmit()  # may raise Withheld
        self.stage = "sent"


@register
class SmtpSender(Sender):
    """Sends through an SMTP server: STARTTLS, implicit TLS or plain; optional AUTH.

    Up to `connections` connections are opened as concurrent `send` calls need them and kept
    for the whole batch. A connection found dropped is reopened once per message. Failures
    to connect or log in are FatalSendError (every message would fail alike); of those, a
    server that is down or busy is ServerUnavailable (worth retrying), while a refused login
    or a failed TLS handshake is not. Each command waits at most `timeout`; one message's
    whole conversation (a reconnect included) at most `deadline`. A timeout or a lost
    connection is ConnectionTrouble, or DeliveryUnconfirmed once the final dot has gone out:
    then the message is never resent on a new connection here, the caller decides. So is a
    reply that is no SMTP reply (a bogus code, a malformed line): only a 4xx or 5xx refuses
    a message or a recipient. A 421 at any point is the server going away, and a 4xx to MAIL
    FROM puts off every message alike: ServerUnavailable.
    """

    name = "smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        deadline: float = 60.0,
        connections: int = 1,
        tls_context: ssl.SSLContext | None = None,
        signer: MessageSigner | None = None,
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"security must be starttls, tls or none, not {security!r}")
        if connections < 1:
            raise ValueError(f"connections must be at least 1, not {connections}")
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.timeout = timeout
        self.deadline = deadline
        self.connections = connections
        self.tls_context = tls_context
        self.signer = signer
        self._clients: list[aiosmtplib.SMTP] = []
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] | None = None

    @property
    def where(self) -> str:
        """`host:port`, as error messages name the server."""
        return f"{self.host}:{self.port}"

    async def open(self) -> None:
        """Connect (and log in) once now, so that a wrong setting fails before any message."""
        # last in, first out: the warm connection is reused; others open only under load
        self._idle = asyncio.LifoQueue()
        self._clients = [self._client() for _ in range(self.connections)]
        for client in reversed(self._clients):
            self._idle.put_nowait(client)
        deadline = asyncio.timeout(self.deadline)
        try:
            async with deadline:
                await self._connect(self._clients[0])
        except TimeoutError:
            if not deadline.expired():
                raise
            self._clients[0].close()
            raise self._late(_Exchange("", None, "connect")) from None
        except asyncio.CancelledError:
            self._clients[0].close()
            raise

    async def close(self) -> None:
        """Say QUIT on every open connection, all at once, and let them close: QUIT_WAIT at most."""
        connected = [client for client in self._clients if client.is_connected]
        transports = [client.transport for client in connected if client.transport is not None]
        # a courtesy: a server that hangs now must not hold the run (nor a visitor of the
        # web page whose mail was accepted), once per connection
        until = asyncio.get_running_loop().time() + min(self.timeout, self.deadline, QUIT_WAIT)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(until):
                    await asyncio.gather(*(_quit(client) for client in connected))
        finally:  # closed even when the caller's own deadline cut the courtesy short
            for client in self._clients:
                client.close()
            self._clients, self._idle = [], None
        await _let_close(transports, until)

    async def send(
        self, message: EmailMessage, *, before_transmit: BeforeTransmit | None = None
    ) -> None:
        """Send on an idle connection (waiting for one if all are busy), within `deadline`.

        `before_transmit` is called right before the message's data goes out (after the
        server's 354): a Withheld from it drops the connection and the message with it.
        """
        if self._idle is None:
            raise RuntimeError("SmtpSender.send outside `async with sender:`")
        recipients = recipients_of(message)
        sender = envelope_sender(message)
        client = await self._idle.get()  # the deadline starts once a connection is ours
        exchange = _Exchange(", ".join(recipients), before_transmit)
        deadline = asyncio.timeout(self.deadline)
        try:
            async with deadline:
                await self._send_on(client, message, sender, recipients, exchange)
        except TimeoutError:
            if not deadline.expired():
                raise
            client.close()  # the conversation is out of step: never reuse it
            raise self._late(exchange) from None
        except SendError as exc:
            if isinstance(exc, Withheld):  # mid-DATA: a message without its final dot is
                client.close()  # discarded by the server
            raise  # a refusal left the conversation in step (RSET), or closed it
        except BaseException:
            # cancelled, or the hook failed (a locked store): the conversation is where it
            # was, maybe mid-DATA; reused, the next message would go into this one's data
            client.close()
            raise
        finally:
            self._idle.put_nowait(client)

    def _late(self, exchange: _Exchange) -> SendError:
        """The error for a conversation the deadline cut, by how far it got."""
        within = f"within the {self.deadline:g} s message deadline"
        if exchange.stage == "connect":
            return ServerUnavailable(
                f"cannot connect to SMTP server {self.where}: no answer {within}"
            )
        if exchange.stage == "sent":
            return DeliveryUnconfirmed(
                f"{exchange.to}: no verdict from {self.where} {within} after the whole message"
                " was sent"
            )
        return ConnectionTrouble(f"{exchange.to}: {self.where} did not answer {within}")

    # --- connections ----------------------------------------------------------------------

    def _client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            timeout=self.timeout,
            use_tls=self.security == "tls",
            # required, not opportunistic: never fall back to plain text silently
            start_tls=self.security == "starttls",
            tls_context=self.tls_context,
        )

    async def _connect(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:  # no TLS, no login: say EHLO now, so that the
                await self._hello(client)  # first message already knows 8BITMIME and SIZE
        except aiosmtplib.SMTPAuthenticationError as exc:
            what = (
                f"SMTP authentication failed for user {self.username} at {self.where}: "
                f"{_reply_text(exc.code, exc.message)}"
            )
            if 400 <= exc.code < 500:  # "454 Temporary authentication failure"
                raise ServerUnavailable(what) from exc
            raise FatalSendError(what) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            if isinstance(exc, aiosmtplib.SMTPResponseException):
                reason = _reply_text(exc.code, exc.message)
            else:
                reason = one_line(getattr(exc, "message", None) or exc)
            reason = _CONNECT_PREFIX.sub("", reason or type(exc).__name__)  # host and port
            what = f"cannot connect to SMTP server {self.where}: {reason}"
            if _retryable_connect_error(exc):
                raise ServerUnavailable(what) from exc
            raise FatalSendError(what) from exc

    # --- one message ----------------------------------------------------------------------

    async def _send_on(
        self,
        client: aiosmtplib.SMTP,
        message: EmailMessage,
        sender: str,
        recipients: list[str],
        exchange: _Exchange,
    ) -> None:
        for attempt in (1, 2):
            if not client.is_connected:
                exchange.stage = "connect"
                await self._connect(client)
                exchange.stage = "envelope"
            try:
                await self._transaction(client, message, sender, recipients, exchange)
                return
            except ConnectionError as exc:  # SMTPServerDisconnected, a reset socket
                client.close()
                reason = one_line(getattr(exc, "message", None) or exc)
                if exchange.stage == "sent":  # the server may have it: never resend it here
                    raise DeliveryUnconfirmed(
                        f"{exchange.to}: connection to {self.where} lost after the whole"
                        f" message was sent: {reason}"
                    ) from exc
                # most often an idle connection the server has closed: reopen it once, resend
                if attempt == 2:
                    raise ConnectionTrouble(
                        f"{exchange.to}: connection to {self.where} lost: {reason}"
                    ) from exc

    async def _transaction(
        self,
        client: aiosmtplib.SMTP,
        message: EmailMessage,
        sender: str,
        recipients: list[str],
        exchange: _Exchange,
    ) -> None:
        to = exchange.to
        options, eight_bit, utf8 = self._mail_options(client, sender, recipients)
        raw = self.serialize(message, eight_bit=eight_bit, utf8=utf8)
        if client.supports_extension("size"):  # RFC 1870: the message's octets
            options.insert(0, f"SIZE={len(raw)}")
        # paperbot's own messages are written with CRLF line ends only (DigestMessage)
        data = smtp_data(raw, crlf=isinstance(message, DigestMessage))
        try:
            refused = await self._envelope(
                client, sender, recipients, data, options, utf8, exchange
            )
        except _Broken as exc:
            client.close()  # out of step, or closing: never reuse it
            if exc.code == _CLOSING:  # whatever the stage: a 421 is not an acceptance
                raise ServerUnavailable(f"{self.where} is closing the connection: {exc}") from exc
            if exchange.stage == "sent":  # the server may have it: no verdict was heard
                raise DeliveryUnconfirmed(
                    f"{to}: {self.where} gave no verdict after the whole message was sent,"
                    f" but: {exc}"
                ) from exc
            raise ConnectionTrouble(
                f"{to}: {self.where} is out of step, it answered: {exc}"
            ) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            raise RecipientRefused(
                f"{to}: recipient refused by {self.where}: {first.code} {one_line(first.message)}",
                permanent=first.code >= 500,
            ) from exc
        except aiosmtplib.SMTPSenderRefused as exc:
            self._sender_refused(sender, exc)
        except aiosmtplib.SMTPTimeoutError as exc:
            # the conversation is out of step: never reuse it
            client.close()
            if exchange.stage == "sent":  # the server may still accept it
                raise DeliveryUnconfirmed(
                    f"{to}: {self.where} timed out after the whole message was sent:"
                    f" {one_line(exc.message)}"
                ) from exc
            raise ConnectionTrouble(
                f"{to}: {self.where} timed out: {one_line(exc.message)}"
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            self._refused(f"{to}: message refused by {self.where}", exc.code, exc.message)
        except aiosmtplib.SMTPServerDisconnected:
            raise  # a ConnectionError: `_send_on` reconnects
        except aiosmtplib.SMTPException as exc:  # nothing the server said: try again later
            what = f"{to}: {self.where}: {one_line(exc.message)}"
            if exchange.stage == "sent":  # no verdict heard: the server may have it
                client.close()
                raise DeliveryUnconfirmed(what) from exc
            raise SendError(what) from exc
        except ValueError as exc:  # an address aiosmtplib will not put in an envelope
            raise SendError(f"{to}: cannot send: {one_line(exc)}", permanent=True) from exc
        for address, reply in refused.items():  # some recipients of several: the rest got it
            log.warning("%s refused %s: %s %s", self.where, address, reply.code, reply.message)

    async def _envelope(
        self,
        client: aiosmtplib.SMTP,
        sender: str,
        recipients: list[str],
        data: bytes,
        options: list[str],
        utf8: bool,
        exchange: _Exchange,
    ) -> dict[str, aiosmtplib.SMTPResponse]:
        """MAIL, RCPT, DATA as `SMTP.sendmail` does them, but `data` goes out as it is.

        `sendmail` runs three regular-expression passes over every message (line endings
        twice, dots once) and parses each address again: for a 30 KB digest that is more
        CPU than building it. The addresses are bare and checked (`recipients_of`), `data`
        is already CRLF and dot-stuffed (`smtp_data`). After a refusal the envelope is reset.
        """
        encoding = "utf-8" if utf8 else "ascii"
        try:
            reply = await client.execute_command(
                b"MAIL", b"FROM:" + _path(sender, encoding), *(o.encode() for o in options)
            )
            if reply.code != 250:
                raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)
            refused: dict[str, aiosmtplib.SMTPResponse] = {}
            errors: list[aiosmtplib.SMTPRecipientRefused] = []
            for recipient in recipients:
                reply = await client.execute_command(b"RCPT", b"TO:" + _path(recipient, encoding))
                if reply.code not in (250, 251):
                    if _breaks(reply.code):
                        raise aiosmtplib.SMTPResponseException(reply.code, reply.message)
                    errors.append(
                        aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)
                    )
                    refused[recipient] = reply
            if len(errors) == len(recipients):
                raise aiosmtplib.SMTPRecipientsRefused(errors)
            await self._data(client, data, exchange)
        except aiosmtplib.SMTPResponseException as exc:
            if _breaks(exc.code):  # no RSET: nothing said now would be understood
                raise _Broken(exc.code, exc.message) from exc
            await self._reset(client)
            raise
        except aiosmtplib.SMTPRecipientsRefused:
            await self._reset(client)
            raise
        return refused

    @staticmethod
    async def _reset(client: aiosmtplib.SMTP) -> None:
        """RSET after a refusal, so that the connection serves the next message."""
        # a broken connection or a second refusal here would only hide the first one
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
            await client.rset()

    @staticmethod
    async def _hello(client: aiosmtplib.SMTP) -> None:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:  # an old server without ESMTP
            await client.helo()

    async def _data(self, client: aiosmtplib.SMTP, data: bytes, exchange: _Exchange) -> None:
        """DATA, the prepared bytes, and the server's verdict on them."""
        start = await client.execute_command(b"DATA")
        if start.code != 354:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        protocol = client.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        exchange.transmit()  # nothing awaited from here to the write: no cancel in between
        protocol.write(data)
        done = await protocol.read_response(timeout=self.timeout)
        if done.code != 250:
            raise aiosmtplib.SMTPDataError(done.code, done.message)

    def _mail_options(
        self, client: aiosmtplib.SMTP, sender: str, recipients: list[str]
    ) -> tuple[list[str], bool, bool]:
        """MAIL FROM options, and whether the body may be 8bit and addresses UTF-8."""
        options: list[str] = []
        eight_bit = client.supports_extension("8bitmime")
        if eight_bit:
            options.append("BODY=8BITMIME")
        utf8 = not all(address.isascii() for address in (sender, *recipients))
        if utf8:
            if not client.supports_extension("smtputf8"):
                raise SendError(
                    f"{', '.join(recipients)}: {self.where} does not accept non-ASCII addresses "
                    "(no SMTPUTF8)",
                    permanent=True,
                )
            options.append("SMTPUTF8")
        return options, eight_bit, utf8

    @staticmethod
    def _refused(what: str, code: int, reply: str) -> NoReturn:
        raise SendError(f"{what}: {code} {one_line(reply)}", permanent=code >= 500)

    def _sender_refused(self, sender: str, exc: aiosmtplib.SMTPSenderRefused) -> NoReturn:
        what = f"sender {sender} refused by {self.where}: {exc.code} {one_line(exc.message)}"
        if exc.code == _SIZE_REFUSED:  # this message only
            raise SendError(what, permanent=True) from exc
        if exc.code >= 500:
            raise FatalSendError(what) from exc
        # put off (rate limits, greylisting of our address): every message now alike
        raise ServerUnavailable(what) from exc


async def _let_close(transports: list[asyncio.BaseTransport], until: float) -> None:
    """Wait until each connection's socket is closed, and cut those still open at `until`.

    A TLS connection closes only after the server's goodbye (close_notify): the event loop
    must turn until then, or an `asyncio.run` that ends now leaves the socket behind.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(until):
            while not all(_closed(transport) for transport in transports):
                await asyncio.sleep(_CLOSE_POLL)
    for transport in transports:
        if not _closed(transport) and isinstance(transport, asyncio.Transport):
            transport.abort()
    await asyncio.sleep(0)  # an aborted socket is closed on the loop's next turn


def _closed(transport: asyncio.BaseTransport) -> bool:
    """Whether the socket under `transport` is closed (TLS: gone with its connection)."""
    sock = transport.get_extra_info("socket")
    return sock is None or sock.fileno() == -1


async def _quit(client: aiosmtplib.SMTP) -> None:
    # the server may have gone away first: nothing left to close politely
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.quit()


def _retryable_connect_error(exc: BaseException) -> bool:
    """Whether a failure to connect may go away by itself (down, busy) rather than by a fix.

    TLS failures (a bad certificate, no STARTTLS offered) and 5xx greetings need the operator;
    a greeting that is no SMTP reply is a broken server, which may be fixed meanwhile.
    """
    if isinstance(exc, aiosmtplib.SMTPResponseException):  # a refusal, or a broken server
        return not 500 <= exc.code < 600
    seen: BaseException | None = exc
    for _ in range(10):  # the cause chain is short; the bound only guards against a cycle
        if seen is None:
            break
        if isinstance(seen, ssl.SSLError):
            return False
        seen = seen.__cause__ or seen.__context__
    message = str(getattr(exc, "message", exc))
    return "STARTTLS" not in message


def _path(address: str, encoding: str) -> bytes:
    """`<address>` as MAIL and RCPT carry it."""
    return b"<" + address.encode(encoding) + b">"


def smtp_data(message: bytes, *, crlf: bool = False) -> bytes:
    """The message as the DATA command carries it: CRLF lines, dots doubled, `.` at the end.

    `crlf` says the message is known to have no lone CR or LF, which saves a scan.
    """
    ends = 0 if crlf else message.count(b"\r\n")
    if not crlf and (message.count(b"\n") != ends or message.count(b"\r") != ends):
        message = _LINE_END.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\r\n.", b"\r\n..") + b".\r\n"
