"""A rendered digest as a mail client reads it: the built message parsed back, its parts."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from bot.mail.mime import RenderedDigest, build_message


def message_of(rendered: RenderedDigest, **headers: str) -> EmailMessage:
    """The built message, serialized and parsed back as a mail client would."""
    options = {
        "sender": "paperbot <bot@example.org>",
        "recipient": "ada@example.org",
        "message_id": "<d1@example.org>",
    } | headers
    raw = build_message(rendered, **options).as_bytes()  # type: ignore[arg-type]
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body(message: EmailMessage, subtype: str) -> str:
    """The decoded text/<subtype> part (with the CRLFs of the wire made newlines)."""
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")
