"""The ways in: sign up with double opt-in, confirm from the mail, and "email me my link".

Both forms send mail, so they have a honeypot field and count against the rate limits per
client network and per address. What a visitor sees never depends on whether an address is
subscribed: the same "check your inbox" page follows, and only the mail, which goes to the
address's owner, differs (a confirmation, the manage link, or "no subscription here").
"""

from __future__ import annotations

import logging
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.config.settings import WebSettings
from bot.web.forms import PREVIEW_EMAIL, AlertForm, by_field, parse_alerts, parse_email
from bot.web.guard import HONEYPOT_FIELD
from bot.web.livepreview import LivePreview
from bot.web.mail import alert_lines, unknown_mail
from bot.web.site import Site

log = logging.getLogger(__name__)

#: how long a confirmation link works unless the config's `web.confirm_hours` says otherwise
CONFIRM_MAX_AGE = timedelta(hours=WebSettings().confirm_hours)


class SignupRoutes:
    """The sign-up form, its confirmation link and the "email me my link" form, on one site."""

    def __init__(self, site: Site, preview: LivePreview) -> None:
        self.site = site
        self.pages = site.pages
        self.limiter = site.limiter
        self.preview = preview

    def routes(self) -> list[Route]:
        """The paths of sign-up, confirmation and link requests."""
        return [
            Route("/", self.signup_page, methods=["GET"]),
            Route("/", self.signup, methods=["POST"]),
            Route("/confirm/{token}", self.confirm, methods=["GET"]),
            Route("/link", self.link_page, methods=["GET"]),
            Route("/link", self.link_request, methods=["POST"]),
        ]

    async def signup_page(self, request: Request) -> Response:
        """The sign-up form."""
        form = AlertForm(timezone=self.site.config.timezone)
        return self.pages.page(
            request, "signup.html.j2", form=form, email="", errors={}, preview=None, fresh=True
        )

    async def signup(self, request: Request) -> Response:
        """Sign up (pending, confirmation mailed) or, with action=preview, show the preview."""
        fields = await self.site.form(request)
        if isinstance(fields, Response):
            return fields
        email_text = fields.get("email", "")
        form = AlertForm.from_fields(fields, self.site.config.timezone)
        if fields.get("action") == "preview":
            if not await self.limiter.preview(request):
                return self.limiter.too_many(request)
            return await self.preview.form_page(request, "signup.html.j2", form, email=email_text)
        if fields.get(HONEYPOT_FIELD):
            log.info("sign-up ignored: the honeypot field was filled")
            return self.pages.sent(request, "signup", email_text.strip())
        if not await self.limiter.mail_from(request):
            return self.limiter.too_many(request)
        email, email_error = parse_email(email_text)
        parsed = parse_alerts(form, email or PREVIEW_EMAIL)
        errors = [*([email_error] if email_error else []), *parsed.errors]
        if errors or email is None or parsed.subscriber is None:
            return self.pages.page(
                request,
                "signup.html.j2",
                status=400,
                form=form,
                email=email_text,
                errors=by_field(errors),
                preview=None,
            )
        if not await self.limiter.mail_to(email):
            return self.limiter.too_many(request)
        subscriber = parsed.subscriber
        result = await self.site.store(lambda store: store.subscribers.sign_up(subscriber))
        if result.action == "confirm":
            message = self.site.confirm_mail(request, result.record)
        else:
            message = self.site.manage_mail(request, result.record, reason="signup")
        log.info("sign-up for %s: %s mail", email, result.action)
        return await self.site.send_then(
            request, message, lambda: self.pages.sent(request, "signup", email)
        )

    async def confirm(self, request: Request) -> Response:
        """Activate a pending subscription from the link in the confirmation mail."""
        data = self.site.token(request, "confirm", self.site.confirm_max_age)
        if isinstance(data, Response):
            return data
        record = await self.site.store(
            lambda store: store.subscribers.confirm(data.email, data.version)
        )
        if record is None:
            return self.pages.gone(request, "Sign up again to get a new confirmation link.")
        log.info("subscription confirmed: %s", data.email)
        return self.pages.page(
            request,
            "confirmed.html.j2",
            record=record,
            alerts=alert_lines(record.subscriber),
            manage_url=self.site.link(request, "manage", record),
            unsubscribe_url=self.site.link(request, "unsubscribe", record),
        )

    async def link_page(self, request: Request) -> Response:
        """The "email me my link" form."""
        return self.pages.page(request, "link.html.j2", email="", errors={})

    async def link_request(self, request: Request) -> Response:
        """Mail the manage link (or the confirmation, or "no subscription here") to the address."""
        fields = await self.site.form(request)
        if isinstance(fields, Response):
            return fields
        email_text = fields.get("email", "")
        if fields.get(HONEYPOT_FIELD):
            log.info("link request ignored: the honeypot field was filled")
            return self.pages.sent(request, "link", email_text.strip())
        if not await self.limiter.mail_from(request):
            return self.limiter.too_many(request)
        email, error = parse_email(email_text)
        if email is None:
            errors = by_field([error] if error else [])
            return self.pages.page(
                request, "link.html.j2", status=400, email=email_text, errors=errors
            )
        if not await self.limiter.mail_to(email):
            return self.limiter.too_many(request)
        record = await self.site.store(lambda store: store.subscribers.find(email))
        status = record.subscriber.status if record else None
        if record is not None and status == "active":
            message = self.site.manage_mail(request, record, reason="link")
        elif record is not None and status == "pending":
            message = self.site.confirm_mail(request, record)
        else:
            message = unknown_mail(self.site.mail_settings(request), email)
        return await self.site.send_then(
            request, message, lambda: self.pages.sent(request, "link", email)
        )
