"""The web app assembled and served: `create_app` puts the routes, the middleware and the
error pages together on one site; `serve` runs it with uvicorn on a socket from `listen`.

The worker (`bot.run.worker`) embeds the same app on its own uvicorn server; `paperbot web`
(`bot.cli`) calls `serve`.
"""

from __future__ import annotations

import logging
import secrets
import socket
from datetime import timedelta

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from bot.config.settings import Config
from bot.errors import ConfigError, PaperbotError
from bot.mail.links import SECRET_ENV, secret_from_env
from bot.web.errorpages import ErrorPages
from bot.web.feedback import FeedbackRoutes
from bot.web.guard import BodyLimit, SecurityHeaders
from bot.web.likesroutes import MAX_UPLOAD, UPLOAD_PATH, LikesRoutes
from bot.web.limits import RateLimits
from bot.web.livepreview import LivePreview
from bot.web.manage import ManageRoutes
from bot.web.pages import static
from bot.web.signup import SignupRoutes
from bot.web.site import Site

log = logging.getLogger(__name__)


def create_app(
    config: Config,
    *,
    dev: bool = False,
    secret: str | None = None,
    limits: RateLimits | None = None,
    confirm_max_age: timedelta | None = None,
) -> Starlette:
    """The web app on `config`'s store; `secret` defaults to $PAPERBOT_SECRET_KEY, the
    limits and the confirmation window to the config's `web:` section.

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
    site = Site(
        config,
        secret,
        limits or RateLimits.from_settings(config.web),
        confirm_max_age or timedelta(hours=config.web.confirm_hours),
    )
    errors = ErrorPages(site)
    return Starlette(
        routes=_routes(site, errors),
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(BodyLimit, uploads=(UPLOAD_PATH,), upload_limit=MAX_UPLOAD),
        ],
        exception_handlers=errors.handlers(),
    )


def _routes(site: Site, errors: ErrorPages) -> list[Route]:
    """Every path the app answers."""
    preview = LivePreview(site)
    manage = ManageRoutes(site, preview)
    return [
        *SignupRoutes(site, preview).routes(),
        *manage.routes(),
        *LikesRoutes(site, manage).routes(),
        *FeedbackRoutes(site, manage).routes(),
        *preview.routes(),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/healthz", errors.health, methods=["GET"]),
    ]


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
