"""What a digest's "more like this" / "less like this" links open: a page that records the
verdict by a POST (made at once by the page's script, or by its button without one), and
takes it back (Undo).

A GET records nothing: mail scanners fetch every link of a message, and one that fetched
these would otherwise vote on every paper of a digest. The link rides on the digest's
manage token, so it works exactly as long as the manage link does, and names its
subscriber: nobody can record feedback for someone else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.mail.links import FEEDBACK_PATH
from bot.models import Paper, Verdict
from bot.store.store import Store
from bot.store.subscribers import SubscriberRecord
from bot.web.manage import ManageRoutes
from bot.web.site import Site

log = logging.getLogger(__name__)

#: what a verdict asks for, as the pages say it
VERDICTS: dict[str, str] = {"more": "more like this", "less": "less like this"}


@dataclass(frozen=True, slots=True)
class FeedbackTarget:
    """What a feedback link designates: the subscriber (and their row id), a verdict, a paper."""

    record: SubscriberRecord
    subscriber_id: int
    verdict: Verdict
    paper: Paper


class FeedbackRoutes:
    """The feedback page, its recording POST and Undo, on one site."""

    def __init__(self, site: Site, manage: ManageRoutes) -> None:
        self.site = site
        self.pages = site.pages
        self.manage = manage

    def routes(self) -> list[Route]:
        """`/feedback/{manage token}/{more|less}/{paper id}`: GET shows, POST records or undoes."""
        path = f"/{FEEDBACK_PATH}/{{token}}/{{verdict}}/{{paper_id:path}}"
        return [
            Route(path, self.feedback_page, methods=["GET"]),
            Route(path, self.feedback_post, methods=["POST"]),
        ]

    async def feedback_page(self, request: Request) -> Response:
        """What following the link will record, recorded by the page's POST (never by a GET)."""
        found = await self._target(request)
        if isinstance(found, Response):
            return found
        return self._page(request, found, state="ask")

    async def feedback_post(self, request: Request) -> Response:
        """Record the verdict (action=record) or take it back (action=undo); both idempotent."""
        found = await self._target(request)
        if isinstance(found, Response):
            return found
        fields = await self.site.form(request)
        if isinstance(fields, Response):
            return fields
        sid, paper_id = found.subscriber_id, found.paper.id
        if fields.get("action") == "undo":
            await self.site.store(lambda store: store.feedback.remove(sid, paper_id))
            log.info("feedback removed: subscriber %d, %s", sid, paper_id)
            return self._page(request, found, state="undone")
        verdict = found.verdict
        await self.site.store(lambda store: store.feedback.record(sid, paper_id, verdict))
        log.info("feedback recorded: subscriber %d, %s, %s", sid, paper_id, verdict)
        return self._page(request, found, state="recorded")

    def _page(self, request: Request, target: FeedbackTarget, state: str) -> Response:
        """The page in one of its states: ask (the GET), recorded, undone."""
        return self.pages.page(
            request,
            "feedback.html.j2",
            status=200,
            state=state,
            paper=target.paper,
            verdict=target.verdict,
            verdict_text=VERDICTS[target.verdict],
            **self.site.links(request, target.record),
        )

    async def _target(self, request: Request) -> FeedbackTarget | Response:
        """What the link designates, or the page saying why it does not work (404, 410)."""
        verdict = request.path_params["verdict"]
        if verdict not in VERDICTS:
            return self._not_found(request)
        found = await self.manage.manageable(request)
        if isinstance(found, Response):
            return found
        paper_id = request.path_params["paper_id"]
        email = found.subscriber.email

        def work(store: Store) -> tuple[int | None, Paper | None]:
            return store.subscribers.id_of(email), store.papers.by_id([paper_id]).get(paper_id)

        subscriber_id, paper = await self.site.store(work)
        if paper is None:
            return self.pages.message(
                request,
                404,
                "Paper not found",
                "This site does not know the paper this link names. "
                "Copy the whole link from the mail.",
            )
        if subscriber_id is None:
            return self._not_found(request)
        return FeedbackTarget(found, subscriber_id, cast(Verdict, verdict), paper)

    def _not_found(self, request: Request) -> Response:
        return self.pages.message(
            request,
            404,
            "This link is not valid",
            "Copy the whole link from the mail, or ask for a new one.",
        )
