"""The subscription web app (Starlette): sign up with double opt-in, manage alerts with a
preview, one-click unsubscribe (RFC 8058), and the safeguards a public form needs.

Pages work without JavaScript (`/static/web.js` only makes the preview live). Every form
carries a CSRF token bound to a cookie, except the one-click unsubscribe POST, which the
signed token in its URL authorizes. Forms that send mail have a honeypot field and are
rate-limited per client network and per address; the counts live in the store, so that a
restart does not reset them and several workers share them. What a visitor sees never
depends on whether an address is subscribed: only the mail, which goes to the address's
owner, differs.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from email.message import EmailMessage
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio.to_thread
import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.alerts.query import QueryError
from bot.config.settings import Config
from bot.config.wiring import make_sender, message_domain, sender_address
from bot.errors import ConfigError, PaperbotError, SendError, StoreBusy, StoreError
from bot.mail.deliver import MATCHES_PAGE
from bot.mail.links import (
    SECRET_ENV,
    TokenData,
    TokenError,
    link,
    make_token,
    read_token,
    secret_from_env,
)
from bot.mail.render import EntryView, entry_view
from bot.models import Paper, Subscriber
from bot.store.store import RecentMatch, Store, SubscriberRecord, utcnow
from bot.web.forms import (
    PREVIEW_EMAIL,
    WEEKDAYS,
    AlertForm,
    FieldError,
    number_in,
    parse_alerts,
    parse_email,
    timezones,
)
from bot.web.guard import (
    CSRF_FIELD,
    SECURITY_HEADERS,
    BodyLimit,
    Csrf,
    SecurityHeaders,
    client_network,
)
from bot.web.mail import MailSettings, alert_lines, confirm_mail, manage_mail, unknown_mail
from bot.web.matches import MATCHES_DAYS, MATCHES_LIMIT, match_list
from bot.web.preview import PREVIEW_DAYS, AlertPreview, preview_alerts
from bot.web.recent import RecentPapers

log = logging.getLogger(__name__)

T = TypeVar("T")

#: how long a confirmation link works
CONFIRM_MAX_AGE = timedelta(hours=48)
#: hidden from people (CSS, aria-hidden, no tab stop); a bot that fills it is ignored
HONEYPOT_FIELD = "website"
#: the statuses whose manage page works (a pending subscriber may edit before confirming)
MANAGEABLE = ("active", "pending")
#: most fields a form may send (ours have about fifteen)
MAX_FIELDS = 40
#: longest a request waits for another process's write to the store (less when the
#: config's `scheduling.database_wait` says so), then it gets a 503 page
DATABASE_WAIT = 10.0
#: when a visitor who got a 503 page (the store busy or unusable) should try again, in seconds
RETRY_AFTER = 60


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests allowed per `window`: mails per client network and per address, previews."""

    mails_per_ip: int = 20
    mails_per_address: int = 5
    previews_per_ip: int = 300
    window: timedelta = timedelta(hours=1)


def create_app(
    config: Config,
    *,
    dev: bool = False,
    secret: str | None = None,
    limits: RateLimits | None = None,
    confirm_max_age: timedelta = CONFIRM_MAX_AGE,
) -> Starlette:
    """The web app on `config`'s store; `secret` defaults to $PAPERBOT_SECRET_KEY.

    Raises ConfigError without a secret or without `base_url`, unless `dev` (then a
    throw-away secret is made and links point at whatever host the browser used).
    """
    secret = secret or secret_from_env()
    if not secret:
        if not dev:
            raise ConfigError(
                SECRET_ENV,
                "environment variable is not set; it signs the links in mail "
                "(set it to a long random string, or use --dev to try the app)",
            )
        secret = secrets.token_urlsafe(32)
        log.warning("%s is not set: using a throw-away secret (--dev)", SECRET_ENV)
    if not config.base_url and not dev:
        raise ConfigError(
            "base_url", "not set; the links in mail need the public address of this app"
        )
    site = _Site(config, secret, limits or RateLimits(), confirm_max_age)
    return Starlette(
        routes=site.routes(),
        middleware=[Middleware(SecurityHeaders), Middleware(BodyLimit)],
        exception_handlers={
            HTTPException: site.http_error,
            StoreError: site.store_error,
            Exception: site.server_error,
        },
    )


def serve(config: Config, *, host: str, port: int, dev: bool = False) -> None:
    """Serve the app with uvicorn until SIGINT/SIGTERM; raise PaperbotError if it cannot listen."""
    import uvicorn  # only the web command needs the server

    app = create_app(config, dev=dev)
    try:
        listener = listen(host, port)
    except OSError as exc:
        raise PaperbotError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,  # our log format; uvicorn's loggers propagate to it
            access_log=False,  # request lines would put manage and unsubscribe tokens in logs
            proxy_headers=True,  # client addresses from X-Forwarded-For of FORWARDED_ALLOW_IPS
            server_header=False,
        )
    )
    where = listener.getsockname()
    log.info(
        "serving on http://%s:%d/ (links in mail: %s)",
        host,
        where[1],
        config.base_url or "the address the browser used, --dev",
    )
    server.run(sockets=[listener])


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: a free one) for uvicorn's `sockets=`.

    Made with IPPROTO_TCP so that asyncio sets TCP_NODELAY on the connections: with proto
    0 (as `socket.create_server` makes it) it does not, and every keep-alive response
    waits 40 ms for a delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    return listener


# --- the site ------------------------------------------------------------------------------


class _Site:
    """The routes and what they share: config, secret, templates, limits."""

    def __init__(
        self, config: Config, secret: str, limits: RateLimits, confirm_max_age: timedelta
    ) -> None:
        self.config = config
        self.secret = secret
        self.limits = limits
        self.confirm_max_age = confirm_max_age
        self.root = urlsplit(config.base_url or "").path.rstrip("/")
        self.secure = (config.base_url or "").startswith("https://")
        self.csrf = Csrf(secret, base_url=config.base_url, secure=self.secure)
        self.pages = _page_environment()
        self.recent = RecentPapers(PREVIEW_DAYS)
        self.database_wait = min(config.scheduling.database_wait, DATABASE_WAIT)

    def routes(self) -> list[Route]:
        """Every path the app answers."""
        return [
            Route("/", self.signup_page, methods=["GET"]),
            Route("/", self.signup, methods=["POST"]),
            Route("/confirm/{token}", self.confirm, methods=["GET"]),
            Route("/manage/{token}", self.manage_page, methods=["GET"]),
            Route("/manage/{token}", self.manage_save, methods=["POST"]),
            Route(f"/manage/{{token}}/{MATCHES_PAGE}", self.matches_page, methods=["GET"]),
            Route("/unsubscribe/{token}", self.unsubscribe_page, methods=["GET"]),
            Route("/unsubscribe/{token}", self.unsubscribe, methods=["POST"]),
            Route("/link", self.link_page, methods=["GET"]),
            Route("/link", self.link_request, methods=["POST"]),
            Route("/preview", self.preview_fragment, methods=["POST"]),
            Route("/static/{name}", self.static, methods=["GET"]),
            Route("/healthz", self.health, methods=["GET"]),
        ]

    # --- sign up --------------------------------------------------------------------------

    async def signup_page(self, request: Request) -> Response:
        """The sign-up form."""
        form = AlertForm(timezone=self.config.timezone)
        return self._page(
            request, "signup.html.j2", form=form, email="", errors={}, preview=None, fresh=True
        )

    async def signup(self, request: Request) -> Response:
        """Sign up (pending, confirmation mailed) or, with action=preview, show the preview."""
        fields = await self._form(request)
        if isinstance(fields, Response):
            return fields
        email_text = fields.get("email", "")
        form = AlertForm.from_fields(fields, self.config.timezone)
        if fields.get("action") == "preview":
            if not await self._preview_allowed(request):
                return self._too_many(request)
            return await self._form_page(request, "signup.html.j2", form, email=email_text)
        if fields.get(HONEYPOT_FIELD):
            log.info("sign-up ignored: the honeypot field was filled")
            return self._sent(request, "signup", email_text.strip())
        if not await self._take(f"mail-ip:{client_network(request)}", self.limits.mails_per_ip):
            return self._too_many(request)
        email, email_error = parse_email(email_text)
        parsed = parse_alerts(form, email or PREVIEW_EMAIL)
        errors = [*([email_error] if email_error else []), *parsed.errors]
        if errors or email is None or parsed.subscriber is None:
            return self._page(
                request,
                "signup.html.j2",
                status=400,
                form=form,
                email=email_text,
                errors=_by_field(errors),
                preview=None,
            )
        if not await self._take(f"mail-to:{email.lower()}", self.limits.mails_per_address):
            return self._too_many(request)
        subscriber = parsed.subscriber
        result = await self._store(lambda store: store.request_subscription(subscriber))
        if result.action == "confirm":
            message = self._confirm_mail(request, result.record)
        else:
            message = self._manage_mail(request, result.record, reason="signup")
        log.info("sign-up for %s: %s mail", email, result.action)
        return await self._send_then(request, message, lambda: self._sent(request, "signup", email))

    async def confirm(self, request: Request) -> Response:
        """Activate a pending subscription from the link in the confirmation mail."""
        data = self._token(request, "confirm", self.confirm_max_age)
        if isinstance(data, Response):
            return data
        record = await self._store(
            lambda store: store.confirm_subscription(data.email, data.version)
        )
        if record is None:
            return self._gone(request, "Sign up again to get a new confirmation link.")
        log.info("subscription confirmed: %s", data.email)
        return self._page(
            request,
            "confirmed.html.j2",
            record=record,
            alerts=alert_lines(record.subscriber),
            manage_url=self._link(request, "manage", record),
            unsubscribe_url=self._link(request, "unsubscribe", record),
        )

    # --- manage ---------------------------------------------------------------------------

    async def manage_page(self, request: Request) -> Response:
        """The subscriber's alerts in a form, with what they would have sent lately."""
        found = await self._manageable(request)
        if isinstance(found, Response):
            return found
        sub = found.subscriber
        form = AlertForm.from_subscriber(sub, self.config.timezone)
        if sub.origin == "config":
            return await self._config_page(request, found)
        return await self._form_page(request, "manage.html.j2", form, record=found)

    async def manage_save(self, request: Request) -> Response:
        """Save the edited alerts (action=save) or only preview them (action=preview)."""
        found = await self._manageable(request)
        if isinstance(found, Response):
            return found
        fields = await self._form(request)
        if isinstance(fields, Response):
            return fields
        if found.subscriber.origin == "config":
            return await self._config_page(request, found, status=403)
        form = AlertForm.from_fields(fields, self.config.timezone)
        if fields.get("action") != "save":
            if not await self._preview_allowed(request):
                return self._too_many(request)
            return await self._form_page(request, "manage.html.j2", form, record=found)
        sub = found.subscriber
        parsed = parse_alerts(form, sub.email, max_papers=sub.max_papers)
        if parsed.subscriber is None:
            return self._page(
                request,
                "manage.html.j2",
                status=400,
                form=form,
                record=found,
                errors=_by_field(parsed.errors),
                preview=None,
                **self._links(request, found),
            )
        edited = replace(parsed.subscriber, name=sub.name)
        saved = await self._store(lambda store: store.update_alerts(edited, found.token_version))
        if saved is None:
            return self._gone(request, "Ask for a new link to manage your alerts.")
        log.info("alerts saved: %s", sub.email)
        form = AlertForm.from_subscriber(saved.subscriber, self.config.timezone)
        return await self._form_page(request, "manage.html.j2", form, record=saved, saved=True)

    async def matches_page(self, request: Request) -> Response:
        """Every paper matched for the subscriber lately, shown or left out of a digest."""
        found = await self._manageable(request)
        if isinstance(found, Response):
            return found
        email = found.subscriber.email
        since = utcnow() - timedelta(days=MATCHES_DAYS)

        def work(store: Store) -> tuple[list[RecentMatch], dict[str, Paper]]:
            matches = store.recent_matches(email, since, MATCHES_LIMIT)
            return matches, store.papers(m.match.paper_id for m in matches)

        matches, papers = await self._store(work)
        listed = match_list(matches, papers, _page_number(request))
        views = [[entry_view(e) for e in group.entries] for group in listed.groups]
        return self._page(
            request,
            "matches.html.j2",
            status=200,
            record=found,
            listed=listed,
            views=views,
            days=MATCHES_DAYS,
            limit=MATCHES_LIMIT,
            **self._links(request, found),
        )

    async def _config_page(
        self, request: Request, record: SubscriberRecord, status: int = 200
    ) -> Response:
        """A config-file subscriber's page: the file wins, so it shows and never edits."""
        preview, errors = await self._preview(record.subscriber)
        return self._page(
            request,
            "manage_config.html.j2",
            status=status,
            record=record,
            alerts=alert_lines(record.subscriber),
            preview=preview,
            preview_errors=errors,
            **self._links(request, record),
        )

    async def _manageable(self, request: Request) -> SubscriberRecord | Response:
        """The record a manage link designates, or the 4xx page saying why it does not work."""
        data = self._token(request, "manage")
        if isinstance(data, Response):
            return data
        record = await self._store(lambda store: store.subscriber_record(data.email))
        if (
            record is None
            or record.token_version != data.version
            or record.subscriber.status not in MANAGEABLE
        ):
            return self._gone(request, "Ask for a new link to manage your alerts.")
        return record

    # --- unsubscribe ----------------------------------------------------------------------

    async def unsubscribe_page(self, request: Request) -> Response:
        """One button that unsubscribes (a GET never does: mail scanners follow links)."""
        data = self._token(request, "unsubscribe")
        if isinstance(data, Response):
            return data
        record = await self._store(lambda store: store.subscriber_record(data.email))
        if record is not None and record.subscriber.status == "unsubscribed":
            return self._page(request, "unsubscribed.html.j2", email=data.email)
        if record is None or record.token_version != data.version:
            return self._gone(request, "Use the link in your latest digest.")
        return self._page(request, "unsubscribe.html.j2", email=data.email)

    async def unsubscribe(self, request: Request) -> Response:
        """RFC 8058 one-click (and the page's button): no cookie or form needed, the token is."""
        data = self._token(request, "unsubscribe")
        if isinstance(data, Response):
            return data

        def work(store: Store) -> bool:
            if store.unsubscribe(data.email, data.version):
                return True
            record = store.subscriber_record(data.email)
            return record is not None and record.subscriber.status == "unsubscribed"

        if not await self._store(work):
            return self._gone(request, "Use the link in your latest digest.")
        log.info("unsubscribed: %s", data.email)
        return self._page(request, "unsubscribed.html.j2", email=data.email)

    # --- email me my link -----------------------------------------------------------------

    async def link_page(self, request: Request) -> Response:
        """The "email me my link" form."""
        return self._page(request, "link.html.j2", email="", errors={})

    async def link_request(self, request: Request) -> Response:
        """Mail the manage link (or the confirmation, or "no subscription here") to the address."""
        fields = await self._form(request)
        if isinstance(fields, Response):
            return fields
        email_text = fields.get("email", "")
        if fields.get(HONEYPOT_FIELD):
            log.info("link request ignored: the honeypot field was filled")
            return self._sent(request, "link", email_text.strip())
        if not await self._take(f"mail-ip:{client_network(request)}", self.limits.mails_per_ip):
            return self._too_many(request)
        email, error = parse_email(email_text)
        if email is None:
            errors = _by_field([error] if error else [])
            return self._page(request, "link.html.j2", status=400, email=email_text, errors=errors)
        if not await self._take(f"mail-to:{email.lower()}", self.limits.mails_per_address):
            return self._too_many(request)
        record = await self._store(lambda store: store.subscriber_record(email))
        status = record.subscriber.status if record else None
        if record is not None and status == "active":
            message = self._manage_mail(request, record, reason="link")
        elif record is not None and status == "pending":
            message = self._confirm_mail(request, record)
        else:
            message = unknown_mail(self._mail_settings(request), email)
        return await self._send_then(request, message, lambda: self._sent(request, "link", email))

    # --- preview --------------------------------------------------------------------------

    async def preview_fragment(self, request: Request) -> Response:
        """The preview list alone, for the page's script (the live preview)."""
        fields = await self._form(request)
        if isinstance(fields, Response):
            return fields
        if not await self._preview_allowed(request):
            return self._too_many(request)
        form = AlertForm.from_fields(fields, self.config.timezone)
        context = await self._preview_context(form)
        html = self.pages.get_template("_preview.html.j2").render(self._common(request), **context)
        return HTMLResponse(html, headers={"cache-control": "no-store"})

    async def _preview_allowed(self, request: Request) -> bool:
        """Count one preview against the client's limit (a preview reads a week of papers)."""
        return await self._take(
            f"preview-ip:{client_network(request)}", self.limits.previews_per_ip
        )

    async def _form_page(
        self, request: Request, template: str, form: AlertForm, **context: Any
    ) -> Response:
        """A form page with the preview of its alerts (or their errors, next to the fields)."""
        preview = await self._preview_context(form)
        record = context.get("record")
        if isinstance(record, SubscriberRecord):
            context.update(self._links(request, record))
        return self._page(
            request,
            template,
            form=form,
            errors=_by_field(preview["preview_errors"]),
            **preview,
            **context,
        )

    async def _preview_context(self, form: AlertForm) -> dict[str, Any]:
        parsed = parse_alerts(form)
        if parsed.subscriber is None:
            return {"preview": None, "preview_errors": list(parsed.errors)}
        preview, errors = await self._preview(parsed.subscriber)
        return {"preview": preview, "preview_errors": errors}

    async def _preview(
        self, subscriber: Subscriber
    ) -> tuple[_PreviewView | None, list[FieldError]]:
        """What these alerts match among the papers first seen in the last PREVIEW_DAYS."""
        sub = replace(subscriber, email=PREVIEW_EMAIL, max_papers=10**6)

        def work(store: Store) -> AlertPreview:
            return preview_alerts(sub, self.recent.get(store))

        try:
            result = await self._store(work)
        except QueryError as exc:  # a stored alert the language no longer accepts
            return None, [FieldError("keywords", exc.message, 0, exc.column)]
        views = [entry_view(entry) for entry in result.entries]
        return _PreviewView(result, tuple(views)), []

    # --- small things ---------------------------------------------------------------------

    async def static(self, request: Request) -> Response:
        """The stylesheet and the script (from the package, no other origin)."""
        name = request.path_params["name"]
        if name not in _STATIC:
            raise HTTPException(404)
        return Response(
            _static_file(name),
            media_type=_STATIC[name],
            headers={"cache-control": "public, max-age=3600"},
        )

    async def health(self, request: Request) -> Response:
        """`ok` when the store opens, reads and could be written now (for a platform's
        health check); else a short 503 saying the database is unavailable."""
        try:
            await self._store(lambda store: store.probe())
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
        return self._message(request, exc.status_code, title, _HTTP_TEXT.get(exc.status_code, ""))

    async def store_error(self, request: Request, exc: Exception) -> Response:
        """The store is busy or cannot be used: a 503 page with Retry-After; the log says why."""
        log.error("web: %s", exc)
        if isinstance(exc, StoreBusy):
            title, text = "Busy right now", "Please try again in a minute."
        else:
            title, text = "Temporarily unavailable", "Please try again in a few minutes."
        response = self._message(request, 503, title, text)
        response.headers["retry-after"] = str(RETRY_AFTER)
        return response

    async def server_error(self, request: Request, exc: Exception) -> Response:
        """A bug: a short 500 page with the security headers (the server logs the traceback).

        Starlette answers this outside the middleware, so the headers are added here.
        """
        try:
            response = self._message(
                request, 500, "Something went wrong", "Please try again in a few minutes."
            )
        except Exception:  # the page itself failed: plain text still answers
            response = PlainTextResponse("Something went wrong.\n", status_code=500)
        response.headers.update(SECURITY_HEADERS)
        return response

    # --- helpers: tokens, CSRF, limits, store, mail ---------------------------------------

    def _token(
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
            return self._message(
                request,
                404,
                "This link is not valid",
                "Copy the whole link from the mail, or ask for a new one.",
            )
        return self._message(
            request, 410, "This link has expired", "Sign up again to get a new link."
        )

    def _gone(self, request: Request, advice: str) -> Response:
        """410: a genuine link that no longer applies (used up, or replaced by a newer one)."""
        return self._message(
            request, 410, "This link no longer works", f"A newer link has replaced it. {advice}"
        )

    async def _form(self, request: Request) -> dict[str, str] | Response:
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
            return self._message(
                request,
                403,
                "This form has expired",
                "It was open too long or did not come from this site. "
                "Go back, reload the page and send it again.",
            )
        return fields

    async def _take(self, key: str, limit: int) -> bool:
        """Count one request against `key`'s limit; False when the limit is reached."""
        # hashed, so that the table of recent requests is not a list of addresses
        bucket = hashlib.sha256(key.encode()).hexdigest()[:32]
        window = self.limits.window
        allowed = await self._store(lambda store: store.take_rate_slot(bucket, limit, window))
        if not allowed:
            log.warning("rate limit reached: %s", key.partition(":")[0])
        return allowed

    def _too_many(self, request: Request) -> Response:
        response = self._message(
            request,
            429,
            "Too many requests",
            "Too many requests came from your network or for this address. "
            "Please wait an hour and try again.",
        )
        response.headers["retry-after"] = str(int(self.limits.window.total_seconds()))
        return response

    async def _store(self, work: Callable[[Store], T]) -> T:
        """Run `work` on a store opened for it, in a worker thread (SQLite blocks)."""

        def run() -> T:
            store = Store.open(self.config.database, busy_timeout=self.database_wait)
            try:
                return work(store)
            finally:
                store.close()

        return await anyio.to_thread.run_sync(run)

    def _base(self, request: Request) -> str:
        return self.config.base_url or str(request.base_url).rstrip("/")

    def _link(self, request: Request, purpose: str, record: SubscriberRecord) -> str:
        email = record.subscriber.email
        token = make_token(self.secret, purpose, email, record.token_version)
        return link(self._base(request), purpose, token)

    def _links(self, request: Request, record: SubscriberRecord) -> dict[str, str]:
        manage = self._link(request, "manage", record)
        return {
            "manage_url": manage,
            "matches_url": f"{manage}/{MATCHES_PAGE}",
            "unsubscribe_url": self._link(request, "unsubscribe", record),
        }

    def _mail_settings(self, request: Request) -> MailSettings:
        return MailSettings(
            sender=sender_address(self.config),
            domain=message_domain(self.config),
            list_name=self.config.list_name,
            home_url=self._base(request) + "/",
        )

    def _confirm_mail(self, request: Request, record: SubscriberRecord) -> EmailMessage:
        hours = int(self.confirm_max_age.total_seconds() // 3600)
        return confirm_mail(
            self._mail_settings(request),
            record.subscriber,
            self._link(request, "confirm", record),
            f"{hours} hours" if hours != 1 else "1 hour",
        )

    def _manage_mail(self, request: Request, record: SubscriberRecord, reason: str) -> EmailMessage:
        links = self._links(request, record)
        return manage_mail(
            self._mail_settings(request),
            record.subscriber,
            reason=reason,
            manage_url=links["manage_url"],
            unsubscribe_url=links["unsubscribe_url"],
        )

    async def _send_then(
        self, request: Request, message: EmailMessage, page: Callable[[], Response]
    ) -> Response:
        """Send one mail now; the page when it went, a 503 page saying so when it did not."""
        try:
            async with make_sender(self.config) as sender:
                await sender.send(message)
        except SendError as exc:
            log.error("web: cannot send mail to %s: %s", message["To"], exc)
            return self._message(
                request,
                503,
                "The mail could not be sent",
                "Our mail server did not take the message. Please try again in a few minutes.",
            )
        return page()

    # --- helpers: pages -------------------------------------------------------------------

    def _common(self, request: Request) -> dict[str, Any]:
        return {
            "root": self.root,
            "list_name": self.config.list_name,
            "csrf_field": CSRF_FIELD,
            "csrf_token": self.csrf.token(request),
            "honeypot": HONEYPOT_FIELD,
            "weekdays": WEEKDAYS,
            "timezones": timezones(),
            "preview_days": PREVIEW_DAYS,
            "confirm_hours": int(self.confirm_max_age.total_seconds() // 3600),
        }

    def _page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        """Render a page; set the CSRF cookie when the visitor has none yet."""
        common = self._common(request)
        html = self.pages.get_template(template).render(common, **context)
        response = HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})
        self.csrf.set_cookie(request, response)
        return response

    def _message(self, request: Request, status: int, title: str, text: str) -> Response:
        return self._page(request, "message.html.j2", status=status, title=title, text=text)

    def _sent(self, request: Request, kind: str, email: str) -> Response:
        """The same "check your inbox" page whatever the address's status."""
        return self._page(request, "sent.html.j2", kind=kind, email=email)


@dataclass(frozen=True, slots=True)
class _PreviewView:
    """A preview and the template views of its papers."""

    result: AlertPreview
    views: tuple[EntryView, ...]


_HTTP_TEXT = {
    404: "There is nothing at this address.",
    405: "This page does not take that kind of request.",
    413: "The form sent more data than this site accepts.",
    400: "The request could not be understood.",
}
_STATIC = {"web.css": "text/css; charset=utf-8", "web.js": "text/javascript; charset=utf-8"}


@functools.cache
def _static_file(name: str) -> bytes:
    return resources.files("bot.web").joinpath("templates", name).read_bytes()


@functools.cache
def _page_environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bot.web", "templates"),
        autoescape=True,  # every value is text unless it is Markup we built
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _page_number(request: Request) -> int:
    """The `?page=` asked for: a number from 1, else the first page."""
    return number_in(request.query_params.get("page", "1")[:7], 1, 999_999) or 1


def _by_field(errors: Sequence[FieldError]) -> dict[str, list[FieldError]]:
    grouped: dict[str, list[FieldError]] = {}
    for error in errors:
        grouped.setdefault(error.field, []).append(error)
    return grouped
