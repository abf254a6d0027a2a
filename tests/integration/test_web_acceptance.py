"""End to end with a scripted client: sign up on the web, confirm from the mail, get a digest
from `paperbot once`, unsubscribe with a bare RFC 8058 POST, and get nothing after."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage
from xml.sax.saxutils import escape

import httpx
import pytest

from bot.cli import main
from bot.config.settings import SmtpSettings
from tests.httpserver import LocalHTTPServer
from tests.webapp import SECRET, WebSite, body_text, form_fields, page_title

ADA = "ada@example.org"
CONTROL = "control@example.org"


def rss(*items: tuple[str, str]) -> str:
    """An RSS 2.0 feed of (arXiv id, title) items."""
    entries = "".join(
        f"<item><title>{escape(title)}</title>"
        f"<link>https://arxiv.org/abs/{arxiv_id}</link>"
        f"<description>{escape(title)}: an abstract.</description></item>"
        for arxiv_id, title in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Papers</title><link>https://example.org/</link>{entries}</channel></rss>"
    )


def digests(site: WebSite, address: str) -> list[EmailMessage]:
    """The digests (not the sign-up mails) the address received."""
    return [m for m in site.mails_to(address) if "matching your alerts" in str(m["Subject"])]


def unsubscribe_url(site: WebSite, digest: EmailMessage) -> str:
    """The web link of the digest's List-Unsubscribe header, else the one in its text."""
    header = str(digest.get("List-Unsubscribe", ""))
    found = re.search(r"<(https?://[^>]+/unsubscribe/[^>]+)>", header)
    return found.group(1) if found else site.link_in(digest, "unsubscribe")


@pytest.fixture
def site(
    web_site_factory: Callable[..., WebSite],
    http_server: LocalHTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> WebSite:
    """The web app and `paperbot once` on one config: a feed, a config-file control subscriber."""
    monkeypatch.setenv("PAPERBOT_SECRET_KEY", SECRET)  # `once` signs digest links with it
    http_server.route(
        "/feed.xml",
        body=rss(("2501.00001", "Diffusion models for proteins"), ("2501.00002", "Graph kernels")),
        content_type="application/rss+xml",
    )
    return web_site_factory(
        sources=[{"name": "feed", "kind": "rss", "url": http_server.url("/feed.xml")}],
        subscribers=[{"email": CONTROL, "keywords": ["diffusion"]}],
        fetch={"timeout": 5, "retries": 0, "backoff": 0},
        # no in-run retries of a dead mail server, where this version has them
        smtp_options={k: 0 for k in ("retries", "retry_delay") if k in SmtpSettings.model_fields},
    )


def scripted_signup(site: WebSite, email: str) -> None:
    """What a script does: read the form, fill it, post it, follow the mailed link."""
    with httpx.Client(base_url=site.url) as client:
        fields = form_fields(client.get("/").text)
        fields.update(email=email, keywords="diffusion", action="subscribe")
        answer = client.post("/", data=fields)
        assert page_title(answer.text) == "Check your inbox"
        [mail] = site.mails_to(email)
        assert client.get(site.link_in(mail, "confirm")).status_code == 200


def test_signup_confirm_digest_unsubscribe_then_nothing(
    site: WebSite, http_server: LocalHTTPServer
) -> None:
    scripted_signup(site, ADA)
    assert main(["--config", str(site.config_path), "once"]) == 0
    [digest] = digests(site, ADA)
    assert "Diffusion models for proteins" in body_text(digest)
    assert "Graph kernels" not in body_text(digest)

    answer = httpx.post(unsubscribe_url(site, digest), data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200

    http_server.route(
        "/feed.xml",
        body=rss(("2501.00003", "Diffusion for the weather"), ("2501.00001", "Diffusion")),
        content_type="application/rss+xml",
    )
    assert main(["--config", str(site.config_path), "once"]) == 0
    assert len(digests(site, CONTROL)) == 2, "there was something new to send"
    assert len(digests(site, ADA)) == 1, "nothing after the unsubscribe"


def test_a_digest_waiting_in_the_outbox_is_never_sent_after_unsubscribing(
    site: WebSite,
) -> None:
    scripted_signup(site, ADA)
    site.smtp.stop()
    assert main(["--config", str(site.config_path), "once"]) == 1, "mail server down"
    site.smtp.start()
    with site.store() as store:
        assert {d.subscriber.email for d in store.outbox.pending()} == {ADA, CONTROL}
    with httpx.Client(base_url=site.url) as client:
        fields = {**form_fields(client.get("/link").text), "email": ADA}
        client.post("/link", data=fields)
    link = site.link_in(site.mails_to(ADA)[-1], "unsubscribe")
    assert httpx.post(link, data={"List-Unsubscribe": "One-Click"}).status_code == 200

    assert main(["--config", str(site.config_path), "once"]) == 0
    assert len(digests(site, CONTROL)) == 1
    assert digests(site, ADA) == []
