"""The documentation tells the truth: every documented option, kind, command, path, name,
link and benchmark exists, and ARCHITECTURE.md draws the packages and layers there are."""

from __future__ import annotations

import re
import tomllib
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


# --- ARCHITECTURE.md and docs/: the map, the rule, the recipes and the benches are true ---

ARCHITECTURE = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
PERFORMANCE = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
DOCS = {"README.md": README, "ARCHITECTURE.md": ARCHITECTURE, "docs/performance.md": PERFORMANCE}
#: where a path written in the docs must be (runtime places such as data/ are not checked)
CHECKED_DIRS = ("bot/", "tests/", "bench/", "config/", "deploy/", "docs/", ".ci/")
CODE = {path: path.read_text(encoding="utf-8") for path in ROOT.glob("[bt]*/**/*.py")}


def code_block_after(text: str, heading: str) -> list[str]:
    """The lines of the first fenced block after this heading."""
    section = text.split(heading + "\n", 1)[1]
    return section.split("```\n", 2)[1].splitlines()


def test_architecture_states_the_import_contract_of_pyproject() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        contracts = tomllib.load(file)["tool"]["importlinter"]["contracts"]
    [layers] = [c["layers"] for c in contracts if c["type"] == "layers"]
    assert code_block_after(ARCHITECTURE, "## The layering rule") == layers


def test_architecture_maps_every_package_and_top_module() -> None:
    drawn = code_block_after(ARCHITECTURE, "## The package map")
    named = {line.split()[0] for line in drawn if re.match(r"  \S", line)}  # not continuations
    packages = {f"{p.parent.name}/" for p in (ROOT / "bot").glob("*/__init__.py")}
    modules = {p.name for p in (ROOT / "bot").glob("*.py")} - {"__init__.py", "__main__.py"}
    assert len(packages) >= 8
    assert {"cli.py", "models.py", "errors.py"} <= modules
    assert packages | modules == named


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_paths_in_the_docs_exist(doc: str) -> None:
    quoted = re.findall(r"`([^`\s]+)`", DOCS[doc])
    paths = {p for p in quoted if p.startswith(CHECKED_DIRS) and "<" not in p}
    assert paths, f"{doc} names files of the project"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"{doc} names paths that do not exist: {missing}"


def test_names_architecture_cites_exist_in_the_code() -> None:
    quoted = set(re.findall(r"`@?([^`\s]+)`", ARCHITECTURE))
    files = {p for p in quoted if re.fullmatch(r"[\w.]+\.(py|md|toml|yaml)", p)}
    members = {p for p in quoted if re.fullmatch(r"_?[A-Z]\w*\.\w+", p)} - files
    names = {p for p in quoted if re.fullmatch(r"_?[A-Za-z]\w*", p)}
    assert len(files) >= 5
    assert len(members) >= 3
    assert len(names) >= 30
    everywhere = {p.name for p in ROOT.glob("[bt]*/**/*")} | {p.name for p in ROOT.glob("*")}
    assert files <= everywhere, files - everywhere
    for member in members:
        owner, attribute = member.split(".")
        homes = [text for text in CODE.values() if re.search(rf"^class {owner}\b", text, re.M)]
        assert homes, f"ARCHITECTURE.md cites {member}: no class {owner}"
        assert re.search(rf"def {attribute}\(", homes[0]), f"no {member} in the code"
    words = set(re.findall(r"\w+", "\n".join(CODE.values())))
    assert names <= words, f"ARCHITECTURE.md cites names the code lacks: {names - words}"


def heading_anchor(title: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_links_between_the_docs_resolve(doc: str) -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", DOCS[doc])
    local = [link for link in links if "://" not in link]
    assert local, f"{doc} links to the other docs"
    for link in local:
        target, _, anchor = link.partition("#")
        text = DOCS[doc] if not target else (ROOT / Path(doc).parent / target).read_text()
        if anchor:
            titles = re.findall(r"^#+ (.+)$", text, re.M)
            assert anchor in {heading_anchor(t) for t in titles}, f"{doc}: {link}"


def test_every_benchmark_is_in_docs_performance_with_its_command() -> None:
    benches = {p.name for p in (ROOT / "bench").glob("*.py")}
    blocks = "\n".join(re.findall(r"```sh\n(.*?)```", PERFORMANCE, re.DOTALL))
    commanded = set(re.findall(r"\.venv/bin/python bench/(\w+\.py)", blocks))
    assert len(benches) >= 5
    assert commanded == benches
