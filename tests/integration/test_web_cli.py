"""`paperbot web`: refuses to start without its secret or base_url, serves the app otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from bot.cli import main
from bot.config.load import load_config
from bot.web.server import create_app
from tests.httpserver import closed_port
from tests.webapp import AppServer, form_fields

SECRET_ENV = "PAPERBOT_SECRET_KEY"


def config_file(tmp_path: Path, **settings: object) -> Path:
    path = tmp_path / "paperbot.yaml"
    path.write_text(
        yaml.safe_dump(
            {"database": str(tmp_path / "p.db"), "outbox": str(tmp_path / "outbox"), **settings}
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)


@pytest.mark.usefixtures("no_secret")
def test_refuses_to_start_without_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, base_url="https://papers.example.org")
    assert main(["--config", str(config), "web", "--port", str(closed_port())]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert SECRET_ENV in err
    assert "--dev" in err


def test_refuses_to_start_without_base_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "a-long-enough-secret-for-the-test")
    assert main(["--config", str(config_file(tmp_path)), "web"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "base_url" in err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`paperbot web` in a child process on a free port, with its secret."""
    port = closed_port()
    config = config_file(tmp_path, base_url=f"http://127.0.0.1:{port}")
    env = {**os.environ, SECRET_ENV: "a-long-enough-secret-for-the-test"}
    command = [sys.executable, "-m", "bot", "--config", str(config), "web", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    # leaving the `with` waits for the process and closes its stderr pipe
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as process:
        try:
            wait_until_up(url, process)
            yield process, url
        finally:
            if process.poll() is None:
                process.kill()


def wait_until_up(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"paperbot web exited: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            httpx.get(url + "/healthz", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("paperbot web did not start listening")


def test_serves_refuses_a_busy_port_and_stops_cleanly(
    served: tuple[subprocess.Popen[str], str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process, url = served
    page = httpx.get(url + "/")
    assert page.status_code == 200
    assert 'type="email"' in page.text
    assert httpx.get(url + "/healthz").text == "ok\n"

    monkeypatch.setenv(SECRET_ENV, "a-long-enough-secret-for-the-test")
    other = tmp_path / "other"
    other.mkdir()
    port = url.rsplit(":", 1)[1]
    config = config_file(other, base_url=url)
    assert main(["--config", str(config), "web", "--port", port]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err

    process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then ends by the signal it caught, as init systems expect
    assert process.wait(timeout=15) in (0, -signal.SIGTERM)


@pytest.mark.usefixtures("no_secret")
def test_dev_mode_needs_no_secret_and_no_base_url(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path))
    server = AppServer(lambda url: create_app(config, dev=True)).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            fields = form_fields(client.get("/").text)
            answer = client.post("/", data={**fields, "email": "ada@example.org", "keywords": "x"})
        assert answer.status_code == 200
        [mail] = (tmp_path / "outbox").iterdir()
        assert f"{server.url}/confirm/" in mail.read_text(), "links use the browser's address"
    finally:
        server.stop()


@pytest.mark.parametrize("command", ["web", "run"])
@pytest.mark.parametrize("port", ["99999999", "-5", "65536", "8O80"])
def test_a_port_that_is_no_port_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, port: str
) -> None:
    # hand-made: bind() refused it with an OverflowError, an internal error
    extra = ["--web"] if command == "run" else ["--dev"]
    with pytest.raises(SystemExit) as stopped:
        main(["--config", str(config_file(tmp_path)), command, *extra, "--port", port])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.endswith(f"--port: expected a port from 0 to 65535, not {port!r}")
