"""A held-out hostile world for the mail side: SMTP servers that misbehave on the wire.

Real aiosmtpd servers on 127.0.0.1 (tests/smtpserver.py) greet late or never, answer with
bogus codes or replies that never end, hang up, stall, and `paperbot` runs against them as
a real child process. Each case checks what the operator sees (the exit code, one line)
and what the subscribers get: nothing marked sent that the server did not accept, nothing
sent more than twice, and a later run against a healthy server delivers the rest once.
Timeouts are small so the file stays fast; the defaults are used where they are the point.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.errors import (
    ConnectionTrouble,
    DeliveryUnconfirmed,
    FatalSendError,
    SendError,
    ServerUnavailable,
)
from bot.mail.senders import SmtpSender
from tests.feedmaker import GrowingFeed
from tests.httpserver import LocalHTTPServer
from tests.integration.test_once import smtp_section, write_config
from tests.integration.test_senders import digest_to
from tests.smtpserver import CLOSE, ENDLESS, PASSWORD, USER, SmtpTestServer, TlsCertificate

#: a child process that has not stopped by then is a failure, not a hang
STOP_TIMEOUT = 20
READERS = [f"reader{n}@example.org" for n in range(3)]


@pytest.fixture
def feed(http_server: LocalHTTPServer) -> GrowingFeed:
    """A feed with one paper every reader follows."""
    grown = GrowingFeed()
    grown.add("Grokking for everyone")
    http_server.handle("/feed.xml", grown.reply)
    return grown


def readers_config(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer, **smtp: Any
) -> Path:
    """Three readers of one served feed, mailed through the test server, one connection."""
    return write_config(
        tmp_path,
        sources=[{"name": "journal", "kind": "rss", "url": http_server.url("/feed.xml")}],
        smtp=smtp_section(smtp_server) | {"connections": 1, **smtp},
        subscribers=[{"email": email, "keywords": ["grokking"]} for email in READERS],
    )


def start(config: Path, command: str, log: Path, *options: str) -> subprocess.Popen[bytes]:
    """`python -m bot --config CONFIG [OPTIONS] COMMAND` as a real process, stderr to `log`."""
    with log.open("wb") as stderr:  # the child has its own copy of the file
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "--config", str(config), *options, command],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def wait_until(condition: Any, what: str, timeout: float = STOP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def stop(process: subprocess.Popen[bytes], log: Path) -> int:
    """SIGTERM, then the exit code; a process still running after STOP_TIMEOUT fails."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(
            f"still running {STOP_TIMEOUT} s after SIGTERM:\n{log.read_text()}"
        ) from None


def outbox(tmp_path: Path) -> Counter[tuple[str, int]]:
    """Digests by (status, transmissions), straight from the SQLite file."""
    with sqlite3.connect(tmp_path / "paperbot.db") as conn:
        return Counter(
            {
                (status, transmissions): count
                for status, transmissions, count in conn.execute(
                    "SELECT status, transmissions, count(*) FROM digests GROUP BY 1, 2"
                )
            }
        )


def healthy_rerun_delivers_the_rest(
    config: Path, smtp_server: SmtpTestServer, tmp_path: Path
) -> Counter[str]:
    """Heal the server, run `once`: every reader has the digest, none more than twice,
    copies share their Message-ID, and every digest is marked sent. Copies per reader."""
    smtp_server.healthy()
    log = tmp_path / "rerun.log"
    assert start(config, "once", log).wait(timeout=60) == 0, log.read_text()
    copies = Counter(r.recipients[0] for r in smtp_server.received)
    assert sorted(copies) == READERS, "every reader got the digest"
    assert max(copies.values()) <= 2, "never more than twice"
    ids: dict[str, set[str]] = {}
    for received in smtp_server.received:
        ids.setdefault(received.recipients[0], set()).add(str(received.message["Message-ID"]))
    assert all(len(found) == 1 for found in ids.values()), "a copy is the same message"
    assert set(outbox(tmp_path)) <= {("sent", 0), ("sent", 1), ("sent", 2)}
    return copies


# --- stopping while the server stalls ------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "once"])
def test_sigterm_while_waiting_for_a_server_that_is_down_ends_at_once(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    feed: GrowingFeed,
    command: str,
) -> None:
    # the server is down: the run pauses 30 s before trying again; a stop must not wait it
    config = readers_config(tmp_path, http_server, smtp_server, retry_delay=30)
    smtp_server.stop()
    log = tmp_path / "paperbot.log"
    process = start(config, command, log, "-v")
    wait_until(lambda: "subscribers due now" in log.read_text(), "the delivery to start")
    time.sleep(0.5)  # the first connection is refused at once: the pause has begun

    code = stop(process, log)

    assert code == (0 if command == "run" else 1), log.read_text()
    assert "Traceback" not in log.read_text()
    assert outbox(tmp_path) == {("pending", 0): 3}
    smtp_server.start()
    assert healthy_rerun_delivers_the_rest(config, smtp_server, tmp_path) == dict.fromkeys(
        READERS, 1
    )


def test_sigterm_while_waiting_for_the_verdict_ends_and_counts_the_transmission(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer, feed: GrowingFeed
) -> None:
    # the verdict never comes; the run waits for it (2 s) as the message is on the wire,
    # then must stop instead of trying the next message
    config = readers_config(tmp_path, http_server, smtp_server, timeout=2)
    smtp_server.after_data("stall")
    log = tmp_path / "paperbot.log"
    process = start(config, "once", log)
    wait_until(lambda: smtp_server.received, "the first message to go out whole")

    assert stop(process, log) == 1
    assert "stopped by SIGTERM" in log.read_text()
    assert len(smtp_server.received) == 1
    assert outbox(tmp_path) == {("pending", 1): 1, ("pending", 0): 2}, "out once, not sent"
    copies = healthy_rerun_delivers_the_rest(config, smtp_server, tmp_path)
    assert copies[smtp_server.received[0].recipients[0]] == 2, "the unconfirmed one went again"


@pytest.mark.parametrize("command", ["run", "once"])
def test_sigterm_while_the_server_stalls_before_the_dot_ends_at_once_and_marks_nothing(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    feed: GrowingFeed,
    command: str,
) -> None:
    # the defaults: each reply may take 30 s, each message 60 s; a stop must not wait them
    config = readers_config(tmp_path, http_server, smtp_server)
    smtp_server.stall("MAIL")
    log = tmp_path / "paperbot.log"
    process = start(config, command, log)
    wait_until(lambda: smtp_server.stalled("MAIL"), "the first message to stall")

    code = stop(process, log)

    assert code == (0 if command == "run" else 1), log.read_text()
    assert "Traceback" not in log.read_text()
    assert smtp_server.received == []
    assert outbox(tmp_path) == {("pending", 0): 3}, "nothing went out, nothing is marked"
    assert healthy_rerun_delivers_the_rest(config, smtp_server, tmp_path) == dict.fromkeys(
        READERS, 1
    )


# --- replies that are no SMTP reply, and a server closing the channel -------------------------


def sender_for(server: SmtpTestServer, **options: Any) -> SmtpSender:
    """A sender pointed at the test server, with small timeouts."""
    settings: dict[str, Any] = {"host": server.host, "port": server.port, "security": "none"}
    return SmtpSender(**(settings | {"timeout": 1.0, "deadline": 3.0} | options))


def send_one(server: SmtpTestServer, **options: Any) -> SendError:
    """Send one digest; the error it failed with (AssertionError if it went through)."""

    async def scenario() -> SendError:
        async with sender_for(server, **options) as sender:
            try:
                await sender.send(digest_to("ada@example.org"))
            except SendError as exc:
                return exc
        raise AssertionError("the message was accepted")

    return asyncio.run(scenario())


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("MAIL", "999 what?"),
        ("MAIL", "abc"),
        ("RCPT", "999 what?"),
        ("RCPT", "abc"),
        ("RCPT", "354 go ahead"),
        ("DATA", "250 whatever you say"),
        ("DATA", "abc"),
    ],
)
def test_a_reply_that_is_no_smtp_reply_is_trouble_with_the_server_never_a_refusal(
    smtp_server: SmtpTestServer, command: str, reply: str
) -> None:
    smtp_server.answer(command, reply)
    error = send_one(smtp_server)
    # not a refusal of this recipient or message: a bounce would suspend a good address
    assert type(error) is ConnectionTrouble, error
    assert not error.permanent
    shown = reply.split(" ", 1)[-1] if reply[:1].isdigit() else reply
    assert shown in str(error)
    assert "\n" not in str(error)
    assert "-1" not in str(error), "aiosmtplib's code for no code is not shown"

    smtp_server.healthy()

    async def after() -> None:
        # a conversation out of step is never reused: the next message gets a new one
        async with sender_for(smtp_server) as sender:
            await sender.send(digest_to("bo@example.org", 1))
            await sender.send(digest_to("cy@example.org", 2))

    before = smtp_server.connections
    asyncio.run(after())
    assert smtp_server.connections == before + 1
    assert [r.recipients for r in smtp_server.received] == [
        ("bo@example.org",),
        ("cy@example.org",),
    ]


def test_a_bogus_verdict_after_the_final_dot_leaves_the_outcome_unknown(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.data_verdict("999 what?")
    error = send_one(smtp_server)
    assert isinstance(error, DeliveryUnconfirmed), error  # never "refused for good"
    assert "999 what?" in str(error)


@pytest.mark.parametrize("command", ["MAIL", "RCPT", "DATA"])
def test_a_421_mid_session_is_the_server_going_away_not_a_refusal(
    smtp_server: SmtpTestServer, command: str
) -> None:
    smtp_server.answer(command, "421 4.3.2 Service shutting down")
    error = send_one(smtp_server)
    assert isinstance(error, ServerUnavailable), error
    assert str(error).endswith("421 4.3.2 Service shutting down")


def test_a_421_after_the_final_dot_is_the_server_going_away(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.data_verdict("421 4.3.2 Service shutting down")
    assert isinstance(send_one(smtp_server), ServerUnavailable)


@pytest.mark.parametrize(
    ("greeting", "error"),
    [
        ("999 hello", ServerUnavailable),  # a broken server may come back
        ("abc", ServerUnavailable),
        ("421 4.3.2 busy", ServerUnavailable),
        ("554 5.7.1 no service for you", FatalSendError),  # a refusal needs the operator
    ],
)
def test_a_bad_greeting_is_one_line_with_its_code(
    smtp_server: SmtpTestServer, greeting: str, error: type[SendError]
) -> None:
    smtp_server.greet(greeting)
    with pytest.raises(error) as excinfo:
        asyncio.run(sender_for(smtp_server).open())
    assert str(excinfo.value).endswith(greeting)


def test_a_temporary_login_failure_is_worth_a_retry(smtp_server_factory: Any) -> None:
    server = smtp_server_factory(auth=True)
    server.answer("AUTH", "454 4.7.0 Temporary authentication failure")
    with pytest.raises(ServerUnavailable) as excinfo:
        asyncio.run(sender_for(server, username=USER, password=PASSWORD).open())
    assert "454 4.7.0 Temporary authentication failure" in str(excinfo.value)
    server.answer("AUTH", "535 5.7.8 Authentication credentials invalid")
    with pytest.raises(FatalSendError) as refused:
        asyncio.run(sender_for(server, username=USER, password=PASSWORD).open())
    assert not isinstance(refused.value, ServerUnavailable)


def test_bogus_codes_at_rcpt_bounce_nobody_and_lose_nothing(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer, feed: GrowingFeed
) -> None:
    config = readers_config(tmp_path, http_server, smtp_server, retry_delay=0, timeout=2)
    smtp_server.answer("RCPT", "999 what?")
    log = tmp_path / "paperbot.log"
    assert start(config, "once", log).wait(timeout=60) == 1
    assert "Traceback" not in log.read_text()
    assert outbox(tmp_path) == {("pending", 0): 3}, "not failed for good: nothing was refused"
    with sqlite3.connect(tmp_path / "paperbot.db") as conn:
        assert conn.execute("SELECT max(hard_bounces) FROM subscribers").fetchone() == (0,)
    assert healthy_rerun_delivers_the_rest(config, smtp_server, tmp_path) == dict.fromkeys(
        READERS, 1
    )


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (
            "421 4.7.0 Try again later, closing connection",
            "{where} is closing the connection: 421 4.7.0 Try again later, closing connection",
        ),
        (
            "451 4.7.1 Sender rate limited, try again later",
            "sender bot@example.org refused by {where}: 451 4.7.1 Sender rate limited, try"
            " again later",
        ),
    ],
    ids=["closing", "sender-deferred"],
)
def test_a_server_putting_off_every_message_stops_the_run_with_one_line(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    feed: GrowingFeed,
    reply: str,
    error: str,
) -> None:
    # about the server or about us, not about one message: everyone pauses, retries,
    # then the run stops once instead of trying (and reporting) each message in turn
    config = readers_config(tmp_path, http_server, smtp_server, retry_delay=0, retries=1)
    smtp_server.answer("MAIL", reply)
    log = tmp_path / "paperbot.log"
    assert start(config, "once", log, "-q").wait(timeout=60) == 1
    where = f"127.0.0.1:{smtp_server.port}"
    assert log.read_text().splitlines() == [
        f"paperbot: send: {error.format(where=where)} (tried 2 times)"
    ]
    assert outbox(tmp_path) == {("pending", 0): 3}
    assert healthy_rerun_delivers_the_rest(config, smtp_server, tmp_path) == dict.fromkeys(
        READERS, 1
    )


def test_whatever_the_last_moment_hook_raises_the_conversation_is_not_reused(
    smtp_server: SmtpTestServer,
) -> None:
    # the delivery's hook counts the transmission in the store: it can meet a locked store
    def locked() -> None:
        raise RuntimeError("the store is locked")

    async def scenario() -> None:
        async with sender_for(smtp_server) as sender:
            with pytest.raises(RuntimeError):
                await sender.send(digest_to("ada@example.org", 1), before_transmit=locked)
            # the server still waits for the first message's data: this one must not go
            # into it (to Ada, under her envelope), but on a fresh conversation
            await sender.send(digest_to("bo@example.org", 2))

    asyncio.run(scenario())
    assert [(r.recipients, r.message["Message-ID"]) for r in smtp_server.received] == [
        (("bo@example.org",), "<digest-2.bo@example.org>")
    ]


def test_a_server_just_under_every_timeout_is_stopped_by_the_deadline_and_the_breaker(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer, feed: GrowingFeed
) -> None:
    # each reply comes within the 0.5 s timeout, a connection opens within 0.8 s, but no
    # message gets through in 0.8 s: only the message deadline and the breaker stop it
    config = readers_config(
        tmp_path,
        http_server,
        smtp_server,
        timeout=0.5,
        message_deadline=0.8,
        max_failures_in_a_row=2,
        retry_delay=0,
    )
    smtp_server.slow(0.3)
    log = tmp_path / "paperbot.log"
    assert start(config, "once", log, "-q").wait(timeout=60) == 1  # errors only, as in cron
    errors = log.read_text().splitlines()
    assert len(errors) == 1, errors
    assert "stopped sending after 2 timeouts or lost connections in a row" in errors[0]
    assert smtp_server.received == []
    assert outbox(tmp_path) == {("pending", 0): 3}
    assert healthy_rerun_delivers_the_rest(config, smtp_server, tmp_path) == dict.fromkeys(
        READERS, 1
    )


@pytest.mark.parametrize(
    ("security", "auth", "command", "answer", "error"),
    [
        ("none", False, "EHLO", CLOSE, ServerUnavailable),
        ("none", False, "EHLO", ENDLESS, ServerUnavailable),
        ("starttls", False, "STARTTLS", "454 4.7.0 TLS not available", ServerUnavailable),
        ("starttls", False, "STARTTLS", CLOSE, ServerUnavailable),
        ("none", True, "AUTH", CLOSE, ServerUnavailable),
        ("none", True, "AUTH", ENDLESS, ServerUnavailable),
        ("none", True, "AUTH", "535 5.7.8 Authentication credentials invalid", FatalSendError),
    ],
)
def test_a_server_failing_while_connecting_is_one_line_worth_a_retry_or_not(
    smtp_server_factory: Any,
    tls_certificate: TlsCertificate,
    security: str,
    auth: bool,
    command: str,
    answer: str,
    error: type[SendError],
) -> None:
    server = smtp_server_factory(security=security, auth=auth)
    server.answer(command, answer)
    options: dict[str, Any] = {"security": security, "timeout": 0.5}
    if security != "none":
        options["tls_context"] = tls_certificate.client_context()
    if auth:
        options.update(username=USER, password=PASSWORD)
    with pytest.raises(SendError) as excinfo:
        asyncio.run(sender_for(server, **options).open())
    assert type(excinfo.value) is error
    assert "\n" not in str(excinfo.value)


def test_a_self_signed_certificate_is_refused_for_good(smtp_server_factory: Any) -> None:
    server = smtp_server_factory(security="tls")
    with pytest.raises(FatalSendError) as excinfo:  # the operator must act: not retried
        asyncio.run(sender_for(server, security="tls").open())
    assert not isinstance(excinfo.value, ServerUnavailable)
    assert "certificate verify failed" in str(excinfo.value)


def test_a_server_taking_fewer_connections_than_configured_gets_that_many(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer, feed: GrowingFeed
) -> None:
    # a relay that takes two connections per client, paperbot configured for four: the
    # extra two are greeted with a 421. Each used to pause everyone for retry_delay (then
    # twice that...), the whole run long; the run must go on with the two it has
    config = write_config(
        tmp_path,
        sources=[{"name": "journal", "kind": "rss", "url": http_server.url("/feed.xml")}],
        smtp=smtp_section(smtp_server) | {"connections": 4, "retry_delay": 30},
        subscribers=[
            {"email": f"reader{n}@example.org", "keywords": ["grokking"]} for n in range(12)
        ],
    )
    smtp_server.limit_connections(2)
    smtp_server.delay_data(0.05)  # the first two are busy when the others connect
    log = tmp_path / "paperbot.log"
    process = start(config, "once", log, "-q")
    try:
        code = process.wait(timeout=STOP_TIMEOUT)  # a hang guard: a pause alone is 30 s
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 0, log.read_text()
    assert log.read_text() == "", "not an error: the server said how many it takes"
    assert Counter(r.recipients[0] for r in smtp_server.received) == {
        f"reader{n}@example.org": 1 for n in range(12)
    }
