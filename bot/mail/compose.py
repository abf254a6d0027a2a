"""One pending digest made into its email: the letterhead every digest shares, its
subscriber's own links, and whom it goes to.

The same here and in the render process (`bot.mail.renderproc`): a digest that cannot be
built (an address or header no server would take) is the same error in both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage

from bot.mail.digest import build_digest
from bot.mail.links import link, make_token
from bot.mail.mime import build_message
from bot.mail.render import Feedback, render_digest
from bot.models import Digest, Paper
from bot.store.outbox import PendingDigest
from bot.store.rows import utcnow
from bot.store.store import Store

#: the web app's pages that the links in every digest point to (see bot/web/app.py); the page
#: of recent matches is `<manage link>/matches`, behind the same token
UNSUBSCRIBE_PATH, MANAGE_PATH, MATCHES_PAGE = "unsubscribe", "manage", "matches"


@dataclass(frozen=True, slots=True)
class Letterhead:
    """What every digest's headers and links share: addresses, list identity, link secret."""

    from_: str
    domain: str
    list_name: str
    unsubscribe_mailto: str
    base_url: str | None = None
    secret: str | None = None
    reply_to: str | None = None
    sender: str | None = None

    @property
    def list_id(self) -> str:
        """`List-Id: paperbot <paperbot.example.org>`."""
        return f"{self.list_name} <{self.list_name}.{self.domain}>"

    def links(
        self, email: str, token_version: int, feedback: Feedback | None = None
    ) -> tuple[str | None, str | None]:
        """(manage, unsubscribe) links of the web app, or (None, None) without base_url+secret;
        the manage link with the token of `feedback` when given (one token per digest)."""
        if not (self.base_url and self.secret):
            return None, None
        feedback = feedback or self.feedback(email, token_version)
        return (
            link(self.base_url, MANAGE_PATH, feedback.manage_token) if feedback else None,
            link(
                self.base_url,
                UNSUBSCRIBE_PATH,
                make_token(self.secret, "unsubscribe", email, token_version),
            ),
        )

    def feedback(self, email: str, token_version: int) -> Feedback | None:
        """Where a digest's "more/less like this" links go (its manage token), or None
        without base_url+secret."""
        if not (self.base_url and self.secret):
            return None
        return Feedback(self.base_url, make_token(self.secret, "manage", email, token_version))


@dataclass(frozen=True, slots=True)
class Addressee:
    """What sending a digest needs to know besides its message: ids, address, bounces."""

    id: int
    subscriber_id: int
    email: str
    hard_bounces: int = 0

    @classmethod
    def of(cls, pending: PendingDigest) -> Addressee:
        """The addressee of a pending digest."""
        return cls(
            pending.id, pending.subscriber_id, pending.subscriber.email, pending.hard_bounces
        )


def digest_message(
    head: Letterhead, pending: PendingDigest, papers: Mapping[str, Paper], now: datetime
) -> EmailMessage:
    """The email of one pending digest (pure; ValueError on a header that cannot be sent)."""
    digest = build_digest(
        pending.subscriber,
        pending.matches,
        papers,
        message_id=pending.message_id,
        created=pending.created,
    )
    return compose(head, digest, pending.token_version, now)


def compose(
    head: Letterhead, digest: Digest, token_version: int, now: datetime, subject_prefix: str = ""
) -> EmailMessage:
    """A digest's email: rendered, with list headers and its subscriber's own links."""
    email = digest.subscriber.email
    feedback = head.feedback(email, token_version)
    manage, unsubscribe = head.links(email, token_version, feedback)
    rendered = render_digest(
        digest,
        list_name=head.list_name,
        manage_url=manage,
        unsubscribe_url=unsubscribe,
        matches_url=f"{manage}/{MATCHES_PAGE}" if manage else None,
        feedback=feedback,
    )
    if subject_prefix:
        rendered = replace(rendered, subject=subject_prefix + rendered.subject)
    return build_message(
        rendered,
        sender=head.from_,
        recipient=email,
        message_id=digest.message_id,
        date=now,
        list_id=head.list_id,
        unsubscribe_url=unsubscribe,
        unsubscribe_mailto=head.unsubscribe_mailto,
        reply_to=head.reply_to,
        sender_header=head.sender,
    )


def message_or_error(
    head: Letterhead, pending: PendingDigest, papers: Mapping[str, Paper]
) -> EmailMessage | str:
    """A pending digest's email, or why it cannot be built (an address or header that no
    server would take): the same in this process and in the render process."""
    try:
        return digest_message(head, pending, papers, utcnow())
    except ValueError as exc:
        return f"cannot build the digest: {exc}"


def load_papers(store: Store, papers: dict[str, Paper], batch: list[PendingDigest]) -> None:
    """Add to `papers` those of this batch of digests not seen yet (one query per batch:
    most papers recur in many digests)."""
    wanted = {m.paper_id for digest in batch for m in digest.matches} - papers.keys()
    if wanted:
        papers.update(store.papers.by_id(wanted))
