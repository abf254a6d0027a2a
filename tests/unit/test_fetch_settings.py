"""The `fetch:` options and a source's `deadline:`: validated at load, shown by check-config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main
from bot.config.load import parse_config
from bot.errors import ConfigError
from bot.ingest.fetch import merge_intervals


def config_with(fetch: dict[str, Any] | None = None, **source: Any) -> str:
    """Config YAML with these fetch settings and one rss source with these extra options."""
    settings: dict[str, Any] = {
        "sources": [{"name": "feed", "kind": "rss", "url": "https://example.org/f", **source}]
    }
    if fetch is not None:
        settings["fetch"] = fetch
    return yaml.safe_dump(settings)


def test_defaults_bound_every_source_and_pause_for_every_host() -> None:
    fetch = parse_config(config_with()).fetch

    assert (fetch.deadline, fetch.max_retry_after, fetch.default_interval) == (300, 300, 1)
    assert fetch.hosts == {}
    assert merge_intervals(fetch.hosts)["arxiv.org"] == 3


def test_configured_hosts_extend_and_override_the_built_in_ones() -> None:
    fetch = parse_config(config_with({"hosts": {"ArXiv.org.": 0.5, "example.org": 4}})).fetch

    merged = merge_intervals(fetch.hosts)

    assert merged["arxiv.org"] == 0.5
    assert merged["example.org"] == 4
    assert merged["huggingface.co"] == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "export.arxiv.org"])
def test_hosts_may_be_names_or_addresses(host: str) -> None:
    assert parse_config(config_with({"hosts": {host: 2}})).fetch.hosts == {host: 2}


@pytest.mark.parametrize(
    ("fetch", "source", "message"),
    [
        ({"deadline": 0}, {}, "fetch.deadline: Input should be greater than 0 (got 0)"),
        ({"deadline": 7200}, {}, "fetch.deadline: Input should be less than or equal to 3600"),
        (
            {"hosts": {"https://arxiv.org": 3}},
            {},
            "fetch.hosts: 'https://arxiv.org' is not a host name (write it bare: arxiv.org)",
        ),
        ({"hosts": {"arxiv.org:443": 3}}, {}, "fetch.hosts: 'arxiv.org:443' is not a host name"),
        ({"hosts": {"arxiv.org/rss": 3}}, {}, "fetch.hosts: 'arxiv.org/rss' is not a host name"),
        ({"hosts": {"arxiv.org": -1}}, {}, "fetch.hosts: arxiv.org: -1 is not 0 to 600 seconds"),
        ({"hosts": {"arxiv.org": "fast"}}, {}, "fetch.hosts.arxiv.org: Input should be a valid"),
        ({"default_interval": -1}, {}, "fetch.default_interval: Input should be greater than"),
        ({"max_retry_after": -5}, {}, "fetch.max_retry_after: Input should be greater than"),
        (None, {"deadline": 0}, "sources[0].deadline: Input should be greater than 0"),
        (None, {"deadline": "soon"}, "sources[0].deadline: Input should be a valid number"),
    ],
)
def test_bad_fetch_settings_are_one_line_naming_the_key(
    fetch: dict[str, Any] | None, source: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(config_with(fetch, **source))

    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_check_config_shows_deadlines_and_pauses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "paperbot.yaml"
    fetch = {"deadline": 120, "default_interval": 0.5, "hosts": {"arxiv.org": 5, "lab.org": 2}}
    path.write_text(config_with(fetch, deadline=900), encoding="utf-8")

    assert main(["--config", str(path), "check-config"]) == 0

    lines = capsys.readouterr().out.splitlines()
    [fetch_line] = [line for line in lines if line.startswith("fetch: ")]
    assert fetch_line.startswith("fetch: each source within 120 s (pages, retries and waits")
    [pauses] = [line for line in lines if "pause between requests" in line]
    assert pauses == (
        "  pause between requests: arxiv.org 5 s, lab.org 2 s, alphaxiv.org 1 s, biorxiv.org 1 s,"
        " huggingface.co 1 s; any other host 0.5 s (this machine: none unless listed)"
    )
    source = lines.index(next(line for line in lines if line.startswith("  feed [rss]")))
    assert lines[source + 1] == "    deadline 900 s (its own, not fetch.deadline)"
