"""The preview beside the alert forms: what the alerts as typed would have sent lately.

The sign-up and manage pages show it under their form (sent with action=preview, it works
without JavaScript); `/preview` answers the list alone, for the page's script that keeps it
live. Each preview counts against the client's limit: it runs the alerts over a week of
papers. What is run is `bot.web.preview` (pure), over the papers `bot.web.recent` keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from bot.alerts.query import QueryError
from bot.mail.views import EntryView, entry_view
from bot.models import Subscriber
from bot.store.store import Store
from bot.store.subscribers import SubscriberRecord
from bot.web.forms import (
    HAS_SEEDS_FIELD,
    PREVIEW_EMAIL,
    AlertForm,
    FieldError,
    by_field,
    parse_alerts,
)
from bot.web.preview import AlertPreview, preview_alerts
from bot.web.site import Site


@dataclass(frozen=True, slots=True)
class PreviewView:
    """A preview and the template views of its papers."""

    result: AlertPreview
    views: tuple[EntryView, ...]


class LivePreview:
    """Previews of alerts for the form pages and for `/preview`, on one site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.pages = site.pages

    def routes(self) -> list[Route]:
        """The path the page's script asks for the preview alone."""
        return [Route("/preview", self.fragment, methods=["POST"])]

    async def fragment(self, request: Request) -> Response:
        """The preview list alone, for the page's script (the live preview)."""
        fields = await self.site.form(request)
        if isinstance(fields, Response):
            return fields
        if not await self.site.limiter.preview(request):
            return self.site.limiter.too_many(request)
        form = AlertForm.from_fields(fields, self.site.config.timezone)
        # the manage page of someone with seed papers says so: their alerts may be empty (the
        # preview only; saving checks the stored seeds)
        context = await self.context(form, need_alerts=fields.get(HAS_SEEDS_FIELD) != "yes")
        html = self.pages.fragment(request, "_preview.html.j2", **context)
        return HTMLResponse(html, headers={"cache-control": "no-store"})

    async def form_page(
        self,
        request: Request,
        template: str,
        form: AlertForm,
        *,
        need_alerts: bool = True,
        **context: Any,
    ) -> Response:
        """A form page with the preview of its alerts (or their errors, next to the fields)."""
        preview = await self.context(form, need_alerts=need_alerts)
        record = context.get("record")
        if isinstance(record, SubscriberRecord):
            context.update(self.site.links(request, record))
        return self.pages.page(
            request,
            template,
            form=form,
            errors=by_field(preview["preview_errors"]),
            **preview,
            **context,
        )

    async def context(self, form: AlertForm, *, need_alerts: bool = True) -> dict[str, Any]:
        """The template values of a form's preview: `preview` and `preview_errors`."""
        parsed = parse_alerts(form, need_alerts=need_alerts)
        if parsed.subscriber is None:
            return {"preview": None, "preview_errors": list(parsed.errors)}
        preview, errors = await self.of(parsed.subscriber)
        return {"preview": preview, "preview_errors": errors}

    async def of(self, subscriber: Subscriber) -> tuple[PreviewView | None, list[FieldError]]:
        """What these alerts match among the papers first seen in the last PREVIEW_DAYS."""
        sub = replace(subscriber, email=PREVIEW_EMAIL, max_papers=10**6)

        def work(store: Store) -> AlertPreview:
            return preview_alerts(sub, self.site.recent.get(store))

        try:
            result = await self.site.store(work)
        except QueryError as exc:  # a stored alert the language no longer accepts
            return None, [FieldError("keywords", exc.message, 0, exc.column)]
        views = [entry_view(entry) for entry in result.entries]
        return PreviewView(result, tuple(views)), []
