"""Bounces and mailed unsubscribes read back (issue 15, item 2), with real parts only.

The real DSN corpus of tests/fixtures/bounces (sisimai's, with the expected class of each
failed recipient in its PROVENANCE.md; the held-out files under heldout/ are not read here)
is put into a real Maildir and into a real IMAP server (dovecot on 127.0.0.1), and read by
`paperbot bounces` in a child process against a real SQLite store.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.mail.links import bounce_tag, read_bounce_tag
from bot.models import Subscriber
from bot.run.bounces import message_identity
from bot.store.store import Store
from tests.cli import run_paperbot
from tests.httpserver import LocalHTTPServer
from tests.imapserver import PASSWORD, USER, ImapTestServer, dovecot_missing, imap_server
from tests.integration.test_once import arxiv_source, smtp_section, write_config
from tests.integration.test_worker import paperbot, stop, wait_until
from tests.smtpserver import SmtpTestServer, TlsCertificate

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "bounces"
_ROW = re.compile(
    r"^\| `(?P<file>[^`/]+\.eml)` \|.*\| (?P<cls>hard|soft|not a bounce) \| (?P<rc>.*) \|"
)
_RECIPIENT = re.compile(r"`([^`]+@[^`]+)` \((hard|soft),")
#: hard bounces the classifier calls soft (safe: only slower to suspend), each for a reason
#: in its wording: no code and no wording it trusts (exchange2003), "may be blacklisted"
#: (exim_31), Microsoft's 5.4.1 "Access denied" (rhost_microsoft_02)
WEAKER = {
    "exchange2003_01_userunknown.eml",
    "exim_31_hostunknown.eml",
    "rhost_microsoft_02_userunknown.eml",
}
#: soft bounces whose failed address is not found (nothing is counted either way)
UNFOUND = {"exim_60_mailboxfull.eml", "qmail_08_mailboxfull.eml"}
SECRET = "test-secret-for-verp"


def corpus() -> dict[str, tuple[str, dict[str, str]]]:
    """File -> (its class, {failed address: class}) for every file outside heldout/."""
    table = {}
    for line in (CORPUS / "PROVENANCE.md").read_text().splitlines():
        if m := _ROW.match(line):
            found = {a.lower(): c for a, c in _RECIPIENT.findall(m["rc"])}
            table[m["file"]] = (m["cls"], found)
    return table


def identity(data: bytes) -> str:
    return message_identity(data)


def maildir(root: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def config_for(tmp_path: Path, bounces: dict[str, Any], emails: list[str], **more: Any) -> Path:
    """Subscribers (from the config file) and the bounces: section; no mail is sent here."""
    return write_config(
        tmp_path,
        smtp={
            "host": "127.0.0.1",
            "port": 9,
            "security": "none",
            "from": "paperbot <bot@example.org>",
            "max_hard_bounces": more.pop("max_hard_bounces", 1000),
        },
        bounces=bounces,
        subscribers=[{"email": e, "keywords": ["x"]} for e in emails],
        scheduling={"database_wait": 0.5},
        **more,
    )


def imap_section(server: ImapTestServer, security: str = "none", **more: Any) -> dict[str, Any]:
    """The `bounces.imap` section for this test server: its TLS or plain port as `security`
    asks, the password from TEST_IMAP_PASSWORD; `more` adds or replaces options."""
    return {
        "host": "127.0.0.1",
        "port": server.tls_port if security == "tls" else server.port,
        "security": security,
        "username": USER,
        "password_env": "TEST_IMAP_PASSWORD",
        "timeout": 5,
        **more,
    }


def outcomes(database: Path) -> dict[str, tuple[str, str | None]]:
    """identity -> (outcome, subscriber's address) of every message read."""
    with Store.open(database) as store:
        return {i: (o, e) for i, o, e, _ in store.mail_read.outcomes()}


def hard_counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as conn:
        return dict(conn.execute("SELECT email, hard_bounces FROM subscribers"))


def check_corpus(database: Path, table: dict[str, tuple[str, dict[str, str]]]) -> None:
    """Every file read as PROVENANCE.md says, and no address wrongly counted hard."""
    got = outcomes(database)
    assert len(got) == len(table)
    for name, (cls, failed) in table.items():
        outcome, who = got[identity((CORPUS / name).read_bytes())]
        if cls == "not a bounce":  # a positive DSN is read (and set aside), not counted
            want = "ignored" if name == "rfc3464_28_delivered.eml" else "reported"
            assert outcome == want, name
        elif cls == "hard" and name not in WEAKER:
            assert outcome == "hard_bounce", name
            assert failed[who or ""] == "hard", name
        elif name in UNFOUND:
            assert outcome == "ignored", name
        else:
            assert outcome == "soft_bounce", name
            assert who in failed, name
    # safety: a subscriber's hard count is exactly the files that call them hard
    expected: dict[str, int] = {}
    for name, (cls, _failed) in table.items():
        if cls == "hard" and name not in WEAKER:
            who = got[identity((CORPUS / name).read_bytes())][1] or ""
            expected[who] = expected.get(who, 0) + 1
    counted = {e: n for e, n in hard_counts(database).items() if n}
    assert counted == expected


def all_addresses(table: dict[str, tuple[str, dict[str, str]]]) -> list[str]:
    return sorted({a for _, failed in table.values() for a in failed})


def test_every_corpus_file_read_from_a_maildir(tmp_path: Path) -> None:
    table = corpus()
    box = maildir(tmp_path / "Maildir")
    for name in table:
        shutil.copy(CORPUS / name, box / "new" / name)
    config = config_for(tmp_path, {"maildir": str(box)}, all_addresses(table))
    result = run_paperbot(config, "bounces")
    assert result.returncode == 0, result.stderr
    # the operator reads paperbot's lines, not the parser library's trace of its detectors
    assert "detector" not in result.stderr
    check_corpus(tmp_path / "paperbot.db", table)
    left = sorted(p.name for p in (box / "new").iterdir())
    assert left == sorted(
        n for n, (c, _) in table.items() if c == "not a bounce" and n != "rfc3464_28_delivered.eml"
    )
    assert len(list((box / "cur").iterdir())) == len(table) - len(left)
    # a second read counts nothing again and reports the strangers no more
    before = hard_counts(tmp_path / "paperbot.db")
    again = run_paperbot(config, "bounces")
    assert again.returncode == 0, again.stderr
    assert "no new messages" in again.stdout
    assert "left unread" not in again.stderr
    assert hard_counts(tmp_path / "paperbot.db") == before


@pytest.mark.skipif(dovecot_missing() is not None, reason=str(dovecot_missing()))
@pytest.mark.parametrize(
    ("security", "processed"),
    [
        ("none", "paperbot-processed"),
        ("none", None),
        ("tls", "paperbot-processed"),  # the server refuses any login without TLS
        ("starttls", None),
    ],
)
def test_every_corpus_file_read_from_a_real_imap_server(
    tmp_path: Path, security: str, processed: str | None, request: pytest.FixtureRequest
) -> None:
    table = corpus()
    certificate = None if security == "none" else request.getfixturevalue("tls_certificate")
    with imap_server(certificate) as server:
        for name in table:
            server.deliver(name, (CORPUS / name).read_bytes())
        imap = imap_section(server, security, processed_folder=processed)
        if certificate is not None:  # a private CA: the self-signed certificate itself
            imap["ca_file"] = str(certificate.cert)
        config = config_for(tmp_path, {"imap": imap}, all_addresses(table))
        os.environ["TEST_IMAP_PASSWORD"] = PASSWORD
        try:
            result = run_paperbot(config, "bounces")
            again = run_paperbot(config, "bounces")
        finally:
            del os.environ["TEST_IMAP_PASSWORD"]
        assert result.returncode == 0, result.stderr
        check_corpus(tmp_path / "paperbot.db", table)
        assert again.returncode == 0, again.stderr
        assert "no new messages" in again.stdout
        strangers = sum(1 for c, _ in table.values() if c == "not a bounce") - 1  # -1: the DSN
        if processed:  # moved: the processed folder holds the rest
            moved = server.folder(processed)
            assert len(list((moved / "cur").iterdir()) + list((moved / "new").iterdir())) == (
                len(table) - strangers
            )
        # the strangers stay unread in the inbox either way
        inbox = server.maildir
        unread = [p for p in (inbox / "cur").iterdir() if "S" not in p.name.partition(":2,")[2]]
        unread += list((inbox / "new").iterdir())
        assert len(unread) == strangers


def test_a_wrong_imap_password_is_one_line(tmp_path: Path) -> None:
    if dovecot_missing():
        pytest.skip(str(dovecot_missing()))
    with imap_server() as server:
        imap = imap_section(server, password_env="TEST_IMAP_WRONG")
        config = config_for(tmp_path, {"imap": imap}, ["a@example.org"])
        os.environ["TEST_IMAP_WRONG"] = "not-the-password"
        try:
            result = run_paperbot(config, "bounces")
        finally:
            del os.environ["TEST_IMAP_WRONG"]
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "IMAP 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(dovecot_missing() is not None, reason=str(dovecot_missing()))
@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_an_untrusted_imap_certificate_is_refused_in_one_line(
    tmp_path: Path, security: str, tls_certificate: TlsCertificate
) -> None:
    with imap_server(tls_certificate) as server:
        server.deliver("a.eml", (CORPUS / "postfix_04_userunknown.eml").read_bytes())
        # no ca_file: the self-signed certificate is checked against the system's CAs
        imap = imap_section(server, security)
        config = config_for(tmp_path, {"imap": imap}, ["a@example.org"])
        os.environ["TEST_IMAP_PASSWORD"] = PASSWORD
        try:
            result = run_paperbot(config, "bounces")
        finally:
            del os.environ["TEST_IMAP_PASSWORD"]
        assert list((server.maildir / "new").iterdir())  # nothing was read
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert f"IMAP 127.0.0.1:{imap['port']}: certificate not trusted" in result.stderr
    assert "self-signed certificate" in result.stderr  # the reason, from the TLS library
    assert "Traceback" not in result.stderr
    assert not outcomes(tmp_path / "paperbot.db")


def test_a_store_locked_while_reading_never_counts_a_bounce_twice(tmp_path: Path) -> None:
    box = maildir(tmp_path / "Maildir")
    who = "kijitora@example.co.jp"  # postfix_04: 5.1.1 user unknown
    config = config_for(tmp_path, {"maildir": str(box)}, [who])
    assert run_paperbot(config, "bounces").returncode == 0  # the store exists
    shutil.copy(CORPUS / "postfix_04_userunknown.eml", box / "new" / "m1")
    lock = sqlite3.connect(tmp_path / "paperbot.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # another writer holds the store past database_wait
    try:
        failed = run_paperbot(config, "bounces")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert (box / "new" / "m1").exists()  # not recorded: still new, nothing counted
    assert hard_counts(tmp_path / "paperbot.db")[who] == 0
    assert run_paperbot(config, "bounces").returncode == 0
    assert run_paperbot(config, "bounces").returncode == 0
    assert hard_counts(tmp_path / "paperbot.db")[who] == 1


def test_a_crash_between_recording_and_moving_never_counts_twice(tmp_path: Path) -> None:
    box = maildir(tmp_path / "Maildir")
    who = "kijitora@example.co.jp"
    config = config_for(tmp_path, {"maildir": str(box)}, [who])
    shutil.copy(CORPUS / "postfix_04_userunknown.eml", box / "new" / "m1")
    (box / "cur").rmdir()
    (box / "cur").write_text("not a folder")  # the move fails after the record committed
    failed = run_paperbot(config, "bounces")
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert hard_counts(tmp_path / "paperbot.db")[who] == 1
    assert (box / "new" / "m1").exists()
    (box / "cur").unlink()
    (box / "cur").mkdir()
    fixed = run_paperbot(config, "bounces")
    assert fixed.returncode == 0, fixed.stderr
    assert hard_counts(tmp_path / "paperbot.db")[who] == 1  # moved now, not counted again
    assert not (box / "new" / "m1").exists()


def test_hard_bounces_read_back_suspend_with_the_operator_notice(tmp_path: Path) -> None:
    box = maildir(tmp_path / "Maildir")
    who = "userunknown@example.jp"  # 5.1.1 in both (Gmail; OpenSMTPD)
    config = config_for(tmp_path, {"maildir": str(box)}, [who], max_hard_bounces=2)
    shutil.copy(CORPUS / "gmail_01_userunknown.eml", box / "new" / "m1")
    shutil.copy(CORPUS / "opensmtpd_02_mailboxfull+userunknown.eml", box / "new" / "m2")
    assert run_paperbot(config, "bounces").returncode == 0
    with Store.open(tmp_path / "paperbot.db") as store:
        record = store.subscribers.find(who)
        assert record is not None
        assert record.subscriber.status == "suspended"
        events = store.notices.unnotified_events()
    assert [(e.kind, e.email) for e in events] == [("subscriber_suspended", who)]


def test_soft_bounces_are_recorded_and_never_suspend(tmp_path: Path) -> None:
    box = maildir(tmp_path / "Maildir")
    who = "kijitora@example.jp"  # mailbox full (Outlook 5.2.2, Gmail 4.2.2, qmail 4.2.2)
    config = config_for(tmp_path, {"maildir": str(box)}, [who], max_hard_bounces=1)
    for name in (
        "outlook_01_mailboxfull.eml",
        "gmail_06_mailboxfull.eml",
        "qmail_06_mailboxfull.eml",
    ):
        shutil.copy(CORPUS / name, box / "new" / name)
    assert run_paperbot(config, "bounces").returncode == 0
    got = outcomes(tmp_path / "paperbot.db")
    assert sorted(got.values()) == [("soft_bounce", who)] * 3
    with Store.open(tmp_path / "paperbot.db") as store:
        record = store.subscribers.find(who)
        assert record is not None
        assert record.subscriber.status == "active"


def test_status_counts_the_bounces_read_back_in_the_last_week(tmp_path: Path) -> None:
    box = maildir(tmp_path / "Maildir")
    soft, hard = "kijitora@example.jp", "userunknown@example.jp"
    config = config_for(tmp_path, {"maildir": str(box)}, [soft, hard])
    for name in ("outlook_01_mailboxfull.eml", "gmail_06_mailboxfull.eml"):
        shutil.copy(CORPUS / name, box / "new" / name)
    shutil.copy(CORPUS / "gmail_01_userunknown.eml", box / "new" / "hard")
    assert run_paperbot(config, "bounces").returncode == 0, "read"
    with Store.open(tmp_path / "paperbot.db") as store:  # one read 8 days ago: not counted
        eight_days_ago = datetime.now(UTC) - timedelta(days=8)
        store.mail_read.record(
            "sha256:old", "hard_bounce", None, "old", suspend_after=3, now=eight_days_ago
        )
    result = run_paperbot(config, "status")
    assert "bounces read back in the last 7 days: 1 hard, 2 soft\n" in result.stdout


def test_a_bounce_for_a_non_subscriber_is_ignored(tmp_path: Path) -> None:
    box = maildir(tmp_path / "Maildir")
    config = config_for(tmp_path, {"maildir": str(box)}, ["reader@example.org"], max_hard_bounces=1)
    shutil.copy(CORPUS / "postfix_04_userunknown.eml", box / "new" / "m1")
    assert run_paperbot(config, "bounces").returncode == 0
    assert list(outcomes(tmp_path / "paperbot.db").values()) == [("ignored", None)]
    assert hard_counts(tmp_path / "paperbot.db") == {"reader@example.org": 0}
    assert not (box / "new" / "m1").exists()  # dealt with: moved


def unsubscribe_mail(sender: str) -> bytes:
    """A hand-made request to the List-Unsubscribe mailto: (what a mail client sends)."""
    return (
        f"From: Reader <{sender}>\r\nTo: bot+unsubscribe@example.org\r\n"
        "Subject: unsubscribe\r\nMessage-ID: <u1@example.net>\r\n\r\nunsubscribe\r\n"
    ).encode()


def test_a_mailed_unsubscribe_unsubscribes_a_subscriber_only(tmp_path: Path) -> None:
    box = maildir(tmp_path / "Maildir")
    config = config_for(tmp_path, {"maildir": str(box)}, ["stays@example.org"])
    assert run_paperbot(config, "bounces").returncode == 0
    with Store.open(tmp_path / "paperbot.db") as store:  # a web subscriber, confirmed
        web = Subscriber("leaves@example.net", keywords=("x",), origin="web", status="pending")
        store.subscribers.sign_up(web)
        assert store.subscribers.confirm(web.email, 0) is not None
    (box / "new" / "m1").write_bytes(unsubscribe_mail("leaves@example.net"))
    (box / "new" / "m2").write_bytes(unsubscribe_mail("stranger@example.com"))
    result = run_paperbot(config, "bounces")
    assert result.returncode == 0, result.stderr
    with Store.open(tmp_path / "paperbot.db") as store:
        gone = store.subscribers.find("leaves@example.net")
        stays = store.subscribers.find("stays@example.org")
        events = store.notices.events("unsubscribed_by_mail")
    assert gone is not None
    assert gone.subscriber.status == "unsubscribed"
    assert stays is not None
    assert stays.subscriber.status == "active"
    assert [e.email for e in events] == ["leaves@example.net"]
    assert sorted(o for o, _ in outcomes(tmp_path / "paperbot.db").values()) == [
        "ignored",
        "unsubscribed",
    ]


def test_a_verp_tag_names_the_subscriber(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    box = maildir(tmp_path / "Maildir")
    who = "reader@example.org"  # not the address the bounce names: only the tag says who
    config = config_for(tmp_path, {"maildir": str(box)}, [who], max_hard_bounces=1)
    monkeypatch.setenv("PAPERBOT_SECRET_KEY", SECRET)
    assert run_paperbot(config, "bounces").returncode == 0
    with Store.open(tmp_path / "paperbot.db") as store:
        subscriber_id = store.subscribers.id_of(who)
    assert subscriber_id is not None
    tag = bounce_tag(SECRET, subscriber_id)
    raw = (CORPUS / "postfix_04_userunknown.eml").read_bytes()
    tagged = re.sub(rb"(?m)^To: .*$", f"To: bot+{tag}@example.org".encode(), raw, count=1)
    forged = re.sub(rb"(?m)^To: .*$", f"To: bot+{tag[:-1]}0@example.org".encode(), raw, count=1)
    (box / "new" / "m1").write_bytes(forged)
    assert run_paperbot(config, "bounces").returncode == 0
    assert hard_counts(tmp_path / "paperbot.db")[who] == 0  # a forged tag names nobody
    (box / "new" / "m2").write_bytes(tagged)
    assert run_paperbot(config, "bounces").returncode == 0
    assert hard_counts(tmp_path / "paperbot.db")[who] == 1


def test_verp_tags_are_short_signed_and_case_proof() -> None:
    tag = bounce_tag(SECRET, 123456)
    assert len(f"paperbot+{tag}") <= 64
    assert tag == tag.lower()
    assert read_bounce_tag(SECRET, tag) == 123456
    assert read_bounce_tag(SECRET, tag.upper()) == 123456
    assert read_bounce_tag("another-secret", tag) is None
    assert read_bounce_tag(SECRET, tag.replace("b-2n9c", "b-2n9d")) is None


#: the subscriber of the served arXiv day whose address postfix_04 says is unknown
READER = "kijitora@example.co.jp"


def reader_and_bounce(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer, **more: Any
) -> tuple[Path, Path]:
    """(Maildir, config): READER follows "diffusion" in the served arXiv day, suspended at
    the first hard bounce; postfix_04's bounce for them waits in the Maildir."""
    box = maildir(tmp_path / "Maildir")
    config = write_config(
        tmp_path,
        sources=[arxiv_source(http_server)],
        smtp=smtp_section(smtp_server) | {"max_hard_bounces": 1},
        bounces={"maildir": str(box)},
        subscribers=[{"email": READER, "keywords": ["diffusion"]}],
        **more,
    )
    shutil.copy(CORPUS / "postfix_04_userunknown.eml", box / "new" / "m1")
    return box, config


def test_a_run_sends_with_verp_and_reads_bounces_after_delivery(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, config = reader_and_bounce(tmp_path, http_server, smtp_server)
    monkeypatch.setenv("PAPERBOT_SECRET_KEY", SECRET)
    result = run_paperbot(config, "once")
    assert result.returncode == 0, result.stderr
    [received] = smtp_server.received
    local, _, domain = received.mail_from.partition("@")
    assert domain == "example.org"
    assert local.startswith("bot+b-")
    with Store.open(tmp_path / "paperbot.db") as store:
        assert read_bounce_tag(SECRET, local.partition("+")[2]) == store.subscribers.id_of(READER)
        record = store.subscribers.find(READER)
    assert record is not None
    assert record.subscriber.status == "suspended"  # read back after the digest went out


def test_a_run_whose_bounce_mailbox_is_missing_still_sends(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    config = write_config(
        tmp_path,
        sources=[arxiv_source(http_server)],
        smtp=smtp_section(smtp_server),
        bounces={"maildir": str(tmp_path / "no-such-maildir")},
        subscribers=[{"email": "reader@example.org", "keywords": ["diffusion"]}],
    )
    result = run_paperbot(config, "once")
    assert len(smtp_server.received) == 1
    assert result.returncode == 1  # something needs the operator's attention
    lines = [line for line in result.stderr.splitlines() if "no-such-maildir" in line]
    assert len(lines) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(dovecot_missing() is not None, reason=str(dovecot_missing()))
def test_a_run_whose_imap_certificate_is_untrusted_still_sends(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    tls_certificate: TlsCertificate,
) -> None:
    with imap_server(tls_certificate) as server:
        imap = imap_section(server, "tls")
        config = write_config(
            tmp_path,
            sources=[arxiv_source(http_server)],
            smtp=smtp_section(smtp_server),
            bounces={"imap": imap},
            subscribers=[{"email": "reader@example.org", "keywords": ["diffusion"]}],
        )
        os.environ["TEST_IMAP_PASSWORD"] = PASSWORD
        try:
            result = run_paperbot(config, "once")
        finally:
            del os.environ["TEST_IMAP_PASSWORD"]
    assert len(smtp_server.received) == 1
    assert result.returncode == 1  # something needs the operator's attention
    lines = [line for line in result.stderr.splitlines() if "certificate not trusted" in line]
    assert len(lines) == 1
    assert f"IMAP 127.0.0.1:{server.tls_port}" in lines[0]
    assert "Traceback" not in result.stderr


def test_check_config_shows_the_imap_certificate_check(
    tmp_path: Path, tls_certificate: TlsCertificate
) -> None:
    imap = {"host": "mail.example.org", "username": "u", "password_env": "P"}
    config = config_for(tmp_path, {"imap": imap}, ["a@example.org"])
    result = run_paperbot(config, "check-config")
    assert "(tls)" in result.stdout
    assert "certificate checked against the system CAs" in result.stdout
    imap["ca_file"] = str(tls_certificate.cert)
    config = config_for(tmp_path, {"imap": imap}, ["a@example.org"])
    result = run_paperbot(config, "check-config")
    assert result.returncode == 0, result.stderr
    assert f"certificate checked against {tls_certificate.cert}" in result.stdout


def test_check_config_shows_the_bounce_mailbox(tmp_path: Path) -> None:
    config = config_for(tmp_path, {"maildir": str(tmp_path / "Maildir")}, ["a@example.org"])
    result = run_paperbot(config, "check-config")
    assert result.returncode == 0, result.stderr
    assert f"bounces: read after each run from Maildir {tmp_path / 'Maildir'}" in result.stdout


@pytest.mark.parametrize(
    ("bounces", "error"),
    [
        ({}, "exactly one of imap: or maildir:"),
        (
            {"maildir": "/x", "imap": {"host": "h", "username": "u", "password_env": "P"}},
            "exactly one",
        ),
        ({"imap": {"host": "h:993", "username": "u", "password_env": "P"}}, "not a host name"),
        ({"imap": {"host": "h", "username": "u"}}, "password_env"),
        ({"imap": {"host": "h", "username": "u", "password_env": "P", "timeout": 0}}, "timeout"),
        (
            {"imap": {"host": "h", "username": "u", "password_env": "P", "ca_file": "/no/ca.pem"}},
            "bounces.imap.ca_file: /no/ca.pem is not a file",
        ),
        (  # a readable file that is no certificate: this test's own source
            {"imap": {"host": "h", "username": "u", "password_env": "P", "ca_file": __file__}},
            "holds no PEM certificate",
        ),
    ],
)
def test_a_bad_bounces_section_is_one_line(
    tmp_path: Path, bounces: dict[str, Any], error: str
) -> None:
    config = write_config(tmp_path, bounces=bounces)
    result = run_paperbot(config, "check-config")
    assert result.returncode == 2
    assert error in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_the_worker_reads_bounces_after_each_delivery(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    box, config = reader_and_bounce(
        tmp_path,
        http_server,
        smtp_server,
        scheduling={"deliver": "* * * * * *"},  # each second
    )
    log = tmp_path / "worker.log"
    worker = paperbot(config, "run", log=log)
    try:
        wait_until(lambda: not (box / "new" / "m1").exists(), 30, "the bounce read back")
    finally:
        assert stop(worker) == 0, log.read_text()
    assert hard_counts(tmp_path / "paperbot.db") == {READER: 1}
    with Store.open(tmp_path / "paperbot.db") as store:
        record = store.subscribers.find(READER)
    assert record is not None
    assert record.subscriber.status == "suspended"
