"""What every route of the web app shares: its settings and pages, and the ways to the store,
to a form's fields, to a link's token and to the mail.

The store is opened for each piece of work in a worker thread (SQLite blocks) and waits at
most `DATABASE_WAIT` for another process's write; a form's fields are read only once its
CSRF token checked out; a token in a path is read into its data or into the page saying
why it does not work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import TypeVar

import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from bot.config.settings import Config
from bot.config.wiring import make_sender
from bot.errors import SendError, TokenError
from bot.mail.compose import MATCHES_PAGE
from bot.mail.links import TokenData, link, make_token, read_token
from bot.store.store import Store
from bot.store.subscribers import SubscriberRecord
from bot.web.guard import Csrf
from bot.web.limits import RateLimiter, RateLimits
from bot.web.mail import MailSettings, confirmation, mail_settings, manage_mail
from bot.web.pages import Pages
from bot.web.preview import PREVIEW_DAYS
from bot.web.recent import RecentPapers

log = logging.getLogger(__name__)

T = TypeVar("T")

#: most fields a form may send (ours have about fifteen)
MAX_FIELDS = 40
#: longest a request waits for another process's write to the store (less when the
#: config's `scheduling.database_wait` says so), then it gets a 503 page
DATABASE_WAIT = 10.0


class Site:
    """The settings, pages and plumbing the routes share: config, secret, templates, limits."""

    def __init__(
        self, config: Config, secret: str, limits: RateLimits, confirm_max_age: timedelta
    ) -> None:
        self.config = config
        self.secret = secret
        self.confirm_max_age = confirm_max_age
        secure = (config.base_url or "").startswith("https://")
        self.csrf = Csrf(secret, base_url=config.base_url, secure=secure)
        self.pages = Pages(config, self.csrf, confirm_max_age)
        self.limiter = RateLimiter(limits, self.store, self.pages)
        self.recent = RecentPapers(PREVIEW_DAYS)
        self.database_wait = min(config.scheduling.database_wait, DATABASE_WAIT)

    async def store(self, work: Callable[[Store], T]) -> T:
        """Run `work` on a store opened for it, in a worker thread (SQLite blocks)."""

        def run() -> T:
            store = Store.open(self.config.database, busy_timeout=self.database_wait)
            try:
                return work(store)
            finally:
                store.close()

        return await anyio.to_thread.run_sync(run)

    async def form(self, request: Request) -> dict[str, str] | Response:
        """The submitted fields once the CSRF check passed, else the 403 page."""
        try:
            async with request.form(max_files=0, max_fields=MAX_FIELDS) as form:
                fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        except HTTPException:
            raise
        except Exception as exc:  # an undecodable body is a bad request, not a crash
            raise HTTPException(400) from exc
        if not self.csrf.check(request, fields):
            log.info("form refused: missing or invalid CSRF token")
            return self._expired(request)
        return fields

    async def upload(
        self, request: Request, field: str, max_bytes: int
    ) -> tuple[str, bytes] | Response:
        """A multipart form's file (its name and at most `max_bytes` + 1 bytes of it, so that
        a longer one shows) once the CSRF check passed, else the 403 page; ("", b"") when
        the form has no file. A body over the app's limit raises HTTPException(413)."""
        try:
            async with request.form(max_files=1, max_fields=MAX_FIELDS) as form:
                fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
                file = form.get(field)
                if not self.csrf.check(request, fields):
                    log.info("upload refused: missing or invalid CSRF token")
                    return self._expired(request)
                if not isinstance(file, UploadFile):
                    return "", b""
                return file.filename or "", await file.read(max_bytes + 1)
        except HTTPException:
            raise
        except Exception as exc:  # an undecodable body is a bad request, not a crash
            raise HTTPException(400) from exc

    def _expired(self, request: Request) -> Response:
        """The 403 page of a form whose CSRF token did not check out."""
        return self.pages.message(
            request,
            403,
            "This form has expired",
            "It was open too long or did not come from this site. "
            "Go back, reload the page and send it again.",
        )

    def token(
        self, request: Request, purpose: str, max_age: timedelta | None = None
    ) -> TokenData | Response:
        """The token in the path, or the 4xx page: 404 forged, 410 expired."""
        token = request.path_params["token"]
        seconds = int(max_age.total_seconds()) if max_age else None
        try:
            return read_token(self.secret, purpose, token, max_age=seconds)
        except TokenError:
            pass
        try:
            read_token(self.secret, purpose, token)
        except TokenError:
            return self.pages.message(
                request,
                404,
                "This link is not valid",
                "Copy the whole link from the mail, or ask for a new one.",
            )
        return self.pages.message(
            request, 410, "This link has expired", "Sign up again to get a new link."
        )

    # --- links and mail -------------------------------------------------------------------

    def base(self, request: Request) -> str:
        """The site's address for links: `base_url`, or (--dev) what the browser used."""
        return self.config.base_url or str(request.base_url).rstrip("/")

    def link(self, request: Request, purpose: str, record: SubscriberRecord) -> str:
        """The signed link for `purpose` (confirm, manage, unsubscribe) of this subscriber."""
        email = record.subscriber.email
        token = make_token(self.secret, purpose, email, record.token_version)
        return link(self.base(request), purpose, token)

    def links(self, request: Request, record: SubscriberRecord) -> dict[str, str]:
        """The subscriber's manage, matches and unsubscribe links, as the templates name them."""
        manage = self.link(request, "manage", record)
        return {
            "manage_url": manage,
            "matches_url": f"{manage}/{MATCHES_PAGE}",
            "unsubscribe_url": self.link(request, "unsubscribe", record),
        }

    def mail_settings(self, request: Request) -> MailSettings:
        """Who the app's mails come from and the site they point to."""
        return mail_settings(self.config, self.base(request))

    def confirm_mail(self, request: Request, record: SubscriberRecord) -> EmailMessage:
        """The double opt-in mail with the subscriber's confirmation link."""
        return confirmation(self.mail_settings(request), self.secret, record, self.confirm_max_age)

    def manage_mail(self, request: Request, record: SubscriberRecord, reason: str) -> EmailMessage:
        """The mail with the subscriber's manage and unsubscribe links."""
        links = self.links(request, record)
        return manage_mail(
            self.mail_settings(request),
            record.subscriber,
            reason=reason,
            manage_url=links["manage_url"],
            unsubscribe_url=links["unsubscribe_url"],
        )

    async def send_then(
        self, request: Request, message: EmailMessage, page: Callable[[], Response]
    ) -> Response:
        """Send one mail now; the page when it went, a 503 page saying so when it did not."""
        try:
            async with make_sender(self.config) as sender:
                await sender.send(message)
        except SendError as exc:
            log.error("web: cannot send mail to %s: %s", message["To"], exc)
            return self.pages.message(
                request,
                503,
                "The mail could not be sent",
                "Our mail server did not take the message. Please try again in a few minutes.",
            )
        return page()
