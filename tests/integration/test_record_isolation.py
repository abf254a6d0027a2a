"""No exception from one source's data escapes that source: recording is isolated per source.

The sources' parsers all pass their papers through the gate (see test_bad_items.py), so to
make storing fail, one outcome here carries a paper that skipped it: upvotes of 2**63, more
than SQLite's INTEGER holds, which once made every run fail with `internal error`. The
other outcomes are the real arXiv capture, read by the real parser.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import yaml

from bot.config.load import parse_config
from bot.config.settings import Config
from bot.ingest.sources import get_kind
from bot.mail.senders import OutboxSender
from bot.models import Paper, Validators
from bot.run.pipeline import SourceOutcome, deliver_stage, match_pending, record_outcomes
from bot.store.health import FetchRecord
from bot.store.store import Store
from tests.httpserver import FIXTURES

NOW = datetime(2024, 11, 28, 12, tzinfo=UTC)
FEED = FIXTURES / "arxiv/rss_all-archives_2024-11-28_trimmed.xml"
POISONED = Paper(id="2410.17243", title="Breaking the memory barrier", votes=2**63)
POISONED_URL = "https://huggingface.co/api/daily_papers?date=2024-10-25"


def config_in(tmp_path: Path) -> Config:
    """Two arXiv sources around a Hugging Face one; one subscriber for diffusion papers."""
    sources = [
        {"name": "arxiv-a", "kind": "arxiv-rss", "categories": ["cs.LG"]},
        {"name": "hf", "kind": "huggingface"},
        {"name": "arxiv-b", "kind": "arxiv-rss", "categories": ["stat"]},
    ]
    raw = {
        "database": str(tmp_path / "paperbot.db"),
        "outbox": str(tmp_path / "outbox"),
        "sources": sources,
        "subscribers": [{"email": "ada@example.org", "keywords": ["diffusion"]}],
    }
    return parse_config(yaml.safe_dump(raw))


def outcome(config: Config, index: int, papers: tuple[Paper, ...], url: str) -> SourceOutcome:
    """What fetching the config's source `index` produced."""
    spec = config.sources[index]
    record = FetchRecord(spec.name, "ok", len(papers))
    return SourceOutcome(spec, record, NOW, papers, ((url, Validators(etag='"v1"')),))


def arxiv_papers(config: Config, index: int) -> tuple[Paper, ...]:
    """The capture read by the real arxiv-rss parser with that source's options."""
    spec = config.sources[index]
    return (
        get_kind(spec.kind).parse(FEED.read_bytes(), "https://rss.arxiv.org/", spec.options).papers
    )


def test_a_source_whose_papers_cannot_be_stored_is_that_sources_error(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    first, second = arxiv_papers(config, 0), arxiv_papers(config, 2)
    store = Store.open(config.database)
    try:
        store.subscribers.sync_config(config.subscribers)
        run_id = store.health.start_run(NOW)
        records = record_outcomes(
            store,
            run_id,
            [
                outcome(config, 0, first, "https://rss.arxiv.org/a"),
                outcome(config, 1, (POISONED,), POISONED_URL),
                outcome(config, 2, second, "https://rss.arxiv.org/b"),
            ],
        )
        assert [r.status for r in records] == ["ok", "error", "ok"]
        error = records[1].error or ""
        assert error.startswith("storing what it listed failed (OverflowError:")
        assert "\n" not in error
        assert records[0].new > 0
        assert records[2].new > 0

        stored = store.papers.by_id([p.id for p in (*first, *second, POISONED)])
        assert set(stored) == {p.id for p in (*first, *second)}
        # the failed source's validators are not kept: its next fetch is not a 304
        assert store.health.validators(POISONED_URL) is None
        assert store.health.validators("https://rss.arxiv.org/a") == Validators(etag='"v1"')
        health = {s.source: s for s in store.health.sources()}
        assert (health["hf"].last_status, health["hf"].consecutive_failures) == ("error", 1)

        # the run goes on: match and deliver what the other sources brought
        assert match_pending(store) > 0
        report = asyncio.run(deliver_stage(config, store, OutboxSender(config.outbox), now=NOW))
        assert report.sent == 1
        assert len(list(config.outbox.glob("*.eml"))) == 1
    finally:
        store.close()


def test_the_store_is_not_poisoned_for_later_runs(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    papers = arxiv_papers(config, 0)
    store = Store.open(config.database)
    try:
        for _run in range(2):
            run_id = store.health.start_run(NOW)
            records = record_outcomes(
                store,
                run_id,
                [
                    outcome(config, 1, (POISONED,), POISONED_URL),
                    outcome(config, 0, papers, "https://rss.arxiv.org/a"),
                ],
            )
            assert [r.status for r in records] == ["error", "ok"]
        assert set(store.papers.by_id([p.id for p in papers])) == {p.id for p in papers}
    finally:
        store.close()
