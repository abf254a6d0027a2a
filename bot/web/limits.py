"""Rate limits of the forms that cost something: mails per client network and per address,
previews per client network.

The counts live in the store (`Store.take_rate_slot`), so that a restart does not reset
them and several workers share them; the keys are hashed there, so the table of recent
requests is not a list of addresses.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from bot.config.settings import WebSettings
from bot.store.store import Store
from bot.web.guard import client_network
from bot.web.pages import Pages

log = logging.getLogger(__name__)

T = TypeVar("T")
#: the config's defaults (`web:`), today's values: the one place they are written
_DEFAULT = WebSettings()
#: runs a piece of work on the store (in a worker thread) and returns its result
StoreRunner = Callable[[Callable[[Store], T]], Awaitable[T]]


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests allowed per `window`: mails per client network and per address, previews."""

    mails_per_ip: int = _DEFAULT.mails_per_client
    mails_per_address: int = _DEFAULT.mails_per_address
    previews_per_ip: int = _DEFAULT.previews_per_client
    window: timedelta = timedelta(hours=1)

    @classmethod
    def from_settings(cls, web: WebSettings) -> RateLimits:
        """The limits the config's `web:` section sets (each per hour)."""
        return cls(
            mails_per_ip=web.mails_per_client,
            mails_per_address=web.mails_per_address,
            previews_per_ip=web.previews_per_client,
        )


class RateLimiter:
    """Counts requests against `limits` in the store; answers a 429 page past them."""

    def __init__(self, limits: RateLimits, store: StoreRunner[bool], pages: Pages) -> None:
        self.limits = limits
        self.store = store
        self.pages = pages

    async def mail_from(self, request: Request) -> bool:
        """Count one mail against the client's network; False when its limit is reached."""
        return await self.take(f"mail-ip:{client_network(request)}", self.limits.mails_per_ip)

    async def mail_to(self, email: str) -> bool:
        """Count one mail against the address; False when its limit is reached."""
        return await self.take(f"mail-to:{email.lower()}", self.limits.mails_per_address)

    async def preview(self, request: Request) -> bool:
        """Count one preview against the client's limit (a preview reads a week of papers)."""
        return await self.take(f"preview-ip:{client_network(request)}", self.limits.previews_per_ip)

    async def take(self, key: str, limit: int) -> bool:
        """Count one request against `key`'s limit; False when the limit is reached."""
        # hashed, so that the table of recent requests is not a list of addresses
        bucket = hashlib.sha256(key.encode()).hexdigest()[:32]
        window = self.limits.window
        allowed = await self.store(lambda store: store.ratelimit.take_slot(bucket, limit, window))
        if not allowed:
            log.warning("rate limit reached: %s", key.partition(":")[0])
        return allowed

    def too_many(self, request: Request) -> Response:
        """The 429 page, with Retry-After set to the limits' window."""
        response = self.pages.message(
            request,
            429,
            "Too many requests",
            "Too many requests came from your network or for this address. "
            "Please wait an hour and try again.",
        )
        response.headers["retry-after"] = str(int(self.limits.window.total_seconds()))
        return response
