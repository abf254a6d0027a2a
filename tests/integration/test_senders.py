"""Senders against a real SMTP server on 127.0.0.1 (aiosmtpd) and a real folder."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.errors import (
    ConnectionTrouble,
    DeliveryUnconfirmed,
    FatalSendError,
    SendError,
    ServerUnavailable,
    Withheld,
)
from bot.mail.mime import RenderedDigest, build_message
from bot.mail.senders import OutboxSender, Sender, SmtpSender, get_kind, message_bytes
from tests.smtpserver import PASSWORD, USER, SmtpTestServer, TlsCertificate

T = TypeVar("T")
Factory = Callable[..., SmtpTestServer]


def run(coroutine: Awaitable[T]) -> T:
    """Run one coroutine to completion in a fresh event loop."""

    async def main() -> T:
        return await coroutine

    return asyncio.run(main())


def digest_to(recipient: str, n: int = 1) -> EmailMessage:
    """A small digest message for `recipient`, built by paperbot's own code."""
    rendered = RenderedDigest(
        subject=f"paperbot: {n} new paper matching your alerts",
        text=f"Digest {n} for {recipient}\nÜnïcode title on its own line\n",
        html=f"<p>Digest {n} for {recipient}</p>",
    )
    return build_message(
        rendered,
        sender="paperbot <bot@example.org>",
        recipient=recipient,
        message_id=f"<digest-{n}.{recipient}>",
        list_id="paperbot <paperbot.example.org>",
    )


def smtp_to(server: SmtpTestServer, **options: Any) -> SmtpSender:
    """A sender pointed at the test server (plain, no AUTH unless told)."""
    settings: dict[str, Any] = {"host": server.host, "port": server.port, "security": "none"}
    return SmtpSender(**(settings | options))


async def send_all(sender: Sender, *messages: EmailMessage) -> None:
    """Open the sender, send each message in turn, close it."""
    async with sender:
        for message in messages:
            await sender.send(message)


def one_line_error(excinfo: pytest.ExceptionInfo[SendError]) -> str:
    """The error's message, checked to be a single line."""
    text = str(excinfo.value)
    assert "\n" not in text
    return text


# --- SMTP --------------------------------------------------------------------------------------


def test_message_arrives_with_the_right_envelope(smtp_server: SmtpTestServer) -> None:
    message = digest_to("ada@example.org")
    run(send_all(smtp_to(smtp_server), message))
    [received] = smtp_server.received
    assert received.mail_from == "bot@example.org"
    assert received.recipients == ("ada@example.org",)
    assert received.message["Message-ID"] == "<digest-1.ada@example.org>"
    assert received.message["List-Id"] == "paperbot <paperbot.example.org>"
    plain = received.message.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "Ünïcode title on its own line" in str(plain.get_content()).splitlines()
    assert b"\r\n.\r\n" not in received.raw


def test_one_connection_carries_the_whole_batch(smtp_server: SmtpTestServer) -> None:
    messages = [digest_to(f"user{i}@example.org", i) for i in range(5)]
    run(send_all(smtp_to(smtp_server), *messages))
    assert len(smtp_server.received) == 5
    assert len({r.peer for r in smtp_server.received}) == 1


def test_refused_recipient_is_permanent_and_the_next_one_still_goes(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.refuse("gone@example.org", 550)

    async def scenario() -> SendError:
        async with smtp_to(smtp_server) as sender:
            with pytest.raises(SendError) as excinfo:
                await sender.send(digest_to("gone@example.org"))
            await sender.send(digest_to("ada@example.org"))
        return excinfo.value

    error = run(scenario())
    assert error.permanent
    assert not getattr(error, "fatal", False)
    assert re.fullmatch(
        rf"gone@example\.org: recipient refused by {smtp_server.host}:\d+: 550 .+", str(error)
    )
    assert [r.recipients for r in smtp_server.received] == [("ada@example.org",)]


def test_recipient_deferred_with_451_is_temporary(smtp_server: SmtpTestServer) -> None:
    smtp_server.refuse("busy@example.org", 451)
    with pytest.raises(SendError) as excinfo:
        run(send_all(smtp_to(smtp_server), digest_to("busy@example.org")))
    assert not excinfo.value.permanent
    assert " 451 " in one_line_error(excinfo)


def test_message_deferred_with_451_is_temporary_and_a_retry_delivers(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.fail_next(1)
    message = digest_to("ada@example.org")

    async def scenario() -> SendError:
        async with smtp_to(smtp_server) as sender:
            with pytest.raises(SendError) as excinfo:
                await sender.send(message)
            await sender.send(message)
        return excinfo.value

    error = run(scenario())
    assert not error.permanent
    assert len(smtp_server.received) == 1


def test_login_with_the_right_password(smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(auth=True)
    run(send_all(smtp_to(server, username=USER, password=PASSWORD), digest_to("ada@example.org")))
    assert [r.login for r in server.received] == [USER]


def test_wrong_password_is_fatal_and_says_who_and_where(smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(auth=True)
    with pytest.raises(FatalSendError) as excinfo:
        run(send_all(smtp_to(server, username=USER, password="wrong"), digest_to("a@example.org")))
    assert excinfo.value.fatal
    assert one_line_error(excinfo).startswith(
        f"SMTP authentication failed for user {USER} at 127.0.0.1:{server.port}: 535"
    )
    assert server.received == []


def test_server_down_at_start_is_fatal(smtp_server: SmtpTestServer) -> None:
    smtp_server.stop()
    with pytest.raises(FatalSendError) as excinfo:
        run(send_all(smtp_to(smtp_server), digest_to("ada@example.org")))
    assert one_line_error(excinfo).startswith(
        f"cannot connect to SMTP server 127.0.0.1:{smtp_server.port}: "
    )


def test_dropped_connection_is_reopened_once(smtp_server: SmtpTestServer) -> None:
    async def scenario() -> None:
        async with smtp_to(smtp_server) as sender:
            await sender.send(digest_to("ada@example.org", 1))
            smtp_server.stop()  # drops the open connection
            smtp_server.start()
            await sender.send(digest_to("ada@example.org", 2))

    run(scenario())
    assert [r.message["Message-ID"] for r in smtp_server.received] == [
        "<digest-1.ada@example.org>",
        "<digest-2.ada@example.org>",
    ]


def test_server_gone_mid_batch_is_fatal(smtp_server: SmtpTestServer) -> None:
    async def scenario() -> None:
        async with smtp_to(smtp_server) as sender:
            await sender.send(digest_to("ada@example.org", 1))
            smtp_server.stop()
            await sender.send(digest_to("ada@example.org", 2))

    with pytest.raises(FatalSendError) as excinfo:
        run(scenario())
    assert "cannot connect to SMTP server" in one_line_error(excinfo)
    assert len(smtp_server.received) == 1


def test_timeout_is_temporary_and_the_sender_recovers(smtp_server: SmtpTestServer) -> None:
    smtp_server.delay_data(1.5)

    async def scenario() -> SendError:
        async with smtp_to(smtp_server, timeout=0.3) as sender:
            with pytest.raises(SendError) as excinfo:
                await sender.send(digest_to("ada@example.org", 1))
            smtp_server.delay_data(0)
            await sender.send(digest_to("ada@example.org", 2))
        return excinfo.value

    error = run(scenario())
    assert not error.permanent
    assert not getattr(error, "fatal", False)
    assert "timed out" in str(error)
    assert "<digest-2.ada@example.org>" in [m["Message-ID"] for m in smtp_server.messages]


# --- after the final dot, deadlines ------------------------------------------------------------


class Hook:
    """A `before_transmit` hook that counts its calls, and can hold the message back."""

    def __init__(self, withhold: bool = False) -> None:
        self.calls = 0
        self.withhold = withhold

    def __call__(self) -> None:
        self.calls += 1
        if self.withhold:
            raise Withheld("held back by the test")


def test_a_connection_lost_after_the_final_dot_is_unconfirmed_and_never_resent_here(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.after_data("drop")  # keeps the message, the 250 never leaves
    hook = Hook()

    async def scenario() -> None:
        async with smtp_to(smtp_server) as sender:
            await sender.send(digest_to("ada@example.org"), before_transmit=hook)

    with pytest.raises(DeliveryUnconfirmed) as excinfo:
        run(scenario())
    assert "lost after the whole message was sent" in one_line_error(excinfo)
    assert hook.calls == 1
    assert len(smtp_server.received) == 1, "not sent again on a new connection"


def test_no_verdict_within_the_timeout_after_the_final_dot_is_unconfirmed(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.after_data("stall")
    with pytest.raises(DeliveryUnconfirmed) as excinfo:
        run(send_all(smtp_to(smtp_server, timeout=0.3), digest_to("ada@example.org")))
    assert "timed out after the whole message was sent" in one_line_error(excinfo)
    assert len(smtp_server.received) == 1


def test_the_message_deadline_bounds_a_server_slower_than_its_timeout(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.stall("MAIL")  # greets, answers EHLO, then never answers again
    hook = Hook()

    async def scenario() -> None:
        async with smtp_to(smtp_server, timeout=30, deadline=0.3) as sender:
            with pytest.raises(ConnectionTrouble) as excinfo:
                await sender.send(digest_to("ada@example.org", 1), before_transmit=hook)
            assert not isinstance(excinfo.value, DeliveryUnconfirmed), "nothing went out"
            assert one_line_error(excinfo).endswith(
                f"127.0.0.1:{smtp_server.port} did not answer within the 0.3 s message deadline"
            )
            smtp_server.stall()  # healthy again: the next message gets a new connection
            await sender.send(digest_to("ada@example.org", 2))

    run(scenario())
    assert hook.calls == 0, "the final dot was never reached"
    assert [m["Message-ID"] for m in smtp_server.messages] == ["<digest-2.ada@example.org>"]


def test_the_deadline_after_the_final_dot_is_unconfirmed(smtp_server: SmtpTestServer) -> None:
    smtp_server.after_data("stall")
    with pytest.raises(DeliveryUnconfirmed) as excinfo:
        run(send_all(smtp_to(smtp_server, timeout=30, deadline=0.3), digest_to("a@example.org")))
    assert "no verdict from 127.0.0.1:" in one_line_error(excinfo)
    assert len(smtp_server.received) == 1


def test_a_server_that_greets_and_then_stalls_cannot_be_connected_to(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.stall("EHLO")
    with pytest.raises(ServerUnavailable) as excinfo:
        run(send_all(smtp_to(smtp_server, timeout=30, deadline=0.3), digest_to("a@example.org")))
    assert one_line_error(excinfo) == (
        f"cannot connect to SMTP server 127.0.0.1:{smtp_server.port}:"
        " no answer within the 0.3 s message deadline"
    )


def test_a_server_that_never_says_goodbye_does_not_hold_the_close(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.stall("QUIT")

    async def scenario() -> None:
        # with these settings an unbounded QUIT would wait an hour on each connection
        sender = smtp_to(smtp_server, timeout=3600, deadline=0.3, connections=3)
        async with asyncio.timeout(60):  # a hang guard, far above the bound being tested
            async with sender:
                await asyncio.gather(
                    *(sender.send(digest_to(f"u{i}@example.org")) for i in range(3))
                )

    run(scenario())
    assert len(smtp_server.received) == 3
    assert smtp_server.stalled("QUIT") == 3, "every connection was asked to QUIT"


def test_a_withheld_message_never_reaches_the_server(smtp_server: SmtpTestServer) -> None:
    async def scenario() -> None:
        async with smtp_to(smtp_server) as sender:
            with pytest.raises(Withheld):
                await sender.send(digest_to("ada@example.org", 1), before_transmit=Hook(True))
            await sender.send(digest_to("ada@example.org", 2), before_transmit=Hook())

    run(scenario())
    assert [m["Message-ID"] for m in smtp_server.messages] == ["<digest-2.ada@example.org>"]


def test_several_connections_send_concurrently(smtp_server: SmtpTestServer) -> None:
    messages = [digest_to(f"user{i}@example.org", i) for i in range(12)]

    async def scenario() -> None:
        async with smtp_to(smtp_server, connections=3) as sender:
            await asyncio.gather(*(sender.send(m) for m in messages))

    run(scenario())
    assert sorted(r.recipients[0] for r in smtp_server.received) == sorted(
        f"user{i}@example.org" for i in range(12)
    )


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_with_login(
    security: str, smtp_server_factory: Factory, tls_certificate: TlsCertificate
) -> None:
    server = smtp_server_factory(auth=True, security=security)
    sender = smtp_to(
        server,
        security=security,
        username=USER,
        password=PASSWORD,
        tls_context=tls_certificate.client_context(),
    )
    run(send_all(sender, digest_to("ada@example.org")))
    [received] = server.received
    assert received.tls
    assert received.login == USER


def test_starttls_required_but_not_offered_is_fatal(smtp_server: SmtpTestServer) -> None:
    with pytest.raises(FatalSendError) as excinfo:
        run(send_all(smtp_to(smtp_server, security="starttls"), digest_to("ada@example.org")))
    assert "STARTTLS" in one_line_error(excinfo)
    assert smtp_server.received == []


def test_untrusted_certificate_is_fatal(smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(security="tls")
    with pytest.raises(FatalSendError) as excinfo:
        run(send_all(smtp_to(server, security="tls"), digest_to("ada@example.org")))
    assert "certificate" in one_line_error(excinfo).lower()


def test_seven_bit_serialization_for_servers_without_8bitmime() -> None:
    message = digest_to("ada@example.org")
    data = message_bytes(message, eight_bit=False)
    assert data.isascii()
    parsed = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(parsed, EmailMessage)
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "Ünïcode title on its own line" in str(plain.get_content()).splitlines()


# --- outbox ------------------------------------------------------------------------------------


def test_outbox_writes_readable_eml_files(tmp_path: Path) -> None:
    outbox = tmp_path / "out" / "box"
    messages = [digest_to("ada@example.org", 1), digest_to("bob+tag@example.org", 2)]
    run(send_all(OutboxSender(outbox), *messages))
    files = sorted(outbox.iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-ada@example\.org-[0-9a-f]{8}\.eml", files[0].name)
    assert "bob+tag@example.org" in files[1].name
    parsed = BytesParser(policy=policy.default).parsebytes(files[0].read_bytes())
    assert parsed["Message-ID"] == "<digest-1.ada@example.org>"
    assert parsed["To"] == "ada@example.org"
    assert files[0].read_bytes() == messages[0].as_bytes()


def test_outbox_file_names_are_safe_and_distinct(tmp_path: Path) -> None:
    odd = build_message(
        RenderedDigest("s", "t", "<p>t</p>"),
        sender="bot@example.org",
        recipient='"../../etc/passwd" <x@example.org>',
        message_id="<odd@example.org>",
    )
    run(send_all(OutboxSender(tmp_path), odd, digest_to("x@example.org")))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2
    assert all("/" not in n and not n.startswith(".") for n in names)


def test_outbox_in_an_unwritable_place_is_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(FatalSendError) as excinfo:
        run(send_all(OutboxSender(blocker / "outbox"), digest_to("ada@example.org")))
    assert str(blocker) in one_line_error(excinfo)


def test_senders_are_registered_by_name() -> None:
    assert get_kind("smtp") is SmtpSender
    assert get_kind("outbox") is OutboxSender
