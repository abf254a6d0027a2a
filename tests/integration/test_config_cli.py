"""Bad config files through a real `paperbot check-config` child process: exit 2 and one
line naming the place, never `internal error` (hand-made hostile files)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config.load import MAX_CONFIG_BYTES
from tests.cli import run_paperbot
from tests.unit.test_config_file import BILLION_LAUGHS, GOOD


def latin1(path: Path) -> None:
    path.write_bytes(GOOD.replace("[grokking]", "[café]").encode("latin-1"))


def alias_bomb(path: Path) -> None:
    path.write_text(BILLION_LAUGHS, encoding="utf-8")


def duplicate_key(path: Path) -> None:
    path.write_text(GOOD.replace("  host:", "  host: a.example.org\n  host:"), encoding="utf-8")


def bad_source_url(path: Path) -> None:
    third = '  - {name: third, kind: rss, url: "https://example.org/a feed.xml"}\n'
    path.write_text(GOOD.replace("smtp:\n", third + "smtp:\n"), encoding="utf-8")


def too_large(path: Path) -> None:
    with path.open("wb") as handle:
        handle.write(GOOD.encode())
        handle.truncate(MAX_CONFIG_BYTES + 1)  # the rest reads as NUL bytes


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        (latin1, r"paperbot\.yaml:line 13, column 19: not UTF-8 text \(byte 0xe9\)"),
        (alias_bomb, r"paperbot\.yaml:line 1, column 4: YAML anchors and aliases"),
        (duplicate_key, r"paperbot\.yaml:line 10, column 3: duplicate key 'host' \(first on"),
        (bad_source_url, r"sources\[2\]\.url: a URL cannot contain spaces"),
        (too_large, r"paperbot\.yaml: the file is larger than 16 MB"),
    ],
    ids=["not-utf8", "alias-bomb", "duplicate-key", "bad-source-url", "too-large"],
)
def test_a_bad_config_file_is_one_line_and_exit_2(
    tmp_path: Path, write: Callable[[Path], None], expected: str
) -> None:
    config = tmp_path / "paperbot.yaml"
    write(config)
    result = run_paperbot(config, "check-config")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("paperbot: config error: "), lines[0]
    assert re.search(expected, lines[0]), lines[0]
    assert result.stdout == ""
