"""Hostile but valid text goes through record, match and digest without hurting anyone's mail.

The real Hugging Face capture is served with its papers' texts replaced by hand-made
hostile ones: a 19,000-character word, a title of punctuation only, bidi overrides and
right-to-left scripts, emoji with joiners, control characters, stacked combining marks,
TeX-like punctuation, 500 authors. A whole `paperbot once` cycle (in this process, digests
to the outbox) must record them, match them in the alert index, and write every
subscriber's digest, the plain subscribers' too. And any text at all (a store may hold
papers recorded before the gate) is matched by the engine and rendered without an error.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.alerts.index import AlertIndex
from bot.config.load import parse_config
from bot.mail.render import render_digest
from bot.models import Digest, DigestEntry, Paper, Subscriber
from bot.run.pipeline import run_once
from tests.httpserver import FIXTURES, LocalHTTPServer

NOW = datetime(2024, 10, 26, 8, tzinfo=UTC)
CAPTURE = FIXTURES / "huggingface/api_daily_papers_2024-10-25_first4_trimmed.json"
# (title, abstract) for hostile papers, each holding the word "grokking" somewhere
HOSTILE = [
    ("Grokking " + "y" * 900, "grokking " + "x" * 19_000),  # very long words
    ("!!! ??? … —— ¿¡ ***", "It is about grokking."),  # nothing but punctuation
    ("\u202egnp.exe\u202c grokking \u2067שלום\u2069 عربى", "\u200fRTL grokking\u200e text"),
    ("🧑\u200d🔬 Grokking 🔥🔥 🏳️\u200d🌈", "Emoji 👩🏽\u200d💻 grokking \ufe0f"),
    ("\x01\x02Grokking\x1f with\x7f controls\x0b", "\x1bgrokking\x08 tabs\tand\rreturns"),
    ("G̷̢̛r̶o̵k̸king stacked marks", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇ grokking"),
    ("$\\sum_{i}^{\\infty}$ grokking \\\\ { } ^ _ $$", "\\begin{equation} grokking \\end{"),
]


def hostile_items() -> list[dict[str, Any]]:
    """The capture's first item once per hostile text (new ids), plus its 4 real items."""
    items: list[dict[str, Any]] = json.loads(CAPTURE.read_text(encoding="utf-8"))
    template = items[0]
    made = []
    for number, (title, abstract) in enumerate(HOSTILE, start=1):
        item = json.loads(json.dumps(template))
        item["paper"].update(id=f"2410.{90000 + number}", title=title, summary=abstract)
        made.append(item)
    crowded = json.loads(json.dumps(template))
    crowded["paper"]["id"] = "2410.99999"
    crowded["paper"]["title"] = "Five hundred authors on grokking"
    crowded["paper"]["authors"] = [{"name": f"Author Number {n}"} for n in range(500)]
    return [*made, crowded, *items]


def text_part(path: Path) -> str:
    """The plain-text part of a written digest."""
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_hostile_text_is_recorded_matched_and_mailed(
    tmp_path: Path, http_server: LocalHTTPServer
) -> None:
    items = hostile_items()
    http_server.route("/hf/hostile.json", body=json.dumps(items), content_type="application/json")
    raw = {
        "database": str(tmp_path / "paperbot.db"),
        "outbox": str(tmp_path / "outbox"),
        "fetch": {"timeout": 5, "retries": 0, "backoff": 0},
        "sources": [
            {"name": "hf", "kind": "huggingface", "url": http_server.url("/hf/hostile.json")}
        ],
        "subscribers": [
            {"email": "ada@example.org", "keywords": ["grokking"], "max_papers": 500},
            {"email": "bob@example.org", "authors": ["Author Number 499"]},
            {"email": "dan@example.org", "keywords": ["שלום", "stacked marks"]},
            {"email": "eve@example.org", "keywords": ["knowledge editing"]},  # a real paper
        ],
    }
    config = parse_config(yaml.safe_dump(raw))

    report = asyncio.run(run_once(config, now=NOW))

    assert report.errors == ()
    assert report.new_papers == len(items)
    digests = {path.name.split("-", 1)[1]: path for path in config.outbox.glob("*.eml")}
    assert len(digests) == 4
    by_person = {
        person: text_part(next(p for name, p in digests.items() if person in name))
        for person in ("ada", "bob", "dan", "eve")
    }
    hostile_ids = [item["paper"]["id"] for item in items[: len(HOSTILE) + 1]]
    for paper_id in hostile_ids:
        assert f"arxiv.org/abs/{paper_id}" in by_person["ada"], paper_id
    assert "arxiv.org/abs/2410.99999" in by_person["bob"]
    assert "arxiv.org/abs/2410.90003" in by_person["dan"]
    assert "arxiv.org/abs/2410.90006" in by_person["dan"]
    assert "arxiv.org/abs/2410.16251" in by_person["eve"]  # Can Knowledge Editing Really...
    assert "\x01" not in by_person["ada"]
    assert "\x1b" not in by_person["ada"]


# any text that SQLite can hold (lone surrogates cannot be stored), controls and NUL included
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=120)
READER = Subscriber(
    email="ada@example.org",
    keywords=("grokking", "neural collapse", "transform*", '"x y" AND (z OR w) -survey'),
    authors=("G. Lajoie", "Yoshua Bengio"),
)
INDEX = AlertIndex.build([READER])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(any_text, any_text, st.lists(any_text, max_size=4)), min_size=1, max_size=4
    )
)
def test_any_text_is_matched_and_rendered(rows: list[tuple[str, str, list[str]]]) -> None:
    papers = [
        Paper(
            id=f"title:{number:016x}",
            title=f"{title} grokking",  # so that every paper is matched and rendered
            abstract=abstract,
            authors=(*authors, "Guillaume Lajoie"),
        )
        for number, (title, abstract, authors) in enumerate(rows)
    ]
    found = INDEX.match(papers)
    by_id = {paper.id: paper for paper in papers}
    entries = tuple(
        DigestEntry(by_id[match.paper_id], match.reasons) for match in found[READER.email]
    )
    assert len(entries) == len(papers)
    rendered = render_digest(Digest(READER, entries, "<hostile@example.org>"))
    assert rendered.text.count("G. Lajoie") >= len(papers)  # each entry says why it matched
    assert rendered.html.count("G. Lajoie") >= len(papers)
