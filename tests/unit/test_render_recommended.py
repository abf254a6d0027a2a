"""The digest's "Recommended for you" section and every entry's "more/less like this" links,
on a real arXiv day's papers, read back from the built message as a mail client would."""

from __future__ import annotations

import functools
from pathlib import Path

from bs4 import BeautifulSoup

from bot.ingest.sources.arxiv_rss import ArxivRssOptions, ArxivRssSource
from bot.mail.digest import build_digest
from bot.mail.links import feedback_link
from bot.mail.mime import MAX_HTML_BYTES, html_wire_size
from bot.mail.render import Feedback, render_digest
from bot.models import RECOMMENDED, Digest, Match, Paper, Reason, Subscriber
from tests.mailparse import body, message_of

ARXIV_DAY = (
    Path(__file__).parents[1] / "fixtures" / "arxiv" / "rss_all-archives_2024-11-28_trimmed.xml"
)
BASE = "https://paperbot.example.org"
TOKEN = "WyJhZGFAZXhhbXBsZS5vcmciLDBd.Z1wa.signature-part_x"
HEADING = "Recommended for you"


@functools.cache
def day() -> tuple[Paper, ...]:
    """The real arXiv day's papers, in the listing's order."""
    url = "https://rss.arxiv.org/rss/all"
    options = ArxivRssOptions(url=url, include_replacements=True)
    return ArxivRssSource().parse(ARXIV_DAY.read_bytes(), url, options).papers


def liked(paper_id: str, score: float, seed: str = "A seed paper", *shared: str) -> Match:
    """A recommendation as the recommend stage stores it."""
    return Match(paper_id, (Reason(RECOMMENDED, seed, shared),), score)


def matched(paper_id: str) -> Match:
    """An alert match on `learning`."""
    return Match(paper_id, (Reason("keyword", "learning", ("learning",)),), 1.0)


def make_digest(matches: list[Match], subscriber: Subscriber | None = None) -> Digest:
    """The digest `build_digest` makes of these matches over the real day."""
    papers = {p.id: p for p in day()}
    who = subscriber or Subscriber("ada@example.org", recommend=3)
    return build_digest(who, matches, papers, message_id="<d1@example.org>")


def parts(digest: Digest, feedback: Feedback | None = None) -> tuple[str, str, str]:
    """(subject, text part, HTML part) of the built message."""
    message = message_of(render_digest(digest, feedback=feedback))
    return str(message["Subject"]), body(message, "plain"), body(message, "html")


def test_recommended_papers_are_apart_best_first_and_capped() -> None:
    papers = day()
    matches = [
        matched(papers[0].id),
        liked(papers[1].id, 0.2),
        matched(papers[2].id),
        liked(papers[3].id, 0.5),
        liked(papers[4].id, 0.3),
        liked(papers[5].id, 0.1),
    ]
    digest = make_digest(matches)
    assert [e.paper.id for e in digest.entries] == [papers[0].id, papers[2].id]
    assert [e.paper.id for e in digest.recommended] == [papers[3].id, papers[4].id, papers[1].id]
    off = make_digest(matches, Subscriber("ada@example.org", recommend=0))
    assert off.recommended == ()
    assert len(off.entries) == 2


def test_the_section_follows_the_alert_matches_in_both_parts_with_its_why() -> None:
    papers = day()
    seed = "Grokking as the transition from lazy to rich training dynamics"
    digest = make_digest(
        [matched(papers[0].id), liked(papers[1].id, 0.4, seed, "networks", "training")]
    )
    subject, text, html = parts(digest)
    assert subject == "paperbot: 1 new paper matching your alerts, 1 recommended"
    why = f"Like “{seed}” — shared words: networks, training"
    for part in (text, BeautifulSoup(html, "html.parser").get_text(" ")):
        words = " ".join(part.split())
        assert words.count(HEADING) == 1
        assert words.index(papers[0].title) < words.index(HEADING) < words.index(papers[1].title)
        assert why in words
        assert f"Matched {why}" not in words
    soup = BeautifulSoup(html, "html.parser")
    assert [h.get_text() for h in soup.find_all("h1")][-1] == HEADING


def test_a_digest_of_recommendations_alone_says_so() -> None:
    papers = day()
    digest = make_digest([liked(p.id, 0.5 - n / 10) for n, p in enumerate(papers[:3])])
    subject, text, html = parts(digest)
    assert subject == "paperbot: 3 recommended papers"
    assert "matching your alerts" not in text
    assert text.count("--- ") == 3
    soup = BeautifulSoup(html, "html.parser")
    titles = [h.get_text(" ", strip=True) for h in soup.find_all("h2")]
    assert len(titles) == 3
    assert HEADING in text


def test_every_entry_has_its_more_and_less_links_in_both_parts() -> None:
    papers = day()
    old_style = Paper("hep-ph/9411242", "An old-style id", arxiv_id="hep-ph/9411242")
    digest = build_digest(
        Subscriber("ada@example.org"),
        [matched(papers[0].id), matched(papers[1].id), liked(old_style.id, 0.3)],
        {p.id: p for p in (papers[0], papers[1], old_style)},
        message_id="<d1@example.org>",
    )
    assert len(digest.recommended) == 1
    _subject, text, html = parts(digest, Feedback(BASE, TOKEN))
    soup = BeautifulSoup(html, "html.parser")
    for paper in (papers[0], papers[1], old_style):
        for verdict, label in (("more", "More like this"), ("less", "Less like this")):
            url = feedback_link(BASE, TOKEN, verdict, paper.id)
            assert f"{label}: {url}" in text.splitlines()
            anchors = soup.find_all("a", href=url)
            assert [a.get_text() for a in anchors] == [label]
            # the links sit in their paper's block, beside its title
            block = anchors[0].find_parent("div", class_="paper")
            assert block is not None
            assert paper.title in block.get_text(" ")
    assert "hep-ph%2F9411242" in text


def test_without_base_url_and_secret_there_are_no_feedback_links() -> None:
    papers = day()
    _subject, text, html = parts(make_digest([matched(papers[0].id), liked(papers[1].id, 0.3)]))
    assert "like this" not in text.lower()
    assert "like this" not in html.lower()


def test_a_full_digest_with_links_and_recommendations_keeps_the_size_budget() -> None:
    papers = sorted(day(), key=lambda p: -len(p.abstract))
    matches = [matched(p.id) for p in papers[:100]] + [liked(p.id, 0.3) for p in papers[100:105]]
    digest = make_digest(matches, Subscriber("ada@example.org", max_papers=100, recommend=5))
    rendered = render_digest(digest, feedback=Feedback(BASE, TOKEN))
    assert html_wire_size(rendered.html) <= MAX_HTML_BYTES
    soup = BeautifulSoup(rendered.html, "html.parser")
    shown = soup.find_all("div", class_="paper")
    more = soup.find_all("a", string="More like this")
    assert len(more) == len(shown) > 0
    # the text part shows the same papers as the HTML part, each with its links
    assert rendered.text.count("More like this: ") == len(more)
