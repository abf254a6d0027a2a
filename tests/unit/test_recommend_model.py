"""The recommendation model on real papers: two real arXiv days read by our own parser.

The corpus is the all-archives RSS of 2024-11-28 and the cs.AI Atom feed of 2025-08-20
(tests/fixtures/PROVENANCE.md): 254 papers of cs.LG, cs.CL, cs.AI, eess.SP, quant-ph, ...
"""

from __future__ import annotations

import functools
import random
from dataclasses import replace

import numpy as np
import pytest

from bot.ingest.sources.arxiv_rss import ArxivRssOptions, ArxivRssSource
from bot.models import Paper
from bot.recommend import scorer
from bot.recommend.model import Example, TextModel, analyse, paper_text
from bot.recommend.scorer import MIN_SIMILARITY, Profile, Recommendation, recommend
from tests.httpserver import FIXTURES

FEEDS = ("rss_all-archives_2024-11-28_trimmed.xml", "rss_atom_cs.AI_2025-08-20_trimmed.xml")
URL = "https://arxiv.test/rss"


@functools.cache
def papers() -> tuple[Paper, ...]:
    """Both days' papers, as the arXiv RSS kind reads them."""
    out: list[Paper] = []
    for name in FEEDS:
        body = (FIXTURES / "arxiv" / name).read_bytes()
        options = ArxivRssOptions.model_validate({"url": URL})
        out += ArxivRssSource().parse(body, URL, options).papers
    return tuple(out)


@functools.cache
def model() -> TextModel:
    """The model fitted on both days, as the pipeline fits it on the store."""
    return TextModel.fit([paper_text(p.title, p.abstract) for p in papers()])


def of(category: str) -> list[Paper]:
    """The papers of this primary category, by id."""
    return sorted((p for p in papers() if p.categories[0] == category), key=lambda p: p.id)


def liking(chosen: list[Paper], **fields: object) -> Profile:
    """Subscriber 1 liking these papers, never recommended them (they are their seeds)."""
    liked = tuple(Example.of_paper(p) for p in chosen)
    return Profile(1, liked, skip=frozenset(p.id for p in chosen), **fields)  # type: ignore[arg-type]


def nlp_profile(limit: int = 5) -> Profile:
    """Someone who likes five cs.CL papers."""
    return liking(of("cs.CL")[:5], limit=limit)


def test_a_field_gets_papers_of_that_field() -> None:
    found = recommend(model(), [liking(of("cs.LG")[:10])], papers())
    assert len(found) == 5
    by_id = {p.id: p for p in papers()}
    fields = [by_id[r.paper_id].categories[0] for r in found]
    assert fields.count("cs.LG") >= 3, fields


def test_the_score_is_the_cosine_with_the_liked_centroid() -> None:
    profile = liking(of("cs.LG")[:10])
    found = recommend(model(), [profile], papers())
    centroid = np.asarray(model().vectors([e.text for e in profile.liked]).mean(axis=0)).ravel()
    by_id = {p.id: p for p in papers()}
    texts = [paper_text(by_id[r.paper_id].title, by_id[r.paper_id].abstract) for r in found]
    cosines = model().vectors(texts) @ (centroid / np.linalg.norm(centroid))
    assert np.allclose([r.score for r in found], cosines, atol=1e-5)
    assert [r.score for r in found] == sorted((r.score for r in found), reverse=True)
    assert all(r.subscriber_id == 1 and r.score >= MIN_SIMILARITY for r in found)


def test_same_inputs_same_output_whatever_the_candidates_order() -> None:
    profiles = [nlp_profile(), liking(of("cs.LG")[:10], limit=7), liking(of("cs.AI")[:3])]
    profiles = [replace(p, subscriber_id=n) for n, p in enumerate(profiles, 1)]
    first = recommend(model(), profiles, papers())
    shuffled = list(papers())
    random.Random(3).shuffle(shuffled)
    assert recommend(model(), profiles, shuffled) == first
    assert recommend(model(), profiles, papers()) == first
    assert TextModel.fit([paper_text(p.title, p.abstract) for p in papers()]).words.tolist() == (
        model().words.tolist()
    )
    assert [r.subscriber_id for r in first] == sorted(r.subscriber_id for r in first)
    assert {r.subscriber_id for r in first} == {1, 2, 3}


def test_skip_is_honoured_and_the_next_best_moves_up() -> None:
    before = recommend(model(), [nlp_profile()], papers())
    dropped = before[0].paper_id
    profile = nlp_profile()
    after = recommend(model(), [replace(profile, skip=profile.skip | {dropped})], papers())
    assert dropped not in [r.paper_id for r in after]
    assert [r.paper_id for r in after[:4]] == [r.paper_id for r in before[1:]]
    seeds = {e.key for e in profile.liked}
    assert not seeds & {r.paper_id for r in before}


def test_limit_is_honoured_and_zero_or_no_liked_paper_costs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scorer, "MIN_SIMILARITY", -1.0)  # every candidate can be kept
    three = recommend(model(), [nlp_profile(limit=3)], papers())
    twenty = recommend(model(), [nlp_profile(limit=20)], papers())  # past the argmax passes
    assert len(three) == 3
    assert len(twenty) == 20
    assert twenty[:3] == three
    assert recommend(model(), [nlp_profile(limit=0)], papers()) == []
    assert recommend(model(), [Profile(2, (), limit=5)], papers()) == []


def test_below_the_floor_nothing_is_recommended(monkeypatch: pytest.MonkeyPatch) -> None:
    # someone who likes quantum physics, offered only language-model papers
    physics = liking(of("quant-ph"))
    assert recommend(model(), [physics], of("cs.CL")) == []
    monkeypatch.setattr(scorer, "MIN_SIMILARITY", 0.0)
    junk = recommend(model(), [physics], of("cs.CL"))
    assert len(junk) == 5
    assert max(r.score for r in junk) < MIN_SIMILARITY


def test_disliked_papers_push_their_like_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scorer, "MIN_SIMILARITY", -1.0)  # rank every candidate
    profile = nlp_profile(limit=len(papers()))
    before = [r.paper_id for r in recommend(model(), [profile], papers())]
    by_id = {p.id: p for p in papers()}
    disliked = by_id[before[0]]  # "less like this" on the best of them
    with_dislike = replace(profile, disliked=(Example.of_paper(disliked),))
    after = recommend(model(), [with_dislike], papers())
    ranked = [r.paper_id for r in after]
    assert sorted(ranked) == sorted(before)
    assert ranked.index(disliked.id) > len(ranked) // 2
    # the ten papers most like the disliked one go down too, on average
    vectors = model().vectors([paper_text(by_id[i].title, by_id[i].abstract) for i in before])
    nearest = [before[n] for n in np.argsort(-(vectors @ vectors[0].T).toarray().ravel())[1:11]]
    moved = [ranked.index(i) - before.index(i) for i in nearest]
    assert sum(moved) / len(moved) > 10, moved
    assert all(0.0 <= r.score <= 1.0 for r in after)
    assert ranked == [r.paper_id for r in recommend(model(), [with_dislike], papers())]


def test_why_is_the_most_similar_liked_paper_and_words_both_have() -> None:
    profile = liking(of("cs.CL")[:3] + of("quant-ph")[:2], limit=8)
    found = recommend(model(), [profile], papers())
    assert found
    by_id = {p.id: p for p in papers()}
    liked_vectors = model().vectors([e.text for e in profile.liked])
    for r in found:
        paper = by_id[r.paper_id]
        text = paper_text(paper.title, paper.abstract)
        cosines = (liked_vectors @ model().vectors([text]).T).toarray().ravel()
        because = profile.liked[int(np.argmax(cosines))]
        assert r.because == because.title
        assert 1 <= len(r.shared) <= 5
        for word in r.shared:
            folded = analyse(word)
            assert len(folded) == 1, word
            assert folded[0] in analyse(text), word
            assert folded[0] in analyse(because.text), word


def test_chunks_and_groups_give_what_one_pass_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    pool = list(papers())
    profiles = [
        Profile(n, tuple(Example.of_paper(p) for p in rng.sample(pool, 4)), limit=3)
        for n in range(40)
    ]
    whole = recommend(model(), profiles, pool)
    monkeypatch.setattr(scorer, "SUBSCRIBERS_PER_CHUNK", 3)
    monkeypatch.setattr(scorer, "EXAMPLES_PER_GROUP", 9)
    monkeypatch.setattr(scorer, "CANDIDATES_PER_PRODUCT", 7)
    chunked = recommend(model(), profiles, pool)
    assert len(whole) > 60
    assert [(r.subscriber_id, r.paper_id, r.because, r.shared) for r in chunked] == [
        (r.subscriber_id, r.paper_id, r.because, r.shared) for r in whole
    ]
    assert np.allclose([r.score for r in chunked], [r.score for r in whole], atol=1e-5)


def test_one_paper_liked_twice_counts_once() -> None:
    chosen = of("cs.CL")[:2]
    twice = liking(chosen + chosen[:1])
    once = liking(chosen)
    assert recommend(model(), [twice], papers()) == recommend(model(), [once], papers())


def test_a_model_of_no_words_recommends_nothing() -> None:
    empty = TextModel.fit(["", "1 2 3", "the of and"])
    assert empty.dimension == 0
    assert recommend(empty, [nlp_profile()], papers()) == []
    assert recommend(model(), [nlp_profile()], []) == []


def test_recommendations_are_plain_frozen_values() -> None:
    [first, *_] = recommend(model(), [nlp_profile()], papers())
    assert isinstance(first, Recommendation)
    with pytest.raises(AttributeError):
        first.score = 1.0  # type: ignore[misc]
