"""The digest's email: headers, parts, encodings, and the fast serialization."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from bot.mail.mime import RenderedDigest, build_message
from bot.mail.render import render_digest
from bot.models import Digest, DigestEntry, Paper, Reason, Subscriber
from tests.mailparse import body, message_of


def one_paper() -> Digest:
    """A digest of one arXiv-like paper that matched `neural collapse`."""
    paper = Paper(
        id="2411.00001",
        title="Paper number 1",
        authors=("Ada Lovelace", "Alan Turing"),
        abstract="A short abstract.",
        url="https://arxiv.org/abs/2411.00001",
        arxiv_id="2411.00001",
        published=datetime(2024, 11, 28, tzinfo=UTC),
        sources=("arxiv-cs-lg",),
    )
    entry = DigestEntry(paper, (Reason("keyword", "neural collapse"),))
    return Digest(Subscriber("ada@example.org"), (entry,), "<d1@example.org>")


def test_message_headers_and_parts() -> None:
    rendered = render_digest(one_paper())
    when = datetime(2024, 11, 28, 7, 0, tzinfo=UTC)
    raw = build_message(
        rendered,
        sender="paperbot <bot@example.org>",
        recipient="ada@example.org",
        message_id="<digest-42@example.org>",
        date=when,
        list_id="paperbot <paperbot.example.org>",
        unsubscribe_url="https://p.example.org/unsubscribe/t0k3n",
        unsubscribe_mailto="unsubscribe@example.org",
        reply_to="help@example.org",
    ).as_bytes()
    assert re.fullmatch(rb"(?:[^\r\n]*\r\n)*[^\r\n]*", raw), "every line ends in CRLF"
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    assert msg["Message-ID"] == "<digest-42@example.org>"
    assert msg["Date"].datetime == when
    assert msg["From"].addresses[0].addr_spec == "bot@example.org"
    assert msg["To"] == "ada@example.org"
    assert msg["Reply-To"] == "help@example.org"
    assert msg["Subject"] == "paperbot: 1 new paper matching your alerts"
    assert msg["List-Id"] == "paperbot <paperbot.example.org>"
    assert msg["List-Unsubscribe"] == (
        "<https://p.example.org/unsubscribe/t0k3n>, <mailto:unsubscribe@example.org>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert body(msg, "plain") == rendered.text
    assert body(msg, "html") == rendered.html


def test_one_click_header_only_with_an_https_url() -> None:
    rendered = render_digest(one_paper())
    mailto_only = message_of(rendered, unsubscribe_mailto="mailto:unsub@example.org")
    assert mailto_only["List-Unsubscribe"] == "<mailto:unsub@example.org>"
    assert mailto_only["List-Unsubscribe-Post"] is None
    bare = message_of(rendered)
    assert bare["List-Unsubscribe"] is None
    assert bare["List-Id"] is None


def test_non_ascii_subject_and_names_are_encoded() -> None:
    rendered = render_digest(one_paper(), list_name="Pàpers für Rémy")
    message = build_message(
        rendered,
        sender="Rémy's bot <bot@example.org>",
        recipient="Zoë <zoe@example.org>",
        message_id="<x@example.org>",
    )
    raw = message.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii(), "headers are RFC 2047 encoded"
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == "Pàpers für Rémy: 1 new paper matching your alerts"
    assert parsed["From"].addresses[0].display_name == "Rémy's bot"
    assert parsed["To"].addresses[0].display_name == "Zoë"


def test_long_unsubscribe_url_is_not_mangled() -> None:
    url = "https://papers.example.org/unsubscribe/" + "x" * 90
    message = message_of(render_digest(one_paper()), unsubscribe_url=url)
    assert message["List-Unsubscribe"] == f"<{url}>"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("recipient", "ada@example.org\r\nBcc: everyone@example.org"),
        ("recipient", "not an address"),
        ("message_id", "no-brackets-or-at"),
        ("unsubscribe_url", "https://x.example.org/u nsub"),
    ],
)
def test_bad_header_values_are_refused(header: str, value: str) -> None:
    rendered = render_digest(one_paper())
    with pytest.raises(ValueError, match=r"\w"):
        message_of(rendered, **{header: value})


@pytest.mark.parametrize(
    "text",
    [
        "plain ASCII only\n",
        "ünïcödé text\nwith lines\n",
        "one line longer than the SMTP limit " + "x" * 1200 + "\nand ü\n",
        "carriage\r\nreturns\rare normalised\n",
    ],
)
def test_fast_serialization_matches_the_stdlib(text: str) -> None:
    message = build_message(
        RenderedDigest("Süb", text, f"<p>{text}</p>"),
        sender="bot@example.org",
        recipient="ada@example.org",
        message_id="<x@example.org>",
    )
    assert message.as_bytes() == EmailMessage.as_bytes(message)
    parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes())
    assert isinstance(parsed, EmailMessage)
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert body(parsed, "plain") == expected
