"""The configured parts: what the config's `smtp:` section and identity make (the sender,
the DKIM signer, the letterhead of every digest, the delivery settings)."""

from __future__ import annotations

from email.utils import parseaddr

from bot.config.settings import (
    Config,
    DkimSettings,
)
from bot.errors import ConfigError
from bot.mail.compose import Letterhead
from bot.mail.deliver import DeliverySettings
from bot.mail.dkim import DkimSigner, load_key
from bot.mail.links import secret_from_env
from bot.mail.senders import MessageSigner, OutboxSender, Sender, SmtpSender


def dkim_signer(settings: DkimSettings) -> DkimSigner:
    """The signer for these DKIM settings (ConfigError naming smtp.dkim when the key is bad)."""
    if (settings.key_file is None) == (settings.key_env is None):
        raise ConfigError("smtp.dkim", "give exactly one of key_file and key_env")
    key = load_key(key_file=settings.key_file, key_env=settings.key_env, where="smtp.dkim")
    try:
        return DkimSigner(selector=settings.selector, domain=settings.domain, private_key=key)
    except ValueError as exc:
        key_key = "key_file" if settings.key_file else "key_env"
        raise ConfigError(f"smtp.dkim.{key_key}", str(exc)) from None


DEFAULT_FROM = "paperbot <paperbot@localhost>"


def delivery_settings(config: Config) -> DeliverySettings:
    """The delivery settings of the config's `smtp:` section (one connection for .eml files)."""
    smtp = config.smtp
    if smtp is None:
        return DeliverySettings()
    return DeliverySettings(
        connections=smtp.connections,
        messages_per_second=smtp.messages_per_second,
        retries=smtp.retries,
        retry_delay=smtp.retry_delay,
        max_hard_bounces=smtp.max_hard_bounces,
        max_failures_in_a_row=smtp.max_failures_in_a_row,
        verp=bool(config.bounces and config.bounces.verp and secret_from_env()),
    )


def sender_address(config: Config) -> str:
    """The From address of every digest."""
    return config.smtp.from_ if config.smtp else DEFAULT_FROM


def message_domain(config: Config) -> str:
    """The domain of Message-IDs: the From address's domain."""
    return parseaddr(sender_address(config))[1].rpartition("@")[2] or "localhost"


def letterhead(config: Config) -> Letterhead:
    """The shared headers and link settings of this config's digests."""
    smtp = config.smtp
    domain = message_domain(config)
    return Letterhead(
        from_=sender_address(config),
        domain=domain,
        list_name=config.list_name,
        unsubscribe_mailto=smtp.unsubscribe_address if smtp else f"paperbot+unsubscribe@{domain}",
        base_url=config.base_url,
        secret=secret_from_env(),
        reply_to=smtp.reply_to if smtp else None,
        sender=smtp.sender if smtp else None,
    )


def make_signer(config: Config) -> MessageSigner | None:
    """The DKIM signer when `smtp.dkim` is configured."""
    smtp = config.smtp
    return dkim_signer(smtp.dkim) if smtp and smtp.dkim else None


def make_sender(config: Config) -> Sender:
    """The SMTP sender when `smtp:` is configured, else the .eml outbox folder."""
    smtp = config.smtp
    if smtp is None:
        return OutboxSender(config.outbox)
    return SmtpSender(
        host=smtp.host,
        port=smtp.effective_port,
        security=smtp.security,
        username=smtp.username,
        password=smtp.password(),
        timeout=smtp.timeout,
        deadline=smtp.message_deadline,
        connections=smtp.connections,
        signer=make_signer(config),
    )
