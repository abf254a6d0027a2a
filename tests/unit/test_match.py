"""Matching papers to subscribers: what fires, why (reasons), how it scores and ranks."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bot.alerts.index import AlertIndex
from bot.alerts.query import QueryError
from bot.mail.digest import rank
from bot.models import Match, Paper, Reason, Subscriber


def matched(subscribers: Sequence[Subscriber], papers: Sequence[Paper]) -> dict[str, list[Match]]:
    """Build an index of these subscribers and run the papers through it."""
    return AlertIndex.build(subscribers).match(papers)


def only_match(subscriber: Subscriber, paper: Paper) -> Match:
    """The one Match of one subscriber for one paper (fails when there is none)."""
    [match] = matched([subscriber], [paper])[subscriber.email]
    return match


def ids(found: dict[str, list[Match]], email: str) -> list[str]:
    """The paper ids matched for a subscriber, in order."""
    return [m.paper_id for m in found.get(email, [])]


ADA = "ada@example.org"

# ------------------------------------------------------------------------ why it matched


def test_reason_names_the_alert_and_quotes_the_words_as_the_paper_writes_them() -> None:
    paper = Paper(
        "p1", "Neural-Collapse at the edge", abstract="We see neural collapse, Neural Collapse."
    )

    match = only_match(Subscriber(ADA, keywords=("neural collapse",)), paper)

    assert match.reasons == (
        Reason(
            "keyword", "neural collapse", ("Neural-Collapse", "neural collapse", "Neural Collapse")
        ),
    )
    assert str(match.reasons[0]) == "keyword: neural collapse"


def test_quoted_words_keep_accents_and_hyphens_of_the_paper() -> None:
    paper = Paper("p1", "A naïve in‐context learner", abstract="Naive in context learning")

    match = only_match(Subscriber(ADA, keywords=("naive in-context",)), paper)

    assert match.reasons[0].terms == ("naïve in‐context", "Naive in context")


def test_each_spelling_is_quoted_once_title_first() -> None:
    paper = Paper("p1", "Grokking", abstract="grokking, GROKKING and grokking again")

    match = only_match(Subscriber(ADA, keywords=("grokking",)), paper)

    assert match.reasons[0].terms == ("Grokking", "grokking", "GROKKING")


def test_a_prefix_quotes_every_word_it_matched() -> None:
    paper = Paper("p1", "Transformers", abstract="a transformer; transport is not one")

    match = only_match(Subscriber(ADA, keywords=("transform*",)), paper)

    assert match.reasons[0].terms == ("Transformers", "transformer")


def test_author_reason_names_the_follow_and_the_author_as_listed() -> None:
    paper = Paper("p1", "Untitled", authors=("Samy Bengio", "Guillaume Lajoie"))

    match = only_match(Subscriber(ADA, authors=("G. Lajoie",)), paper)

    assert match.reasons == (Reason("author", "G. Lajoie", ("Guillaume Lajoie",)),)
    assert match.score == 1.0


def test_reasons_list_authors_first_then_keywords_in_the_subscribers_order() -> None:
    paper = Paper("p1", "Grokking and neural collapse", authors=("Guillaume Lajoie",))
    sub = Subscriber(ADA, keywords=("neural collapse", "grokking"), authors=("Lajoie",))

    match = only_match(sub, paper)

    assert [str(r) for r in match.reasons] == [
        "author: Lajoie",
        "keyword: neural collapse",
        "keyword: grokking",
    ]


def test_a_boolean_reason_quotes_the_terms_found_not_the_negated_ones() -> None:
    paper = Paper("p1", "Grokking Transformers", abstract="no survey here", votes=12)

    match = only_match(Subscriber(ADA, keywords=("(grokking OR transform*) -review",)), paper)
    assert match.reasons[0].terms == ("Grokking", "Transformers")

    voted = only_match(Subscriber(ADA, keywords=("grokking AND votes>=10",)), paper)
    assert voted.reasons[0].terms == ("Grokking",), "a votes term has no words to quote"


def test_label_terms_quote_the_category_and_source_as_listed() -> None:
    paper = Paper("p1", "Grokking", categories=("stat.ML", "cs.LG"), sources=("hf-daily",))

    match = only_match(Subscriber(ADA, keywords=("category:cs.* AND source:hf*",)), paper)

    assert match.reasons[0].terms == ("cs.LG", "hf-daily")


# ------------------------------------------------------------------------ scores


@pytest.mark.parametrize(
    ("paper", "score"),
    [
        (Paper("p", "Grokking"), 2.0),  # title
        (Paper("p", "Untitled", abstract="grokking"), 1.0),  # abstract only
        (Paper("p", "Grokking", abstract="grokking"), 2.0),  # both: the better place
    ],
)
def test_a_title_hit_scores_above_an_abstract_hit(paper: Paper, score: float) -> None:
    assert only_match(Subscriber(ADA, keywords=("grokking",)), paper).score == score


def test_each_distinct_term_counts_once() -> None:
    paper = Paper("p", "Untitled", abstract="grokking and neural collapse; grokking again")
    # three alerts, two of them the same phrase written differently: two distinct terms
    sub = Subscriber(ADA, keywords=("grokking", "neural collapse", '"Neural-Collapse" OR grokking'))

    assert only_match(sub, paper).score == 2.0


def test_more_distinct_terms_score_above_one() -> None:
    one = Paper("one", "Untitled", abstract="grokking")
    two = Paper("two", "Untitled", abstract="grokking in neural collapse")
    sub = Subscriber(ADA, keywords=("grokking", "neural collapse"))

    scores = {m.paper_id: m.score for m in matched([sub], [one, two])[ADA]}

    assert scores == {"one": 1.0, "two": 2.0}


def test_author_category_source_and_votes_terms_count_one_each() -> None:
    paper = Paper(
        "p",
        "Untitled",
        authors=("Guillaume Lajoie",),
        categories=("cs.LG",),
        sources=("hf-daily",),
        votes=20,
    )
    sub = Subscriber(
        ADA,
        authors=("G. Lajoie",),
        keywords=("category:cs.LG AND source:hf-daily AND votes>=10", "author:Lajoie"),
    )

    assert only_match(sub, paper).score == 5.0


# ------------------------------------------------------------------------ what fires


@pytest.mark.parametrize(
    ("keyword", "terms"),
    [
        ("neural", ("Neural", "neural")),  # each spelling once
        ("neural collapse", ("Neural collapse",)),  # looked up by its two words
        ("neural collapse nets", ("Neural collapse nets",)),  # the third compared
        ("neural collapse deep", ()),
        ("neural coll*", ("Neural collapse", "neural collapses")),  # a prefix second
        ("neur* collapse", ("Neural collapse",)),  # a prefix first
        ("collapses neural", ("collapses; neural",)),  # ends the text
        ("neural deep", ()),  # the text ends after its first word
        ("neural nets", ()),
    ],
)
def test_phrases_sharing_a_first_word_are_each_found_only_where_all_their_words_are(
    keyword: str, terms: tuple[str, ...]
) -> None:
    paper = Paper("p1", "Neural collapse nets", abstract="Deep neural collapses; neural")

    found = matched([Subscriber(ADA, keywords=(keyword,))], [paper]).get(ADA, [])

    assert tuple(t for m in found for r in m.reasons for t in r.terms) == terms


def test_phrases_match_whole_words_only() -> None:
    papers = [
        Paper("organ", "An organ atlas", abstract="Organization of organs"),
        Paper("gan", "GAN-based synthesis"),
        Paper("gans", "Two GANs"),
    ]

    assert ids(matched([Subscriber(ADA, keywords=("GAN",))], papers), ADA) == ["gan"]


def test_a_plain_list_of_keywords_means_any_of_them() -> None:
    papers = [Paper("a", "Grokking"), Paper("b", "Neural collapse"), Paper("c", "Other")]
    sub = Subscriber(ADA, keywords=("grokking", "neural collapse"))

    assert ids(matched([sub], papers), ADA) == ["a", "b"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("grokking AND (collapse OR NOT survey)", ["both", "grok"]),  # needs grokking
        ("(grokking OR collapse) -survey", ["both", "grok", "collapse"]),  # either
        ("NOT (NOT grokking OR NOT collapse)", ["both"]),  # no rule: needs any of its atoms
        ("NOT NOT collapse", ["both", "collapse"]),
    ],
)
def test_a_boolean_alert_is_evaluated_on_every_day_with_an_atom_it_needs(
    query: str, expected: list[str]
) -> None:
    papers = [
        Paper("both", "Grokking and collapse"),
        Paper("grok", "Grokking"),
        Paper("collapse", "Collapse"),
        Paper("survey", "A survey"),
    ]
    index = AlertIndex.build([Subscriber(ADA, keywords=(query,))])

    assert [p.id for p in papers if index.match([p])] == expected, "each paper a day alone"
    assert ids(index.match(papers), ADA) == expected


def test_field_scopes_look_only_in_that_field() -> None:
    papers = [Paper("t", "Grokking"), Paper("a", "Untitled", abstract="grokking")]

    title = Subscriber("t@example.org", keywords=("title:grokking",))
    abstract = Subscriber("a@example.org", keywords=("abstract:grokking",))
    found = matched([title, abstract], papers)

    assert ids(found, "t@example.org") == ["t"]
    assert ids(found, "a@example.org") == ["a"]


def test_votes_need_a_source_that_counts_them() -> None:
    papers = [Paper("none", "x"), Paper("few", "x", votes=4), Paper("many", "x", votes=5)]

    assert ids(matched([Subscriber(ADA, keywords=("votes>=5",))], papers), ADA) == ["many"]
    assert ids(matched([Subscriber(ADA, keywords=("votes>4",))], papers), ADA) == ["many"]


def test_an_author_follow_ignores_namesakes() -> None:
    papers = [
        Paper("yoshua", "x", authors=("Yoshua Bengio",)),
        Paper("samy", "x", authors=("Samy Bengio",)),
        Paper("initial", "x", authors=("Bengio, Y.",)),
    ]

    found = matched([Subscriber(ADA, authors=("Yoshua Bengio",))], papers)

    assert ids(found, ADA) == ["yoshua", "initial"]


def test_a_follow_written_in_tex_matches_the_unicode_name() -> None:
    paper = Paper("p", "x", authors=("Benjamin Rémy",))

    assert only_match(Subscriber(ADA, authors=("Benjamin R\\'emy",)), paper).reasons[0].terms == (
        "Benjamin Rémy",
    )


def test_near_finds_two_phrases_close_in_either_order_and_quotes_both() -> None:
    papers = [
        Paper("close", "x", abstract="state space models with attention heads"),
        Paper("reversed", "x", abstract="attention over a long state-space sequence"),
        Paper("far", "x", abstract="state space models, then five more words, then attention"),
        Paper("fields", "State space", abstract="attention"),  # not in one field
    ]
    sub = Subscriber(ADA, keywords=('"state space" NEAR/3 attention',))

    found = matched([sub], papers)[ADA]

    assert [m.paper_id for m in found] == ["close", "reversed"]
    assert found[0].reasons[0].terms == ("state space", "attention")
    assert found[1].reasons[0].terms == ("attention", "state-space")
    assert found[0].score == 1.0


def test_near_counts_the_words_between_and_never_one_word_twice() -> None:
    papers = [
        Paper("adjacent", "Deep learning"),
        Paper("one-between", "Deep reinforcement learning"),
        Paper("overlap", "Deep-learning"),
    ]
    nothing_between = Subscriber("a@example.org", keywords=("deep NEAR/0 learning",))
    itself = Subscriber("b@example.org", keywords=('"deep learning" NEAR/5 learning',))

    found = matched([nothing_between, itself], papers)

    assert ids(found, "a@example.org") == ["adjacent", "overlap"]
    assert ids(found, "b@example.org") == [], "the learning of 'deep learning' is not another"
    assert found["a@example.org"][0].score == 2.0, "found in the title"


def test_near_in_a_hostile_abstract_repeating_both_phrases_is_matched_once() -> None:
    # hand-made: an abstract at the gate's limit, 10,000 words, the two phrases alternating
    paper = Paper("p", "x", abstract=" ".join(["spam eggs"] * 5_000) + " eggs ham")

    keywords = ("ham NEAR/0 eggs", "spam NEAR/1 ham", "spam NEAR/0 eggs")
    found = matched([Subscriber(ADA, keywords=keywords)], [paper])

    [match] = found[ADA]
    assert [r.terms for r in match.reasons] == [("eggs", "ham"), ("spam", "eggs")]


def test_a_scoped_near_looks_in_that_field_only() -> None:
    papers = [Paper("title", "Graph neural nets"), Paper("abstract", "x", abstract="graph neural")]

    found = matched([Subscriber(ADA, keywords=("abstract:(graph NEAR/1 nets OR neural)",))], papers)

    assert ids(found, ADA) == ["abstract"]


def test_org_and_tag_find_a_phrase_inside_one_organisation_or_keyword() -> None:
    paper = Paper(
        "p",
        "Untitled",
        organizations=("Google DeepMind", "Meta"),
        keywords=("in-context learning", "vision transformers"),
    )
    subs = [
        Subscriber("org@example.org", keywords=("org:deepmind",)),
        Subscriber("across@example.org", keywords=('org:"deepmind meta"',)),
        Subscriber("tag@example.org", keywords=("tag:transform*", "tag:(In-Context)")),
        Subscriber("text@example.org", keywords=("deepmind",)),  # not in title or abstract
    ]

    found = matched(subs, [paper])

    assert found["org@example.org"][0].reasons[0].terms == ("DeepMind",)
    assert found["org@example.org"][0].score == 1.0
    assert "across@example.org" not in found, "a phrase does not span two organisations"
    assert [r.terms for r in found["tag@example.org"][0].reasons] == [
        ("transformers",),
        ("in-context",),
    ]
    assert "text@example.org" not in found


def test_stars_need_a_source_that_counts_them() -> None:
    papers = [Paper("none", "x"), Paper("few", "x", stars=99), Paper("many", "x", stars=100)]

    assert ids(matched([Subscriber(ADA, keywords=("stars>=100",))], papers), ADA) == ["many"]
    assert ids(matched([Subscriber(ADA, keywords=("x stars>99",))], papers), ADA) == ["many"]


# ------------------------------------------------------------------------ who gets it


def test_an_exclude_entry_means_never_send_to_that_subscriber_only() -> None:
    papers = [
        Paper("survey", "A survey of grokking"),
        Paper("bengio", "Grokking", authors=("Samy Bengio",)),
        Paper("kept", "Grokking"),
    ]
    picky = Subscriber(
        "picky@example.org", keywords=("grokking",), exclude=("survey", "author:Bengio")
    )
    easy = Subscriber("easy@example.org", keywords=("grokking",))

    found = matched([picky, easy], papers)

    assert ids(found, "picky@example.org") == ["kept"]
    assert ids(found, "easy@example.org") == ["survey", "bengio", "kept"]


def test_a_boolean_exclude_entry_excludes_only_when_it_holds() -> None:
    papers = [Paper("both", "Grokking survey", votes=1), Paper("one", "A survey of grokking")]
    sub = Subscriber(ADA, keywords=("grokking",), exclude=("survey AND votes>=1",))

    assert ids(matched([sub], papers), ADA) == ["one"]


@pytest.mark.parametrize(
    ("categories", "expected"),
    [
        (("cs.LG",), ["lg", "lg-upper"]),
        (("CS.lg",), ["lg", "lg-upper"]),
        (("cs.*",), ["lg", "lg-upper", "cv"]),
        (("math*", "stat.ML"), ["lg", "math", "stat"]),
        (("q-bio.NC",), []),
    ],
)
def test_categories_restrict_a_subscriber_to_those_categories(
    categories: tuple[str, ...], expected: list[str]
) -> None:
    papers = [
        Paper("lg", "Grokking", categories=("cs.LG", "stat.ML")),
        Paper("lg-upper", "Grokking", categories=("CS.LG",)),
        Paper("cv", "Grokking", categories=("cs.CV",)),
        Paper("math", "Grokking", categories=("math.OC",)),
        Paper("stat", "Grokking", categories=("stat.ML",)),
        Paper("none", "Grokking"),
    ]
    sub = Subscriber(ADA, keywords=("grokking",), authors=("Nobody",), categories=categories)

    assert ids(matched([sub], papers), ADA) == expected


def test_restriction_and_exclude_apply_together_and_to_follows_too() -> None:
    papers = [
        Paper("in", "x", authors=("G. Lajoie",), categories=("cs.LG",)),
        Paper("out", "x", authors=("G. Lajoie",), categories=("q-bio.NC",)),
        Paper("excluded", "A survey", authors=("G. Lajoie",), categories=("cs.LG",)),
    ]
    sub = Subscriber(ADA, authors=("Guillaume Lajoie",), categories=("cs.*",), exclude=("survey",))

    assert ids(matched([sub], papers), ADA) == ["in"]


def test_subscribers_sharing_an_alert_each_get_their_match() -> None:
    papers = [Paper("p", "Grokking")]
    subs = [Subscriber(f"s{n}@example.org", keywords=("grokking",)) for n in range(3)]

    found = matched(subs, papers)

    assert sorted(found) == [s.email for s in subs]
    assert all(
        m == [Match("p", (Reason("keyword", "grokking", ("Grokking",)),), 2.0)]
        for m in found.values()
    )


def test_the_same_alert_twice_in_one_subscriber_fires_once() -> None:
    papers = [Paper("t", "Neural collapse"), Paper("a", "x", abstract="neural collapse")]
    sub = Subscriber(
        ADA,
        keywords=("neural collapse", "grokking", "neural collapse"),
        authors=("Nobody", "Nobody"),
    )

    found = matched([sub], papers)[ADA]

    assert [m.paper_id for m in found] == ["t", "a"]
    assert [len(m.reasons) for m in found] == [1, 1]


def test_a_paper_listed_twice_in_one_call_is_matched_once() -> None:
    first = Paper("p", "Grokking")
    again = Paper("p", "Grokking, listed by another source")

    found = matched([Subscriber(ADA, keywords=("grokking",))], [first, Paper("q", "x"), again])

    assert ids(found, ADA) == ["p"]
    assert found[ADA][0].reasons[0].terms == ("Grokking",), "the first listing counts"


def test_subscribers_without_matches_are_absent() -> None:
    subs = [Subscriber(ADA, keywords=("grokking",)), Subscriber("none@example.org")]

    assert matched(subs, [Paper("p", "Grokking")]).keys() == {ADA}
    assert matched(subs, []) == {}
    assert matched([], [Paper("p", "Grokking")]) == {}


def test_matches_come_in_paper_order() -> None:
    papers = [Paper(f"p{n}", "Grokking" if n % 2 else "x", abstract="grokking") for n in range(6)]

    assert ids(matched([Subscriber(ADA, keywords=("grokking",))], papers), ADA) == [
        f"p{n}" for n in range(6)
    ]


def test_a_long_listing_is_matched_in_parts_as_one() -> None:
    papers = [Paper(f"p{n}", "Grokking" if n % 1000 == 0 else "x") for n in range(4500)]
    again = Paper("p0", "x", abstract="listed again after the first part")

    found = matched([Subscriber(ADA, keywords=("grokking",))], [*papers, again])

    assert ids(found, ADA) == ["p0", "p1000", "p2000", "p3000", "p4000"]


def test_one_index_matches_several_listings_independently() -> None:
    index = AlertIndex.build([Subscriber(ADA, keywords=("grokking",))])

    assert ids(index.match([Paper("a", "Grokking")]), ADA) == ["a"]
    assert ids(index.match([Paper("b", "Grokking"), Paper("a", "Grokking")]), ADA) == ["b", "a"]
    assert index.match([Paper("c", "x")]) == {}


# ------------------------------------------------------------------------ bad input


def test_two_subscribers_with_one_email_are_rejected() -> None:
    with pytest.raises(ValueError, match="two subscribers share an email address"):
        AlertIndex.build([Subscriber(ADA, keywords=("a",)), Subscriber(ADA, keywords=("b",))])


@pytest.mark.parametrize(
    ("subscriber", "message", "column"),
    [
        (
            Subscriber(ADA, keywords=("grokking", "grokking OR b)")),
            f"subscriber {ADA}: keywords[1]: unbalanced parenthesis",
            14,
        ),
        (
            Subscriber(ADA, keywords=("grokking",), exclude=("survey", '"review')),
            f"subscriber {ADA}: exclude[1]: unterminated quote",
            1,
        ),
        (
            Subscriber(ADA, authors=("G. Lajoie", "..."), keywords=("x AND",)),
            f"subscriber {ADA}: authors[1]: an author needs a name",
            1,
        ),
    ],
)
def test_an_invalid_alert_names_the_subscriber_the_entry_and_the_column(
    subscriber: Subscriber, message: str, column: int
) -> None:
    fine = Subscriber("fine@example.org", keywords=("grokking",))

    with pytest.raises(QueryError) as caught:
        AlertIndex.build([fine, subscriber])

    assert (caught.value.message, caught.value.column) == (message, column)
    assert str(caught.value) == f"{message} at column {column}"


# ------------------------------------------------------------------------ ranking


def test_rank_puts_followed_authors_first_then_score_then_votes() -> None:
    papers = [
        Paper("abstract-50-votes", "x", abstract="grokking", votes=50),
        Paper("title-no-votes", "Grokking"),
        Paper("author-abstract", "x", abstract="grokking", authors=("Guillaume Lajoie",)),
        Paper("abstract-10-votes", "x", abstract="grokking", votes=10),
        Paper("title-1-vote", "Grokking", votes=1),
        Paper("author-title", "Grokking", authors=("G. Lajoie",)),
        Paper("abstract-no-votes", "x", abstract="grokking"),
    ]
    sub = Subscriber(ADA, keywords=("grokking",), authors=("Lajoie",))
    found = matched([sub], papers)[ADA]

    ranked = rank(found, {p.id: p for p in papers})

    assert [m.paper_id for m in ranked] == [
        "author-title",  # followed, 3.0
        "author-abstract",  # followed, 2.0
        "title-1-vote",  # 2.0, 1 vote
        "title-no-votes",  # 2.0, no votes
        "abstract-50-votes",
        "abstract-10-votes",
        "abstract-no-votes",
    ]


def test_rank_keeps_the_given_order_between_equals() -> None:
    matches = [Match(f"p{n}", (Reason("keyword", "x"),), 1.0) for n in range(5)]
    papers = {f"p{n}": Paper(f"p{n}", "x") for n in range(5)}

    assert rank(list(reversed(matches)), papers) == list(reversed(matches))


def test_rank_treats_a_paper_it_does_not_know_as_without_votes() -> None:
    known = Match("known", (Reason("keyword", "x"),), 1.0)
    unknown = Match("unknown", (Reason("keyword", "x"),), 1.0)

    ranked = rank([unknown, known], {"known": Paper("known", "x", votes=3)})

    assert ranked == [known, unknown]
