"""Views: what a digest or a page shows of a paper; followed authors by the matcher's rule."""

from __future__ import annotations

import re

import pytest

from bot.alerts.reference import reference_match
from bot.mail.views import entry_view
from bot.models import DigestEntry, Paper, Subscriber

STRONG = re.compile(r"<strong>(.*?)</strong>")

#: one author list with namesakes: the same person written three ways, and others
AUTHORS = (
    "Wei Li",
    "Wen Li",
    "Li, Wei",
    "W. Li",
    "Wei Zhang",
    "Samy Bengio",
    "Yoshua B. Bengio",
    "Hinton, Geoffrey E.",
)


@pytest.mark.parametrize(
    ("follow", "shown"),
    [
        # the renderer's old rule ("wei li" or "li w") also marked Wen Li: "li w"
        ("Wei Li", ["Wei Li", "Li, Wei", "W. Li"]),
        ("Yoshua Bengio", ["Yoshua B. Bengio"]),
        ("Bengio", ["Samy Bengio", "Yoshua B. Bengio"]),
        ("G. E. Hinton", ["Hinton, Geoffrey E."]),
    ],
)
def test_the_followed_authors_shown_are_those_the_matcher_follows(
    follow: str, shown: list[str]
) -> None:
    paper = Paper(id="2411.00001", title="A paper", authors=AUTHORS)
    match = reference_match(Subscriber("ada@example.org", authors=(follow,)), paper)
    assert match is not None
    [reason] = match.reasons
    assert list(reason.terms) == shown, "the matcher's follows"
    view = entry_view(DigestEntry(paper, match.reasons))
    assert STRONG.findall(str(view.authors_html)) == shown


def test_a_follow_marks_nobody_when_its_reason_is_not_an_author_reason() -> None:
    paper = Paper(id="2411.00001", title="A paper", authors=AUTHORS)
    match = reference_match(Subscriber("ada@example.org", keywords=("paper",)), paper)
    assert match is not None
    assert "<strong>" not in str(entry_view(DigestEntry(paper, match.reasons)).authors_html)
