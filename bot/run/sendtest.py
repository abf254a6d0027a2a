"""`paperbot send-test ADDRESS`: one real message with the configured settings, step by step.

The message is a digest of one sample paper, built exactly as a real digest is (headers,
unsubscribe links, DKIM), with "[test]" in front of its subject. Nothing is recorded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage

from bot.config.settings import Config
from bot.config.wiring import letterhead, make_sender
from bot.errors import SendError
from bot.mail.compose import Letterhead, compose
from bot.mail.digest import build_digest
from bot.models import Match, Paper, Reason, Subscriber

SAMPLE_PAPER = Paper(
    id="0000.00000",
    title="A test of paperbot's mail delivery",
    authors=("Paperbot",),
    abstract=(
        "This message was sent by `paperbot send-test` to check the mail settings: the SMTP "
        "server, its login and TLS, the From, Sender and Reply-To addresses, the List-Id and "
        "List-Unsubscribe headers, and the DKIM signature. A real digest looks like this one."
    ),
    url="https://arxiv.org/",
    sources=("send-test",),
)


def delivery_lines(config: Config) -> list[str]:
    """What the delivery settings mean, for `check-config`."""
    lines = []
    smtp = config.smtp
    if smtp:
        rate = f", at most {smtp.rate_limit}" if smtp.rate_limit else ""
        lines.append(
            f"  {smtp.connections} connections{rate}; a 4xx is retried {smtp.retries} times"
            f" from {smtp.retry_delay:g} s; {smtp.max_hard_bounces} hard bounces in a row"
            " suspend a subscriber"
        )
        lines.append(
            f"  each message within {smtp.message_deadline:g} s (commands {smtp.timeout:g} s);"
            f" {smtp.max_failures_in_a_row} timeouts or lost connections in a row stop the"
            " sending until the next run"
        )
        if smtp.sender or smtp.reply_to:
            lines.append(f"  Sender: {smtp.sender or '-'}, Reply-To: {smtp.reply_to or '-'}")
        lines.append(f"  DKIM: {dkim_mode(config)}")
    lines.append(f"  List-Unsubscribe: {unsubscribe_mode(letterhead(config))}")
    return lines


def dkim_mode(config: Config) -> str:
    """Whether and how paperbot signs."""
    dkim = config.smtp.dkim if config.smtp else None
    if dkim is None:
        return "not signed by paperbot (set smtp.dkim, or let the relay sign)"
    return (
        f"signed for {dkim.domain}; public key expected at {dkim.selector}._domainkey.{dkim.domain}"
    )


def unsubscribe_mode(head: Letterhead) -> str:
    """How digests offer unsubscribing, and what is missing for one-click."""
    mailto = f"<mailto:{head.unsubscribe_mailto}>"
    if head.base_url and head.secret:
        if not head.base_url.startswith("https://"):
            return f"<{head.base_url}/unsubscribe/...>, {mailto} (one-click needs https://)"
        return f"<{head.base_url}/unsubscribe/...>, {mailto} + List-Unsubscribe-Post one-click"
    missing = [
        *(["base_url"] if not head.base_url else []),
        *(["the PAPERBOT_SECRET_KEY environment variable"] if not head.secret else []),
    ]
    return f"{mailto} only: set {' and '.join(missing)} for the one-click https link"


async def send_test(config: Config, address: str, say: Callable[[str], None]) -> bool:
    """Send the test message to `address`, saying each step; False (said why) on failure."""
    head = letterhead(config)
    smtp = config.smtp
    if smtp:
        login = f"as {smtp.username}" if smtp.username else "without login"
        say(f"server: {smtp.host}:{smtp.effective_port} ({smtp.security}) {login}")
    else:
        say(f"no smtp: section: the message goes to {config.outbox}/ as an .eml file")
    say(f"from: {head.from_}" + (f", sender: {head.sender}" if head.sender else ""))
    say(f"List-Unsubscribe: {unsubscribe_mode(head)}")
    say(f"DKIM: {dkim_mode(config)}")
    try:
        message = sample_message(head, address)
    except ValueError as exc:
        say(f"message: cannot be built: {exc}")
        return False
    sender = make_sender(config)
    try:
        await sender.open()
    except SendError as exc:
        say(f"connect: failed: {exc}")
        return False
    try:
        say("connect: ok" + (", TLS and login ok" if smtp and smtp.security != "none" else ""))
        await sender.send(message)
    except SendError as exc:
        say(f"send: failed: {exc}")
        return False
    finally:
        await sender.close()
    say(f"send: accepted for {address}, Message-ID {message['Message-ID']}")
    return True


def sample_message(head: Letterhead, address: str) -> EmailMessage:
    """The sample digest for `address`, built as every digest is, its subject marked [test]."""
    match = Match(SAMPLE_PAPER.id, (Reason("keyword", "paperbot test", ("paperbot",)),))
    digest = build_digest(
        Subscriber(email=address),
        [match],
        {SAMPLE_PAPER.id: SAMPLE_PAPER},
        message_id=f"<send-test-{os.urandom(8).hex()}@{head.domain}>",
    )
    return compose(head, digest, 0, datetime.now(UTC), subject_prefix="[test] ")
