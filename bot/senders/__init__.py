"""Senders, one module each; importing this package registers them all."""

from bot.senders.base import (
    KINDS,
    FatalSendError,
    MessageSigner,
    RecipientRefused,
    Sender,
    ServerUnavailable,
    envelope_sender,
    get_kind,
    message_bytes,
    recipients_of,
    register,
)
from bot.senders.outbox import OutboxSender
from bot.senders.smtp import SmtpSender

__all__ = [
    "KINDS",
    "FatalSendError",
    "MessageSigner",
    "OutboxSender",
    "RecipientRefused",
    "Sender",
    "ServerUnavailable",
    "SmtpSender",
    "envelope_sender",
    "get_kind",
    "message_bytes",
    "recipients_of",
    "register",
]
