"""Signed tokens for the links in mail (confirm, manage, unsubscribe, feedback).

A digest's "more/less like this" links carry its manage token (signed once per digest, not
once per paper: a digest of 50 papers has 100 of them) and the paper's id.
A token names its purpose, the subscriber's address and their token version; bumping the
version (on unsubscribe) makes every earlier manage/unsubscribe link invalid at once.
The secret comes from the environment (`PAPERBOT_SECRET_KEY`), never from the config file.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bot.errors import TokenError

SECRET_ENV = "PAPERBOT_SECRET_KEY"
PURPOSES = ("confirm", "manage", "unsubscribe")
#: the longest address a token may carry (RFC 5321's path limit)
MAX_EMAIL_LENGTH = 256


@dataclass(frozen=True, slots=True)
class TokenData:
    """What a valid token says: whose it is and which token version it was made for."""

    email: str
    version: int


def secret_from_env() -> str | None:
    """The signing secret from the environment, if set."""
    return os.environ.get(SECRET_ENV) or None


@functools.lru_cache(maxsize=64)
def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    # cached: a delivery run signs two links per digest, and a serializer holds no state
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return URLSafeTimedSerializer(secret, salt=f"paperbot-{purpose}")


def make_token(secret: str, purpose: str, email: str, version: int = 0) -> str:
    """A URL-safe token for this purpose and subscriber."""
    return str(_serializer(secret, purpose).dumps([email, version]))


def read_token(secret: str, purpose: str, token: str, max_age: int | None = None) -> TokenData:
    """Check a token's signature (and age) and its contents; TokenError when it is not valid."""
    try:
        payload = _serializer(secret, purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise TokenError("this link has expired") from None
    except (BadSignature, ValueError, TypeError):
        raise TokenError("this link is not valid") from None
    data = _token_data(payload)
    if data is None:  # signed with our secret, yet not what make_token writes
        raise TokenError("this link is not valid")
    return data


def _token_data(payload: object) -> TokenData | None:
    """`[email, version]` as make_token writes it: a short address and a version that fits
    the store's integers; anything else (even correctly signed) is None."""
    if not isinstance(payload, list) or len(payload) != 2:
        return None
    email, version = payload
    if not isinstance(email, str) or not 0 < len(email) <= MAX_EMAIL_LENGTH:
        return None
    # bool is an int to Python, and 2**63 would overflow SQLite
    if type(version) is not int or not 0 <= version < 2**63:
        return None
    return TokenData(email=email, version=version)


def link(base_url: str, path: str, token: str) -> str:
    """An absolute link on the web app: `{base_url}/{path}/{token}`."""
    return f"{base_url.rstrip('/')}/{path.strip('/')}/{quote(token, safe='')}"


#: the web app's path of "more/less like this": `/feedback/<manage token>/<verdict>/<paper id>`
FEEDBACK_PATH = "feedback"


def feedback_link(base_url: str, manage_token: str, verdict: str, paper_id: str) -> str:
    """The "more like this" (`verdict` more) or "less like this" (less) link of a paper."""
    return f"{feedback_prefix(base_url, manage_token)}/{verdict}/{quoted_id(paper_id)}"


def feedback_prefix(base_url: str, manage_token: str) -> str:
    """What every feedback link of one digest starts with (made once per digest)."""
    return link(base_url, FEEDBACK_PATH, manage_token)


def quoted_id(paper_id: str) -> str:
    """A paper id as the last part of a feedback link (`/` and every reserved mark quoted)."""
    # most ids (2411.01234) need no quoting: a digest has two links per paper, so skip it
    return paper_id if _UNRESERVED.fullmatch(paper_id) else quote(paper_id, safe="")


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


#: hex digits of a VERP tag's signature: 40 bits, short enough for a 64-character local part
_TAG_SIGNATURE = 10


def bounce_tag(secret: str, subscriber_id: int) -> str:
    """The VERP tag naming a subscriber: `b-<id in base 36>-<signature>`, lower case only
    (some servers fold the case of local parts), made once per digest."""
    body = f"b-{_base36(subscriber_id)}"
    return f"{body}-{_tag_signature(secret, body)}"


def read_bounce_tag(secret: str, tag: str) -> int | None:
    """The subscriber id a VERP tag names, or None if it is not one of ours."""
    body, _, signature = tag.lower().rpartition("-")
    if not body.startswith("b-") or not hmac.compare_digest(
        signature, _tag_signature(secret, body)
    ):
        return None
    try:
        return int(body[2:], 36)
    except ValueError:
        return None


def verp_address(address: str, tag: str) -> str:
    """`local+<tag>@domain` of an address (any `+detail` of its local part replaced)."""
    local, _, domain = address.rpartition("@")
    return f"{local.partition('+')[0]}+{tag}@{domain}"


def _tag_signature(secret: str, body: str) -> str:
    mac = hmac.new(f"paperbot-bounce:{secret}".encode(), body.encode(), hashlib.sha256)
    return mac.hexdigest()[:_TAG_SIGNATURE]


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out
