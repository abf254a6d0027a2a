"""Rendering a digest (text + HTML) and building its MIME message."""

from __future__ import annotations

import functools
import html as html_lib
import re
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from bot.ingest.sources.arxiv_rss import ArxivRssOptions, ArxivRssSource
from bot.mail.digest import build_digest
from bot.mail.display import BIDI_CONTROLS, shorten
from bot.mail.mime import MAX_HTML_BYTES, RenderedDigest, build_message, html_wire_size
from bot.mail.render import render_digest
from bot.mail.views import TITLE_CHARS
from bot.models import Digest, DigestEntry, Link, Match, Paper, Reason, Subscriber
from tests.mailparse import body, message_of

#: a real arXiv listing (every archive, 2024-11-28): 243 papers with their real abstracts
ARXIV_DAY = (
    Path(__file__).parents[1] / "fixtures" / "arxiv" / "rss_all-archives_2024-11-28_trimmed.xml"
)

#: the words of the long abstracts
SENTENCE = (
    "we study how representations in deep networks trained with stochastic gradient descent "
    "collapse onto a simplex and what this means for transfer and robustness"
)


def paper(n: int = 1, **fields: object) -> Paper:
    """An arXiv-like paper; `fields` override the defaults."""
    values: dict[str, object] = {
        "id": f"2411.{n:05d}",
        "title": f"Paper number {n}",
        "authors": ("Ada Lovelace", "Alan Turing"),
        "abstract": "A short abstract.",
        "url": f"https://arxiv.org/abs/2411.{n:05d}",
        "arxiv_id": f"2411.{n:05d}",
        "published": datetime(2024, 11, 28, tzinfo=UTC),
        "sources": ("arxiv-cs-lg",),
    }
    values.update(fields)
    return Paper(**values)  # type: ignore[arg-type]


def keyword(alert: str, *terms: str) -> Reason:
    """A keyword reason."""
    return Reason("keyword", alert, terms)


def digest(*entries: DigestEntry, omitted: int = 0, email: str = "ada@example.org") -> Digest:
    """A digest for one subscriber."""
    return Digest(Subscriber(email), entries, "<d1@example.org>", omitted=omitted)


def entry(p: Paper, *reasons: Reason) -> DigestEntry:
    """A digest entry that matched `neural collapse` unless told otherwise."""
    return DigestEntry(p, reasons or (keyword("neural collapse"),))


MARK = re.compile(r"<mark[^>]*>(.*?)</mark>")


# --- HTML safety and highlighting ---------------------------------------------------------------


def test_script_title_is_escaped_in_html_and_whole_in_text() -> None:
    title = "<script>alert(1)</script>"
    rendered = render_digest(digest(entry(paper(title=title))))
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert title in rendered.text.splitlines()


def test_matched_terms_are_marked_in_html_title_and_abstract_only() -> None:
    p = paper(
        title="Neural Collapse in Transformers",
        abstract="We observe neural-collapse late in training.",
    )
    rendered = render_digest(digest(entry(p, keyword("neural collapse", "Neural Collapse"))))
    assert MARK.findall(rendered.html) == ["Neural Collapse", "neural-collapse"]
    assert "<mark" not in rendered.text
    assert "Neural Collapse in Transformers" in rendered.text.splitlines()


def test_reasons_name_the_alert_and_the_matched_terms() -> None:
    p = paper(title="Transformers and Grokking", authors=("G. Lajoie",))
    reasons = (
        keyword("transform*", "Transformers"),
        Reason("author", "Guillaume Lajoie", ("G. Lajoie",)),
    )
    rendered = render_digest(digest(DigestEntry(p, reasons)))
    for part in (rendered.text, rendered.html):
        assert "keyword: transform* (matched: Transformers)" in part
        assert "author: Guillaume Lajoie (matched: G. Lajoie)" in part
    assert "<strong>G. Lajoie</strong>" in rendered.html


# --- text part -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "title",
    [
        "Bounds on $H^3$ & the Ricci flow: " + "very long words " * 17 + "end",  # ~300 chars
        "Attention Is All You Need & More",
        "Przemysław's théorème: $\\mathcal{O}(n \\log n)$ *not* emphasis",
    ],
)
def test_text_part_keeps_each_title_whole_on_one_line(title: str) -> None:
    rendered = render_digest(digest(entry(paper(title=title))))
    assert title in rendered.text.splitlines()
    received = message_of(rendered)
    assert title in body(received, "plain").splitlines()


def test_title_with_a_line_break_is_put_on_one_line() -> None:
    rendered = render_digest(digest(entry(paper(title="A title\n  broken by the feed"))))
    assert "A title broken by the feed" in rendered.text.splitlines()


# --- content ---------------------------------------------------------------------------------


def test_long_author_list_is_shortened_but_keeps_followed_author() -> None:
    authors = (*(f"Author {i}" for i in range(206)), "Zoe Last")
    followed = authors[100]
    p = paper(authors=authors)
    reason = Reason("author", followed, (followed,))
    rendered = render_digest(digest(DigestEntry(p, (reason,))))
    authors_line = next(line for line in rendered.text.splitlines() if line.startswith("Authors:"))
    assert authors_line == (
        "Authors: Author 0, Author 1, Author 2, Author 3, Author 4, …, Author 100 and 201 more"
    )
    assert "Author 100</strong> and 201 more" in rendered.html
    assert "Author 50" not in rendered.html
    assert f"<strong>{followed}</strong>" in rendered.html


def test_short_author_list_is_complete() -> None:
    authors = tuple(f"Author {i}" for i in range(7))
    rendered = render_digest(digest(entry(paper(authors=authors))))
    assert f"Authors: {', '.join(authors)}" in rendered.text.splitlines()
    assert "authors)" not in rendered.text


@pytest.mark.parametrize(("count", "subject"), [(1, "1 new paper "), (3, "3 new papers ")])
def test_subject_counts_papers(count: int, subject: str) -> None:
    rendered = render_digest(digest(*(entry(paper(n)) for n in range(count))), list_name="labbot")
    assert rendered.subject == f"labbot: {subject}matching your alerts"


def test_omitted_papers_are_counted_with_where_to_see_them() -> None:
    rendered = render_digest(
        digest(entry(paper()), omitted=12), manage_url="https://papers.example.org/manage/t0k"
    )
    for part in (rendered.text, rendered.html):
        assert "12 more matching papers were left out" in part
        assert "https://papers.example.org/manage/t0k" in part
        assert "max_papers" in part


def test_nothing_omitted_says_nothing() -> None:
    assert "left out" not in render_digest(digest(entry(paper()))).text


def test_links_source_and_date() -> None:
    p = paper(
        links=(Link("code", "https://github.com/lab/repo"), Link("evil", "javascript:alert(1)")),
        sources=("arxiv-cs-lg", "hf-daily"),
    )
    rendered = render_digest(digest(entry(p)))
    for part in (rendered.text, rendered.html):
        assert "https://arxiv.org/abs/2411.00001" in part
        assert "https://arxiv.org/pdf/2411.00001" in part
        assert "https://github.com/lab/repo" in part
        assert "javascript:" not in part
        assert "arxiv-cs-lg, hf-daily" in part
        assert "2024-11-28" in part
    assert '<a href="https://arxiv.org/abs/2411.00001"' in rendered.html


@pytest.mark.parametrize(
    ("abstract", "lines"),
    [
        (SENTENCE + ". " + SENTENCE, 1),  # one line: the reader's client wraps it
        ("η κατάρρευση των νευρωνικών δικτύων " * 25, 2),  # 2 bytes a letter: two lines
        (" ".join([SENTENCE] * 12), 2),  # 1,900 characters, as long as arXiv allows
    ],
)
def test_text_abstract_is_whole_in_few_lines(abstract: str, lines: int) -> None:
    rendered = render_digest(digest(entry(paper(abstract=abstract))))
    raw = build_message(
        rendered, sender="bot@example.org", recipient="ada@example.org", message_id="<d@e.org>"
    ).as_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")), "RFC 5322 lines"
    assert "Content-Transfer-Encoding: 8bit" in raw.decode("utf-8"), "not quoted-printable"
    text = body(message_of(rendered), "plain").splitlines()
    first = next(i for i, line in enumerate(text) if line.startswith(abstract[:20]))
    assert " ".join(text[first : first + lines]) == abstract.strip(), "whole, in as many lines"
    assert text[first + lines] == ""


def test_footer_links_when_given() -> None:
    rendered = render_digest(
        digest(entry(paper())),
        manage_url="https://p.example.org/manage/abc",
        unsubscribe_url="https://p.example.org/unsubscribe/abc",
    )
    for part in (rendered.text, rendered.html):
        assert "https://p.example.org/manage/abc" in part
        assert "https://p.example.org/unsubscribe/abc" in part
    assert "Unsubscribe" not in render_digest(digest(entry(paper()))).html


def test_html_is_self_contained_with_css_inlined_and_dark_mode_hint() -> None:
    html = render_digest(digest(entry(paper()))).html
    assert not re.search(r"<(link|img|script)\b|src=|@import", html)
    assert 'name="color-scheme"' in html
    assert re.search(r'<h2 style="[^"]+">', html), "CSS is inlined into style attributes"


def test_shorten_cuts_at_a_word() -> None:
    assert shorten("alpha beta gamma delta", 12) == "alpha beta …"
    assert shorten("alpha  beta\n gamma", 100) == "alpha beta gamma"
    assert shorten("anything", 0) == ""


def test_fifty_paper_digest_with_long_abstracts_stays_under_100_kb() -> None:
    words = SENTENCE.split()
    abstract = " ".join(words[i % len(words)] for i in range(600))  # ~4,000 characters
    entries = [
        entry(
            paper(
                n,
                title=f"Collapse of representations number {n}: a study of simplex geometry",
                authors=tuple(f"Author {i}" for i in range(40)),
                abstract=abstract,
                links=(Link("code", f"https://github.com/lab/repo-{n}"),),
            ),
            keyword("collapse"),
            keyword("simplex"),
        )
        for n in range(50)
    ]
    rendered = render_digest(digest(*entries, omitted=3))
    assert len(rendered.html.encode("utf-8")) < MAX_HTML_BYTES
    for n in range(50):  # abstracts are cut, papers are not
        assert f"representations number {n}:" in rendered.html
    received = message_of(rendered)
    assert len(body(received, "html").encode("utf-8")) < MAX_HTML_BYTES
    assert "study how representations" in body(received, "html")


# --- a digest keeps its word: size, same content in both parts, sane lengths ----------------------

MANAGE = "https://papers.example.org/manage/t0k"
MATCHES = MANAGE + "/matches"
UNSUBSCRIBE = "https://papers.example.org/unsubscribe/t0k"
CUT_MARK = re.compile(r" … \(whole abstract(?:: (\S+))?\)$")


@functools.cache
def real_papers() -> tuple[Paper, ...]:
    """The real arXiv day's papers, the longest abstracts first."""
    url = "https://rss.arxiv.org/rss/all"
    options = ArxivRssOptions(url=url, include_replacements=True)
    listing = ArxivRssSource().parse(ARXIV_DAY.read_bytes(), url, options)
    return tuple(sorted(listing.papers, key=lambda p: -len(p.abstract)))


def real_digest(count: int, max_papers: int = 50, omitted: int = 0) -> Digest:
    """A digest of the `count` real papers with the longest abstracts, all matched `learning`."""
    entries = tuple(entry(p, keyword("learning")) for p in real_papers()[:count])
    subscriber = Subscriber("ada@example.org", max_papers=max_papers)
    return Digest(subscriber, entries, "<d1@example.org>", omitted=omitted)


def raw_message(rendered: RenderedDigest) -> bytes:
    """The message's bytes as a sender writes them."""
    return build_message(
        rendered, sender="bot@example.org", recipient="ada@example.org", message_id="<d@e.org>"
    ).as_bytes()


def wire_body(raw: bytes, subtype: str) -> bytes:
    """The body of the text/<subtype> part exactly as sent: transfer-encoded, CRLF lines."""
    boundary = BytesParser(policy=policy.default).parsebytes(raw).get_boundary()
    assert boundary
    for chunk in raw.split(b"\r\n--" + boundary.encode("ascii"))[1:]:
        head, _, content = chunk.partition(b"\r\n\r\n")
        if f"text/{subtype}".encode() in head:
            return content
    raise AssertionError(f"no text/{subtype} part")


def html_papers(html: str) -> list[tuple[str, str]]:
    """(title, abstract) of each paper in an HTML part, as a reader sees them; a link in
    the abstract (the whole abstract's, after a cut) is written `(text: href)`."""
    soup = BeautifulSoup(html, "html.parser")
    papers = []
    for paper_div in soup.select("div.paper"):
        title, abstract = paper_div.find("h2"), paper_div.select_one("p.abs")
        assert title is not None
        for link in abstract.find_all("a") if abstract else ():
            link.replace_with(f"{link.get_text().rstrip(')')}: {link['href']})")
        shown = " ".join(abstract.get_text().split()) if abstract else ""
        papers.append((title.get_text(), shown))
    return papers


def text_papers(text: str) -> list[tuple[str, str]]:
    """(title, abstract) of each paper in a text part: the line after its `--- i of n ---`,
    and the lines of its paragraph after the first blank line, joined."""
    blocks = re.split(r"^--- \d+ of \d+ ---\n", text, flags=re.MULTILINE)[1:]
    papers = []
    for block in blocks:
        lines = block.split("\n")
        start = lines.index("") + 1
        end = lines.index("", start)
        papers.append((lines[0], " ".join(lines[start:end])))
    return papers


def same_words(html_abstract: str, text_abstract: str, url: str | None) -> bool:
    """The two parts show the same abstract, and a cut alike, with the paper's link."""
    cut = CUT_MARK.search(text_abstract)
    return html_abstract == text_abstract and (cut is None or cut.group(1) == url)


@pytest.mark.parametrize("matches_url", [MATCHES, None], ids=["web app", "no web app"])
def test_200_long_real_abstracts_stay_within_100_kb_as_sent(matches_url: str | None) -> None:
    digest_ = real_digest(200, max_papers=200)  # more than the config allows: any cap holds
    rendered = render_digest(
        digest_, manage_url=MANAGE, unsubscribe_url=UNSUBSCRIBE, matches_url=matches_url
    )
    raw = raw_message(rendered)
    sent = wire_body(raw, "html")
    assert len(sent) <= MAX_HTML_BYTES, "the HTML part as sent (transfer-encoded, CRLF)"
    assert len(sent) == html_wire_size(rendered.html), "the budget measures what is sent"
    html = body(BytesParser(policy=policy.default).parsebytes(raw), "html")  # type: ignore[arg-type]
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("a", href=UNSUBSCRIBE), "the unsubscribe link is there, not clipped"
    shown = len(soup.select("div.paper"))
    assert 40 <= shown < 200, "as many as fit with cut abstracts; the rest left out"
    assert rendered.subject == f"paperbot: {shown} of 200 new papers matching your alerts"
    note = f"{200 - shown} more matching papers were left out"
    assert note in rendered.text
    assert note in html
    assert "no more than fit in 100 KB" in rendered.text


def test_text_and_html_list_the_same_papers_with_the_same_cut_abstracts() -> None:
    digest_ = real_digest(120, max_papers=100)
    rendered = render_digest(digest_, unsubscribe_url=UNSUBSCRIBE, matches_url=MATCHES)
    in_html, in_text = html_papers(rendered.html), text_papers(rendered.text)
    assert [title for title, _ in in_html] == [title for title, _ in in_text]
    assert len(in_html) > 40
    papers = {p.title: p for p in real_papers()}
    cut = 0
    for (title, html_abstract), (_, text_abstract) in zip(in_html, in_text, strict=True):
        url = papers[title].url
        assert same_words(html_abstract, text_abstract, url), title
        whole = " ".join(papers[title].abstract.split())
        stripped = CUT_MARK.sub("", text_abstract)
        assert whole.startswith(stripped), "cut at a word, never altered"
        if stripped != whole:
            cut += 1
            assert whole[len(stripped)] == " ", "at a word boundary"
            assert text_abstract.endswith(f" … (whole abstract: {url})")
    assert cut, "the longest real abstracts had to be cut to fit"


def test_abstracts_are_whole_when_the_digest_fits() -> None:
    papers = real_papers()[:10]  # the ten longest: about 1,900 characters each
    rendered = render_digest(
        Digest(
            Subscriber("ada@example.org"),
            tuple(entry(p, keyword("learning")) for p in papers),
            "<d1@example.org>",
        )
    )
    for shown in (html_papers(rendered.html), text_papers(rendered.text)):
        assert [abstract for _, abstract in shown] == [" ".join(p.abstract.split()) for p in papers]
    assert "…" not in rendered.text


def test_a_megabyte_title_author_and_abstract_are_cut() -> None:
    # hand-made hostile paper: a feed that sends a megabyte in each field
    huge = paper(
        title="Grokking " * 120_000,
        authors=("Ada " * 250_000, "Alan Turing"),
        abstract="collapse " * 120_000,
    )
    rendered = render_digest(digest(entry(huge), entry(paper(2))), unsubscribe_url=UNSUBSCRIBE)
    raw = raw_message(rendered)
    assert len(wire_body(raw, "html")) <= MAX_HTML_BYTES
    assert len(raw) < 60_000
    [(html_title, html_abstract), second] = html_papers(rendered.html)
    [(text_title, text_abstract), _] = text_papers(rendered.text)
    assert html_title == text_title
    assert text_title.endswith(" …")
    assert len(text_title) <= TITLE_CHARS + 2
    assert same_words(html_abstract, text_abstract, huge.url)
    assert CUT_MARK.search(text_abstract), "a megabyte is no abstract: it is cut, and says so"
    assert second[0] == "Paper number 2", "the paper after it is there"
    assert "Ada Ada" in rendered.text
    assert "Alan Turing" in rendered.text


def test_five_hundred_authors_show_the_first_the_followed_and_how_many_more() -> None:
    authors = tuple(f"Author {i}" for i in range(500))
    reason = Reason("author", "Author 300", ("Author 300",))
    rendered = render_digest(digest(DigestEntry(paper(authors=authors), (reason,))))
    expected = "Author 0, Author 1, Author 2, Author 3, Author 4, …, Author 300 and 494 more"
    assert f"Authors: {expected}" in rendered.text.splitlines()
    shown = BeautifulSoup(rendered.html, "html.parser").select("p.meta")[0].get_text()
    assert shown == expected
    assert "Author 499" not in rendered.html


def test_bidi_controls_are_stripped_from_everything_shown() -> None:
    # hand-made: the trick the issue saw (U+202E shows "Grokking gnp.exe" as "Grokking exe.png")
    trick = "".join(BIDI_CONTROLS)
    p = paper(
        title=f"Grokking \u202egnp.exe{trick}",
        authors=(f"Ada{trick} Lovelace",),
        abstract=f"An abstract{trick} with\u2067 isolates\u2069.",
        sources=(f"feed{trick}",),
        links=(Link(f"code{trick}", "https://github.com/lab/repo"),),
    )
    reason = Reason("keyword", f"grokking{trick}", (f"Grokking{trick}",))
    rendered = render_digest(digest(DigestEntry(p, (reason,))), list_name=f"bot{trick}")
    html = html_lib.unescape(rendered.html)  # character references count as the character
    for shown in (rendered.subject, rendered.text, html):
        assert not set(BIDI_CONTROLS) & set(shown)
    # the HTML as a reader sees it: "Grokking" is marked, as the matcher matched it
    seen = BeautifulSoup(rendered.html, "html.parser").get_text()
    assert MARK.findall(rendered.html) == ["Grokking"]
    for part in (rendered.text, seen):
        assert "Grokking gnp.exe" in part
        assert "Ada Lovelace" in part
        assert "An abstract with isolates." in part


def test_a_url_with_a_bidi_control_is_no_link() -> None:
    p = paper(links=(Link("code", "https://github.com/\u202elab/repo"),))
    rendered = render_digest(digest(entry(p)))
    assert "github.com" not in rendered.text
    assert "github.com" not in rendered.html


def test_the_subject_says_how_many_of_how_many_when_capped() -> None:
    papers = {f"2411.{n:05d}": paper(n) for n in range(139)}
    matches = [Match(pid, (keyword("paper"),), 1.0) for pid in papers]
    capped = build_digest(
        Subscriber("ada@example.org", max_papers=50), matches, papers, message_id="<d@e.org>"
    )
    rendered = render_digest(capped, list_name="labbot", matches_url=MATCHES)
    assert rendered.subject == "labbot: 50 of 139 new papers matching your alerts"
    assert rendered.text.startswith("50 of 139 new papers matching your alerts\n")
    assert ">50 of 139 new papers matching your alerts</h1>" in rendered.html
    assert "89 more matching papers were left out: a digest holds at most 50." in rendered.text
    whole = build_digest(Subscriber("ada@example.org"), matches[:3], papers, message_id="<d@e>")
    assert render_digest(whole).subject == "paperbot: 3 new papers matching your alerts"


def test_left_out_papers_are_listed_when_there_is_no_page_to_see_them() -> None:
    papers = {p.id: p for p in real_papers()[:60]}
    matches = [Match(pid, (keyword("learning"),), 60.0 - n) for n, pid in enumerate(papers)]
    capped = build_digest(
        Subscriber("ada@example.org", max_papers=50), matches, papers, message_id="<d@e.org>"
    )
    left_out = [e.paper for e in capped.left_out]
    assert len(left_out) == 10
    rendered = render_digest(capped, unsubscribe_url=UNSUBSCRIBE)
    listed = BeautifulSoup(rendered.html, "html.parser").select("ul li a")
    assert [(a.get_text(), a["href"]) for a in listed] == [
        (shorten(p.title, 120), p.url) for p in left_out
    ]
    for p in left_out:
        assert f"- {shorten(p.title, 120)} <{p.url}>" in rendered.text.splitlines()
    assert "not listed" not in rendered.text
    with_page = render_digest(capped, unsubscribe_url=UNSUBSCRIBE, matches_url=MATCHES)
    for part in (with_page.text, with_page.html):
        assert MATCHES in part
        assert left_out[0].url not in part, "the page lists them, the digest links to it"


def test_left_out_papers_past_what_fits_are_counted_with_what_to_do() -> None:
    papers = {
        f"2411.{n:05d}": paper(n, title=f"Paper {n} " + "on collapse " * 9) for n in range(400)
    }
    matches = [Match(pid, (keyword("collapse"),), 1.0) for pid in papers]
    capped = build_digest(
        Subscriber("ada@example.org", max_papers=20), matches, papers, message_id="<d@e.org>"
    )
    rendered = render_digest(capped, unsubscribe_url=UNSUBSCRIBE)
    listed = len(BeautifulSoup(rendered.html, "html.parser").select("ul li"))
    assert 10 < listed < 380, "as many titles as fit in their share of the budget"
    for part in (rendered.text, rendered.html):
        assert f"{380 - listed} more are not listed: they do not fit here." in part
        assert (
            "max_papers in the config file sets how many papers a digest holds, up to 100" in part
        )
    assert len(wire_body(raw_message(rendered), "html")) <= MAX_HTML_BYTES


def test_a_part_with_a_line_too_long_is_measured_quoted_printable() -> None:
    # hand-made: a 400-character CJK title is one 3,200-byte line of character references
    title = "深層学習における表現の崩壊" * 30
    entries = tuple(
        entry(p, keyword("learning"))
        for p in (replace_title(p, f"{title} {n}") for n, p in enumerate(real_papers()[:80]))
    )
    rendered = render_digest(
        Digest(Subscriber("ada@example.org", max_papers=80), entries, "<d1@example.org>"),
        unsubscribe_url=UNSUBSCRIBE,
    )
    raw = raw_message(rendered)
    assert b"Content-Transfer-Encoding: quoted-printable" in raw
    sent = wire_body(raw, "html")
    assert len(sent) == html_wire_size(rendered.html)
    assert len(sent) <= MAX_HTML_BYTES


def replace_title(p: Paper, title: str) -> Paper:
    """The paper with another title."""
    return Paper(**{**{f: getattr(p, f) for f in p.__dataclass_fields__}, "title": title})
