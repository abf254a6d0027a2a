"""Operator alert decisions: one per problem per day, recovery once, nothing for the unwatched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.run.operator import plan, smtp_problem, source_problems
from bot.store.health import SourceHealth
from bot.store.notices import AlertState

T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
KEY = "source:arxiv"


def simulate(days_of_problems: list[bool], step: timedelta) -> list[str]:
    """Evaluate every `step`; the list says whether the problem is there at each step."""
    states: dict[str, AlertState] = {}
    told = []
    for index, broken in enumerate(days_of_problems):
        now = T0 + index * step
        problems = {KEY: "source arxiv is broken: Feed error"} if broken else {}
        updates, notices = plan(states, {KEY}, problems, now)
        for update in updates:
            states[update.problem] = update
        told += [f"{index}: {n.subject.split(':')[0]}" for n in notices]
    return told


def test_a_lasting_problem_is_told_once_a_day() -> None:
    hourly_for_two_days = [True] * 49
    assert simulate(hourly_for_two_days, timedelta(hours=1)) == [
        "0: problem",
        "24: problem",
        "48: problem",
    ]


def test_recovery_is_told_once_and_a_new_problem_after_a_day_is_told_again() -> None:
    pattern = [True, True, False, False] + [True] * 30
    assert simulate(pattern, timedelta(hours=1)) == ["0: problem", "2: recovered", "24: problem"]


def test_a_flapping_source_cannot_flood_the_operator() -> None:
    flapping = [True, False] * 24  # broken every other hour for two days
    told = simulate(flapping, timedelta(hours=1))
    problems = [t for t in told if t.endswith("problem")]
    assert problems == ["0: problem", "24: problem"]
    assert len(told) <= 4


def test_a_problem_never_told_has_no_recovery_mail() -> None:
    states = {KEY: AlertState(KEY, "problem", "x", T0, told="ok", last_alert=T0)}
    updates, notices = plan(states, {KEY}, {}, T0 + timedelta(hours=1))
    assert notices == []
    assert [u.state for u in updates] == ["ok"]


def test_unwatched_problems_are_left_alone() -> None:
    states = {KEY: AlertState(KEY, "problem", "x", T0, told="problem", last_alert=T0)}
    assert plan(states, {"smtp"}, {}, T0 + timedelta(days=2)) == ([], [])


def health(status: str | None, failures: int = 0, name: str = "arxiv") -> SourceHealth:
    return SourceHealth(name, T0, T0, status, "HTTP 500", failures, 0, 0)


def test_a_source_is_broken_at_once_or_after_n_failures_in_a_row() -> None:
    sources = [
        health("broken", 1, "a"),
        health("error", 2, "b"),
        health("error", 3, "c"),
        health("ok", 0, "d"),
        health("error", 9, "gone-from-config"),
    ]
    watched, problems = source_problems(sources, ["a", "b", "c", "d"], failures=3)
    assert watched == {"source:a", "source:b", "source:c", "source:d"}
    assert set(problems) == {"source:a", "source:c"}
    assert problems["source:c"] == "source c failed 3 times in a row: HTTP 500"


def test_mail_is_a_problem_only_when_digests_are_stuck() -> None:
    assert smtp_problem(sent=0, pending=0, errors=()) is None  # nothing was tried
    assert smtp_problem(sent=3, pending=0, errors=("a@x: 550 no such user",)) == {}
    stuck = smtp_problem(sent=0, pending=2, errors=("cannot connect to SMTP server",))
    assert stuck is not None
    assert "2 digests wait" in stuck["smtp"]
