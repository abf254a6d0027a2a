"""Every source kind is documented where a user looks: `paperbot sources`, the README's Sources
table (with an example that validates) and config/example.yaml (with a working Mila preset).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main
from bot.config.load import parse_config
from bot.ingest.sources import KINDS
from bot.ingest.sources.html import HtmlSource

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
EXAMPLE = ROOT / "config" / "example.yaml"
DEFAULT = ROOT / "config" / "paperbot.yaml"
MILA_PAGES = ROOT / "tests" / "fixtures" / "html"


def readme_rows() -> dict[str, str]:
    """The README Sources table: kind -> its example cell."""
    rows = re.findall(r"^\| `([a-z-]+)` \| .* \| `(\{.*\})` \|$", README.read_text(), re.M)
    return dict(rows)


def example_sources(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The sources of config/example.yaml, validated as paperbot validates them."""
    monkeypatch.setenv("PAPERBOT_SMTP_PASSWORD", "not-used")
    return list(parse_config(EXAMPLE.read_text(encoding="utf-8"), EXAMPLE).sources)


def test_paperbot_sources_lists_every_kind_with_every_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["sources"]) == 0
    out = capsys.readouterr().out
    assert KINDS, "the registry has the source kinds"
    for name, kind in KINDS.items():
        block = out.split(f"{name}: ", 1)[1].split("\n\n", 1)[0]
        for option, info in kind.options_model.model_fields.items():
            assert f"    {option} (" in block, f"{name}.{option} is listed"
            assert info.description, f"{name}.{option} says what it does"


def test_readme_has_a_row_and_a_valid_example_for_every_kind() -> None:
    rows = readme_rows()
    assert set(rows) == set(KINDS)
    for kind, example in rows.items():
        source = yaml.safe_load(example)
        assert source["kind"] == kind
        source.setdefault("url", "https://example.org/x")
        config = parse_config(yaml.safe_dump({"sources": [source]}))
        assert config.sources[0].kind == kind


def test_example_config_shows_every_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {spec.kind for spec in example_sources(monkeypatch)} == set(KINDS)


def test_default_config_reads_hugging_face_daily_papers() -> None:
    config = parse_config(DEFAULT.read_text(encoding="utf-8"), DEFAULT)
    assert "huggingface" in {spec.kind for spec in config.sources}


def test_the_mila_preset_reads_the_mila_page(monkeypatch: pytest.MonkeyPatch) -> None:
    [mila] = [s for s in example_sources(monkeypatch) if s.kind == "html"]
    body = (MILA_PAGES / "mila_publications_page0_handwritten.html").read_bytes()
    listing = HtmlSource().parse(body, "https://mila.quebec/en/research/publications", mila.options)
    assert len(listing.papers) == 3
    assert all(paper.authors for paper in listing.papers)
    assert listing.next_url == "https://mila.quebec/en/research/publications?page=1"
