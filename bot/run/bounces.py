"""Bounces and mailed unsubscribes read back from an IMAP mailbox or a Maildir.

Each new message is, in this order: a mail to the `+unsubscribe` address (its sender, if a
subscriber, is unsubscribed), a bounce (bot.mail.dsn: a hard one counts towards
`max_hard_bounces` like a 5xx at send time, a soft one is only recorded; the subscriber is
the one the VERP tag names, else a failed address that is a subscriber's; any other address is
ignored), or anything else (left where it is, unread, and reported once). A message is
recorded in the store with its effect in one transaction, then moved: a crash in between
leaves a message the next read recognizes (by the hash of its bytes) and only moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import imaplib
import logging
import os
import re
import ssl
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Protocol

from bot.config.settings import Config, ImapSettings
from bot.config.wiring import letterhead
from bot.errors import BounceReadError, PaperbotError
from bot.mail.dsn import Failure, read_bounce
from bot.mail.links import read_bounce_tag, secret_from_env
from bot.store.bounces import MailOutcome
from bot.store.store import Store

log = logging.getLogger(__name__)

#: the IMAP keyword of a processed message when there is no processed folder
KEYWORD = "$PaperbotRead"
_RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
_TAG = re.compile(r"\+(b-[0-9a-z]+-[0-9a-f]+)@", re.I)


class Mailbox(Protocol):
    """Where read-back mail waits: new messages by key, and a way to set one aside."""

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """Every message not yet set aside, as (key, bytes)."""
        ...

    def done(self, key: str) -> None:
        """Set this message aside (moved or flagged) so that it is not read again."""
        ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one message is: its outcome, whose it is (a subscriber's row id) and why."""

    outcome: MailOutcome
    subscriber_id: int | None
    detail: str


class MaildirBox:
    """A Maildir: messages in new/; a processed one moves to cur/ flagged seen (`:2,S`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """Every file of new/, oldest name first."""
        new = self.path / "new"
        if not new.is_dir():
            raise BounceReadError(f"bounces: {new} is not a Maildir folder")
        for entry in sorted(new.iterdir()):
            if entry.is_file() and not entry.name.startswith("."):
                yield entry.name, entry.read_bytes()

    def done(self, key: str) -> None:
        """Move new/<key> to cur/<key>:2,S (atomic within the Maildir)."""
        (self.path / "cur").mkdir(exist_ok=True)
        os.replace(self.path / "new" / key, self.path / "cur" / f"{key}:2,S")


class ImapBox:
    """An IMAP folder: messages read with BODY.PEEK (left unread); processed ones are moved
    to the processed folder, or flagged \\Seen and $PaperbotRead when there is none."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self.client = _connect(settings)

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """Every message of the folder (not yet flagged, when flags mark the processed)."""
        query = "ALL" if self.settings.processed_folder else f"UNKEYWORD {KEYWORD}"
        found = _ok(self.client.uid("SEARCH", query), "search")
        uids = found[0].split() if found and isinstance(found[0], bytes) else []
        for uid in uids:
            data = _ok(self.client.uid("FETCH", uid.decode(), "(BODY.PEEK[])"), "fetch")
            body = next((d[1] for d in data if isinstance(d, tuple)), None)
            if isinstance(body, bytes):
                yield uid.decode(), body

    def done(self, key: str) -> None:
        """MOVE to the processed folder (created if missing), or flag it."""
        folder = self.settings.processed_folder
        if folder is None:
            _ok(self.client.uid("STORE", key, "+FLAGS", f"(\\Seen {KEYWORD})"), "store")
            return
        typ, _ = self.client.uid("MOVE", key, _quoted(folder))
        if typ != "OK":  # the folder does not exist yet
            self.client.create(_quoted(folder))
            _ok(self.client.uid("MOVE", key, _quoted(folder)), "move")

    def close(self) -> None:
        """Log out (errors on the way out do not matter)."""
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self.client.logout()


def _connect(settings: ImapSettings) -> imaplib.IMAP4:
    """Log in and select the folder, within the timeout; BounceReadError on any failure."""
    where = f"{settings.host}:{settings.effective_port}"
    password = settings.password()
    if password is None:
        raise BounceReadError(f"bounces: environment variable {settings.password_env} is not set")
    try:
        if settings.security == "tls":
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                settings.host,
                settings.effective_port,
                ssl_context=tls_context(settings),
                timeout=settings.timeout,
            )
        else:
            client = imaplib.IMAP4(settings.host, settings.effective_port, settings.timeout)
            if settings.security == "starttls":
                client.starttls(tls_context(settings))
        client.login(settings.username, password)
        _ok(client.select(_quoted(settings.folder)), f"select {settings.folder}")
    except ssl.SSLCertVerificationError as exc:
        raise BounceReadError(
            f"bounces: IMAP {where}: certificate not trusted ({exc.verify_message});"
            " bounces.imap.ca_file names the CA to trust"
        ) from None
    except ssl.SSLError as exc:
        raise BounceReadError(f"bounces: IMAP {where}: TLS failed ({exc.reason})") from None
    except (OSError, imaplib.IMAP4.error) as exc:
        raise BounceReadError(f"bounces: IMAP {where}: {exc}") from None
    return client


def tls_context(settings: ImapSettings) -> ssl.SSLContext:
    """Certificates always verified: against `ca_file` when set, else the system's CAs."""
    cafile = str(settings.ca_file) if settings.ca_file else None
    return ssl.create_default_context(cafile=cafile)


def _ok(answer: tuple[str, Sequence[object]], what: str) -> Sequence[object]:
    typ, data = answer
    if typ != "OK":
        raise BounceReadError(f"bounces: IMAP {what} failed: {data!r:.200}")
    return data


def _quoted(folder: str) -> str:
    return f'"{folder}"'


@dataclass(frozen=True, slots=True)
class ReadReport:
    """How many messages of each outcome one read dealt with."""

    counts: Counter[str]

    def line(self) -> str:
        """One line for the run's log and `paperbot bounces`."""
        if not self.counts:
            return "bounces: no new messages"
        return "bounces: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in self.counts.items())


def open_mailbox(config: Config) -> tuple[Mailbox, ImapBox | None]:
    """The configured mailbox (and the IMAP connection to close, if it is one)."""
    settings = config.bounces
    if settings is None:
        raise BounceReadError("bounces: no bounces: section in the config")
    if settings.imap is not None:
        box = ImapBox(settings.imap)
        return box, box
    assert settings.maildir is not None  # the config says one of the two
    return MaildirBox(settings.maildir), None


def read_mailbox(config: Config, store: Store) -> ReadReport:
    """Read every new message of the configured mailbox and apply what it says."""
    box, imap = open_mailbox(config)
    try:
        return read_messages(config, store, box)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise BounceReadError(f"bounces: {exc}") from None
    finally:
        if imap is not None:
            imap.close()


def read_messages(config: Config, store: Store, box: Mailbox) -> ReadReport:
    """Deal with each message of the box: record it and its effect, then set it aside."""
    counts: Counter[str] = Counter()
    suspend_after = config.smtp.max_hard_bounces if config.smtp else 3
    for key, raw in box.messages():
        identity = message_identity(raw)
        if store.mail_read.known(identity):
            if store.mail_read.outcome(identity) != "reported":
                box.done(key)  # recorded before a crash, never moved: move it now
            continue
        verdict = classify(config, store, message_from_bytes(raw))
        store.mail_read.record(
            identity,
            verdict.outcome,
            verdict.subscriber_id,
            verdict.detail,
            suspend_after=suspend_after,
        )
        counts[verdict.outcome] += 1
        if verdict.outcome == "reported":
            log.warning("bounces: message %s left unread: %s", key, verdict.detail)
        else:
            if verdict.outcome == "unsubscribed":
                log.info("bounces: %s", verdict.detail)
            box.done(key)
    return ReadReport(counts)


def message_identity(raw: bytes) -> str:
    """A message's identity: the hash of its bytes with CRLF line ends (an IMAP server hands
    out CRLF whatever the file holds), so the same message is the same in either mailbox."""
    return "sha256:" + hashlib.sha256(re.sub(rb"\r?\n", b"\r\n", raw)).hexdigest()


def classify(config: Config, store: Store, msg: Message) -> Verdict:
    """What a message read back is, and whose (only subscribers are ever named)."""
    recipients = _recipients(msg)
    unsubscribe = letterhead(config).unsubscribe_mailto.lower()
    failures = read_bounce(msg)
    if failures is None and unsubscribe in recipients:
        return _unsubscribe(store, msg)
    if failures is None:
        return Verdict("reported", None, f"not a bounce: {_subject(msg)}")
    return _bounce(config, store, failures, recipients)


def _unsubscribe(store: Store, msg: Message) -> Verdict:
    sender = parseaddr(str(msg.get("From", "")))[1].strip().lower()
    subscriber_id = store.subscribers.id_of(sender) if sender else None
    if subscriber_id is None:
        return Verdict("ignored", None, f"unsubscribe request from a non-subscriber {sender!r}")
    return Verdict("unsubscribed", subscriber_id, f"{sender} unsubscribed by mail")


def _bounce(
    config: Config, store: Store, failures: tuple[Failure, ...], recipients: set[str]
) -> Verdict:
    hard = next((f for f in failures if f.hard), None)
    tagged = _tagged_subscriber(recipients)
    if tagged is not None and store.mail_read.is_subscriber(tagged):
        worst = hard or (failures[0] if failures else None)
        why = worst.reason if worst else "a bounce naming no address"
        outcome: MailOutcome = "hard_bounce" if hard else "soft_bounce"
        return Verdict(outcome, tagged, why)
    for failure in sorted(failures, key=lambda f: not f.hard):
        subscriber_id = store.subscribers.id_of(failure.address)
        if subscriber_id is not None:
            outcome = "hard_bounce" if failure.hard else "soft_bounce"
            return Verdict(outcome, subscriber_id, f"{failure.address}: {failure.reason}")
    named = ", ".join(f.address for f in failures) or "no address"
    return Verdict("ignored", None, f"a bounce for no subscriber ({named})")


def _tagged_subscriber(recipients: set[str]) -> int | None:
    """The subscriber a VERP tag (`bot+b-<id>-<sig>@…`) among the recipients names."""
    secret = secret_from_env()
    if not secret:
        return None
    for address in recipients:
        if match := _TAG.search(address):
            found = read_bounce_tag(secret, match.group(1))
            if found is not None:
                return found
    return None


def _recipients(msg: Message) -> set[str]:
    values = [str(v) for h in _RECIPIENT_HEADERS for v in msg.get_all(h, [])]
    return {a.strip().lower() for _, a in getaddresses(values) if a}


def _subject(msg: Message) -> str:
    return re.sub(r"\s+", " ", str(msg.get("Subject", "(no subject)")))[:120]


def read_bounces(config: Config) -> ReadReport:
    """`paperbot bounces`: read the mailbox now against the configured store.

    No run lock: two reads at once cannot count a message twice (its record is unique).
    """
    with Store.open(config.database, busy_timeout=config.scheduling.database_wait) as store:
        store.subscribers.sync_config(config.subscribers)  # the file's subscribers, as a run
        return read_mailbox(config, store)


def read_after_run(config: Config, store: Store) -> str | None:
    """A run's read of the mailbox: its line, or one error line; never stops the run."""
    if config.bounces is None:
        return None
    try:
        line = read_mailbox(config, store).line()
    except PaperbotError as exc:
        log.warning("%s", exc)
        return str(exc)
    log.info("%s", line)
    return None


async def read_in_worker(config: Config) -> None:
    """The worker's read after a delivery job, in a thread with its own connection to the
    store: the mailbox's blocking waits (IMAP, up to its timeout) must not hold the worker's
    event loop, which also runs the other jobs and, with `run --web`, the web app."""
    if config.bounces is None:
        return

    def read() -> None:
        try:
            with Store.open(config.database, busy_timeout=config.scheduling.database_wait) as store:
                read_after_run(config, store)
        except PaperbotError as exc:  # the store busy or broken: the next delivery tries again
            log.warning("bounces: not read: %s", exc)

    await asyncio.to_thread(read)


def bounce_line(config: Config) -> str:
    """What `check-config` says about reading bounces back."""
    settings = config.bounces
    if settings is None:
        return "bounces: not read back (no bounces: section); only 5xx at send time count"
    if settings.imap is not None:
        imap = settings.imap
        where = (
            f"IMAP {imap.host}:{imap.effective_port} ({imap.security}) as {imap.username},"
            f" folder {imap.folder}, processed moved to {imap.processed_folder}"
            if imap.processed_folder
            else f"IMAP {imap.host}:{imap.effective_port} ({imap.security}) as"
            f" {imap.username}, folder {imap.folder}, processed flagged {KEYWORD}"
        )
        if imap.security != "none":
            where += f"; certificate checked against {imap.ca_file or 'the system CAs'}"
    else:
        where = f"Maildir {settings.maildir} (processed moved to cur/)"
    verp = "on: bot+b-<tag>@… names the subscriber" if settings.verp else "off"
    return f"bounces: read after each run from {where}; VERP envelope sender {verp}"
