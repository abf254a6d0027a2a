"""Delivery against a real SMTP server (aiosmtpd) on 127.0.0.1: crashes, refusals, headers, DKIM.

Each test runs `paperbot` on a real SQLite file with its config pointing at a served arXiv
feed and at the test SMTP server, the way an operator runs it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import multiprocessing
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import dkim
import pytest
import yaml

from bot.cli import main
from bot.config.load import load_config
from bot.config.wiring import letterhead, make_sender
from bot.mail.deliver import DeliveryReport, DeliverySettings, deliver
from bot.mail.links import SECRET_ENV, read_token
from bot.mail.mime import PrebuiltMessage, RenderedDigest, build_message, envelope_headers
from bot.mail.senders import SmtpSender, envelope_sender, message_bytes, recipients_of
from bot.mail.senders.smtp import smtp_data
from bot.store.store import Store
from tests.cli import run_paperbot, start_paperbot
from tests.httpserver import LocalHTTPServer
from tests.smtpserver import PASSWORD, USER, Received, SmtpTestServer

ALL_ARCHIVES = "arxiv/rss_all-archives_2024-11-28_trimmed.xml"
SECRET = "test-secret-" + "x" * 24
BASE_URL = "https://papers.example.org"


# --- helpers ------------------------------------------------------------------------------------


def write_config(tmp_path: Path, feed_url: str, smtp: dict[str, Any] | None, **top: Any) -> Path:
    """A config in tmp_path: one arXiv source, these SMTP settings, the store there too."""
    config: dict[str, Any] = {
        "database": str(tmp_path / "paperbot.db"),
        "outbox": str(tmp_path / "outbox"),
        "fetch": {"timeout": 5, "retries": 0, "backoff": 0},
        "sources": [{"name": "arxiv", "kind": "arxiv-rss", "url": feed_url}],
        **top,
    }
    if smtp is not None:
        config["smtp"] = smtp
    path = tmp_path / "paperbot.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def smtp_settings(server: SmtpTestServer, **extra: Any) -> dict[str, Any]:
    """The smtp: section for the test server; retries come at once (tests stay fast)."""
    return {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "from": "paperbot <bot@example.org>",
        "retry_delay": 0.01,
        **extra,
    }


def readers(count: int, keyword: str = "diffusion") -> list[dict[str, Any]]:
    """`count` subscribers who all follow the same keyword."""
    return [{"email": f"reader{i}@example.org", "keywords": [keyword]} for i in range(count)]


def readers_config(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    count: int,
    **smtp: Any,
) -> Path:
    """A config reading the served arXiv day, sending to the test server, for `count` readers."""
    return write_config(
        tmp_path,
        http_server.url(ALL_ARCHIVES),
        smtp_settings(smtp_server, **smtp),
        subscribers=readers(count),
    )


def run(config: Path, *args: str) -> int:
    """`paperbot --config CONFIG ARGS` in this process."""
    return main(["--config", str(config), *args])


def by_recipient(received: list[Received]) -> dict[str, list[Received]]:
    """The accepted messages grouped by their envelope recipient."""
    groups: dict[str, list[Received]] = defaultdict(list)
    for item in received:
        for recipient in item.recipients:
            groups[recipient].append(item)
    return groups


def digests(config: Path, where: str = "1") -> list[dict[str, Any]]:
    """Digest rows with their subscriber's address, straight from the SQLite file."""
    database = yaml.safe_load(config.read_text())["database"]
    with sqlite3.connect(database) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT d.*, s.email, s.status AS subscriber_status, s.hard_bounces FROM digests d"
            f" JOIN subscribers s ON s.id = d.subscriber_id WHERE {where}"
        )
        return [dict(row) for row in rows]


def part(message: EmailMessage, subtype: str) -> str:
    """The text of the message's text/<subtype> part."""
    body = message.get_body(preferencelist=(subtype,))
    assert body is not None
    return str(body.get_content())


def arxiv_feed(count: int, words: int = 400) -> str:
    """An arXiv RSS day of `count` papers about diffusion with long abstracts."""
    items = []
    for i in range(count):
        abstract = " ".join(
            f"diffusion models of kind {i} and step {j}." for j in range(words // 8)
        )
        items.append(
            f"<item><title>Diffusion study number {i}</title>"
            f"<link>https://arxiv.org/abs/2501.{i:05d}</link>"
            f"<description>arXiv:2501.{i:05d}v1 Announce Type: new \nAbstract: "
            f"{escape(abstract)}</description>"
            f'<guid isPermaLink="false">oai:arXiv.org:2501.{i:05d}v1</guid>'
            "<category>cs.LG</category><arxiv:announce_type>new</arxiv:announce_type>"
            f"<dc:creator>Ada Lovelace, Author Number{i}</dc:creator></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss xmlns:arxiv="http://arxiv.org/schemas/atom"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0"><channel>'
        "<title>cs updates on arXiv.org</title><link>http://rss.arxiv.org/rss/cs</link>"
        f"<description>cs</description>{''.join(items)}</channel></rss>"
    )


# --- crash safety --------------------------------------------------------------------------------


def test_killed_mid_send_and_restarted_every_subscriber_gets_one_digest(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    connections = 4
    config = readers_config(tmp_path, http_server, smtp_server, 60, connections=connections)
    smtp_server.delay_data(0.05)  # slow enough that each kill lands mid-batch
    for kill_after in (8, 30):
        process = start_paperbot(config, "-q", "once")
        try:
            smtp_server.wait_for(kill_after, timeout=60)
        finally:
            process.kill()  # SIGKILL: no cleanup, no goodbye
            process.wait()
    killed_with = len(smtp_server.received)
    assert killed_with < 60, "the kills landed before the end"

    smtp_server.delay_data(0)
    assert run(config, "once") == 0

    groups = by_recipient(smtp_server.received)
    assert sorted(groups) == sorted(f"reader{i}@example.org" for i in range(60))
    doubles = {rcpt: items for rcpt, items in groups.items() if len(items) > 1}
    for items in doubles.values():
        assert len({item.message["Message-ID"] for item in items}) == 1, "a resend is the same"
    assert len(doubles) <= 2 * connections, "only messages in flight at a kill go twice"
    assert {row["status"] for row in digests(config)} == {"sent"}

    assert run(config, "once") == 0
    assert len(smtp_server.received) == sum(map(len, groups.values())), "nothing more to send"


def test_unsubscribed_while_the_run_is_sending_gets_nothing(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    config = readers_config(tmp_path, http_server, smtp_server, 5, connections=1)
    smtp_server.delay_data(0.3)  # the run reads and renders all five before the first is out
    process = start_paperbot(config, "-q", "once")
    try:
        smtp_server.wait_for(1, timeout=60)
        # the web app, in this process with its own connection, while the run sends
        web = Store.open(tmp_path / "paperbot.db")
        try:
            assert web.subscribers.unsubscribe("reader4@example.org", 0)
        finally:
            web.close()
    finally:
        assert process.wait(timeout=60) == 0

    groups = by_recipient(smtp_server.received)
    assert sorted(groups) == [f"reader{i}@example.org" for i in range(4)]
    statuses = {row["email"]: row["status"] for row in digests(config)}
    assert statuses["reader4@example.org"] == "dropped"
    assert {statuses[f"reader{i}@example.org"] for i in range(4)} == {"sent"}


# --- failures ---------------------------------------------------------------------------------


def test_a_4xx_is_retried_within_the_run(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    config = readers_config(tmp_path, http_server, smtp_server, 3)
    smtp_server.fail_next(2)  # two DATA commands get 451, then the server recovers
    assert run(config, "once") == 0
    groups = by_recipient(smtp_server.received)
    assert {rcpt: len(items) for rcpt, items in groups.items()} == {
        f"reader{i}@example.org": 1 for i in range(3)
    }
    assert {row["status"] for row in digests(config)} == {"sent"}


def test_a_4xx_that_lasts_leaves_the_digest_for_the_next_run(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    config = readers_config(tmp_path, http_server, smtp_server, 2)
    smtp_server.refuse("reader1@example.org", 451)
    assert run(config, "once") == 1
    [waiting] = digests(config, "d.status = 'pending'")
    assert waiting["email"] == "reader1@example.org"
    assert waiting["attempts"] == 1
    assert " 451 " in waiting["last_error"]
    assert waiting["hard_bounces"] == 0, "a deferral is not a bounce"

    del smtp_server.behaviour.refuse["reader1@example.org"]
    assert run(config, "once") == 0
    groups = by_recipient(smtp_server.received)
    assert [len(groups[f"reader{i}@example.org"]) for i in range(2)] == [1, 1]


def test_a_5xx_for_one_recipient_fails_only_that_digest_and_suspends_after_n(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = readers_config(tmp_path, http_server, smtp_server, 4, max_hard_bounces=1)
    smtp_server.refuse("reader2@example.org", 550)
    with caplog.at_level(logging.WARNING, logger="bot"):
        assert run(config, "once") == 0, "a bounce is about one address, not a run failure"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    bounces = [r.message for r in caplog.records if r.message.startswith("send: hard bounce: ")]
    assert len(bounces) == 1
    assert bounces[0].startswith("send: hard bounce: reader2@example.org: recipient refused")

    assert sorted(by_recipient(smtp_server.received)) == [
        "reader0@example.org",
        "reader1@example.org",
        "reader3@example.org",
    ]
    [failed] = digests(config, "d.status = 'failed'")
    assert failed["email"] == "reader2@example.org"
    assert re.search(r"recipient refused by 127\.0\.0\.1:\d+: 550 ", failed["last_error"])
    assert failed["subscriber_status"] == "suspended"
    notices = [r.message for r in caplog.records if "operator notice" in r.message]
    assert len(notices) == 1
    assert "reader2@example.org suspended after 1 hard bounces in a row" in notices[0]
    database = yaml.safe_load(config.read_text())["database"]
    with sqlite3.connect(database) as conn:
        events = conn.execute("SELECT kind, detail FROM events").fetchall()
    assert [kind for kind, _ in events] == ["subscriber_suspended"]
    assert "550" in events[0][1]
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("ok",)]

    capsys.readouterr()
    assert run(config, "status") == 0
    out = capsys.readouterr().out
    assert "bounces: 1 addresses refused at their last delivery, 1 subscribers suspended" in out
    assert re.search(
        r"^  reader2@example\.org \(suspended, 1 in a row\): reader2@example\.org: recipient"
        r" refused by 127\.0\.0\.1:\d+: 550 ",
        out,
        re.M,
    )


def test_a_4xx_after_the_final_dot_does_not_count_as_a_transmission(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    # the server answered each time: it does not have the message, so it may go again
    config = readers_config(tmp_path, http_server, smtp_server, 1, retries=3)
    smtp_server.fail_next(3)
    assert run(config, "once") == 0
    assert len(smtp_server.received) == 1
    [row] = digests(config)
    assert (row["status"], row["transmissions"]) == ("sent", 1)


def test_smtp_server_down_for_the_whole_run(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = readers_config(tmp_path, http_server, smtp_server, 3)
    smtp_server.stop()
    with caplog.at_level(logging.ERROR, logger="bot"):
        assert run(config, "once") == 1
    errors = [r.message for r in caplog.records if r.message.startswith("send: ")]
    assert len(errors) == 1, errors
    assert re.match(
        r"send: cannot connect to SMTP server 127\.0\.0\.1:\d+: .*\(tried 3 times\)$", errors[0]
    )
    rows = digests(config)
    assert [row["status"] for row in rows] == ["pending"] * 3
    assert {row["attempts"] for row in rows} == {0}, "nothing was marked"

    smtp_server.start()
    assert run(config, "once") == 0
    assert [len(items) for items in by_recipient(smtp_server.received).values()] == [1, 1, 1]


# --- at most twice, deadlines, the circuit breaker -----------------------------------------------


def day_of(http_server: LocalHTTPServer, papers: int) -> str:
    """Serve an arXiv day of `papers` diffusion papers (numbered from 0); its URL."""
    http_server.route("/rss/cs", body=arxiv_feed(papers, 40), content_type="application/rss+xml")
    return http_server.url("/rss/cs")


@pytest.mark.parametrize("retries", [2, 0])
def test_a_digest_whose_verdict_is_lost_after_the_dot_goes_out_at_most_twice_ever(
    retries: int,
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = write_config(
        tmp_path,
        day_of(http_server, 3),
        smtp_settings(smtp_server, retries=retries),
        subscribers=[{"email": "ada@example.org", "keywords": ["diffusion"]}],
    )
    smtp_server.after_data("drop")  # keeps every copy, its 250 never leaves
    with caplog.at_level(logging.ERROR, logger="bot"):
        # with retries, the one retry goes in this run; without, in the next one
        for _ in range(1 if retries else 2):
            assert run(config, "once") == 1
    [row] = digests(config)
    assert (row["status"], row["transmissions"]) == ("unconfirmed", 2)
    errors = [r.message for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors[-1].endswith(
        "it went out 2 times without a verdict, with the same Message-ID: not sent again"
    )
    copies = smtp_server.received
    assert len(copies) == 2
    assert {copy.message["Message-ID"] for copy in copies} == {row["message_id"]}

    smtp_server.after_data("answer")
    assert run(config, "once") == 0
    assert len(smtp_server.received) == 2, "never a third time"

    # the next day lists papers 3 and 4 besides 0-2: only they are new to ada
    day_of(http_server, 5)
    assert run(config, "once") == 0
    [_, _, later] = smtp_server.received
    text = part(later.message, "plain")
    assert [f"Diffusion study number {i}" in text for i in range(5)] == [False] * 3 + [True] * 2
    assert later.message["Message-ID"] != row["message_id"]

    capsys.readouterr()
    assert run(config, "status") == 0
    assert "1 unconfirmed (sent twice without a verdict)" in capsys.readouterr().out


def test_killed_while_waiting_for_the_verdict_a_digest_still_goes_at_most_twice(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    # patient settings: each run waits for the verdict until it is killed
    config = readers_config(tmp_path, http_server, smtp_server, 1, timeout=60)
    smtp_server.after_data("stall")  # keeps every copy, never answers
    for copies in (1, 2):
        process = start_paperbot(config, "-q", "once")
        try:
            smtp_server.wait_for(copies, timeout=60)
        finally:
            process.kill()  # SIGKILL between the store's count and the verdict
            process.wait()
    smtp_server.after_data("answer")
    result = run_paperbot(config, "once")
    assert result.returncode == 0, result.stderr
    assert "1 digests went out 2 times without a verdict" in result.stderr
    copies = smtp_server.received
    assert len(copies) == 2
    [row] = digests(config)
    assert {copy.message["Message-ID"] for copy in copies} == {row["message_id"]}
    assert (row["status"], row["transmissions"]) == ("unconfirmed", 2)


def test_a_server_that_stalls_trips_the_circuit_breaker_and_the_rest_waits(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit, connections, count = 3, 2, 12
    config = readers_config(
        tmp_path,
        http_server,
        smtp_server,
        count,
        connections=connections,
        message_deadline=0.5,
        max_failures_in_a_row=limit,
    )
    smtp_server.stall("MAIL")  # greets and answers EHLO, then never a word
    with caplog.at_level(logging.ERROR, logger="bot"):
        assert run(config, "once") == 1
    errors = [r.message for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert re.fullmatch(
        rf"send: stopped sending after {limit} timeouts or lost connections in a row with"
        rf" 127\.0\.0\.1:{smtp_server.port} \(last: .+ did not answer within the 0\.5 s message"
        r" deadline\); the rest waits for the next run",
        errors[0],
    )
    # the connections fail side by side: the breaker trips within one round of them
    assert limit <= smtp_server.stalled("MAIL") < limit + connections
    assert {(row["status"], row["transmissions"]) for row in digests(config)} == {("pending", 0)}

    smtp_server.stall()
    assert run(config, "once") == 0
    groups = by_recipient(smtp_server.received)
    assert sorted(groups) == sorted(f"reader{i}@example.org" for i in range(count))
    assert all(len(items) == 1 for items in groups.values())


def test_wrong_password_is_one_clear_error_and_nothing_is_marked(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = smtp_server_factory(auth=True)
    monkeypatch.setenv("PAPERBOT_TEST_SMTP_PASSWORD", "wrong")
    config = write_config(
        tmp_path,
        http_server.url(ALL_ARCHIVES),
        smtp_settings(server, username=USER, password_env="PAPERBOT_TEST_SMTP_PASSWORD"),
        subscribers=readers(3),
    )
    with caplog.at_level(logging.ERROR, logger="bot"):
        assert run(config, "once") == 1
    errors = [r.message for r in caplog.records if r.message.startswith("send: ")]
    assert len(errors) == 1, errors
    assert re.fullmatch(
        rf"send: SMTP authentication failed for user {USER} at 127\.0\.0\.1:{server.port}: 535 .+",
        errors[0],
    )
    assert server.received == []
    assert {(row["status"], row["attempts"]) for row in digests(config)} == {("pending", 0)}

    monkeypatch.setenv("PAPERBOT_TEST_SMTP_PASSWORD", PASSWORD)
    assert run(config, "once") == 0
    assert len(server.received) == 3


def test_a_certificate_failure_is_one_clear_error_and_not_retried(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server_factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = smtp_server_factory(security="tls")  # self-signed: this machine does not trust it
    config = write_config(
        tmp_path,
        http_server.url(ALL_ARCHIVES),
        smtp_settings(server, security="tls"),
        subscribers=readers(2),
    )
    with caplog.at_level(logging.ERROR, logger="bot"):
        assert run(config, "once") == 1
    errors = [r.message for r in caplog.records if r.message.startswith("send: ")]
    assert len(errors) == 1, errors
    assert "certificate" in errors[0].lower()
    assert "tried" not in errors[0], "waiting does not fix a certificate"
    assert {(row["status"], row["attempts"]) for row in digests(config)} == {("pending", 0)}


# --- what a digest looks like --------------------------------------------------------------------


def test_a_50_paper_digest_has_every_header_and_fits_the_size_limit(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    http_server.route("/rss/cs", body=arxiv_feed(60), content_type="application/rss+xml")
    config = write_config(
        tmp_path,
        http_server.url("/rss/cs"),
        smtp_settings(smtp_server, reply_to="help@example.org", sender="bounces@example.org"),
        base_url=BASE_URL,
        subscribers=[{"email": "ada@example.org", "keywords": ["diffusion"], "max_papers": 50}],
    )
    assert run(config, "once") == 0

    [received] = smtp_server.received
    message = received.message
    [row] = digests(config)
    assert message["Message-ID"] == row["message_id"]
    assert message["From"] == "paperbot <bot@example.org>"
    assert message["To"] == "ada@example.org"
    assert message["Sender"] == "bounces@example.org"
    assert received.mail_from == "bounces@example.org", "bounces go to the Sender"
    assert message["Reply-To"] == "help@example.org"
    assert message["Subject"] == "paperbot: 50 of 60 new papers matching your alerts"
    assert message["Date"].datetime is not None
    assert message["List-Id"] == "paperbot <paperbot.example.org>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.fullmatch(
        r"<([^>]+)>,\s*<([^>]+)>", str(message["List-Unsubscribe"])
    ).groups()
    assert mailto == "mailto:bot+unsubscribe@example.org"
    token = https.removeprefix(f"{BASE_URL}/unsubscribe/")
    assert token != https
    assert read_token(SECRET, "unsubscribe", token).email == "ada@example.org"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]

    html = part(message, "html")
    assert len(html.encode("utf-8")) < 100_000, "under Gmail's clipping size"
    assert html.count('class="paper"') == 50, "abstracts are cut, never papers"
    assert "10 more matching papers were left out" in html
    assert re.search(rf'href="{BASE_URL}/manage/[^"/]+/matches"', html), "where they are"
    assert all(len(line) <= 998 for line in received.raw.split(b"\r\n")), "RFC 5322 lines"
    text = part(message, "plain")
    assert [f"Diffusion study number {i}" in text for i in range(60)].count(True) == 50
    assert f"Unsubscribe: {BASE_URL}/unsubscribe/" in text


def test_without_base_url_only_the_mailto_unsubscribe_is_offered(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    config = readers_config(
        tmp_path, http_server, smtp_server, 1, unsubscribe_mailto="leave@example.org"
    )
    assert run(config, "once") == 0
    [message] = smtp_server.messages
    assert message["List-Unsubscribe"] == "<mailto:leave@example.org>"
    assert message["List-Unsubscribe-Post"] is None, "one-click needs the https link"


def test_digests_travel_over_n_persistent_connections(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    config = readers_config(tmp_path, http_server, smtp_server, 30, connections=3)
    smtp_server.delay_data(0.01)
    assert run(config, "once") == 0
    assert len(smtp_server.received) == 30
    assert len({item.peer for item in smtp_server.received}) == 3


def test_dkim_signature_verifies(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test key")
    key = tmp_path / "dkim.pem"
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            str(key),
        ],
        check=True,
        capture_output=True,
    )
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    config = write_config(
        tmp_path,
        http_server.url(ALL_ARCHIVES),
        smtp_settings(
            smtp_server,
            dkim={"selector": "pb2025", "domain": "example.org", "key_file": str(key)},
        ),
        subscribers=readers(2),
    )
    assert run(config, "once") == 0

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"pb2025._domainkey.example.org."
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    assert len(smtp_server.received) == 2
    for received in smtp_server.received:
        assert received.raw.startswith(b"DKIM-Signature: ")
        assert dkim.verify(received.raw, dnsfunc=dns)
        signed = re.search(rb"h=([^;]+);", received.raw.replace(b"\r\n", b"")).group(1)
        headers = {h.strip().lower() for h in signed.split(b":")}
        assert {b"from", b"list-unsubscribe", b"list-unsubscribe-post", b"message-id"} <= headers
    tampered = smtp_server.received[0].raw.replace(b"Subject: paperbot", b"Subject: paperbox", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_dkim_key_problems_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    for dkim_settings, message in [
        ({"key_file": str(tmp_path / "missing.pem")}, r"smtp\.dkim\.key_file: cannot read"),
        ({"key_file": str(bad)}, r"smtp\.dkim\.key_file: not an RSA private key"),
        ({"key_env": "PAPERBOT_TEST_NO_SUCH_KEY"}, r"smtp\.dkim\.key_env: environment variable"),
        ({}, r"smtp\.dkim: give exactly one of key_file and key_env"),
    ]:
        config = write_config(
            tmp_path,
            "http://127.0.0.1:9/feed",
            {
                "host": "127.0.0.1",
                "from": "bot@example.org",
                "dkim": {"selector": "s", "domain": "example.org", **dkim_settings},
            },
        )
        result = run_paperbot(config, "check-config")
        assert result.returncode == 2
        assert re.search(message, result.stderr), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


# --- paperbot send-test ------------------------------------------------------------------------


def test_send_test_sends_one_message_and_reports_each_step(
    tmp_path: Path,
    smtp_server: SmtpTestServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    config = write_config(
        tmp_path, "http://127.0.0.1:9/unused", smtp_settings(smtp_server), base_url=BASE_URL
    )
    assert run(config, "send-test", "ops@example.org") == 0
    out = capsys.readouterr().out
    assert re.search(r"^server: 127\.0\.0\.1:\d+ \(none\) without login$", out, re.M)
    assert "List-Unsubscribe-Post one-click" in out
    assert "connect: ok" in out
    assert re.search(r"^send: accepted for ops@example\.org, Message-ID <send-test-", out, re.M)
    [message] = smtp_server.messages
    assert message["Subject"].startswith("[test] paperbot: 1 new paper")
    assert message["To"] == "ops@example.org"
    assert not (tmp_path / "paperbot.db").exists(), "nothing is recorded"


def test_send_test_with_the_server_down_says_where_it_failed(
    tmp_path: Path, smtp_server: SmtpTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/unused", smtp_settings(smtp_server))
    smtp_server.stop()
    assert run(config, "send-test", "ops@example.org") == 1
    out = capsys.readouterr().out
    assert re.search(
        r"^connect: failed: cannot connect to SMTP server 127\.0\.0\.1:\d+: ", out, re.M
    )
    assert run(config, "send-test", "not an address") == 2


def test_check_config_says_how_unsubscribing_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    smtp = {
        "host": "smtp.example.org",
        "from": "paperbot <bot@example.org>",
        "connections": 8,
        "rate_limit": "600/min",
    }
    config = write_config(tmp_path, "http://127.0.0.1:9/feed", smtp, base_url=BASE_URL)
    assert run(config, "check-config") == 0
    out = capsys.readouterr().out
    assert "8 connections, at most 600/min" in out
    assert (
        "each message within 60 s (commands 30 s); 5 timeouts or lost connections in a row"
        " stop the sending until the next run" in out
    )
    assert (
        "List-Unsubscribe: <mailto:bot+unsubscribe@example.org> only: set the"
        f" {SECRET_ENV} environment variable for the one-click https link" in out
    )
    monkeypatch.setenv(SECRET_ENV, SECRET)
    assert run(config, "check-config") == 0
    assert f"<{BASE_URL}/unsubscribe/...>" in capsys.readouterr().out


def test_a_rate_limit_that_is_not_a_rate_is_a_config_error(tmp_path: Path) -> None:
    smtp = {"host": "h", "from": "bot@example.org", "rate_limit": "fast"}
    config = write_config(tmp_path, "http://127.0.0.1:9/feed", smtp)
    assert run(config, "check-config") == 2


@pytest.fixture(autouse=True)
def _no_secret_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that want one-click links set the secret themselves."""
    if SECRET_ENV in os.environ:
        monkeypatch.delenv(SECRET_ENV)


# --- rendering in a helper process ----------------------------------------------------------------


def pending_outbox(tmp_path: Path, feed_url: str, smtp_server: SmtpTestServer, count: int) -> Path:
    """A config whose store holds `count` pending digests: a run with the server down."""
    tmp_path.mkdir(exist_ok=True)
    config = write_config(
        tmp_path,
        feed_url,
        smtp_settings(smtp_server),
        subscribers=readers(count),
        base_url=BASE_URL,
    )
    smtp_server.stop()
    assert run(config, "-q", "once") == 1
    smtp_server.start()
    assert [row["status"] for row in digests(config)] == ["pending"] * count
    return config


def deliver_now(config: Path, threshold: int | None, batch_size: int = 3) -> DeliveryReport:
    """`deliver` on the config's store, small batches, the render process from `threshold`."""
    loaded = load_config(config)
    store = Store.open(loaded.database)
    settings = DeliverySettings(connections=2, retry_delay=0.01, batch_size=batch_size)
    try:
        return asyncio.run(
            deliver(
                store,
                make_sender(loaded),
                letterhead(loaded),
                settings,
                render_process_threshold=threshold,
            )
        )
    finally:
        store.close()


#: a signed link's token: it carries the second it was made in
TOKEN = re.compile(rb"/(manage|unsubscribe)/([A-Za-z0-9_.-]+)")
#: the "more/less like this" links carry the digest's manage token
FEEDBACK_TOKEN = re.compile(rb"/feedback/([A-Za-z0-9_.-]+)/")


def comparable(raw: bytes) -> bytes:
    """The message bytes without what differs on every build: boundary, Date, link tokens."""
    raw = re.sub(rb"=_[0-9a-f]{24}", b"=_BOUNDARY", raw)
    raw = TOKEN.sub(rb"/\1/TOKEN", raw)
    raw = FEEDBACK_TOKEN.sub(b"/feedback/TOKEN/", raw)
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: DATE\r\n", raw)


def test_a_large_outbox_rendered_in_a_helper_process_sends_the_same_messages(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)  # each digest carries its subscriber's own links
    count = 20
    here = pending_outbox(tmp_path / "here", http_server.url(ALL_ARCHIVES), smtp_server, count)
    # the same outbox twice: one copy is rendered in this process, the other in a helper
    (tmp_path / "there").mkdir()
    source, copy = (
        sqlite3.connect(tmp_path / where / "paperbot.db") for where in ("here", "there")
    )
    source.backup(copy)
    source.close()
    copy.close()
    there = tmp_path / "there" / "paperbot.yaml"
    there.write_text(here.read_text().replace(str(tmp_path / "here"), str(tmp_path / "there")))

    report = deliver_now(here, threshold=None)
    assert (report.sent, report.pending, report.errors) == (count, 0, ())
    in_process = by_recipient(smtp_server.received)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bot"):
        report = deliver_now(there, threshold=count)
    assert (report.sent, report.pending, report.errors) == (count, 0, ())
    assert f"rendering {count} digests in a helper process" in caplog.messages
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    elsewhere = by_recipient(smtp_server.received[count:])

    assert sorted(elsewhere) == sorted(f"reader{i}@example.org" for i in range(count))
    assert all(len(items) == 1 for items in elsewhere.values()), "each digest exactly once"
    for recipient, [message] in elsewhere.items():
        [expected] = in_process[recipient]
        assert comparable(message.raw) == comparable(expected.raw)
        links = {(m[1].decode(), m[2].decode()) for m in TOKEN.finditer(message.raw)}
        assert {purpose for purpose, _ in links} == {"manage", "unsubscribe"}
        for purpose, token in links:  # the helper signed them with the same secret
            assert read_token(SECRET, purpose, token).email == recipient
        feedback = {m[1].decode() for m in FEEDBACK_TOKEN.finditer(message.raw)}
        assert feedback == {token for purpose, token in links if purpose == "manage"}
        assert message.mail_options == expected.mail_options
        assert message.mail_from == expected.mail_from
    assert {row["status"] for row in digests(there)} == {"sent"}


@pytest.mark.parametrize("threshold", [1, None], ids=["rendered-elsewhere", "rendered-here"])
def test_messages_built_either_way_go_out_at_most_twice_without_a_verdict(
    threshold: int | None,
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
) -> None:
    count = 3
    config = pending_outbox(tmp_path, http_server.url(ALL_ARCHIVES), smtp_server, count)
    smtp_server.after_data("drop")
    loaded = load_config(config)
    store = Store.open(loaded.database)
    settings = DeliverySettings(retry_delay=0.01, batch_size=2, max_failures_in_a_row=100)
    try:
        report = asyncio.run(
            deliver(
                store,
                make_sender(loaded),
                letterhead(loaded),
                settings,
                render_process_threshold=threshold,
            )
        )
    finally:
        store.close()
    assert (report.sent, report.unconfirmed, report.pending) == (0, count, 0)
    groups = by_recipient(smtp_server.received)
    assert sorted(groups) == sorted(f"reader{i}@example.org" for i in range(count))
    for row in digests(config):
        copies = groups[row["email"]]
        assert [copy.message["Message-ID"] for copy in copies] == [row["message_id"]] * 2
        assert (row["status"], row["transmissions"]) == ("unconfirmed", 2)


def test_the_helper_process_killed_mid_run_loses_and_doubles_nothing(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: SmtpTestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    count = 40
    config = pending_outbox(tmp_path, http_server.url(ALL_ARCHIVES), smtp_server, count)
    smtp_server.delay_data(0.02)  # slow enough that the kill lands with most still to render
    before = set(multiprocessing.active_children())
    caplog.clear()

    async def kill_the_helper_after(sent: int) -> None:
        # what the OOM killer would do to the render process: SIGKILL, no goodbye
        while len(smtp_server.received) < sent:
            await asyncio.sleep(0.005)
        for child in set(multiprocessing.active_children()) - before:
            os.kill(child.pid or 0, signal.SIGKILL)

    async def run_with_a_kill() -> DeliveryReport:
        loaded = load_config(config)
        store = Store.open(loaded.database)
        settings = DeliverySettings(connections=2, retry_delay=0.01, batch_size=2)
        killer = asyncio.create_task(kill_the_helper_after(3))
        try:
            return await deliver(
                store, make_sender(loaded), letterhead(loaded), settings, render_process_threshold=1
            )
        finally:
            killer.cancel()
            store.close()

    with caplog.at_level(logging.ERROR, logger="bot"):
        report = asyncio.run(run_with_a_kill())
    errors = [r.message for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert errors[0].startswith("render process failed (BrokenProcessPool: ")
    assert errors[0].endswith("rendering the rest in this process, nothing is lost")
    assert (report.sent, report.pending, report.failed, report.errors) == (count, 0, 0, ())
    groups = by_recipient(smtp_server.received)
    assert sorted(groups) == sorted(f"reader{i}@example.org" for i in range(count))
    assert all(len(items) == 1 for items in groups.values()), "nothing sent twice"
    assert {row["status"] for row in digests(config)} == {"sent"}


def helper_processes(pid: int) -> list[int]:
    """The render processes (multiprocessing children) of process `pid`, from /proc."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        child
        for child in map(int, children)
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def running(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_the_helper_process_ends_when_the_sending_process_is_killed(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: SmtpTestServer
) -> None:
    config = pending_outbox(tmp_path, http_server.url(ALL_ARCHIVES), smtp_server, 30)
    smtp_server.delay_data(0.2)  # the kill lands mid-run
    script = (
        "import asyncio, pathlib\n"
        "from bot.config.load import load_config\n"
        "from bot.config.wiring import letterhead, make_sender\n"
        "from bot.mail.deliver import DeliverySettings, deliver\n"
        "from bot.store.store import Store\n"
        f"config = load_config(pathlib.Path({str(config)!r}))\n"
        "settings = DeliverySettings(batch_size=2)\n"
        "asyncio.run(deliver(Store.open(config.database), make_sender(config),"
        " letterhead(config), settings,"
        " render_process_threshold=1))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        smtp_server.wait_for(2, timeout=60)
        helpers = helper_processes(process.pid)
    finally:
        process.kill()  # SIGKILL: the pool gets no chance to shut its worker down
        process.wait()
    assert len(helpers) == 1
    for _ in range(200):  # it notices within a second or so; a bound, not a timing check
        if not running(helpers[0]):
            break
        time.sleep(0.05)
    assert not running(helpers[0]), "an orphaned render process would wait forever"
    assert {row["status"] for row in digests(config)} <= {"sent", "pending"}


@pytest.mark.parametrize(("eight_bit", "utf8"), [(True, False), (False, False), (False, True)])
def test_a_message_built_in_the_helper_is_written_as_the_original_for_any_server(
    eight_bit: bool, utf8: bool
) -> None:
    # what the helper sends back is the 8bit form; a server without 8BITMIME needs 7bit
    original = build_message(
        RenderedDigest("Sübject " * 12, "Ünïcode\n.dot\n" + "x" * 1200, "<p>Ü</p>"),
        sender="Ädä Bot <bot@example.org>",
        recipient="ada@example.org",
        message_id="<m1@example.org>",
        sender_header="bounces@example.org",
        unsubscribe_mailto="bot+unsubscribe@example.org",
    )
    prebuilt = PrebuiltMessage(message_bytes(original), envelope_headers(original))
    written = message_bytes(prebuilt, eight_bit=eight_bit, utf8=utf8)
    assert written == message_bytes(original, eight_bit=eight_bit, utf8=utf8)
    assert recipients_of(prebuilt) == ["ada@example.org"]
    assert envelope_sender(prebuilt) == "bounces@example.org"


# --- the SMTP conversation ---------------------------------------------------------------------


def test_the_first_message_on_a_fresh_connection_is_already_8bit(
    smtp_server: SmtpTestServer,
) -> None:
    message = build_message(
        RenderedDigest("s", "Ünïcode line\n.a line that starts with a dot\n", "<p>Ü</p>"),
        sender="bot@example.org",
        recipient="ada@example.org",
        message_id="<first@example.org>",
    )

    async def send() -> None:
        async with SmtpSender(host=smtp_server.host, port=smtp_server.port, security="none") as s:
            await s.send(message)

    asyncio.run(send())
    [received] = smtp_server.received
    assert "BODY=8BITMIME" in received.mail_options
    assert any(option.startswith("SIZE=") for option in received.mail_options)
    lines = part(received.message, "plain").splitlines()
    assert lines == ["Ünïcode line", ".a line that starts with a dot"], "dots are unstuffed back"


def test_smtp_data_is_crlf_and_dot_stuffed() -> None:
    assert smtp_data(b"a\r\n.b\r\n") == b"a\r\n..b\r\n.\r\n"
    assert smtp_data(b".top\nlone lf\rlone cr") == b"..top\r\nlone lf\r\nlone cr\r\n.\r\n"
