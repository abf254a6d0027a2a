"""Highlighting: a digest marks what the matcher matched, folded as the matcher folds."""

from __future__ import annotations

import re

import pytest

from bot.alerts.reference import reference_match
from bot.mail.highlight import highlight
from bot.models import Paper, Subscriber
from bot.text.fold import fold

MARK = re.compile(r"<mark[^>]*>(.*?)</mark>")


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


# Where the renderer's own folding (NFKD, accents dropped, case folded, every other
# character kept; gaps only spaces and hyphens) and the matcher's (`bot.text.fold`) gave
# different words: the highlighter now folds as the matcher does, so it marks what matched.
DIFFERED = [
    # ø, ł, æ have no decomposition: the old folding kept them, the matcher maps them
    ("Ørsted's law revisited", "orsted", ["Ørsted"]),
    ("Łukasiewicz logics for learning", "lukasiewicz", ["Łukasiewicz"]),
    ("Cæsar ciphers are weak", "caesar", ["Cæsar"]),
    # a soft hyphen inside a word: the old folding kept it, the matcher removes it
    ("Trans\u00adformer circuits", "transformer", ["Trans\u00adformer"]),
    # a slash or an underscore between words: a boundary for the matcher, not for the old
    ("In/context learning", "in context learning", ["In/context learning"]),
    ("GAN_based image synthesis", "GAN", ["GAN"]),
    # an alert written with quotes: the old folding kept the quotes in the term
    ("Graph neural networks", '"graph neural"', ["Graph neural"]),
]


@pytest.mark.parametrize(("title", "alert", "marked"), DIFFERED)
def test_highlight_marks_what_the_matcher_matched_where_the_foldings_differed(
    title: str, alert: str, marked: list[str]
) -> None:
    paper = Paper(id="2411.00001", title=title)
    match = reference_match(Subscriber("ada@example.org", keywords=(alert,)), paper)
    assert match is not None, "the matcher matches the alert"
    [reason] = match.reasons
    # by the matcher's quotes, and by the alert itself (a reason without quotes)
    assert MARK.findall(str(highlight(title, reason.terms))) == marked
    assert MARK.findall(str(highlight(title, (alert,)))) == marked
    assert fold(marked[0]) == fold(alert.strip('"')), "one folding for both"


def test_highlight_marks_nothing_the_matcher_does_not_match() -> None:
    title = "Organs of GANs: transformers in context"
    for alert in ("GAN", "organ", "context learning"):
        paper = Paper(id="2411.00001", title=title)
        assert reference_match(Subscriber("ada@example.org", keywords=(alert,)), paper) is None
        assert "<mark>" not in str(highlight(title, (alert,)))
