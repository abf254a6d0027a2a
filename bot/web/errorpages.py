"""What a visitor sees when a request cannot be answered, and what a health check is told.

404, 405, 413 and other HTTP errors are message pages; a store that is busy or cannot be
used is a 503 page with Retry-After (the log says why); a bug is a short 500 page with the
security headers. `/healthz` says `ok`, or the same 503 in plain text.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ExceptionHandler

from bot.errors import StoreBusy, StoreError
from bot.web.guard import SECURITY_HEADERS
from bot.web.site import Site

log = logging.getLogger(__name__)

#: when a visitor who got a 503 page (the store busy or unusable) should try again, in seconds
RETRY_AFTER = 60

_HTTP_TEXT = {
    404: "There is nothing at this address.",
    405: "This page does not take that kind of request.",
    413: "The form sent more data than this site accepts.",
    400: "The request could not be understood.",
}


class ErrorPages:
    """The app's exception handlers and its health check, on one site's pages and store."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.pages = site.pages

    def handlers(self) -> dict[Any, ExceptionHandler]:
        """The exception handlers, for Starlette's `exception_handlers=`."""
        return {
            HTTPException: self.http_error,
            StoreError: self.store_error,
            Exception: self.server_error,
        }

    async def health(self, request: Request) -> Response:
        """`ok` when the store opens, reads and could be written now (for a platform's
        health check); else a short 503 saying the database is unavailable."""
        try:
            await self.site.store(lambda store: store.probe())
        except StoreError as exc:
            log.error("web: health check: %s", exc)
            return PlainTextResponse(
                "database unavailable\n",
                status_code=503,
                headers={"cache-control": "no-store", "retry-after": str(RETRY_AFTER)},
            )
        return PlainTextResponse("ok\n", headers={"cache-control": "no-store"})

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """404, 405, 413 and friends as a page."""
        assert isinstance(exc, HTTPException)
        titles = {404: "Page not found", 405: "Not allowed", 413: "Too much data"}
        title = titles.get(exc.status_code, "Bad request")
        text = _HTTP_TEXT.get(exc.status_code, "")
        return self.pages.message(request, exc.status_code, title, text)

    async def store_error(self, request: Request, exc: Exception) -> Response:
        """The store is busy or cannot be used: a 503 page with Retry-After; the log says why."""
        log.error("web: %s", exc)
        if isinstance(exc, StoreBusy):
            title, text = "Busy right now", "Please try again in a minute."
        else:
            title, text = "Temporarily unavailable", "Please try again in a few minutes."
        response = self.pages.message(request, 503, title, text)
        response.headers["retry-after"] = str(RETRY_AFTER)
        return response

    async def server_error(self, request: Request, exc: Exception) -> Response:
        """A bug: a short 500 page with the security headers (the server logs the traceback).

        Starlette answers this outside the middleware, so the headers are added here.
        """
        try:
            response = self.pages.message(
                request, 500, "Something went wrong", "Please try again in a few minutes."
            )
        except Exception:  # the page itself failed: plain text still answers
            response = PlainTextResponse("Something went wrong.\n", status_code=500)
        response.headers.update(SECURITY_HEADERS)
        return response
