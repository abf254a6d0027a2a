"""The `outbox` sender: each message becomes an .eml file in a folder (no SMTP needed)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from bot.errors import FatalSendError
from bot.mail.senders.base import (
    BeforeTransmit,
    MessageSigner,
    Sender,
    one_line,
    recipients_of,
    register,
)

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")


@register
class OutboxSender(Sender):
    """Writes every message to `<directory>/<UTC time>-<recipient>-<id>.eml`, atomically."""

    name = "outbox"

    def __init__(self, directory: Path | str, *, signer: MessageSigner | None = None) -> None:
        self.directory = Path(directory)
        self.signer = signer

    async def open(self) -> None:
        """Create the folder."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FatalSendError(f"cannot create outbox {self.directory}: {one_line(exc)}") from exc

    @property
    def where(self) -> str:
        """The folder."""
        return str(self.directory)

    async def send(
        self, message: EmailMessage, *, before_transmit: BeforeTransmit | None = None
    ) -> None:
        """Write the message as an .eml file; a reader never sees half a file.

        A file is written or it is not: no outcome is unknown, so `before_transmit` is not needed.
        """
        path = self.directory / file_name(message)
        try:
            _write_atomically(path, self.serialize(message))
        except OSError as exc:
            raise FatalSendError(f"cannot write {path}: {one_line(exc)}") from exc


def file_name(message: EmailMessage, now: datetime | None = None) -> str:
    """`20241128T143000.123456Z-ada@example.org-1a2b3c4d.eml`: sorts by time, says for whom."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    recipient = _UNSAFE.sub("_", ",".join(recipients_of(message)))[:100]
    message_id = str(message.get("Message-ID", "")) or os.urandom(8).hex()
    short = hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()[:8]
    return f"{stamp}-{recipient}-{short}.eml"


def _write_atomically(path: Path, data: bytes) -> None:
    # a temporary file in the same folder, synced, then renamed over the final name
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
