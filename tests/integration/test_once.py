"""`paperbot once` end to end: served feeds -> store -> matches -> mails in a real SMTP server."""

from __future__ import annotations

import re
import sqlite3
import xml.etree.ElementTree as ET
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main
from tests.cli import run_paperbot
from tests.httpserver import FIXTURES, LocalHTTPServer

ALL_ARCHIVES = "arxiv/rss_all-archives_2024-11-28_trimmed.xml"
ARXIV_NS = "http://arxiv.org/schemas/atom"
DC_NS = "http://purl.org/dc/elements/1.1/"


def feed_items(name: str) -> list[dict[str, str]]:
    """The raw items of a captured arXiv RSS file, read independently of paperbot."""
    root = ET.parse(FIXTURES / name).getroot()
    items = []
    for item in root.iter("item"):
        description = item.findtext("description") or ""
        items.append(
            {
                "title": " ".join((item.findtext("title") or "").split()),
                "abstract": description.partition("Abstract:")[2],
                "type": item.findtext(f"{{{ARXIV_NS}}}announce_type") or "",
                "creator": item.findtext(f"{{{DC_NS}}}creator") or "",
            }
        )
    return items


def expected_titles(name: str, word: str) -> set[str]:
    """Titles of new/cross items whose title or abstract holds `word` as a whole word."""
    pattern = re.compile(rf"\b{word}\b", re.IGNORECASE)
    return {
        item["title"]
        for item in feed_items(name)
        if item["type"] in ("new", "cross") and pattern.search(item["title"] + item["abstract"])
    }


def write_config(tmp_path: Path, **settings: Any) -> Path:
    """A config file in tmp_path with its database and outbox there too."""
    config = {
        "database": str(tmp_path / "paperbot.db"),
        "outbox": str(tmp_path / "outbox"),
        "fetch": {"timeout": 2, "retries": 0, "backoff": 0},
        **settings,
    }
    path = tmp_path / "paperbot.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def smtp_section(smtp_server: Any) -> dict[str, Any]:
    """The smtp: section pointing at the test server."""
    return {
        "host": "127.0.0.1",
        "port": smtp_server.port,
        "security": "none",
        "from": "paperbot <bot@example.org>",
        "retry_delay": 0,  # a server that is down is retried at once: tests stay fast
    }


def arxiv_source(server: LocalHTTPServer, path: str = ALL_ARCHIVES, name: str = "arxiv") -> dict:
    """An arxiv-rss source reading a served capture."""
    return {"name": name, "kind": "arxiv-rss", "url": server.url(path)}


def text_part(message: EmailMessage) -> str:
    """The plain-text part of a received digest."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def mails_to(smtp_server: Any, address: str) -> list[EmailMessage]:
    """Every message the test SMTP server received for `address`."""
    return [m for m in smtp_server.messages if address in str(m["To"])]


def run(config: Path, *args: str) -> int:
    """`paperbot --config CONFIG ARGS` in this process."""
    return main(["--config", str(config), *args])


@pytest.fixture
def lab_config(tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any) -> Path:
    """Three subscribers over the all-archives capture: a keyword, a TeX-named author, nothing."""
    return write_config(
        tmp_path,
        sources=[arxiv_source(http_server)],
        smtp=smtp_section(smtp_server),
        subscribers=[
            {"email": "ada@example.org", "keywords": ["diffusion"], "max_papers": 100},
            {"email": "remy@example.org", "authors": ["Benjamin Rémy"]},
            {"email": "nobody@example.org", "keywords": ["zebrafish cartography"]},
        ],
    )


def test_end_to_end_digests_hold_exactly_the_matching_papers(
    lab_config: Path, smtp_server: Any
) -> None:
    assert run(lab_config, "once") == 0

    [digest] = mails_to(smtp_server, "ada@example.org")
    expected = expected_titles(ALL_ARCHIVES, "diffusion")
    assert expected, "the capture holds diffusion papers"
    lines = set(text_part(digest).splitlines())
    assert expected <= lines, "every matching title stands whole on its own line"
    assert str(len(expected)) in digest["Subject"]
    replaced = {i["title"] for i in feed_items(ALL_ARCHIVES) if i["type"].startswith("replace")}
    assert not (replaced - expected) & lines, "replacements are not new papers"
    assert not mails_to(smtp_server, "nobody@example.org"), "no match, no mail"


def test_tex_named_author_is_followed_by_unicode_name(lab_config: Path, smtp_server: Any) -> None:
    assert run(lab_config, "once") == 0

    [digest] = mails_to(smtp_server, "remy@example.org")
    body = text_part(digest)
    assert "Benjamin Rémy" in body
    assert "author: Benjamin Rémy" in body
    [item] = [i for i in feed_items(ALL_ARCHIVES) if "Benjamin R\\'emy" in i["creator"]]
    assert item["title"] in body.splitlines()
    assert "(LEMTA)" not in body, "affiliations are dropped"


def test_second_run_sends_nothing(lab_config: Path, smtp_server: Any) -> None:
    assert run(lab_config, "once") == 0
    first = len(smtp_server.messages)
    assert first == 2

    assert run(lab_config, "once") == 0
    assert len(smtp_server.messages) == first


def test_smtp_down_then_up_delivers_everything_once(lab_config: Path, smtp_server: Any) -> None:
    smtp_server.stop()
    assert run(lab_config, "once") == 1
    assert pending_digests(lab_config) == 2

    smtp_server.start()
    assert run(lab_config, "once") == 0
    assert len(mails_to(smtp_server, "ada@example.org")) == 1
    assert len(mails_to(smtp_server, "remy@example.org")) == 1
    assert pending_digests(lab_config) == 0

    assert run(lab_config, "once") == 0
    assert len(smtp_server.messages) == 2


def pending_digests(config: Path) -> int:
    """Digests the store still has to send (read straight from the SQLite file)."""
    database = yaml.safe_load(config.read_text())["database"]
    with sqlite3.connect(database) as conn:
        return int(
            conn.execute("SELECT count(*) FROM digests WHERE status='pending'").fetchone()[0]
        )


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ({"status": 500, "body": "oops"}, "error"),
        ({"status": 200, "body": "<rss><channel><item><title>x</ti", "delay": 0}, "broken"),
        ({"status": 200, "delay": 5}, "error"),  # longer than the 2 s timeout
        ({"status": 200, "body": "<html><body>We moved!</body></html>"}, "broken"),
    ],
    ids=["http-500", "malformed-xml", "timeout", "html-instead-of-feed"],
)
def test_a_failing_source_does_not_block_the_others(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: Any,
    capsys: pytest.CaptureFixture[str],
    reply: dict[str, Any],
    status: str,
) -> None:
    http_server.route("/bad.xml", content_type="application/rss+xml", **reply)
    config = write_config(
        tmp_path,
        sources=[
            {"name": "bad", "kind": "arxiv-rss", "url": http_server.url("/bad.xml")},
            arxiv_source(http_server, name="good"),
        ],
        smtp=smtp_section(smtp_server),
        subscribers=[{"email": "ada@example.org", "keywords": ["diffusion"]}],
    )
    assert run(config, "once") == 1, "a failed source makes the exit code 1"
    assert len(mails_to(smtp_server, "ada@example.org")) == 1, "the good source still delivers"

    assert run(config, "status") == 0
    out = capsys.readouterr().out
    assert re.search(rf"bad: {status}\b", out)
    assert re.search(r"good: ok\b", out)


def test_arxiv_error_feed_is_a_broken_source_not_an_empty_day(
    tmp_path: Path, http_server: LocalHTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        sources=[
            arxiv_source(http_server, "arxiv/rss_error_bad_archive_2024-11-28.xml", "typo"),
            arxiv_source(http_server, "arxiv/rss_empty_feed_2024-11-28.xml", "quiet"),
        ],
        subscribers=[{"email": "ada@example.org", "keywords": ["diffusion"]}],
    )
    assert run(config, "once") == 1
    assert run(config, "status") == 0
    out = capsys.readouterr().out
    assert re.search(r"typo: broken.*Feed error for query", out)
    assert re.search(r"quiet: empty\b", out)


def test_without_smtp_digests_are_eml_files(tmp_path: Path, http_server: LocalHTTPServer) -> None:
    config = write_config(
        tmp_path,
        sources=[arxiv_source(http_server)],
        subscribers=[{"email": "ada@example.org", "keywords": ["diffusion"]}],
    )
    assert run(config, "once") == 0
    [eml] = (tmp_path / "outbox").glob("*.eml")
    assert "ada@example.org" in eml.read_text(encoding="utf-8")
    assert run(config, "once") == 0
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_dry_run_changes_nothing_in_the_store(tmp_path: Path, http_server: LocalHTTPServer) -> None:
    config = write_config(
        tmp_path,
        sources=[arxiv_source(http_server)],
        subscribers=[{"email": "ada@example.org", "keywords": ["diffusion"]}],
    )
    assert run(config, "once", "--dry-run") == 0
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    with sqlite3.connect(tmp_path / "paperbot.db") as conn:
        assert conn.execute("SELECT count(*) FROM papers").fetchone()[0] == 0

    assert run(config, "once") == 0, "the real run still has everything to send"
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2


def test_no_send_primes_a_new_install(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any
) -> None:
    config = write_config(
        tmp_path,
        sources=[arxiv_source(http_server)],
        smtp=smtp_section(smtp_server),
        subscribers=[{"email": "ada@example.org", "keywords": ["diffusion"]}],
    )
    assert run(config, "once", "--no-send") == 0
    assert run(config, "once") == 0
    assert smtp_server.messages == []


def test_preview_shows_the_next_digest_without_sending(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(
        tmp_path,
        sources=[arxiv_source(http_server)],
        smtp=smtp_section(smtp_server),
        subscribers=[{"email": "ada@example.org", "keywords": ["diffusion"], "max_papers": 100}],
    )
    smtp_server.stop()
    assert run(config, "once") == 1, "the digest stays pending"
    capsys.readouterr()
    html = tmp_path / "preview.html"
    assert run(config, "preview", "ada@example.org", "--html", str(html)) == 0
    out = capsys.readouterr().out
    first_title = sorted(expected_titles(ALL_ARCHIVES, "diffusion"))[0]
    assert first_title in out.splitlines()
    assert "<html" in html.read_text(encoding="utf-8").lower()
    assert pending_digests(config) == 1, "preview records nothing"

    smtp_server.start()
    assert run(config, "once") == 0
    [digest] = smtp_server.messages
    assert first_title in text_part(digest).splitlines(), "preview showed what was sent"


def test_same_paper_from_two_sources_is_mailed_once(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any
) -> None:
    config = write_config(
        tmp_path,
        sources=[arxiv_source(http_server, name="one"), arxiv_source(http_server, name="two")],
        smtp=smtp_section(smtp_server),
        subscribers=[{"email": "remy@example.org", "authors": ["Benjamin Rémy"]}],
    )
    assert run(config, "once") == 0
    [digest] = smtp_server.messages
    [item] = [i for i in feed_items(ALL_ARCHIVES) if "Benjamin R\\'emy" in i["creator"]]
    assert text_part(digest).splitlines().count(item["title"]) == 1
    assert "1 new paper" in digest["Subject"]


CONFIG_ERRORS = [
    (
        {"sources": [{"name": "a", "kind": "arxv", "url": "http://x"}]},
        r"sources\[0\]\.kind: unknown kind 'arxv'; known: .*arxiv-rss.*rss",
    ),
    ({"colour": "blue"}, r"colour: unknown key"),
    (
        {"subscribers": [{"email": "not-an-address"}]},
        r"subscribers\[0\]\.email: .*not a valid email",
    ),
    (
        {"subscribers": [{"email": "a@example.org", "keywords": "grokking"}]},
        r"subscribers\[0\]\.keywords: ",
    ),
    ({"max_papers": "many"}, r"max_papers: "),
    ({"max_papers": 0}, r"max_papers: .*greater than or equal to 1"),
    (
        {
            "sources": [
                {"name": "a", "kind": "rss", "url": "http://x"},
                {"name": "a", "kind": "rss", "url": "http://y"},
            ]
        },
        r"sources\[1\]\.name: duplicate source name 'a'",
    ),
    (
        {"sources": [{"name": "a", "kind": "arxiv-rss", "categories": ["cs.LG"], "colour": 1}]},
        r"sources\[0\]\.colour: unknown key",
    ),
    (
        {"smtp": {"host": "h", "from": "x@example.org", "password_env": "PAPERBOT_TEST_UNSET"}},
        r"smtp\.password_env: environment variable PAPERBOT_TEST_UNSET is not set",
    ),
]


@pytest.mark.parametrize(("settings", "message"), CONFIG_ERRORS)
def test_config_errors_are_one_line_and_exit_2(
    tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    config = write_config(tmp_path, **settings)
    result = run_paperbot(config, "once")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in result.stderr


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("sources:\n  - name: a\n   kind: rss\n", encoding="utf-8")
    assert run(config, "check-config") == 2


def test_missing_config_file_is_exit_2(tmp_path: Path) -> None:
    assert run(tmp_path / "nope.yaml", "once") == 2
