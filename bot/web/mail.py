"""The web app's transactional mails: confirm a sign-up, here is your link, no subscription.

Plain text only (templates `templates/mail_*.txt.j2`); building them is pure, sending
is the caller's. They carry no List-Unsubscribe: they are answers to a request, not a list.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import jinja2

from bot.config.settings import Config
from bot.config.wiring import message_domain, sender_address
from bot.mail.links import link, make_token
from bot.models import Subscriber
from bot.store.subscribers import SubscriberRecord


@dataclass(frozen=True, slots=True)
class MailSettings:
    """Who the mails come from and how they name the list and the site."""

    sender: str
    domain: str
    list_name: str
    home_url: str


def mail_settings(config: Config, base: str) -> MailSettings:
    """Who the app's mails come from, and the site (at `base`) they point to."""
    return MailSettings(
        sender=sender_address(config),
        domain=message_domain(config),
        list_name=config.list_name,
        home_url=base + "/",
    )


def confirmation(
    settings: MailSettings, secret: str, record: SubscriberRecord, max_age: timedelta
) -> EmailMessage:
    """The double opt-in mail of a pending subscriber, its link signed with `secret` and
    valid `max_age`: what a web sign-up and `paperbot subscribers add` both send."""
    token = make_token(secret, "confirm", record.subscriber.email, record.token_version)
    hours = int(max_age.total_seconds() // 3600)
    return confirm_mail(
        settings,
        record.subscriber,
        link(settings.home_url.removesuffix("/"), "confirm", token),
        f"{hours} hours" if hours != 1 else "1 hour",
    )


def confirm_mail(
    settings: MailSettings, sub: Subscriber, confirm_url: str, expires: str
) -> EmailMessage:
    """ "Confirm your subscription": the double opt-in link, with the alerts it will apply."""
    body = _render(
        "mail_confirm.txt.j2",
        settings,
        email=sub.email,
        alerts=alert_lines(sub),
        confirm_url=confirm_url,
        expires=expires,
    )
    return _message(settings, sub.email, f"Confirm your subscription to {settings.list_name}", body)


def manage_mail(
    settings: MailSettings,
    sub: Subscriber,
    *,
    manage_url: str,
    unsubscribe_url: str,
    reason: str,
) -> EmailMessage:
    """The manage and unsubscribe links; `reason` "signup" says the address was already in."""
    body = _render(
        "mail_manage.txt.j2",
        settings,
        email=sub.email,
        reason=reason,
        from_config=sub.origin == "config",
        manage_url=manage_url,
        unsubscribe_url=unsubscribe_url,
    )
    return _message(settings, sub.email, f"Your {settings.list_name} subscription", body)


def unknown_mail(settings: MailSettings, email: str) -> EmailMessage:
    """The answer to a link request for an address that has no active subscription."""
    body = _render("mail_unknown.txt.j2", settings, email=email)
    return _message(settings, email, f"Your {settings.list_name} subscription", body)


def alert_lines(sub: Subscriber) -> list[str]:
    """`keyword: grokking`, `author: G. Lajoie`, ... one line per alert, for mails and pages."""
    lines = [f"keyword: {k}" for k in sub.keywords]
    lines += [f"author: {a}" for a in sub.authors]
    lines += [f"only in categories: {', '.join(sub.categories)}"] if sub.categories else []
    lines += [f"never: {e}" for e in sub.exclude]
    return lines


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bot.web", "templates"),
        autoescape=False,  # plain text mails: nothing here is ever read as HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(template: str, settings: MailSettings, **context: object) -> str:
    return (
        _environment()
        .get_template(template)
        .render(list_name=settings.list_name, home_url=settings.home_url, **context)
    )


def _message(settings: MailSettings, recipient: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=settings.domain)
    # tells vacation responders not to answer, and marks the mail as sent by a program
    msg["Auto-Submitted"] = "auto-generated"
    # 7bit keeps the links whole in the raw message (quoted-printable would cut them)
    msg.set_content(body, cte="7bit" if body.isascii() else "8bit")
    return msg
