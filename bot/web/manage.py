"""What a subscriber's links open: the manage page (edit the alerts, with a preview), the list
of recent matches, and unsubscribing (RFC 8058 one-click, and a page with one button).

A manage link works while its token's version is the subscriber's and the subscription is
active or pending (a pending subscriber may edit before confirming). A config-file
subscriber's page shows and never edits: the file wins. An unsubscribe POST needs no
cookie or form: the signed token in its URL authorizes it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.mail.compose import MATCHES_PAGE
from bot.mail.views import entry_view
from bot.models import Paper, Subscriber
from bot.store.matches import RecentMatch
from bot.store.rows import utcnow
from bot.store.store import Store
from bot.store.subscribers import SubscriberRecord
from bot.web.forms import AlertForm, number_in, parse_alerts
from bot.web.likes import likes_context, load_likes
from bot.web.livepreview import LivePreview
from bot.web.mail import alert_lines
from bot.web.matches import MATCHES_DAYS, MATCHES_LIMIT, match_list
from bot.web.site import Site

log = logging.getLogger(__name__)

#: the statuses whose manage page works (a pending subscriber may edit before confirming)
MANAGEABLE = ("active", "pending")


class ManageRoutes:
    """The manage, matches and unsubscribe pages of one site."""

    def __init__(self, site: Site, preview: LivePreview) -> None:
        self.site = site
        self.pages = site.pages
        self.preview = preview

    def routes(self) -> list[Route]:
        """The paths a subscriber's manage and unsubscribe links lead to."""
        return [
            Route("/manage/{token}", self.manage_page, methods=["GET"]),
            Route("/manage/{token}", self.manage_save, methods=["POST"]),
            Route(f"/manage/{{token}}/{MATCHES_PAGE}", self.matches_page, methods=["GET"]),
            Route("/unsubscribe/{token}", self.unsubscribe_page, methods=["GET"]),
            Route("/unsubscribe/{token}", self.unsubscribe, methods=["POST"]),
        ]

    # --- manage ---------------------------------------------------------------------------

    async def manage_page(self, request: Request) -> Response:
        """The subscriber's alerts in a form, with what they would have sent lately."""
        found = await self.manageable(request)
        if isinstance(found, Response):
            return found
        return await self.render(request, found)

    async def render(
        self,
        request: Request,
        record: SubscriberRecord,
        status: int = 200,
        form: AlertForm | None = None,
        **context: Any,
    ) -> Response:
        """The manage page (the config file's, for its subscribers) with the papers they like
        and their feedback; `form` the alerts as typed, `context` what the page reports."""
        sub = record.subscriber
        likes = await self.site.store(lambda store: load_likes(store, record))
        context = {**context}
        context.update(likes_context(likes, context))
        if sub.origin == "config":
            return await self._config_page(request, record, status, **context)
        return await self.preview.form_page(
            request,
            "manage.html.j2",
            form or AlertForm.from_subscriber(sub, self.site.config.timezone),
            need_alerts=not sub.likes,
            record=record,
            status=status,
            **context,
        )

    async def manage_save(self, request: Request) -> Response:
        """Save the edited alerts (action=save) or only preview them (action=preview)."""
        found = await self.manageable(request)
        if isinstance(found, Response):
            return found
        fields = await self.site.form(request)
        if isinstance(fields, Response):
            return fields
        if found.subscriber.origin == "config":
            return await self.render(request, found, status=403)
        form = AlertForm.from_fields(fields, self.site.config.timezone)
        if fields.get("action") != "save":
            if not await self.site.limiter.preview(request):
                return self.site.limiter.too_many(request)
            return await self.render(request, found, form=form)
        sub = found.subscriber
        parsed = parse_alerts(form, sub.email, max_papers=sub.max_papers, need_alerts=not sub.likes)
        if parsed.subscriber is None:  # the preview shows the same errors, by their fields
            return await self.render(request, found, status=400, form=form)
        saved = await self.site.store(
            lambda store: _save_alerts(store, parsed.subscriber, found.token_version)
        )
        if saved is None:
            return self.pages.gone(request, "Ask for a new link to manage your alerts.")
        log.info("alerts saved: %s", sub.email)
        return await self.render(request, saved, saved=True)

    async def matches_page(self, request: Request) -> Response:
        """Every paper matched for the subscriber lately, shown or left out of a digest."""
        found = await self.manageable(request)
        if isinstance(found, Response):
            return found
        email = found.subscriber.email
        since = utcnow() - timedelta(days=MATCHES_DAYS)

        def work(store: Store) -> tuple[list[RecentMatch], dict[str, Paper]]:
            matches = store.matches.recent(email, since, MATCHES_LIMIT)
            return matches, store.papers.by_id(m.match.paper_id for m in matches)

        matches, papers = await self.site.store(work)
        listed = match_list(matches, papers, _page_number(request))
        views = [[entry_view(e) for e in group.entries] for group in listed.groups]
        return self.pages.page(
            request,
            "matches.html.j2",
            status=200,
            record=found,
            listed=listed,
            views=views,
            days=MATCHES_DAYS,
            limit=MATCHES_LIMIT,
            **self.site.links(request, found),
        )

    async def _config_page(
        self, request: Request, record: SubscriberRecord, status: int, **context: Any
    ) -> Response:
        """A config-file subscriber's page: the file wins, so it shows and never edits
        (only their feedback, which is not in the file, can be removed)."""
        preview, errors = await self.preview.of(record.subscriber)
        return self.pages.page(
            request,
            "manage_config.html.j2",
            status=status,
            record=record,
            alerts=alert_lines(record.subscriber),
            preview=preview,
            preview_errors=errors,
            **context,
            **self.site.links(request, record),
        )

    async def manageable(self, request: Request) -> SubscriberRecord | Response:
        """The record a manage link (or a feedback link, on the same token) designates, or
        the 4xx page saying why it does not work."""
        data = self.site.token(request, "manage")
        if isinstance(data, Response):
            return data
        record = await self.site.store(lambda store: store.subscribers.find(data.email))
        if (
            record is None
            or record.token_version != data.version
            or record.subscriber.status not in MANAGEABLE
        ):
            return self.pages.gone(request, "Ask for a new link to manage your alerts.")
        return record

    # --- unsubscribe ----------------------------------------------------------------------

    async def unsubscribe_page(self, request: Request) -> Response:
        """One button that unsubscribes (a GET never does: mail scanners follow links)."""
        data = self.site.token(request, "unsubscribe")
        if isinstance(data, Response):
            return data
        record = await self.site.store(lambda store: store.subscribers.find(data.email))
        if record is not None and record.subscriber.status == "unsubscribed":
            return self.pages.page(request, "unsubscribed.html.j2", email=data.email)
        if record is None or record.token_version != data.version:
            return self.pages.gone(request, "Use the link in your latest digest.")
        return self.pages.page(request, "unsubscribe.html.j2", email=data.email)

    async def unsubscribe(self, request: Request) -> Response:
        """RFC 8058 one-click (and the page's button): no cookie or form needed, the token is."""
        data = self.site.token(request, "unsubscribe")
        if isinstance(data, Response):
            return data

        def work(store: Store) -> bool:
            if store.subscribers.unsubscribe(data.email, data.version):
                return True
            record = store.subscribers.find(data.email)
            return record is not None and record.subscriber.status == "unsubscribed"

        if not await self.site.store(work):
            return self.pages.gone(request, "Use the link in your latest digest.")
        log.info("unsubscribed: %s", data.email)
        return self.pages.page(request, "unsubscribed.html.j2", email=data.email)


def _save_alerts(store: Store, edited: Subscriber | None, version: int) -> SubscriberRecord | None:
    """Save the alerts and cadence of the form; the seeds and `recommend` stay as stored
    (they are edited in their own forms, and the store writes every setting)."""
    current = store.subscribers.find(edited.email) if edited is not None else None
    if edited is None or current is None:
        return None
    sub = current.subscriber
    kept = replace(edited, name=sub.name, likes=sub.likes, recommend=sub.recommend)
    return store.subscribers.update_alerts(kept, version)


def _page_number(request: Request) -> int:
    """The `?page=` asked for: a number from 1, else the first page."""
    return number_in(request.query_params.get("page", "1")[:7], 1, 999_999) or 1
