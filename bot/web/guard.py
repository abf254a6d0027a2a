"""The web app's safeguards: CSRF tokens, same-origin checks, the honeypot field, client
networks for rate limits, and middleware that caps request bodies and adds security headers.

CSRF is a signed double submit: a random cookie (HttpOnly, SameSite=Lax) and, in each
form, that value signed with the app's secret and a timestamp. A cross-site page can
neither read the cookie nor sign a value of its own, and a browser that says where a POST
came from (Origin, Sec-Fetch-Site) must say this site.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "paperbot_csrf"
CSRF_FIELD = "csrf_token"
#: hidden from people (CSS, aria-hidden, no tab stop); a bot that fills it is ignored
HONEYPOT_FIELD = "website"
#: how long a page's form may stay open before it must be reloaded
CSRF_MAX_AGE = timedelta(hours=12)
#: largest request body accepted (the forms need a few KB)
MAX_BODY = 64 * 1024

SECURITY_HEADERS = {
    # nothing from elsewhere: no CDN, no font, no analytics; inline script and style refused
    "content-security-policy": "default-src 'none'; style-src 'self'; script-src 'self'; "
    "img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    # the manage and unsubscribe URLs hold tokens: never send them on to a paper's site
    # (not no-referrer: then browsers send `Origin: null` with our own forms)
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}

_COOKIE_LENGTH = 43  # secrets.token_urlsafe(32)


class Csrf:
    """Issues and checks the CSRF cookie and the form tokens derived from it."""

    def __init__(self, secret: str, *, base_url: str | None, secure: bool) -> None:
        self.signer = URLSafeTimedSerializer(secret, salt="paperbot-csrf")
        self.base_url = base_url
        self.secure = secure

    def cookie_value(self, request: Request) -> str:
        """The visitor's cookie value, or a fresh one (the same for the whole request)."""
        value = request.cookies.get(CSRF_COOKIE, "")
        if len(value) == _COOKIE_LENGTH and value.replace("-", "").replace("_", "").isalnum():
            return value
        fresh: str = request.scope.setdefault("paperbot.csrf", secrets.token_urlsafe(32))
        return fresh

    def token(self, request: Request) -> str:
        """The hidden form field's value for this visitor."""
        return str(self.signer.dumps(self.cookie_value(request)))

    def check(self, request: Request, fields: Mapping[str, str]) -> bool:
        """True when the form's token matches the cookie, is recent, and came from this site."""
        cookie = request.cookies.get(CSRF_COOKIE)
        token = fields.get(CSRF_FIELD)
        if not cookie or not token or not same_origin(request, self.base_url):
            return False
        try:
            signed = self.signer.loads(token, max_age=int(CSRF_MAX_AGE.total_seconds()))
        except BadSignature:
            return False
        return isinstance(signed, str) and hmac.compare_digest(signed, cookie)

    def set_cookie(self, request: Request, response: Response) -> None:
        """Give the visitor the cookie the page's token was made for, if they lack it."""
        value = self.cookie_value(request)
        if request.cookies.get(CSRF_COOKIE) == value:
            return
        response.set_cookie(
            CSRF_COOKIE,
            value,
            max_age=int(CSRF_MAX_AGE.total_seconds()),
            path="/",
            secure=self.secure,
            httponly=True,
            # Lax, not Strict: a visitor arriving from a link in their mail keeps the cookie
            samesite="lax",
        )


def same_origin(request: Request, base_url: str | None) -> bool:
    """False when the browser says the request came from another site.

    No header, or `Origin: null` (privacy settings, some redirects), proves nothing either
    way: then the CSRF token alone decides.
    """
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    allowed = {f"{request.url.scheme}://{request.url.netloc}"}
    if base_url:
        parts = urlsplit(base_url)
        allowed.add(f"{parts.scheme}://{parts.netloc}")
    return origin in allowed


def client_network(request: Request) -> str:
    """The client as rate limits count it: one IPv4 address, or an IPv6 /64 (one household)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class SecurityHeaders:
    """ASGI middleware: SECURITY_HEADERS on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers as the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """ASGI middleware: a body over MAX_BODY, declared or streamed, is an HTTP 413.

    Paths ending in one of `uploads` (file uploads) may send up to `upload_limit`.
    """

    def __init__(
        self, app: ASGIApp, uploads: tuple[str, ...] = (), upload_limit: int = MAX_BODY
    ) -> None:
        self.app = app
        self.uploads = uploads
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with a `receive` that counts (raised inside the app: a page)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length", b"0")
        received = 0
        path = str(scope.get("path", ""))
        limit = self.upload_limit if path.endswith(self.uploads) and self.uploads else MAX_BODY

        async def limited() -> Message:
            nonlocal received
            if not (declared.isascii() and declared.isdigit()) or int(declared) > limit:
                raise HTTPException(413)
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413)
            return message

        await self.app(scope, limited, send)
