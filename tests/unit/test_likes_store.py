"""Seeds (`like:`) and feedback as the config file and the store keep them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config.load import load_config
from bot.errors import ConfigError
from bot.models import DEFAULT_RECOMMEND, Paper, SeedPaper
from bot.recommend.seeds import Seed, parse_seed, seed_from_key
from bot.store.store import Store

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)

CONFIG = """\
database: {db}
recommend: 3
subscribers:
  - email: ada@example.org
    keywords: [grokking]
    like:
      - "2411.01234"
      - https://arxiv.org/abs/2411.01234v2
      - "https://doi.org/10.1101/2024.01.01.123456"
  - email: bob@example.org
    like: ["hep-ph/9411242"]
    recommend: 0
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "paperbot.yaml"
    path.write_text(text.format(db=tmp_path / "p.db"), encoding="utf-8")
    return path


def test_like_entries_become_seed_keys_once_each_in_the_files_order(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG))
    ada, bob = config.subscribers
    assert ada.likes == ("2411.01234", "doi:10.1101/2024.01.01.123456")
    assert (ada.recommend, bob.recommend) == (3, 0)
    assert bob.likes == ("hep-ph/9411242",)


def test_recommend_defaults_to_five(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG.replace("recommend: 3\n", "")))
    assert config.subscribers[0].recommend == DEFAULT_RECOMMEND == 5


@pytest.mark.parametrize(
    ("entry", "where"),
    [("not a paper", "subscribers[0].like[3]"), ("2411.1", "subscribers[0].like[3]")],
)
def test_a_like_entry_that_names_no_paper_is_refused_where_it_is(
    tmp_path: Path, entry: str, where: str
) -> None:
    text = CONFIG.replace(
        '      - "https://doi.org/10.1101/2024.01.01.123456"\n',
        f'      - "https://doi.org/10.1101/2024.01.01.123456"\n      - "{entry}"\n',
    )
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, text))
    assert where in str(refused.value)
    assert "not an arXiv id" in str(refused.value)


def test_a_recommend_over_the_digest_bound_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, CONFIG.replace("recommend: 0", "recommend: 101")))
    assert "subscribers[1].recommend" in str(refused.value)


@pytest.mark.parametrize(
    "seed",
    [
        Seed("arxiv", "2411.01234"),
        Seed("arxiv", "hep-ph/9411242"),
        Seed("doi", "10.1101/2024.01.01.123456"),
        Seed("title", "Attention Is All You Need"),
    ],
)
def test_a_seed_key_reads_back_as_its_seed(seed: Seed) -> None:
    assert seed_from_key(seed.key) == seed


@pytest.mark.parametrize("key", ["", "title:", "doi:nothing", "2411.01234v3", "arxiv 2411.01234"])
def test_a_key_that_names_no_seed_is_none(key: str) -> None:
    assert seed_from_key(key) is None


def test_config_likes_are_stored_and_follow_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG))
    with Store.open(tmp_path / "p.db") as store:
        store.subscribers.sync_config(config.subscribers)
        stored = {s.email: s for s in store.subscribers.active()}
        assert stored["ada@example.org"].likes == config.subscribers[0].likes
        assert stored["bob@example.org"].recommend == 0

        text = CONFIG.replace('      - "2411.01234"\n', "")
        text = text.replace("      - https://arxiv.org/abs/2411.01234v2\n", "")
        edited = load_config(write(tmp_path, text))
        store.subscribers.sync_config(edited.subscribers)
        stored = {s.email: s for s in store.subscribers.active()}
        assert stored["ada@example.org"].likes == ("doi:10.1101/2024.01.01.123456",)


def subscriber_id(store: Store, email: str) -> int:
    row = store.db.execute("SELECT id FROM subscribers WHERE email = ?", (email,)).fetchone()
    return int(row[0])


def test_feedback_keeps_the_latest_verdict_per_paper_newest_first(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG))
    with Store.open(tmp_path / "p.db") as store:
        store.subscribers.sync_config(config.subscribers)
        ada, bob = (subscriber_id(store, s.email) for s in config.subscribers)
        store.feedback.record(ada, "2412.00001", "more", T0)
        store.feedback.record(ada, "2412.00002", "less", T0 + timedelta(hours=1))
        store.feedback.record(ada, "2412.00001", "less", T0 + timedelta(hours=2))
        store.feedback.record(bob, "2412.00001", "more", T0)

        mine = store.feedback.of_subscriber(ada)
        assert [(f.paper_id, f.verdict) for f in mine] == [
            ("2412.00001", "less"),
            ("2412.00002", "less"),
        ]
        assert store.feedback.subscriber_ids() == {ada, bob}
        assert store.feedback.remove(ada, "2412.00002")
        assert not store.feedback.remove(ada, "2412.00002")
        both = store.feedback.by_subscriber([ada, bob, 999])
        assert sorted(both) == [ada, bob]
        assert [f.paper_id for f in both[ada]] == ["2412.00001"]


def test_looked_up_seeds_are_kept_and_found_seeds_come_from_the_papers(tmp_path: Path) -> None:
    with Store.open(tmp_path / "p.db") as store:
        paper = Paper(
            id="2411.01234",
            title="Grokking at the Edge of Linear Separability",
            arxiv_id="2411.01234",
            doi="10.1101/2024.01.01.123456",
            abstract="We study grokking.",
        )
        store.papers.record("arxiv", [paper], now=T0)
        keys = [
            "2411.01234",
            "doi:10.1101/2024.01.01.123456",
            "title:Grokking at the edge of linear separability",
            "2301.00001",
        ]
        found = store.papers.find_seed_papers(keys)
        assert sorted(found) == sorted(keys[:3])
        assert {p.id for p in found.values()} == {"2411.01234"}

        looked_up = [
            SeedPaper("2301.00001", "found", "A title", "An abstract", ("cs.LG",), T0),
            SeedPaper("2301.99999", "unknown", looked_up=T0),
        ]
        store.seed_papers.save(looked_up)
        assert store.seed_papers.get(["2301.00001", "2301.99999", "2301.5"]) == {
            s.key: s for s in looked_up
        }
        # looked-up seeds are not papers: nothing of them is matched or mailed
        assert store.papers.count() == 1


def test_parse_seed_reads_what_people_paste() -> None:
    assert parse_seed(" arXiv:2411.01234v3 ") == Seed("arxiv", "2411.01234")
    assert parse_seed("doi:10.1145/3292500.3330701") == Seed("doi", "10.1145/3292500.3330701")
    assert parse_seed("a paper I liked") is None
