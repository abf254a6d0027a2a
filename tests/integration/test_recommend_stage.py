"""The recommend stage in the matching step (`match_pending`) over a real SQLite store and a
real arXiv day: what it must never recommend, and what it costs when nobody uses it."""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.ingest.sources.arxiv_rss import ArxivRssOptions, ArxivRssSource
from bot.models import RECOMMENDED, Paper, Subscriber
from bot.run.pipeline import match_pending
from bot.store.store import Store
from tests.httpserver import FIXTURES

DAY1 = FIXTURES / "arxiv" / "rss_all-archives_2024-11-28_trimmed.xml"
#: three language-model papers of the day
SEEDS = ("2411.17760", "2411.17876", "2411.18104")


@functools.cache
def day() -> tuple[Paper, ...]:
    """The real day's new papers."""
    url = "https://rss.arxiv.org/rss/all"
    options = ArxivRssOptions(url=url)
    return ArxivRssSource().parse(DAY1.read_bytes(), url, options).papers


def seeded(email: str, **fields: object) -> Subscriber:
    """A subscriber with the seeds and no alerts unless told otherwise."""
    values: dict[str, object] = {"likes": SEEDS, "recommend": 5, **fields}
    return Subscriber(email, **values)  # type: ignore[arg-type]


def recommended(store: Store, email: str) -> list[str]:
    """The paper ids recommended to this subscriber (waiting for a digest)."""
    return [
        m.paper_id
        for m in store.matches.undelivered(email)
        if m.reasons and m.reasons[0].kind == RECOMMENDED
    ]


def matched_day(tmp_path: Path, subscribers: list[Subscriber]) -> Store:
    """A store with these subscribers and the day recorded and matched."""
    store = Store.open(tmp_path / "p.db")
    store.subscribers.sync_config(subscribers)
    store.papers.record("arxiv", day())
    match_pending(store)
    return store


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """What the seeds alone bring."""
    with matched_day(tmp_path_factory.mktemp("base"), [seeded("s@example.org")]) as store:
        found = recommended(store, "s@example.org")
    assert len(found) == 5
    assert not set(found) & set(SEEDS)
    return found


def titles(ids: list[str]) -> dict[str, Paper]:
    """The day's papers with these ids."""
    return {p.id: p for p in day() if p.id in ids}


def test_excluded_papers_are_never_recommended(tmp_path: Path, baseline: list[str]) -> None:
    top = titles(baseline)[baseline[0]]
    word = max(top.title.split(), key=len).strip(":,.")  # a word of its title
    subscriber = seeded("e@example.org", exclude=(word,))
    with matched_day(tmp_path, [subscriber]) as store:
        found = recommended(store, "e@example.org")
    assert baseline[0] not in found
    assert found, "the others are still recommended"
    assert all(word.lower() not in p.title.lower() for p in titles(found).values())


def test_papers_outside_the_categories_are_never_recommended(
    tmp_path: Path, baseline: list[str]
) -> None:
    outside = [p for p in titles(baseline).values() if "cs.CL" not in p.categories]
    assert outside, "the seeds alone bring papers of other categories"
    with matched_day(tmp_path, [seeded("c@example.org", categories=("cs.CL",))]) as store:
        found = recommended(store, "c@example.org")
    assert found
    assert all("cs.CL" in p.categories for p in titles(found).values())


def test_a_paper_marked_less_like_this_is_never_recommended(
    tmp_path: Path, baseline: list[str]
) -> None:
    store = Store.open(tmp_path / "p.db")
    store.subscribers.sync_config([seeded("l@example.org")])
    sid = store.subscribers.active_ids()["l@example.org"]
    store.papers.record("arxiv", day())
    store.feedback.record(sid, baseline[0], "less")
    match_pending(store)
    found = recommended(store, "l@example.org")
    store.close()
    assert baseline[0] not in found
    assert found


def test_a_batch_matched_again_recommends_nothing_twice(
    tmp_path: Path, baseline: list[str]
) -> None:
    with matched_day(tmp_path, [seeded("s@example.org")]) as store:
        first = recommended(store, "s@example.org")
        assert first == baseline, "the same inputs, the same recommendations"
        # as after a crash between recording and matching: the day waits for matching again
        store.db.execute("UPDATE papers SET pending_match = 1")
        match_pending(store)
        again = recommended(store, "s@example.org")
    assert set(first) <= set(again)
    added = [pid for pid in again if pid not in first]
    assert added, "the next best papers come instead"
    assert len(again) == len(set(again))


def test_with_no_profile_no_model_is_fitted_nor_imported(tmp_path: Path) -> None:
    """The daily cycle with nobody using recommendations: scikit-learn is never loaded."""
    script = textwrap.dedent(
        f"""
        import sys
        from tests.integration.test_recommend_stage import day
        from bot.models import Subscriber
        from bot.run.pipeline import match_pending
        from bot.store.store import Store
        with Store.open(__import__("pathlib").Path({str(tmp_path / "p.db")!r})) as store:
            store.subscribers.sync_config([Subscriber("a@example.org", keywords=("language",))])
            store.papers.record("arxiv", day())
            print(match_pending(store), "sklearn" in sys.modules, "scipy" in sys.modules)
        """
    )
    root = Path(__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    )
    matched, sklearn, scipy = done.stdout.split()
    assert int(matched) > 0
    assert (sklearn, scipy) == ("False", "False")


def test_recommendations_turned_off_later_are_in_no_digest(
    tmp_path: Path, baseline: list[str]
) -> None:
    """Recommended, then `recommend: 0` before the digest: none of them is mailed, and a
    digest of them alone is not made at all."""
    alone, mixed = seeded("a@example.org"), seeded("m@example.org", keywords=("language",))
    with matched_day(tmp_path, [alone, mixed]) as store:
        assert recommended(store, "a@example.org")
        assert recommended(store, "m@example.org")
        off = [seeded(s.email, keywords=s.keywords, recommend=0) for s in (alone, mixed)]
        store.subscribers.sync_config(off)
        assert store.outbox.create("example.org") == 1
        ids = store.subscribers.active_ids()
        rows = store.db.execute(
            "SELECT subscriber_id, reasons FROM matches WHERE digest_id IS NOT NULL"
        ).fetchall()
    assert rows
    assert {sid for sid, _ in rows} == {ids["m@example.org"]}
    assert all(RECOMMENDED not in reasons for _, reasons in rows)
