"""Config values that load but then break every run: hang it, crash it, or fail every digest
for good. Each is refused at load with one line naming its key (exit 2 from any command).

The values are hand-made hostile inputs (infinities, a newline in a header, a host of
100,000 letters); each was seen to hang `paperbot once`, give `internal error`, or mark
every subscriber's digest failed for good before it was refused here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config.checks import check_email
from bot.config.load import parse_config
from bot.errors import ConfigError
from tests.cli import run_paperbot

BASE: dict[str, Any] = {
    "database": "data/paperbot.db",
    "smtp": {"host": "smtp.example.org", "from": "paperbot <bot@example.org>"},
    "subscribers": [{"email": "ada@example.org", "keywords": ["grokking"]}],
}


def config_with(path: str, value: Any) -> str:
    """BASE with the dotted `path` set to `value`, as YAML."""
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    *parents, key = path.split(".")
    node = raw
    for parent in parents:
        node = node.setdefault(parent, {})
    node[key] = value
    return yaml.safe_dump(raw, allow_unicode=True)


REFUSED = [
    # waits without end: a run that never finishes holds the lock for every later run
    ("smtp.timeout", float("inf")),
    ("smtp.timeout", 1e300),
    ("smtp.message_deadline", float("inf")),
    ("smtp.retry_delay", float("inf")),
    ("smtp.retry_delay", 1e300),
    ("smtp.rate_limit", "1e-300/s"),
    ("scheduling.database_wait", float("inf")),
    ("scheduling.lock_wait", float("inf")),
    ("scheduling.misfire_grace", float("inf")),
    ("fetch.timeout", float("inf")),
    ("fetch.backoff", float("inf")),
    # internal errors at run time
    ("smtp.max_hard_bounces", 10**20),  # too large for SQLite at the first bounce
    ("smtp.host", "smtp.example.org\nx"),
    ("smtp.host", "a" * 100_000),
    ("smtp.host", ""),
    ("smtp.host", "smtp.example.org:587"),
    ("database", ""),
    ("database", "."),
    # every digest failed for good: nobody gets anything, ever
    ("list_name", "papers\nBcc: everyone@example.org"),
    ("smtp.from", '"paper\nbot" <bot@example.org>'),
    ("smtp.from", "paperbot <bøt@example.org>"),
    ("smtp.from", "paperbot <bot@exämple.org>"),
    ("smtp.reply_to", "ops@example.org\r\nBcc: y@example.org"),
    ("smtp.unsubscribe_mailto", "ünsub@example.org"),
    ("base_url", "https://exämple.org"),
    ("base_url", "https://example.org/papers?x=1"),
    ("base_url", "https://example.org/papers#top"),
    # every fetch fails: an illegal User-Agent
    ("contact", "ops@example.org\r\nX-Evil: 1"),
    ("contact", "x" * 100_000),
]


@pytest.mark.parametrize(("path", "value"), REFUSED)
def test_a_value_that_would_break_every_run_is_refused_at_load(path: str, value: Any) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(config_with(path, value))
    assert refused.value.path == path
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("smtp.timeout", 600),
        ("smtp.message_deadline", 3600),
        ("smtp.rate_limit", "1/h"),
        ("smtp.host", "127.0.0.1"),
        ("smtp.host", "::1"),
        ("smtp.from", "Papers ☃ <bot@example.org>"),
        ("list_name", "papers ☃"),
        ("base_url", "https://example.org/papers"),
        ("contact", "https://example.org/ops"),
        ("database", "/srv/paperbot/paperbot.db"),
    ],
)
def test_sensible_values_still_load(path: str, value: Any) -> None:
    parse_config(config_with(path, value))


def test_an_address_a_digest_cannot_carry_is_refused_for_subscribers_too() -> None:
    with pytest.raises(ValueError, match="not a valid email address"):
        check_email("ädä@example.org")  # no SMTPUTF8 in the messages paperbot writes
    assert check_email("ada@exämple.org") == "ada@exämple.org"  # an IDN domain is fine


def test_an_empty_password_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERBOT_TEST_PASSWORD", "")
    text = config_with("smtp.password_env", "PAPERBOT_TEST_PASSWORD")
    with pytest.raises(ConfigError) as refused:
        parse_config(text)
    assert refused.value.path == "smtp.password_env"
    assert "empty" in refused.value.message


def test_paperbot_once_refuses_it_before_anything_is_recorded_or_mailed(tmp_path: Path) -> None:
    config = tmp_path / "paperbot.yaml"
    text = config_with("list_name", "papers\nBcc: everyone@example.org")
    config.write_text(text.replace("data/paperbot.db", str(tmp_path / "paperbot.db")))
    result = run_paperbot(config, "once")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "paperbot: config error: list_name: a line break or other control character"
        " cannot be in a mail header (got 'papers\\nBcc: everyone@example.org')"
    ]
    assert not (tmp_path / "paperbot.db").exists()
    assert os.listdir(tmp_path) == ["paperbot.yaml"]
