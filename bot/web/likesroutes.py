"""The forms of the manage page's "Papers you like" part: add seeds (typed, or an uploaded
BibTeX, RIS or Zotero CSV export), remove one, set how many recommendations a digest
holds, and remove a piece of feedback.

Seeds and `recommend` are settings: a config-file subscriber's come from the file and are
only shown; their feedback is not in the file and can be removed like anyone's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.models import MAX_PAPERS, Subscriber
from bot.recommend.seeds import MAX_EXPORT_BYTES, read_export
from bot.store.store import Store
from bot.store.subscribers import SubscriberRecord
from bot.web.forms import by_field, number_in
from bot.web.guard import MAX_BODY
from bot.web.likes import Added, UploadReport, add_likes, parse_seed_lines, seed_views
from bot.web.manage import ManageRoutes
from bot.web.site import Site

log = logging.getLogger(__name__)

#: the end of the upload form's path (the body limit is larger there)
UPLOAD_PATH = "/likes/upload"
#: the most an upload's request may carry: the export and the form around it
MAX_UPLOAD = MAX_EXPORT_BYTES + MAX_BODY
#: the file field of the upload form
EXPORT_FIELD = "export"

_MB = MAX_EXPORT_BYTES // (1024 * 1024)


class LikesRoutes:
    """The POSTs of the manage page's seeds and feedback lists, on one site."""

    def __init__(self, site: Site, manage: ManageRoutes) -> None:
        self.site = site
        self.pages = site.pages
        self.manage = manage

    def routes(self) -> list[Route]:
        """`/manage/{token}/likes` (add, remove, recommend, forget) and the upload."""
        return [
            Route("/manage/{token}/likes", self.change, methods=["POST"]),
            Route(f"/manage/{{token}}{UPLOAD_PATH}", self.upload, methods=["POST"]),
        ]

    async def change(self, request: Request) -> Response:
        """One change from the likes part of the page, then the page saying what it did."""
        found = await self.manage.manageable(request)
        if isinstance(found, Response):
            return found
        fields = await self.site.form(request)
        if isinstance(fields, Response):
            return fields
        action = fields.get("action", "")
        if action == "forget":
            return await self._forget(request, found, fields.get("paper_id", ""))
        if found.subscriber.origin == "config":
            return await self.manage.render(request, found, status=403, likes_refused=True)
        if action == "add":
            return await self._add_typed(request, found, fields.get("seeds", ""))
        if action == "remove":
            key = fields.get("key", "")
            return await self._save(
                request,
                found,
                lambda sub: replace(sub, likes=tuple(k for k in sub.likes if k != key)),
                likes_notice="Removed.",
            )
        if action == "recommend":
            count = number_in(fields.get("recommend", "")[:7], 0, MAX_PAPERS)
            if count is None:
                problem = f"choose a number from 0 to {MAX_PAPERS}"
                return await self.manage.render(request, found, status=400, recommend_error=problem)
            return await self._save(
                request,
                found,
                lambda sub: replace(sub, recommend=count),
                likes_notice="Saved.",
            )
        raise HTTPException(400)

    async def upload(self, request: Request) -> Response:
        """Add the seeds of an uploaded export; the page reports what was and was not read."""
        found = await self.manage.manageable(request)
        if isinstance(found, Response):
            return found
        try:
            got = await self.site.upload(request, EXPORT_FIELD, MAX_EXPORT_BYTES)
        except HTTPException as exc:
            if exc.status_code != 413:
                raise
            got = ("", b"")  # the body was over the limit: the file is too
            too_big = True
        else:
            if isinstance(got, Response):
                return got
            too_big = len(got[1]) > MAX_EXPORT_BYTES
        if too_big:
            problem = f"The file is larger than {_MB} MB: nothing was read."
            return await self.manage.render(request, found, status=413, upload_error=problem)
        filename, data = got
        if found.subscriber.origin == "config":
            return await self.manage.render(request, found, status=403, likes_refused=True)
        if not filename and not data:
            problem = "Choose a .bib, .ris or .csv file to upload."
            return await self.manage.render(request, found, status=400, upload_error=problem)
        report = read_export(data, filename)
        keys = [seed.key for seed in report.seeds]
        saved = await self._add(found, keys)
        if saved is None:
            return self.pages.gone(request, "Ask for a new link to manage your alerts.")
        record, added = saved
        views = await self.site.store(lambda store: seed_views(store, added.added))
        log.info("seeds uploaded: %s, %d added", record.subscriber.email, len(added.added))
        upload = UploadReport(
            filename, len(keys), views, added.already, added.over, report.problems
        )
        return await self.manage.render(request, record, upload=upload)

    async def _add_typed(self, request: Request, found: SubscriberRecord, text: str) -> Response:
        """Add the seeds typed one per line, or show each line that names none."""
        keys, errors = parse_seed_lines(text)
        if errors or not keys:
            if not errors:
                return await self.manage.render(request, found, status=400)
            return await self.manage.render(
                request, found, status=400, seed_errors=by_field(errors), seed_text=text
            )
        saved = await self._add(found, keys)
        if saved is None:
            return self.pages.gone(request, "Ask for a new link to manage your alerts.")
        record, added = saved
        log.info("seeds added: %s, %d", record.subscriber.email, len(added.added))
        return await self.manage.render(request, record, likes_added=added)

    async def _add(
        self, found: SubscriberRecord, keys: list[str] | tuple[str, ...]
    ) -> tuple[SubscriberRecord, Added] | None:
        """Add these seed keys to the stored likes (each once); None when the link is void."""
        email, version = found.subscriber.email, found.token_version

        def work(store: Store) -> tuple[SubscriberRecord, Added] | None:
            current = store.subscribers.find(email)
            if current is None or current.token_version != version:
                return None
            added = add_likes(current.subscriber.likes, keys)
            edited = replace(current.subscriber, likes=added.likes)
            saved = store.subscribers.update_alerts(edited, version)
            return None if saved is None else (saved, added)

        return await self.site.store(work)

    async def _save(
        self,
        request: Request,
        found: SubscriberRecord,
        change: Callable[[Subscriber], Subscriber],
        **context: Any,
    ) -> Response:
        """Save `change` of the stored subscriber, then show the page."""
        email, version = found.subscriber.email, found.token_version

        def work(store: Store) -> SubscriberRecord | None:
            current = store.subscribers.find(email)
            if current is None or current.token_version != version:
                return None
            return store.subscribers.update_alerts(change(current.subscriber), version)

        saved = await self.site.store(work)
        if saved is None:
            return self.pages.gone(request, "Ask for a new link to manage your alerts.")
        return await self.manage.render(request, saved, **context)

    async def _forget(self, request: Request, found: SubscriberRecord, paper_id: str) -> Response:
        """Remove the subscriber's feedback on a paper (nothing to remove is fine)."""
        email = found.subscriber.email

        def work(store: Store) -> bool:
            subscriber_id = store.subscribers.id_of(email)
            return subscriber_id is not None and store.feedback.remove(subscriber_id, paper_id)

        if await self.site.store(work):
            log.info("feedback removed: %s, %s", email, paper_id)
        return await self.manage.render(request, found, feedback_notice="Removed.")
