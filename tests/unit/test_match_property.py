"""The alert index equals the plain per-subscriber evaluator on random alerts and papers.

`bot.alerts.reference.reference_match` spells every rule out one subscriber and one paper at
a time; `AlertIndex` shares alerts between subscribers, scans text with an automaton and
evaluates boolean queries only when a trigger atom hits. Whatever the alerts and papers,
both must give the same matches: same papers, same reasons with the same words, same scores.

The vocabularies are tiny on purpose, so that phrases, prefixes, authors, categories,
sources and votes hit often and the interesting paths (boolean alerts, excludes,
restrictions, subscribers reached by several alerts) are exercised in most examples.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.alerts.index import AlertIndex
from bot.alerts.query import QueryError, parse_query
from bot.alerts.reference import reference_match, reference_matches
from bot.models import Match, Paper, Subscriber

# The paper side: each word is written in several spellings that fold to the same word
# (case, accents, a letter with no decomposition: ł), so alerts must fold to find them.
SPELLINGS: dict[str, tuple[str, ...]] = {
    "neural": ("neural", "Neural", "NEURAL"),
    "collapse": ("collapse", "Collapse", "colLapse"),
    "grok": ("grok", "Grok"),
    "grokking": ("grokking", "Grokking", "GROKKING"),
    "in": ("in", "In"),
    "context": ("context", "Context", "cóntext"),
    "learning": ("learning", "Learning"),
    "naive": ("naive", "naïve", "Naïve", "NAÏVE"),
    "bayes": ("Bayes", "bayes"),
    "and": ("and", "AND"),
    "or": ("or",),
    "not": ("not",),
    "lodz": ("Łódź", "Lodz", "łódź"),
    "2d": ("2D", "2d"),
}
# Between words: spaces, hyphens (ASCII, U+2010, en dash), punctuation, TeX math.
SEPARATORS = (" ", " ", " ", "-", "\u2010", "\u2013", ", ", ". ", " (", ") ", "/", " $", "'")

# The alert side: words (any spelling), prefixes, and spellings the paper side never uses.
QUERY_WORDS = (
    "neural",
    "Neural",
    "collapse",
    "grok",
    "grokking",
    "in",
    "context",
    "learning",
    "naive",
    "naïve",
    "NAIVE",
    "bayes",
    "and",
    "or",
    "lodz",
    "Łódź",
    "2d",
    "gro*",
    "grokk*",
    "neur*",
    "co*",
    "learn*",
    "na*",
    "lo*",
    "in-context",
    "in\u2010context",
    "naïve-bayes",
)

AUTHOR_NAMES = (
    "Guillaume Lajoie",
    "G. Lajoie",
    "Lajoie, Guillaume",
    "Lajoie, G.",
    "Guillaume LAJOIE",
    "Yoshua Bengio",
    "Y. Bengio",
    "Samy Bengio",
    "Bengio, Samy",
    "Rémy Dubois",
    "Remy Dubois",
    "R\\'emy Dubois",
    "R. Dubois",
    "José García",
    "Jose Garcia",
    "J. García",
    "John A. Smith",
    "John B. Smith",
    "J. Smith",
    "Łukasz Kaiser",
    "Lukasz Kaiser",
    "Ana (Mila) Lajoie",
)
FOLLOWS = (*AUTHOR_NAMES, "Lajoie", "Bengio", "Smith", "dubois", "John Smith", "G Lajoie")

CATEGORIES = ("cs.LG", "cs.CL", "stat.ML", "math.OC", "q-bio.NC", "CS.lg", "math-ph")
RESTRICTIONS = ("cs.LG", "cs.*", "math*", "stat.ML", "CS.CL", "q-bio*", "nope.XX")
SOURCES = ("arxiv", "hf-daily", "arxiv-cs", "alphaxiv")
# Organisations and Hugging Face AI keywords, written as sources write them; `org:` and
# `tag:` look for a phrase of QUERY_WORDS inside one of them.
ORGANIZATIONS = ("Neural Collapse Lab", "Łódź University", "In-Context AI", "Grok Inc.")
TAGS = ("in-context learning", "neural collapse", "grokking", "naïve Bayes", "2D")
LABEL_QUERIES = (
    "category:cs.LG",
    "category:cs.*",
    "category:math*",
    "category:STAT.ML",
    "source:hf-daily",
    "source:arxiv*",
    "source:alphaxiv",
)


# ------------------------------------------------------------------------ alerts
# Strategies are built once here: building them inside every draw costs more than the test.

_THIRDS = st.integers(0, 2)
_QUERY_WORD = st.sampled_from(QUERY_WORDS)
_QUERY_WORD_LISTS = st.lists(_QUERY_WORD, min_size=1, max_size=3)
_TEXT_OPERATORS = st.sampled_from((" OR ", " AND ", " AND NOT ", " -"))
_SCOPES = st.sampled_from(("title:", "abstract:", "TITLE:", "org:", "tag:"))
_FOLLOWS = st.sampled_from(FOLLOWS)
_LABEL_QUERIES = st.sampled_from(LABEL_QUERIES)
_VOTES = st.tuples(
    st.sampled_from(("votes", "stars")), st.sampled_from((">=", ">", " >= ")), st.integers(0, 6)
)
_NEAR = st.sampled_from(("NEAR/0", "NEAR/1", "NEAR/3"))


@st.composite
def _phrase_text(draw: st.DrawFn) -> str:
    """A phrase as a user types it: bare words (one phrase), or quoted."""
    text = " ".join(draw(_QUERY_WORD_LISTS))
    return f'"{text}"' if draw(st.booleans()) else text


PHRASE = _phrase_text()


@st.composite
def _text_query(draw: st.DrawFn, below: st.SearchStrategy[str]) -> str:
    """A query over phrases only (what may sit inside `title:( ... )`), NEAR among them."""
    if draw(_THIRDS) == 0:
        if draw(_THIRDS) == 0:  # two phrases close together
            return f"{draw(PHRASE)} {draw(_NEAR)} {draw(PHRASE)}"
        return draw(PHRASE)
    left, op, right = draw(below), draw(_TEXT_OPERATORS), draw(below)
    return f"({left}{op}{right})" if op != " -" else f"({left} -({right}))"


TEXT_QUERY = _text_query(_text_query(PHRASE))


@st.composite
def _atom_text(draw: st.DrawFn) -> str:
    """One term that is true on its own: a phrase, a scoped phrase, an author, a label, votes."""
    kind = draw(st.integers(0, 7))
    if kind == 2:
        inner = draw(TEXT_QUERY)
        return draw(_SCOPES) + (inner if inner.startswith("(") else f"({inner})")
    if kind == 3:
        name = draw(_FOLLOWS)
        return f'author:"{name}"' if draw(st.booleans()) else f"author:({name})"
    if kind == 4:
        return draw(_LABEL_QUERIES)
    if kind == 5:
        field, op, number = draw(_VOTES)
        return f"{field}{op}{number}"
    if kind == 6:  # two words close together: often in the tiny texts, distance matters
        return f"{draw(_QUERY_WORD)} {draw(_NEAR)} {draw(_QUERY_WORD)}"
    return draw(PHRASE)


ATOM = _atom_text()


@st.composite
def _positive_query(draw: st.DrawFn, below: st.SearchStrategy[str]) -> str:
    """A query that cannot be true without one of its terms (so the parser accepts it)."""
    if draw(_THIRDS) == 0:
        return draw(ATOM)
    left = draw(below)
    how = draw(st.integers(0, 6))
    if how == 5:
        return f"{left} -({draw(below)})"
    if how == 6:  # true without a term of its own, but ANDed with one that needs a term
        return f"{left} ({draw(ATOM)} OR NOT {draw(ATOM)})"
    if how == 0:
        return f"({left} OR {draw(below)})"
    if how == 1:
        return f"({left} AND {draw(below)})"
    if how == 2:
        return f"{left} NOT {draw(ATOM)}"
    if how == 3:
        return f"{left} -{draw(ATOM)}"
    # side by side: an implicit AND (or, for two bare word runs, one longer phrase)
    return f"{left} {draw(below)}"


def parses(text: str) -> bool:
    """Does the alert language accept this entry?"""
    try:
        parse_query(text)
    except QueryError:
        return False
    return True


# A keyword or exclude entry: mostly plain phrases, often boolean queries.
ENTRY = st.one_of(PHRASE, _positive_query(_positive_query(ATOM))).filter(parses)
_ENTRY_LISTS = st.lists(ENTRY, min_size=1, max_size=6)
_AUTHOR_LISTS = st.lists(_FOLLOWS, max_size=3)
_RESTRICTION_LISTS = st.lists(st.sampled_from(RESTRICTIONS), min_size=1, max_size=2)


@st.composite
def subscribers(draw: st.DrawFn) -> list[Subscriber]:
    """1-5 subscribers drawing alerts from one shared pool (so they share and repeat them)."""
    pool = draw(_ENTRY_LISTS)
    entries = st.one_of(st.sampled_from(pool), ENTRY)
    out = []
    for n in range(draw(st.integers(1, 5))):
        keywords = draw(st.lists(entries, max_size=4))
        restricted = draw(_THIRDS) == 0
        excluding = draw(_THIRDS) == 0
        out.append(
            Subscriber(
                email=f"s{n}@example.org",
                keywords=tuple(keywords),
                authors=tuple(draw(_AUTHOR_LISTS)),
                categories=tuple(draw(_RESTRICTION_LISTS)) if restricted else (),
                exclude=tuple(draw(st.lists(entries, min_size=1, max_size=2))) if excluding else (),
            )
        )
    return out


# ------------------------------------------------------------------------ papers

_PAPER_WORDS = st.sampled_from(sorted(SPELLINGS))
_SPELLINGS = {word: st.sampled_from(spellings) for word, spellings in SPELLINGS.items()}
_SEPARATORS = st.sampled_from(SEPARATORS)
_AUTHORS = st.lists(st.sampled_from(AUTHOR_NAMES), max_size=3)
_CATEGORIES = st.lists(st.sampled_from(CATEGORIES), max_size=2)
_SOURCES = st.lists(st.sampled_from(SOURCES), max_size=2)
_PAPER_VOTES = st.one_of(st.none(), st.integers(0, 7))
_ORGANIZATIONS = st.lists(st.sampled_from(ORGANIZATIONS), max_size=2)
_TAGS = st.lists(st.sampled_from(TAGS), max_size=3)


@st.composite
def _paper_text(draw: st.DrawFn, max_words: int) -> str:
    """A title or abstract: vocabulary words in random spellings and separators."""
    out = ""
    for i, word in enumerate(draw(st.lists(_PAPER_WORDS, max_size=max_words))):
        out += (draw(_SEPARATORS) if i else "") + draw(_SPELLINGS[word])
    return out


_TITLES = _paper_text(6)
_ABSTRACTS = _paper_text(12)


def _paper(draw: st.DrawFn, paper_id: str) -> Paper:
    """A paper with random fields."""
    return Paper(
        id=paper_id,
        title=draw(_TITLES),
        abstract=draw(_ABSTRACTS),
        authors=tuple(draw(_AUTHORS)),
        categories=tuple(draw(_CATEGORIES)),
        sources=tuple(draw(_SOURCES)),
        votes=draw(_PAPER_VOTES),
        stars=draw(_PAPER_VOTES),
        organizations=tuple(draw(_ORGANIZATIONS)),
        keywords=tuple(draw(_TAGS)),
    )


@st.composite
def papers(draw: st.DrawFn) -> list[Paper]:
    """0-6 papers with random fields; now and then one listed again (as another source
    lists it, with other text), which must be matched once, as first listed."""
    listing = [_paper(draw, f"p{n}") for n in range(draw(st.integers(0, 6)))]
    if listing and draw(_THIRDS) == 0:
        again = draw(st.sampled_from(listing)).id
        listing.insert(draw(st.integers(0, len(listing))), _paper(draw, again))
    return listing


def reference(subs: list[Subscriber], listing: list[Paper]) -> dict[str, list[Match]]:
    """What the plain evaluator finds, pair by pair, in the shape `AlertIndex.match` returns."""
    first = list({p.id: p for p in reversed(listing)}.values())  # the first listing of each
    first.sort(key=listing.index)
    out: dict[str, list[Match]] = {}
    for sub in subs:
        found = [m for paper in first if (m := reference_match(sub, paper)) is not None]
        if found:
            out[sub.email] = found
    return out


# ------------------------------------------------------------------------ the property


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(subs=subscribers(), listing=papers())
@example(
    subs=[
        Subscriber("a@example.org", keywords=("neural collapse", "grokking", "neural collapse")),
        Subscriber("b@example.org", keywords=("grokking",), authors=("G. Lajoie",)),
    ],
    listing=[
        Paper("p0", "Grokking and Neural-Collapse", authors=("Guillaume Lajoie",)),
        Paper("p1", "Nothing here", abstract="neural collapse, in context"),
    ],
)
@example(  # NEAR at its distance exactly, in either order, and one word short of it
    subs=[
        Subscriber("a@example.org", keywords=("grokking NEAR/0 neural", "in NEAR/1 bayes")),
        Subscriber("b@example.org", keywords=("title:(neural NEAR/2 context)",)),
    ],
    listing=[
        Paper("p0", "Neural grokking", abstract="in naive bayes"),
        Paper("p1", "Neural in 2D context", abstract="in naive 2D bayes"),
    ],
)
def test_index_matches_equal_the_reference_evaluator(
    subs: list[Subscriber], listing: list[Paper]
) -> None:
    index = AlertIndex.build(subs)

    assert index.match(listing) == reference(subs, listing)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(subs=subscribers(), listing=papers())
def test_the_reference_of_a_whole_day_is_the_reference_pair_by_pair(
    subs: list[Subscriber], listing: list[Paper]
) -> None:
    """`reference_matches` folds each paper once and keeps its answers: nothing else."""
    assert reference_matches(subs, listing) == reference(subs, listing)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(subs=subscribers(), listing=papers())
def test_one_index_serves_several_listings_like_a_fresh_one(
    subs: list[Subscriber], listing: list[Paper]
) -> None:
    """An index is built once per run and matched against several listings in turn."""
    index = AlertIndex.build(subs)
    half = len(listing) // 2

    first, second = index.match(listing[:half]), index.match(listing[half:])

    assert first == reference(subs, listing[:half])
    assert second == reference(subs, listing[half:])


# A `categories:` entry written with two stars is the prefix without any of them
# ("cs.**" is "cs.", as `category:cs.**` is in a query), for the index and the reference.
def test_a_restriction_written_with_two_stars_means_the_same_to_both() -> None:
    subs = [Subscriber("s@example.org", keywords=("grokking",), categories=("cs.**",))]
    listing = [
        Paper("lg", "Grokking", categories=("cs.LG",)),
        Paper("stars", "Grokking", categories=("cs.**x",)),
    ]

    assert AlertIndex.build(subs).match(listing) == reference(subs, listing)
