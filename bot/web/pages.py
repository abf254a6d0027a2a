"""The web app's pages: its Jinja templates rendered with what every page needs, the message
page that explains a refusal or a failure, and the stylesheet and script it serves itself.

Every page is `no-store` (pages hold tokens and CSRF values) and gives the visitor the CSRF
cookie its form's token was made for. The security headers are the middleware's
(`bot.web.guard.SecurityHeaders`), added to every response on its way out.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from bot.config.settings import Config
from bot.web.forms import HAS_SEEDS_FIELD, WEEKDAYS, timezones
from bot.web.guard import CSRF_FIELD, HONEYPOT_FIELD, Csrf
from bot.web.preview import PREVIEW_DAYS

#: the files under templates/ that /static/{name} serves, and their types
_STATIC = {"web.css": "text/css; charset=utf-8", "web.js": "text/javascript; charset=utf-8"}


class Pages:
    """Renders the app's templates for one site: its path, list name and CSRF tokens."""

    def __init__(self, config: Config, csrf: Csrf, confirm_max_age: timedelta) -> None:
        self.root = urlsplit(config.base_url or "").path.rstrip("/")
        self.list_name = config.list_name
        self.csrf = csrf
        self.confirm_hours = int(confirm_max_age.total_seconds() // 3600)
        self.environment = _page_environment()

    def common(self, request: Request) -> dict[str, Any]:
        """What every template may use: links' root, the list's name, the CSRF field..."""
        return {
            "root": self.root,
            "list_name": self.list_name,
            "csrf_field": CSRF_FIELD,
            "csrf_token": self.csrf.token(request),
            "honeypot": HONEYPOT_FIELD,
            "has_seeds_field": HAS_SEEDS_FIELD,
            "weekdays": WEEKDAYS,
            "timezones": timezones(),
            "preview_days": PREVIEW_DAYS,
            "confirm_hours": self.confirm_hours,
        }

    def fragment(self, request: Request, template: str, **context: Any) -> str:
        """A template rendered as HTML text (a part of a page, or a whole one)."""
        return self.environment.get_template(template).render(self.common(request), **context)

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        """Render a page; set the CSRF cookie when the visitor has none yet."""
        html = self.fragment(request, template, **context)
        response = HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})
        self.csrf.set_cookie(request, response)
        return response

    def message(self, request: Request, status: int, title: str, text: str) -> Response:
        """A page that only says something: a title and a sentence."""
        return self.page(request, "message.html.j2", status=status, title=title, text=text)

    def sent(self, request: Request, kind: str, email: str) -> Response:
        """The same "check your inbox" page whatever the address's status."""
        return self.page(request, "sent.html.j2", kind=kind, email=email)

    def gone(self, request: Request, advice: str) -> Response:
        """410: a genuine link that no longer applies (used up, or replaced by a newer one)."""
        return self.message(
            request, 410, "This link no longer works", f"A newer link has replaced it. {advice}"
        )


async def static(request: Request) -> Response:
    """The stylesheet and the script (from the package, no other origin)."""
    name = request.path_params["name"]
    if name not in _STATIC:
        raise HTTPException(404)
    return Response(
        _static_file(name),
        media_type=_STATIC[name],
        headers={"cache-control": "public, max-age=3600"},
    )


@functools.cache
def _static_file(name: str) -> bytes:
    """A static file's bytes, read once per process."""
    return resources.files("bot.web").joinpath("templates", name).read_bytes()


@functools.cache
def _page_environment() -> jinja2.Environment:
    """The pages' Jinja environment, shared by every app of the process."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bot.web", "templates"),
        autoescape=True,  # every value is text unless it is Markup we built
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
