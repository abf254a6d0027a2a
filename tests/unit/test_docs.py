"""The documentation tells the truth: every documented option, kind and command exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.cli import COMMANDS, build_parser
from bot.config.load import load_config
from bot.ingest.sources import KINDS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["paperbot.yaml", "example.yaml"])
def test_shipped_configs_are_valid(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERBOT_SMTP_PASSWORD", "secret")
    config = load_config(ROOT / "config" / name)
    assert config.sources, f"{name} configures at least one source"
    assert config.subscribers


def test_example_config_shows_every_source_kind() -> None:
    text = (ROOT / "config" / "example.yaml").read_text(encoding="utf-8")
    shown = set(re.findall(r"^\s*kind:\s*([\w-]+)", text, re.MULTILINE))
    assert shown == set(KINDS)


def test_readme_documents_every_source_kind() -> None:
    assert KINDS, "the registry has the source kinds"
    for kind in KINDS:
        assert f"| `{kind}` |" in README, f"README has no row for source kind {kind}"


def test_readme_commands_exist() -> None:
    documented = set(re.findall(r"`paperbot ([a-z-]+)", README))
    assert documented <= set(COMMANDS), documented - set(COMMANDS)
    assert set(COMMANDS) <= documented, "every command is documented"


def test_readme_front_door_commands() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.DOTALL)
    assert any("pip install -e ." in b and "paperbot once" in b for b in blocks)
    assert any("pip install -e '.[dev]'" in b and "pytest" in b for b in blocks)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ".venv/bin/pytest" in ci


def test_every_subcommand_has_help() -> None:
    parser = build_parser()
    help_text = parser.format_help()
    assert COMMANDS, "the CLI has commands"
    for command in COMMANDS:
        assert command in help_text
