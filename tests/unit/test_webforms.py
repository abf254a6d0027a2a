"""The alert form: entries split as people type them, errors point at line and column."""

from __future__ import annotations

import pytest

from bot.models import Subscriber
from bot.web.forms import AlertForm, parse_alerts, parse_email


def errors_of(**fields: str) -> list[str]:
    return [str(e) for e in parse_alerts(AlertForm(**fields)).errors]


def test_keywords_one_per_line_or_separated_by_commas_outside_quotes() -> None:
    parsed = parse_alerts(AlertForm(keywords='diffusion, grok*\n\n  "a, b" -survey  \ndiffusion'))
    assert parsed.subscriber is not None
    assert parsed.subscriber.keywords == ("diffusion", "grok*", '"a, b" -survey')


def test_authors_keep_their_commas() -> None:
    parsed = parse_alerts(AlertForm(authors="Lajoie, Guillaume\nY. Bengio; Ada Lovelace"))
    assert parsed.subscriber is not None
    assert parsed.subscriber.authors == ("Lajoie, Guillaume", "Y. Bengio", "Ada Lovelace")


@pytest.mark.parametrize(
    ("keywords", "where"),
    [
        ('"neural collapse', "line 1, column 1"),
        ("diffusion\n  (graph OR", "line 2, column"),
        ("diffusion, g*", "line 1, column 12"),
    ],
)
def test_query_errors_name_line_and_column(keywords: str, where: str) -> None:
    [error] = errors_of(keywords=keywords)
    assert error.startswith(f"keywords, {where}")


def test_cadence_is_checked() -> None:
    problems = errors_of(
        keywords="x", frequency="hourly", weekday="9", hour="25", timezone="Mars/Olympus"
    )
    assert [p.split(":")[0] for p in problems] == ["frequency", "weekday", "hour", "timezone"]


def test_a_valid_form_is_a_pending_web_subscriber() -> None:
    form = AlertForm(
        keywords="diffusion",
        categories="cs.LG stat.ML",
        frequency="weekly",
        weekday="3",
        hour="9",
        timezone="Asia/Tokyo",
    )
    sub = parse_alerts(form, "ada@example.org").subscriber
    assert sub == Subscriber(
        email="ada@example.org",
        keywords=("diffusion",),
        categories=("cs.LG", "stat.ML"),
        frequency="weekly",
        weekday=3,
        send_at="09:00",
        timezone="Asia/Tokyo",
        origin="web",
        status="pending",
    )
    assert AlertForm.from_subscriber(sub) == form, "the manage page shows it back as typed"


def test_limits_on_entries() -> None:
    assert errors_of(keywords="\n".join(f"k{i}" for i in range(51))) == [
        "keywords: at most 50 entries"
    ]
    assert "longer than 200" in errors_of(keywords="x" * 201)[0]
    assert "not an arXiv category" in errors_of(keywords="x", categories="cs.LG <b>")[0]


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [(" Ada@Example.ORG ", "Ada@example.org"), ("ada@example.org", "ada@example.org")],
)
def test_email_is_normalized(typed: str, normalized: str) -> None:
    assert parse_email(typed) == (normalized, None)


@pytest.mark.parametrize("typed", ["", "ada", "ada@", "@example.org", "a b@example.org"])
def test_bad_email_is_one_error(typed: str) -> None:
    email, error = parse_email(typed)
    assert email is None
    assert error is not None
    assert error.field == "email"
