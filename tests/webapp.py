"""The web app on a real uvicorn server on 127.0.0.1 for tests, and helpers that read its pages.

Import the fixtures into a test module::

    from tests.webapp import web_site, web_site_factory  # noqa: F401

`web_site` serves the app on a fresh store with an SMTP section pointing at `smtp_server`
and `base_url` set to the server's own address; `web_site_factory(...)` takes rate limits,
a confirmation lifetime, config-file subscribers and extra config keys.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
import uvicorn
import yaml
from bs4 import BeautifulSoup

from bot.config.load import load_config
from bot.config.settings import Config
from bot.models import Paper
from bot.store.store import Store
from bot.web.limits import RateLimits
from bot.web.server import create_app, listen
from tests.smtpserver import SmtpTestServer

HOST = "127.0.0.1"
SECRET = "test-secret-for-paperbot-web-tests"
#: what a form submission needs besides the fields a test cares about
SIGNUP_DEFAULTS = {"frequency": "daily", "weekday": "0", "hour": "", "timezone": "UTC"}


class AppServer:
    """An ASGI app served by uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, make_app: Callable[[str], Any]) -> None:
        """`make_app(url)` builds the app once the server's own URL is known."""
        self.make_app = make_app
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind a free port, build the app for that URL, serve until `stop`."""
        listener = listen(HOST, 0)
        self.url = f"http://{HOST}:{listener.getsockname()[1]}"
        app = self.make_app(self.url)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listener]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the web app did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None


@dataclass
class WebSite:
    """A running web app with its config, its store file and the SMTP server it mails through."""

    server: AppServer
    config_path: Path
    smtp: SmtpTestServer
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The app's base URL (also the config's base_url)."""
        return self.server.url

    @property
    def config(self) -> Config:
        """The config the app runs on."""
        return load_config(self.config_path)

    def client(self, **options: Any) -> httpx.Client:
        """A fresh HTTP client (its own cookies) that never follows redirects (10 s timeout
        unless `options` say otherwise), closed when the site stops."""
        settings: dict[str, Any] = {"follow_redirects": False, "timeout": 10} | options
        client = httpx.Client(base_url=self.url, **settings)
        self.clients.append(client)
        return client

    @contextmanager
    def store(self) -> Iterator[Store]:
        """The app's store, opened for a look or a change."""
        store = Store.open(self.config.database)
        try:
            yield store
        finally:
            store.close()

    def mails_to(self, address: str) -> list[EmailMessage]:
        """Every message the SMTP server accepted for `address`."""
        return [m for m in self.smtp.messages if address.lower() in str(m["To"]).lower()]

    def link_in(self, message: EmailMessage, path: str) -> str:
        """The first `{url}/{path}/...` link in a mail's text."""
        found = re.search(rf"{re.escape(self.url)}/{path}/\S+", body_text(message))
        assert found, f"no /{path}/ link in:\n{body_text(message)}"
        return found.group(0)

    def stop(self) -> None:
        """Close the clients and stop the server."""
        for client in self.clients:
            client.close()
        self.server.stop()


def paper(arxiv_id: str, title: str, abstract: str = "", **fields: Any) -> Paper:
    """A paper as a source would list it."""
    return Paper(
        id=arxiv_id,
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract,
        url=f"https://arxiv.org/abs/{arxiv_id}",
        authors=fields.pop("authors", ("Ada Lovelace",)),
        **fields,
    )


def record(site: WebSite, *papers: Paper, now: datetime | None = None) -> None:
    """Put papers in the app's store as a fetch would (first seen `now`)."""
    with site.store() as store:
        store.papers.record("test-source", papers, now=now)


def body_text(message: EmailMessage) -> str:
    """The plain-text body of a mail."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def form_fields(html: str, selector: str = "form") -> dict[str, str]:
    """What a browser would submit from the page's form, without pressing a button."""
    form = BeautifulSoup(html, "html.parser").select_one(selector)
    assert form is not None, f"no {selector} on the page"
    fields: dict[str, str] = {}
    for element in form.select("input[name], textarea[name], select[name]"):
        name = str(element["name"])
        if element.name == "textarea":
            fields[name] = element.get_text()
        elif element.name == "select":
            chosen = element.select_one("option[selected]") or element.select_one("option")
            fields[name] = str(chosen.get("value", chosen.get_text())) if chosen else ""
        elif element.get("type") in ("radio", "checkbox"):
            if element.has_attr("checked"):
                fields[name] = str(element.get("value", "on"))
        else:
            fields[name] = str(element.get("value", ""))
    return fields


def page_title(html: str) -> str:
    """The page's h1."""
    heading = BeautifulSoup(html, "html.parser").find("h1")
    return heading.get_text(" ", strip=True) if heading else ""


def submit(client: httpx.Client, path: str, **changes: str) -> httpx.Response:
    """GET the page at `path`, fill its form with `changes`, POST it back to `path`."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return client.post(path, data={**form_fields(page.text), **changes})


def sign_up(client: httpx.Client, email: str, **fields: str) -> httpx.Response:
    """Fill the sign-up form on / with an address and alerts, and press Subscribe."""
    return submit(client, "/", email=email, action="subscribe", **fields)


def subscribe(site: WebSite, client: httpx.Client, email: str, **fields: str) -> str:
    """Sign up and confirm from the mail; return the manage page's path."""
    assert sign_up(client, email, **fields).status_code == 200
    confirmed = client.get(site.link_in(site.mails_to(email)[-1], "confirm"))
    assert confirmed.status_code == 200, confirmed.text
    link = BeautifulSoup(confirmed.text, "html.parser").select_one("a.button")
    assert link is not None
    return str(link["href"]).removeprefix(site.url)


def write_config(
    directory: Path,
    base_url: str,
    smtp_port: int,
    smtp_options: dict[str, Any] | None = None,
    **settings: Any,
) -> Path:
    """A config file for the app: store in `directory`, mail through the test SMTP server."""
    config = {
        "database": str(directory / "paperbot.db"),
        "outbox": str(directory / "outbox"),
        "base_url": base_url,
        "smtp": {
            "host": HOST,
            "port": smtp_port,
            "security": "none",
            "from": "paperbot <bot@example.org>",
            **(smtp_options or {}),
        },
        **settings,
    }
    path = directory / "paperbot.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def web_site_factory(
    tmp_path: Path, smtp_server: SmtpTestServer
) -> Iterator[Callable[..., WebSite]]:
    """`factory(limits=, confirm_max_age=, directory=, **config_keys)` -> a running WebSite.

    Two sites made with the same `directory` share one store (an app restarted).
    """
    sites: list[WebSite] = []

    def factory(
        *,
        limits: RateLimits | None = None,
        confirm_max_age: timedelta | None = None,
        directory: Path | None = None,
        **settings: Any,
    ) -> WebSite:
        directory = directory or tmp_path / f"site{len(sites)}"
        directory.mkdir(exist_ok=True)
        holder: dict[str, Path] = {}

        def make_app(url: str) -> Any:
            holder["config"] = write_config(directory, url, smtp_server.port, **settings)
            config = load_config(holder["config"])
            return create_app(config, secret=SECRET, limits=limits, confirm_max_age=confirm_max_age)

        server = AppServer(make_app).start()
        site = WebSite(server, holder["config"], smtp_server)
        sites.append(site)
        return site

    yield factory
    for site in sites:
        site.stop()


@pytest.fixture
def web_site(web_site_factory: Callable[..., WebSite]) -> WebSite:
    """The web app with default limits on a fresh store."""
    return web_site_factory()
