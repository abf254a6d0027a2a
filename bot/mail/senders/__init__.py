"""Senders, one module each; importing this package registers them all."""

from bot.mail.senders.base import (
    KINDS,
    BeforeTransmit,
    MessageSigner,
    Sender,
    envelope_sender,
    get_kind,
    message_bytes,
    recipients_of,
    register,
)
from bot.mail.senders.outbox import OutboxSender
from bot.mail.senders.smtp import SmtpSender

__all__ = [
    "KINDS",
    "BeforeTransmit",
    "MessageSigner",
    "OutboxSender",
    "Sender",
    "SmtpSender",
    "envelope_sender",
    "get_kind",
    "message_bytes",
    "recipients_of",
    "register",
]
