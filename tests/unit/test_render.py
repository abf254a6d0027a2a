"""Rendering a digest (text + HTML) and building its MIME message."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from bot.models import Digest, DigestEntry, Link, Paper, Reason, Subscriber
from bot.render import (
    MAX_HTML_BYTES,
    RenderedDigest,
    build_message,
    highlight,
    render_digest,
    shorten,
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


def message_of(rendered: RenderedDigest, **headers: str) -> EmailMessage:
    """The built message, serialized and parsed back as a mail client would."""
    options = {
        "sender": "paperbot <bot@example.org>",
        "recipient": "ada@example.org",
        "message_id": "<d1@example.org>",
    } | headers
    raw = build_message(rendered, **options).as_bytes()  # type: ignore[arg-type]
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body(message: EmailMessage, subtype: str) -> str:
    """The decoded text/<subtype> part (with the CRLFs of the wire made newlines)."""
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


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


@pytest.mark.parametrize(
    ("text", "terms", "marked"),
    [
        ("Café culture", ("cafe",), ["Café"]),  # accents
        ("CAFE culture", ("café",), ["CAFE"]),
        ("in context learning works", ("in-context learning",), ["in context learning"]),
        ("in-context learning works", ("in context learning",), ["in-context learning"]),
        ("GANs and organs", ("GAN",), []),  # whole words only
        ("a GAN, an organ", ("GAN",), ["GAN"]),
        ("Transformers transform", ("transform*",), ["Transformers", "transform"]),
        (
            "neural collapse and collapse",
            ("collapse", "neural collapse"),
            ["neural collapse", "collapse"],
        ),
        ("Straße", ("strasse",), ["Straße"]),
    ],
)
def test_highlight_folds_case_accents_and_hyphens(
    text: str, terms: tuple[str, ...], marked: list[str]
) -> None:
    assert MARK.findall(str(highlight(text, terms))) == marked


def test_highlight_escapes_around_and_inside_marks_without_touching_entities() -> None:
    assert str(highlight("R&D at <scale>", ("R&D",))) == "<mark>R&amp;D</mark> at &lt;scale&gt;"
    # "amp" and "lt" appear only in the escaped form: never marked inside an entity
    assert "<mark>" not in str(highlight("Tom & Jerry < Spike", ("amp", "lt", "gt")))
    assert str(highlight("x <b> y", ())) == "x &lt;b&gt; y"


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


# --- the message -------------------------------------------------------------------------------


def test_message_headers_and_parts() -> None:
    rendered = render_digest(digest(entry(paper())))
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
    rendered = render_digest(digest(entry(paper())))
    mailto_only = message_of(rendered, unsubscribe_mailto="mailto:unsub@example.org")
    assert mailto_only["List-Unsubscribe"] == "<mailto:unsub@example.org>"
    assert mailto_only["List-Unsubscribe-Post"] is None
    bare = message_of(rendered)
    assert bare["List-Unsubscribe"] is None
    assert bare["List-Id"] is None


def test_non_ascii_subject_and_names_are_encoded() -> None:
    rendered = render_digest(digest(entry(paper())), list_name="Pàpers für Rémy")
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
    message = message_of(render_digest(digest(entry(paper()))), unsubscribe_url=url)
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
    rendered = render_digest(digest(entry(paper())))
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
