"""Senders, one module each; importing this package registers them all."""

from bot.mail.senders.base import (
    KINDS,
    BeforeTransmit,
    ConnectionTrouble,
    DeliveryUnconfirmed,
    FatalSendError,
    MessageSigner,
    RecipientRefused,
    Sender,
    ServerUnavailable,
    Withheld,
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
    "ConnectionTrouble",
    "DeliveryUnconfirmed",
    "FatalSendError",
    "MessageSigner",
    "OutboxSender",
    "RecipientRefused",
    "Sender",
    "ServerUnavailable",
    "SmtpSender",
    "Withheld",
    "envelope_sender",
    "get_kind",
    "message_bytes",
    "recipients_of",
    "register",
]
