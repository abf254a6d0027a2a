"""Delivery status notifications read back: which addresses failed, and whether for good.

flufl.bounce (Mailman's detectors) finds the failed addresses of the many non-standard
bounce forms; RFC 3464 reports are read here directly. Its permanent/temporary split is not
used: it calls a full mailbox or a message expired after retries permanent, and counting
those would suspend live addresses. A failure is *hard* only when it is permanent AND says the
address itself is dead (an X.1.x address status such as 5.1.1, 5.1.2, 5.1.10, an unroutable
domain, or "user unknown" wording) AND nothing near it speaks of a full mailbox, a retry, a
block or a policy; every other failure is *soft*. A wrong soft only slows a suspension; a
wrong hard would suspend someone who still reads their mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses, parseaddr

from flufl.bounce import all_failures


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed recipient of a bounce: its address, hard or soft, and the evidence."""

    address: str
    hard: bool
    reason: str


#: a plausible address (no quotes, no spaces): local@domain.tld
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY = re.compile(r"(?<![\d.])([45])\d\d(?=[ -])")
_DEAD = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|domain|address)"
    r"|unknown (?:recipient|address|local|mailbox)|recipient unknown|address unknown"
    r"|does ?n[o']t exist|not exist|invalid (?:recipient|mailbox|address)"
    r"|no mailbox|mailbox not found|user not found|recipient not found|recipnotfound"
    r"|unrouteable|unroutable|host not found|domain not found|host unknown|unknown host"
    r"|host or domain name not found|name or service not known|doesn't have an? \S+ account"
    r"|not recognized|no longer (?:valid|available|active)|has moved|bad destination mailbox"
)
_SOFT = re.compile(
    r"quota|\bfull\b|over ?limit|insufficient|expired|retry|retries|time ?out|timed out"
    r"|too long|delay|defer|temporar|try again|spam|block|blacklist|denylist"
    r"|policy|reputation|\brate\b|too many|greylist|suspend|disabled|inactive|virus"
    r"|authenticat|\bspf\b|dmarc|dkim|relay"
)
_PERMANENT_WORDS = re.compile(
    r"permanent|fatal|failed|did not reach|could not be delivered|undeliverable"
)
#: where a bounce's own text ends and the returned message begins
_ORIGINAL = re.compile(
    r"^\s*(?:-+ ?(?:original message|this is a copy|below this line|the original message)"
    r"|below is a copy of the original|original message follows|--- ?original"
    r"|-+ ?(?:returned|undelivered) (?:mail|message))",
    re.IGNORECASE | re.MULTILINE,
)
_BOUNCE_FROM = re.compile(r"mailer-daemon|postmaster|mail delivery|mailer daemon", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status|failure|failed|has failed|notification)|failure notice"
    r"|returned mail|mail delivery failed|could not be delivered|delivery problem"
    r"|nondeliverable|non-delivery|rejected",
    re.I,
)
#: local parts of addresses in a bounce that are never the failed recipient
_SYSTEM_LOCAL = re.compile(r"^(?:mailer-daemon|postmaster|double-bounce|root|abuse)$", re.I)


def read_bounce(msg: Message) -> tuple[Failure, ...] | None:
    """The failed recipients of a bounce (possibly none), or None when it is not a bounce."""
    if not _is_bounce(msg):
        return None
    text = _human_text(msg)
    reports = _dsn_blocks(msg)
    failures: dict[str, Failure] = {}
    named = tuple(r.address for r in reports if _ADDRESS.fullmatch(r.address))
    if named:
        for report in reports:
            if report.action in ("failed", "delayed") and report.address in named:
                hard = report.action == "failed" and _report_is_hard(report, text, named)
                evidence = _one_line(f"{report.status} {report.diagnostic}")
                failures[report.address] = Failure(report.address, hard, evidence)
        return tuple(failures.values())
    candidates = _candidates(msg, text)
    for address in candidates:
        context = _segment(text, address, candidates) or text
        failures[address] = Failure(address, _is_hard(context, ""), _evidence(context))
    return tuple(failures.values())


@dataclass(frozen=True, slots=True)
class _Report:
    """One per-recipient block of an RFC 3464 message/delivery-status part."""

    address: str
    action: str
    status: str
    diagnostic: str


def _is_bounce(msg: Message) -> bool:
    """A delivery failure report, not an auto-reply, an abuse report or ordinary mail."""
    if msg.get_content_type() == "multipart/report":
        return msg.get_param("report-type", "", header="content-type") == "delivery-status"
    # no test of Auto-Submitted: Exim marks its bounces "auto-replied", as vacation mail is
    sender = parseaddr(str(msg.get("From", "")))
    return bool(
        _BOUNCE_FROM.search(f"{sender[0]} {sender[1]}")
        or _BOUNCE_SUBJECT.search(str(msg.get("Subject", "")))
    )


def _dsn_blocks(msg: Message) -> list[_Report]:
    """The per-recipient blocks of every message/delivery-status part."""
    reports = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _status_blocks(part):
            recipient = block.get("final-recipient") or block.get("original-recipient") or ""
            address = recipient.partition(";")[2].strip().strip("<>").lower()
            reports.append(
                _Report(
                    address,
                    block.get("action", "").strip().lower(),
                    block.get("status", "").strip(),
                    block.get("diagnostic-code", "").partition(";")[2].strip(),
                )
            )
    return reports


def _status_blocks(part: Message) -> list[dict[str, str]]:
    """The header blocks of a delivery-status part as lower-cased name -> value dicts."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the parser read each block as a message of headers
        return [
            {k.lower(): _one_line(str(v)) for k, v in p.items()}
            for p in payload
            if isinstance(p, Message)
        ]
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
    blocks = []
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        fields: dict[str, str] = {}
        for line in re.sub(r"\n[ \t]+", " ", chunk).splitlines():
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip().lower()] = value.strip()
        blocks.append(fields)
    return blocks


def _human_text(msg: Message) -> str:
    """The bounce's own words: its text parts, not the returned message, cut at its copy."""
    texts = []
    for part in _own_parts(msg):
        # a multipart part whose boundary is broken is read as the text it is
        if part.get_content_maintype() == "multipart" or part.get_content_type() in (
            "text/plain",
            "text/html",
        ):
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    body = raw.decode(charset, "replace")
                except LookupError:
                    body = raw.decode("utf-8", "replace")
                if part.get_content_subtype() == "html":
                    body = re.sub(r"<[^>]*>", " ", body)
                texts.append(body)
    text = "\n".join(texts).replace("\r\n", "\n")
    cut = _ORIGINAL.search(text)
    return text[: cut.start()] if cut else text


def _own_parts(msg: Message) -> list[Message]:
    """The leaf parts of a message outside any attached message (rfc822, headers)."""
    if msg.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
        return []
    if msg.is_multipart():
        payload = msg.get_payload()
        children = payload if isinstance(payload, list) else []
        return [
            leaf for child in children if isinstance(child, Message) for leaf in _own_parts(child)
        ]
    return [msg]


def _candidates(msg: Message, text: str) -> tuple[str, ...]:
    """Addresses a non-standard bounce names as failed: flufl.bounce's and its text's."""
    own = {a.lower() for _, a in getaddresses([str(msg.get(h, "")) for h in ("From", "To")])}
    found: dict[str, None] = {}
    try:
        temporary, permanent = all_failures(msg)
        detected: list[object] = [*permanent, *temporary]
    except Exception:  # a third-party detector tripping on a hostile message: use the text
        detected = []
    for raw in detected:
        address = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        found[address.strip("<>").lower()] = None
    for match in _ADDRESS.finditer(text):
        found[match.group(0).lower().strip(".")] = None
    return tuple(
        a
        for a in found
        if _ADDRESS.fullmatch(a) and a not in own and not _SYSTEM_LOCAL.match(a.partition("@")[0])
    )


def _segment(text: str, address: str, others: tuple[str, ...]) -> str:
    """The text about one address: from its line to the line naming another address."""
    lower = text.lower()
    start = lower.find(address)
    if start < 0:
        return ""
    start = lower.rfind("\n", 0, start) + 1
    end = len(text)
    after = lower.find("\n", start)
    for other in others:
        if other != address and address not in other:
            at = lower.find(other, after if after >= 0 else start)
            if at >= 0:
                end = min(end, lower.rfind("\n", 0, at) + 1 or at)
    return text[start:end]


def _report_is_hard(report: _Report, text: str, named: tuple[str, ...]) -> bool:
    """A failed RFC 3464 recipient: its Status and Diagnostic-Code decide when they say the
    address is dead; else the bounce's words about that address (and only those)."""
    evidence = f"{report.status} {report.diagnostic}"
    if _is_hard(evidence, report.status):
        return True
    if _SOFT.search(evidence.lower()) or report.status.startswith("4"):
        return False
    return _is_hard(f"{evidence}\n{_segment(text, report.address, named)}", report.status)


def _is_hard(text: str, status: str) -> bool:
    """Permanent, about the address itself, and with no word of a softer cause nearby."""
    lower = _one_line(text).lower()
    codes = [m.groups() for m in _ENHANCED.finditer(f"{status} {lower}")]
    replies = [m.group(1) for m in _REPLY.finditer(lower)]
    if any(c[0] == "4" for c in codes) or (not codes and "4" in replies):
        return False
    permanent = any(c[0] == "5" for c in codes) or "5" in replies
    permanent = permanent or bool(_PERMANENT_WORDS.search(lower))
    dead_code = any(c[0] == "5" and _dead_status(c[1], c[2]) for c in codes)
    dead = dead_code or bool(_DEAD.search(lower))
    return permanent and dead and not _SOFT.search(lower)


def _dead_status(subject: str, detail: str) -> bool:
    """RFC 3463 statuses that say the address is dead: X.1.x but the sender's, and 5.4.4."""
    if subject == "1":
        return detail not in ("0", "7", "8")
    return subject == "4" and detail == "4"


def _evidence(text: str) -> str:
    """A short line of the text that says why (its first status code's line)."""
    for line in text.splitlines():
        if _ENHANCED.search(line) or _REPLY.search(line) or _DEAD.search(line.lower()):
            return _one_line(line)[:200]
    return _one_line(text)[:200]


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
