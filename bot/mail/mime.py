"""The digest's email: MIME message, headers, transfer encoding and fast serialization.

`build_message` makes a rendered digest a multipart/alternative message with list and
one-click headers; `DigestMessage` writes it byte for byte as the stdlib generator would,
several times faster; `PrebuiltMessage` carries a message serialized in the render process.
The size budget of the HTML part is counted here (`html_wire_size`), as the part is sent.
"""

from __future__ import annotations

import binascii
import os
import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy, Policy
from email.utils import format_datetime
from itertools import accumulate, repeat
from operator import add
from typing import AnyStr, NamedTuple

from bot.mail.caches import CACHES

#: Gmail clips HTML bodies past ~102 KB; the HTML part's body as sent (transfer-encoded,
#: CRLF line ends: at least what any client counts) is kept within this many bytes
MAX_HTML_BYTES = 100_000
#: HTML lines are packed up to this many bytes (the RFC 5322 limit is 998)
PACKED_LINE = 990

#: CRLF serialization as SMTP wants it. Headers we store pre-folded are written as they are:
#: re-folding would turn a long List-Unsubscribe URL into RFC 2047 encoded words.
MESSAGE_POLICY = email_policy.SMTP.clone(refold_source="none")

_NEWLINES = re.compile(rb"\r\n|\r|\n")
_SIMPLE_CONTENT_TYPE = re.compile(
    r'(?P<type>text/(?:plain|html)); charset="utf-8"'
    r'|(?P<multi>multipart/alternative); boundary="(?P<boundary>=_[0-9a-f]+)"'
)
_ADDR_SPEC = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_URI = re.compile(r"[!#-;=?-\[\]_a-z~]+")


class EncodedBody(NamedTuple):
    """A text part's body as `build_message` encodes it: Content-Transfer-Encoding and
    bytes (with "\\n" line ends), and the text they were made from."""

    text: str
    encoding: str
    data: bytes

    @classmethod
    def of(cls, text: str) -> EncodedBody:
        """The body of a text part of `text`: 7bit or 8bit, or quoted-printable when a line
        is longer than RFC 5322 allows."""
        body = text
        if "\r" in body:
            body = body.replace("\r\n", "\n").replace("\r", "\n")
        data = body.encode("utf-8")
        if max(map(len, data.split(b"\n"))) <= 998:  # RFC 5322 line limit
            return cls(text, "7bit" if data.isascii() else "8bit", data)
        return cls(text, "quoted-printable", binascii.b2a_qp(data, istext=True))

    @property
    def wire_size(self) -> int:
        """The bytes as sent, with CRLF line ends (at least what a mail client counts)."""
        return len(self.data) + self.data.count(b"\n")


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    """A digest rendered for email: subject, plain-text part, and HTML part (CSS inlined)."""

    subject: str
    text: str
    html: str
    #: the HTML part's body as encoded to measure it, which the message then reuses
    html_body: EncodedBody | None = field(default=None, compare=False, repr=False)


def html_wire_size(html: str) -> int:
    """The bytes of an HTML part's body as sent: transfer-encoded as `build_message` does
    it, with CRLF line ends (at least what a mail client or Gmail counts of it)."""
    return EncodedBody.of(html).wire_size


def build_message(
    rendered: RenderedDigest,
    *,
    sender: str,
    recipient: str,
    message_id: str,
    date: datetime | None = None,
    list_id: str | None = None,
    unsubscribe_url: str | None = None,
    unsubscribe_mailto: str | None = None,
    reply_to: str | None = None,
    sender_header: str | None = None,
) -> EmailMessage:
    """The multipart/alternative email of a rendered digest, with list and one-click headers.

    The HTML is used as rendered: `render_digest` has already inlined its CSS and kept it
    under the size limit. `sender_header` is the `Sender:` (who actually sends, and where
    bounces go) when it differs from From. Raises ValueError on a header value that cannot
    be sent.
    """
    msg = DigestMessage(policy=MESSAGE_POLICY)
    _set_address(msg, "From", sender)
    _set_address(msg, "To", recipient)
    if sender_header:
        _set_address(msg, "Sender", sender_header)
    if reply_to:
        _set_address(msg, "Reply-To", reply_to)
    _set_text(msg, "Subject", rendered.subject)
    msg.set_raw("Date", _date_header(_aware(date or datetime.now(UTC)).replace(microsecond=0)))
    msg.set_raw("Message-ID", _msg_id(message_id))
    if list_id:
        _set_text(msg, "List-Id", list_id if "<" in list_id else f"<{list_id}>")
    _set_unsubscribe(msg, unsubscribe_url, unsubscribe_mailto)
    # tells vacation responders and other robots not to answer a digest
    msg.set_raw("Auto-Submitted", "auto-generated")
    msg.set_raw("MIME-Version", "1.0")
    # a random boundary: the stdlib would otherwise scan the whole body for a free one
    msg.set_raw("Content-Type", f'multipart/alternative; boundary="=_{os.urandom(12).hex()}"')
    msg.attach(_text_part("plain", rendered.text))
    msg.attach(_text_part("html", rendered.html, rendered.html_body))
    return msg


class DigestMessage(EmailMessage):
    """An EmailMessage whose `as_bytes` writes each text part in one piece.

    The stdlib generator writes bodies line by line, which makes a 150 KB digest cost
    milliseconds; the output here is byte for byte what `BytesGenerator` writes, and any
    structure this does not cover (7bit policies, message/*, preambles) goes to the stdlib.
    """

    #: (payload, its bytes) as `_text_part` encoded them, so that writing skips re-encoding
    wire_body: tuple[str, bytes] | None = None
    #: the envelope sender (MAIL FROM) when it is not the header's: a VERP address
    envelope_from: str | None = None

    def as_bytes(self, unixfrom: bool = False, policy: Policy | None = None) -> bytes:
        """The message serialized as `BytesGenerator` would, several times faster."""
        policy = self.policy if policy is None else policy
        if unixfrom or not isinstance(policy, EmailPolicy) or not _plain_tree(self, policy):
            return super().as_bytes(unixfrom, policy)
        out: list[bytes] = []
        _flatten(self, policy, policy.linesep.encode("ascii"), out)
        return b"".join(out)


class PrebuiltMessage(DigestMessage):
    """A digest message already serialized elsewhere (the render process), as its bytes.

    It carries only the envelope headers the senders read (From, To, Sender, Message-ID);
    written with MESSAGE_POLICY it is `wire` as is, with any other policy the bytes are
    parsed back into a whole message first (a server without 8BITMIME: rare, and slower).
    """

    def __init__(self, wire: bytes, headers: Iterable[tuple[str, str]]) -> None:
        super().__init__(policy=MESSAGE_POLICY)
        self.wire = wire
        for name, value in headers:
            self.set_raw(name, value)

    def as_bytes(self, unixfrom: bool = False, policy: Policy | None = None) -> bytes:
        """`wire` when written as it was built, else the parsed message written anew."""
        if not unixfrom and policy in (None, MESSAGE_POLICY):
            return self.wire
        # read as built, with "\n" line ends: a 7bit policy re-encodes the bodies as such
        parser = BytesParser(DigestMessage, policy=MESSAGE_POLICY.clone(linesep="\n"))
        whole = parser.parsebytes(self.wire.replace(b"\r\n", b"\n"))
        return whole.as_bytes(unixfrom, policy or MESSAGE_POLICY)


#: the headers a PrebuiltMessage keeps: what the senders read for the envelope and file name
ENVELOPE_HEADERS = ("From", "To", "Sender", "Message-ID")


def envelope_headers(message: EmailMessage) -> list[tuple[str, str]]:
    """The raw ENVELOPE_HEADERS of a message, for a PrebuiltMessage of its bytes."""
    return [(name, str(value)) for name, value in message.raw_items() if name in ENVELOPE_HEADERS]


# --- parts and their transfer encoding ---------------------------------------------------------


def _text_part(subtype: str, body: str, encoded: EncodedBody | None = None) -> DigestMessage:
    """A text/* part, encoded by hand: the stdlib's content manager is several times slower.

    `encoded` is the body already encoded (when sizing it), used if it is of this body.
    """
    part = DigestMessage(policy=MESSAGE_POLICY)
    part.set_raw("Content-Type", f'text/{subtype}; charset="utf-8"')
    if encoded is None or encoded.text is not body:
        encoded = EncodedBody.of(body)
    part.set_raw("Content-Transfer-Encoding", encoded.encoding)
    if encoded.encoding == "quoted-printable":
        part.set_payload(encoded.data.decode("ascii"))
    else:
        # the stdlib keeps 8bit payloads as surrogate-escaped str and writes back the bytes
        payload = encoded.data.decode("ascii", "surrogateescape")
        part.set_payload(payload)
        part.wire_body = (payload, encoded.data)
    return part


def pack_lines(html: str) -> str:
    """The HTML with its lines joined by spaces into lines of at most PACKED_LINE bytes.

    Outside <pre> (the template has none) a newline and a space are the same whitespace
    in HTML, so the page is unchanged; a paper takes two lines instead of fifteen, and
    lines are what SMTP servers spend their time on. A line already too long stays alone.
    """
    if not html.isascii():  # lengths below count bytes
        return b"\n".join(_packed(html.encode("utf-8").split(b"\n"), b" ")).decode("utf-8")
    return "\n".join(_packed(html.split("\n"), " "))


def _packed(lines: list[AnyStr], space: AnyStr) -> list[AnyStr]:
    """Greedy packing by cumulative offsets: one bisection per line written."""
    ends = list(accumulate(map(add, map(len, lines), repeat(1))))  # offset after each "\n"
    packed: list[AnyStr] = []
    first, offset = 0, 0
    while first < len(lines):
        last = max(first, bisect_right(ends, offset + PACKED_LINE + 1, lo=first) - 1)
        packed.append(space.join(lines[first : last + 1]))
        first, offset = last + 1, ends[last]
    return packed


# --- writing a message ---------------------------------------------------------------------------


def _stored_payload(msg: Message) -> object:
    # what BytesGenerator reads: get_payload() would decode surrogate-escaped 8bit bodies
    return msg.__dict__.get("_payload")


def _plain_tree(msg: Message, policy: EmailPolicy) -> bool:
    """Whether `_flatten` writes this message exactly as the stdlib generator would."""
    if policy.cte_type != "8bit" or policy.mangle_from_:
        return False
    content_type, boundary = _content_type(msg)
    payload = _stored_payload(msg)
    if content_type.startswith("multipart/"):
        return (
            content_type != "multipart/signed"
            and bool(boundary)
            and msg.preamble is None
            and msg.epilogue is None
            and isinstance(payload, list)
            and all(_plain_tree(part, policy) for part in payload)
        )
    return content_type.startswith("text/") and isinstance(payload, str)


def _content_type(msg: Message) -> tuple[str, str | None]:
    """(type, boundary) from the raw header: Message parses it anew on every access."""
    raw = next((str(v) for k, v in msg.raw_items() if k.lower() == "content-type"), None)
    if not raw:
        return "", None
    # what build_message writes, read without the header parser (a fresh boundary per
    # message would make the parser's cache useless); anything else goes to the parser
    simple = _SIMPLE_CONTENT_TYPE.fullmatch(raw)
    if simple:
        return simple["type"] or simple["multi"], simple["boundary"]
    return _parse_content_type(raw)


@CACHES.memo(maxsize=256)
def _parse_content_type(value: str) -> tuple[str, str | None]:
    header = MESSAGE_POLICY.header_factory("Content-Type", value)
    boundary = getattr(header, "params", {}).get("boundary")
    return str(getattr(header, "content_type", "")), str(boundary) if boundary else None


def _flatten(msg: Message, policy: EmailPolicy, newline: bytes, out: list[bytes]) -> None:
    # most headers are the same on every digest: fold them once (for the one shared policy)
    fold = _folded if policy is MESSAGE_POLICY else policy.fold_binary
    out.extend(fold(name, value) for name, value in msg.raw_items())
    out.append(newline)
    payload = _stored_payload(msg)
    if isinstance(payload, str):
        wire = getattr(msg, "wire_body", None)
        # the bytes only while the payload is still the one they were made from
        body = (
            wire[1] if wire and wire[0] is payload else payload.encode("ascii", "surrogateescape")
        )
        out.append(_NEWLINES.sub(newline, body) if b"\r" in body else body.replace(b"\n", newline))
        return
    assert isinstance(payload, list)
    delimiter = b"--" + str(_content_type(msg)[1]).encode("ascii")
    out += [delimiter, newline]
    for i, part in enumerate(payload):
        if i:
            out += [newline, delimiter, newline]
        _flatten(part, policy, newline, out)
    out += [newline, delimiter, b"--", newline]


@CACHES.memo(maxsize=1024)
def _folded(name: str, value: str) -> bytes:
    return MESSAGE_POLICY.fold_binary(name, value)


# --- headers -------------------------------------------------------------------------------------


@CACHES.memo(maxsize=16)
def _date_header(when: datetime) -> str:
    # a run sends hundreds of digests a second and Date has whole seconds
    return format_datetime(when)


def _check_header(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} header contains a line break: {value!r}")


def _set_address(msg: EmailMessage, name: str, value: str) -> None:
    """An address header; a bare ASCII address goes in as is, anything else is parsed."""
    _check_header(name, value)
    msg.set_raw(name, value if _ADDR_SPEC.fullmatch(value) else _encoded_address(name, value))


def _set_text(msg: EmailMessage, name: str, value: str) -> None:
    """An unstructured header: short printable ASCII as is, else RFC 2047 encoded and folded."""
    _check_header(name, value)
    plain = value.isascii() and value.isprintable() and "=?" not in value
    msg.set_raw(name, value if plain and len(name) + len(value) <= 76 else _encoded(name, value))


@CACHES.memo(maxsize=1024)
def _encoded(name: str, value: str) -> str:
    """The header value as the email policy folds and encodes it (cached: values recur)."""
    folded: str = MESSAGE_POLICY.header_factory(name, value).fold(policy=MESSAGE_POLICY)
    return folded[len(name) + 2 :].rstrip("\r\n")


@CACHES.memo(maxsize=1024)
def _encoded_address(name: str, value: str) -> str:
    header = MESSAGE_POLICY.header_factory(name, value)
    addresses = getattr(header, "addresses", ())
    if header.defects or not addresses or not all(a.domain for a in addresses):
        raise ValueError(f"{name} header: not a valid address: {value!r}")
    return _encoded(name, value)


def _set_unsubscribe(msg: EmailMessage, url: str | None, mailto: str | None) -> None:
    """RFC 2369 List-Unsubscribe, plus RFC 8058 one-click when there is an https URL."""
    if mailto and not mailto.startswith("mailto:"):
        mailto = f"mailto:{mailto}"
    uris = [uri for uri in (url, mailto) if uri]
    for uri in uris:
        if not _URI.fullmatch(uri):
            raise ValueError(f"List-Unsubscribe: not a plain ASCII URI: {uri!r}")
    if not uris:
        return
    value = ", ".join(f"<{uri}>" for uri in uris)
    if len(value) > 78 - len("List-Unsubscribe: "):
        value = ",\r\n ".join(f"<{uri}>" for uri in uris)
    msg.set_raw("List-Unsubscribe", value)
    if url and url.startswith("https://"):
        msg.set_raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")


def _msg_id(message_id: str) -> str:
    value = message_id.strip()
    value = value if value.startswith("<") else f"<{value}>"
    if not re.fullmatch(r"<[^<>\s@]+@[^<>\s@]+>", value):
        raise ValueError(f"Message-ID: not of the form <left@right>: {message_id!r}")
    return value


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)
