"""Checks of single config values (addresses, URLs, header text, rates, cadences): each
returns the value or raises ValueError saying what is wrong, for pydantic to report."""

from __future__ import annotations

import os
import reprlib
import ssl
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from email_validator import EmailNotValidError, validate_email

from bot.timing.cadence import format_clock, parse_clock, parse_weekday

MIN_MESSAGES_PER_SECOND = 1 / 3600
MAX_HEADER_TEXT = 200


def _short_repr() -> reprlib.Repr:
    """How a wrong value is shown in an error: its start, never a whole huge list or text."""
    shown = reprlib.Repr()
    shown.maxlevel, shown.maxlist, shown.maxdict = 2, 4, 4
    shown.maxstring = shown.maxother = 60
    return shown


SHORT_REPR = _short_repr()
_RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def is_host(text: str) -> bool:
    """A bare host name or IP address (no scheme, port or path), as `fetch.hosts` keys are."""
    name = text.strip(".").lower()
    if ":" in name:  # an IPv6 address such as ::1
        return 2 <= len(name) <= 45 and set(name.strip("[]")) <= set("0123456789abcdef:.")
    labels = name.split(".")
    return len(name) <= 253 and all(
        label
        and len(label) <= 63
        and set(label) <= _HOST_CHARS
        and label[0] != "-"
        and label[-1] != "-"
        for label in labels
    )


def check_email(value: str) -> str:
    """Return the normalized address, or raise ValueError saying why it is not one.

    An address whose part before the @ is not ASCII is refused: it needs SMTPUTF8, which
    the messages paperbot writes do not use (an international domain is fine).
    """
    try:
        return validate_email(value, check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address {value!r}: {exc}") from None


def check_url(value: str) -> str:
    """Return an absolute http(s) URL with a host, or raise ValueError saying what is wrong."""
    if any(char.isspace() or not char.isprintable() for char in value):
        raise ValueError(f"a URL cannot contain spaces or control characters (got {value!r})")
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid URL {value!r}: {exc}") from None
    if url.scheme not in ("http", "https"):
        raise ValueError(f"must start with https:// or http:// (got {value!r})")
    if not url.host:
        raise ValueError(f"has no host name (got {value!r})")
    if url.port is not None and not 0 < url.port < 65536:
        raise ValueError(f"port {url.port} is out of range (got {value!r})")
    return value


def check_header_text(value: str) -> str:
    """Text that goes into every mail's headers: no line break or other control character
    (every digest would fail for good), and at most MAX_HEADER_TEXT characters."""
    if not value.isprintable():
        raise ValueError(
            "a line break or other control character cannot be in a mail header"
            f" (got {SHORT_REPR.repr(value)})"
        )
    if len(value) > MAX_HEADER_TEXT:
        raise ValueError(f"at most {MAX_HEADER_TEXT} characters (got {len(value):,})")
    return value


def check_header_address(value: str) -> str:
    """A sender-side address header (`Name <address>`) every digest carries: printable, and
    an address that is valid and all ASCII (it is also the unsubscribe mailto: URI's)."""
    check_header_text(value)
    address = address_part(value)
    check_email(address)
    if not address.isascii():
        raise ValueError(
            f"write the domain of {address!r} in its ASCII form (xn--...): it goes into"
            " mailto: links and Message-IDs"
        )
    return value


def cadence_value(key: str | None, value: str | None) -> str | None:
    """A subscriber's weekday, send_at or timezone, checked (send_at normalized to HH:MM)."""
    if value is None:
        return None
    if key == "weekday":
        parse_weekday(value)
    elif key == "send_at":
        return format_clock(parse_clock(value))
    elif key == "timezone":
        _zone_problem(value)
    return value


def _zone_problem(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def rate_per_second(text: str) -> float:
    """`10/s`, `600/min`, `20000/h` (or `/second`, `/minute`, `/hour`) as messages per second."""
    count, _, unit = text.replace(" ", "").partition("/")
    seconds = _RATE_UNITS.get(unit.lower())
    try:
        number = float(count)
    except ValueError:
        number = 0.0
    if seconds is None or not 0 < number < float("inf"):
        raise ValueError(f"not a rate like 10/s, 600/min or 20000/h: {text!r}")
    if number / seconds < MIN_MESSAGES_PER_SECOND:
        raise ValueError(f"at least 1/h: a slower rate would hold a run for days ({text!r})")
    return number / seconds


def address_part(value: str) -> str:
    return parseaddr(value)[1] or value


def check_ca_file(path: Path) -> Path:
    """A readable PEM file of CA certificates (what a TLS client is told to trust)."""
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{path} is not readable")
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError, ValueError):
        raise ValueError(f"{path} holds no PEM certificate") from None
    return path
