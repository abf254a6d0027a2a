"""Recommendations through `paperbot once`: real arXiv listings served over HTTP, seeds in
the store and looked up at a served arXiv API, digests received by a real SMTP server."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup

from bot.mail.links import SECRET_ENV
from bot.store.store import Store
from tests.httpserver import FIXTURES, LocalHTTPServer, Reply, Request
from tests.integration.test_once import mails_to, run, smtp_section, text_part, write_config
from tests.integration.test_seed_lookup import serve_captures
from tests.webapp import SECRET, WebSite, form_fields

#: two real days: every archive on 2024-11-28 (168 new papers), cs.AI on 2025-08-20 (86)
DAY1 = FIXTURES / "arxiv" / "rss_all-archives_2024-11-28_trimmed.xml"
DAY2 = FIXTURES / "arxiv" / "rss_atom_cs.AI_2025-08-20_trimmed.xml"
#: three language-model papers of day 1 (in the store once it is read)
SEEDS = ["2411.17760", "2411.17876", "2411.18104"]
#: looked up at the served API: found (math.AP), and one the API does not return
LOOKED_UP, MISSING = "2201.13452", "2201.13453"
UNKNOWN_DOI = "10.1000/no.such.paper"
HEADING = "Recommended for you"


class Feed:
    """The served listing: one day's capture, switched by the test."""

    def __init__(self, server: LocalHTTPServer, day: Path = DAY1) -> None:
        self.day = day
        server.handle("/day.xml", self.reply)
        self.url = server.url("/day.xml")

    def reply(self, _request: Request) -> Reply:
        """The current day's capture."""
        return Reply(body=self.day.read_bytes(), content_type="application/rss+xml")


def config_for(
    tmp_path: Path,
    server: LocalHTTPServer,
    smtp: Any,
    subscribers: list[dict[str, Any]],
    **settings: Any,
) -> Path:
    """A config reading the served day, looking seeds up at the served API."""
    server.handle("/api/query", serve_captures)
    settings.setdefault(
        "recommendations", {"lookup_url": server.url("/api/query"), "lookup_deadline": 5}
    )
    return write_config(
        tmp_path,
        sources=[{"name": "arxiv", "kind": "arxiv-rss", "url": server.url("/day.xml")}],
        smtp=smtp_section(smtp),
        subscribers=subscribers,
        **settings,
    )


def sections(message: EmailMessage) -> tuple[list[str], list[str]]:
    """(alert-matched titles, recommended titles) of a received digest's HTML part."""
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    soup = BeautifulSoup(str(part.get_content()), "html.parser")
    matched: list[str] = []
    recommended: list[str] = []
    into = matched
    for tag in soup.find_all(["h1", "h2"]):
        if tag.name == "h1" and tag.get_text(strip=True) == HEADING:
            into = recommended
        elif tag.name == "h2":
            into.append(" ".join(tag.get_text(" ").split()))
    return matched, recommended


def day_titles(path: Path) -> dict[str, str]:
    """Title → arXiv id of a capture's items, read without paperbot."""
    text = path.read_text(encoding="utf-8")
    found = {}
    for item in re.findall(r"<(?:item|entry)\b.*?</(?:item|entry)>", text, re.DOTALL):
        title = re.search(r"<title>(.*?)</title>", item, re.DOTALL)
        ident = re.search(r"(\d{4}\.\d{4,5})", item)
        if title and ident:
            found[" ".join(title.group(1).split())] = ident.group(1)
    return found


@pytest.fixture
def feed(http_server: LocalHTTPServer) -> Feed:
    """Day 1 served at /day.xml."""
    return Feed(http_server)


def test_a_seeds_only_subscriber_gets_recommendations_alone_each_with_its_why(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any, feed: Feed
) -> None:
    likes = [*SEEDS, LOOKED_UP, MISSING, f"https://doi.org/{UNKNOWN_DOI}"]
    config = config_for(
        tmp_path,
        http_server,
        smtp_server,
        [
            {"email": "seeds@example.org", "like": likes, "recommend": 3},
            {"email": "plain@example.org", "keywords": ["diffusion"]},
        ],
    )
    assert run(config, "once") == 0

    [digest] = mails_to(smtp_server, "seeds@example.org")
    assert digest["Subject"] == "paperbot: 3 recommended papers"
    matched, recommended = sections(digest)
    assert matched == []
    assert len(recommended) == 3
    ids = day_titles(DAY1)
    assert not {ids.get(title) for title in recommended} & set(SEEDS), "a seed is not news"
    text = text_part(digest)
    assert text.count(HEADING) == 1
    with Store.open(tmp_path / "paperbot.db") as store:
        seed_titles = [p.title for p in store.papers.find_seed_papers(SEEDS).values()]
        looked = store.seed_papers.get([LOOKED_UP, MISSING, f"doi:{UNKNOWN_DOI}"])
    whys = re.findall(r"^Like “(.+?)” — shared words: (.+)$", text, re.MULTILINE)
    assert len(whys) == 3
    assert all(title in seed_titles for title, _words in whys)
    assert looked[LOOKED_UP].status == "found"
    assert looked[MISSING].status == "unknown"
    assert looked[f"doi:{UNKNOWN_DOI}"].status == "unknown"
    [plain] = mails_to(smtp_server, "plain@example.org")
    assert HEADING not in text_part(plain), "no seeds, no feedback: no section"


@pytest.mark.parametrize("dead", ["slow", "closed"])
def test_a_dead_or_slow_lookup_server_does_not_stop_the_mail(
    tmp_path: Path,
    http_server: LocalHTTPServer,
    smtp_server: Any,
    feed: Feed,
    dead: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if dead == "slow":
        http_server.route("/slow", body="<feed/>", delay=3)
        lookup = http_server.url("/slow")
    else:
        lookup = "http://127.0.0.1:9/api/query"  # the discard port: nothing listens
    config = config_for(
        tmp_path,
        http_server,
        smtp_server,
        [{"email": "seeds@example.org", "like": [*SEEDS, LOOKED_UP], "recommend": 3}],
        recommendations={"lookup_url": lookup, "lookup_deadline": 0.5},
    )
    with caplog.at_level(logging.WARNING):
        assert run(config, "once") == 0
    [digest] = mails_to(smtp_server, "seeds@example.org")
    assert len(sections(digest)[1]) == 3, "the seeds in the store still count"
    assert [r for r in caplog.records if "seed lookup" in r.getMessage()]
    with Store.open(tmp_path / "paperbot.db") as store:
        assert store.seed_papers.get([LOOKED_UP]) == {}, "asked again next run"


def test_an_alert_matched_paper_is_never_also_recommended(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any, feed: Feed
) -> None:
    subscribers = [
        {"email": "seeds@example.org", "like": SEEDS, "recommend": 5},
        {"email": "ada@example.org", "like": list(SEEDS), "recommend": 5, "keywords": ["LLMs"]},
    ]
    config = config_for(tmp_path, http_server, smtp_server, subscribers)
    assert run(config, "once") == 0
    [alone] = mails_to(smtp_server, "seeds@example.org")
    [ada] = mails_to(smtp_server, "ada@example.org")
    _, would = sections(alone)
    matched, recommended = sections(ada)
    assert set(would) & set(matched), "some paper the seeds bring is matched by ada's alert"
    assert not set(matched) & set(recommended)
    assert len(recommended) == 5
    assert "1 new paper" not in ada["Subject"]
    assert ada["Subject"].endswith(", 5 recommended")


def test_nothing_is_recommended_twice_and_feedback_changes_the_next_run(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any, feed: Feed
) -> None:
    """Two stores fed the same: the same digests (determinism); then one of them is told
    "more like this" of a day-1 paper, and its next digest differs by it."""
    subscribers = [{"email": "seeds@example.org", "like": SEEDS, "recommend": 5}]
    for name in "ab":
        (tmp_path / name).mkdir()
    configs = [config_for(tmp_path / name, http_server, smtp_server, subscribers) for name in "ab"]
    for config in configs:
        assert run(config, "once") == 0
    first_a, first_b = mails_to(smtp_server, "seeds@example.org")
    assert text_part(first_a) == text_part(first_b), "same inputs, same digest"

    feed.day = DAY2
    ids = {**day_titles(DAY1), **day_titles(DAY2)}
    _, day1 = sections(first_a)
    with Store.open(tmp_path / "b" / "paperbot.db") as store:
        sid = store.subscribers.active_ids()["seeds@example.org"]
        [planning] = [t for t in day_titles(DAY1) if "Long-Horizon Planning" in t]
        liked = store.papers.by_id([ids[planning]])[ids[planning]]
        store.feedback.record(sid, liked.id, "more")
    for config in configs:
        assert run(config, "once") == 0
    _, _, second_a, second_b = mails_to(smtp_server, "seeds@example.org")
    _, day2_a = sections(second_a)
    _, day2_b = sections(second_b)
    assert day2_a, "day 2 has papers like the seeds"
    assert not set(day2_a) & set(day1), "nothing recommended twice"
    assert day2_a != day2_b, "the feedback changed the next digest"
    assert f"Like “{liked.title}”" in text_part(second_b), "the paper liked is a why now"


def test_no_send_and_dry_run_hold_for_recommendations(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any, feed: Feed
) -> None:
    subscribers = [{"email": "seeds@example.org", "like": SEEDS, "recommend": 3}]
    config = config_for(tmp_path, http_server, smtp_server, subscribers)
    assert run(config, "once", "--dry-run") == 0
    [eml] = (tmp_path / "outbox").glob("*.eml")
    assert HEADING in eml.read_text(encoding="utf-8")
    with sqlite3.connect(tmp_path / "paperbot.db") as conn:
        assert conn.execute("SELECT count(*) FROM matches").fetchone()[0] == 0

    assert run(config, "once", "--no-send") == 0
    with sqlite3.connect(tmp_path / "paperbot.db") as conn:
        rows = conn.execute("SELECT reasons FROM matches").fetchall()
    assert len(rows) == 3
    assert all('"recommended"' in reasons for (reasons,) in rows)
    assert run(config, "once") == 0
    assert smtp_server.messages == [], "primed: what --no-send marked is never sent"


# --- the feedback links end to end ----------------------------------------------------------


def test_more_like_this_in_a_mail_reaches_the_next_digest_through_the_web_app(
    web_site_factory: Callable[..., WebSite],
    http_server: LocalHTTPServer,
    smtp_server: Any,
    feed: Feed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Digest → its "More like this" link → the real web app's page → the page's POST →
    recorded → the next run's digest recommends by that paper; "Less like this" likewise."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    http_server.handle("/api/query", serve_captures)
    site = web_site_factory(
        sources=[{"name": "arxiv", "kind": "arxiv-rss", "url": feed.url}],
        subscribers=[
            {
                "email": "seeds@example.org",
                "like": list(SEEDS),
                "recommend": 5,
                "keywords": ['"Long-Horizon Planning"'],
            }
        ],
        recommendations={"lookup_url": http_server.url("/api/query")},
    )
    assert run(site.config_path, "once") == 0
    [first] = site.mails_to("seeds@example.org")
    matched, recommended = sections(first)
    [planning] = matched
    assert len(recommended) == 5
    html = first.get_body(preferencelist=("html",))
    assert html is not None
    soup = BeautifulSoup(str(html.get_content()), "html.parser")
    blocks = {
        " ".join(div.h2.get_text(" ").split()): div
        for div in soup.find_all("div", class_="paper")
        if div.h2 is not None
    }
    more = blocks[planning].find("a", string="More like this")
    less = blocks[recommended[0]].find("a", string="Less like this")
    assert more is not None
    assert less is not None
    assert f"More like this: {more['href']}" in text_part(first).splitlines()

    client = site.client()
    for link in (str(more["href"]), str(less["href"])):
        page = client.get(link)
        assert page.status_code == 200
        assert client.post(link, data=form_fields(page.text)).status_code == 200
    ids = day_titles(DAY1)
    with site.store() as store:
        sid = store.subscribers.id_of("seeds@example.org")
        assert sid is not None
        given = {(f.paper_id, f.verdict) for f in store.feedback.of_subscriber(sid)}
    assert given == {(ids[planning], "more"), (ids[recommended[0]], "less")}

    feed.day = DAY2
    assert run(site.config_path, "once") == 0
    _, second = site.mails_to("seeds@example.org")
    _, day2 = sections(second)
    assert day2
    assert not set(day2) & set(recommended)
    assert f"Like “{planning}”" in text_part(second), "the paper liked by its link is a why"
