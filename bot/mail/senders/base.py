"""The sender registry: every way of delivering a digest is a class registered by name."""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from email.headerregistry import AddressHeader
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import getaddresses
from types import TracebackType
from typing import ClassVar, Protocol, Self

_BARE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


#: called by a sender right before the whole message goes out, the last moment it can be
#: held back (raise Withheld); after it, a missing verdict leaves the outcome unknown
BeforeTransmit = Callable[[], None]


class MessageSigner(Protocol):
    """Signs the exact bytes that are sent (DKIM): returns header lines to put in front."""

    def sign(self, data: bytes) -> bytes:
        """The header line(s), CRLF-terminated, that make `data` a signed message."""
        ...


class Sender(ABC):
    """Hands email messages to their destination; an async context manager around `send`."""

    name: ClassVar[str]
    #: signs every message's bytes just before they leave (None: unsigned)
    signer: MessageSigner | None = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:  # noqa: B027  (most senders have nothing to set up)
        """Get ready to send (connect, create folders); raise FatalSendError if impossible."""

    async def close(self) -> None:  # noqa: B027
        """Release what `open` and `send` acquired."""

    @property
    def where(self) -> str:
        """Where messages go, as error messages name it."""
        return self.name

    @abstractmethod
    async def send(
        self, message: EmailMessage, *, before_transmit: BeforeTransmit | None = None
    ) -> None:
        """Deliver one message to the addresses of its To header.

        Raises SendError with a one-line message: `permanent=True` when the recipient was
        refused for good (go on with the others), FatalSendError when nothing more can be sent,
        DeliveryUnconfirmed when it went out but its fate is unknown. A sender whose hand-over
        can end that way calls `before_transmit` right before the message goes out.
        """

    def serialize(
        self, message: EmailMessage, *, eight_bit: bool = True, utf8: bool = False
    ) -> bytes:
        """The bytes to deliver: `message_bytes`, signed by `signer` when there is one."""
        data = message_bytes(message, eight_bit=eight_bit, utf8=utf8)
        return self.signer.sign(data) + data if self.signer else data


KINDS: dict[str, type[Sender]] = {}


def register(cls: type[Sender]) -> type[Sender]:
    """Class decorator: make a sender available under its `name`."""
    KINDS[cls.name] = cls
    return cls


def get_kind(name: str) -> type[Sender]:
    """The sender class registered as `name` (KeyError when unknown)."""
    return KINDS[name]


def recipients_of(message: EmailMessage) -> list[str]:
    """The bare addresses of the message's To header (ValueError when there are none)."""
    found = _addresses(message, "To")
    if not found:
        raise ValueError("the message has no To address")
    return found


def envelope_sender(message: EmailMessage) -> str:
    """The bounce address: a VERP one set on the message, else the Sender header's address,
    else the From header's."""
    verp = getattr(message, "envelope_from", None)
    if isinstance(verp, str):
        return verp
    found = _addresses(message, "Sender") or _addresses(message, "From")
    if not found:
        raise ValueError("the message has no From address")
    return found[0]


def message_bytes(message: EmailMessage, *, eight_bit: bool = True, utf8: bool = False) -> bytes:
    """The message as SMTP wants it: CRLF line ends, 8bit bodies only where allowed."""
    policy = message.policy
    cte_type = "8bit" if eight_bit else "7bit"
    if not isinstance(policy, EmailPolicy):
        policy = SMTP
    if (policy.linesep, policy.cte_type, policy.utf8) != ("\r\n", cte_type, utf8):
        policy = policy.clone(linesep="\r\n", cte_type=cte_type, utf8=utf8)
    return message.as_bytes(policy=policy)


def one_line(text: object) -> str:
    """The text with every run of whitespace (server replies span lines) made one space."""
    return re.sub(r"\s+", " ", str(text)).strip()


def _addresses(message: EmailMessage, name: str) -> list[str]:
    wanted = name.lower()
    raw = next((value for key, value in message.raw_items() if key.lower() == wanted), None)
    if raw is None:
        return []
    raw = str(raw)
    if _BARE_ADDRESS.fullmatch(raw):  # what paperbot writes for To: no parsing needed
        return [raw]
    return list(_parsed_addresses(name, raw))


@functools.lru_cache(maxsize=1024)
def _parsed_addresses(name: str, raw: str) -> tuple[str, ...]:
    # parsing an address header costs ~0.3 ms, and From/Sender are the same on every digest
    header = SMTP.header_factory(name, raw)
    if isinstance(header, AddressHeader):
        return tuple(address.addr_spec for address in header.addresses if address.addr_spec)
    return tuple(address for _, address in getaddresses([str(header)]) if address)
