"""Managing alerts: the page, the preview with reasons, saving, inline errors, the config file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
from bs4 import BeautifulSoup

from bot.mail.links import make_token
from bot.store.rows import utcnow
from tests.webapp import (
    SECRET,
    WebSite,
    body_text,
    form_fields,
    page_title,
    paper,
    record,
    submit,
    subscribe,
)

ADA = "ada@example.org"


def preview_text(html: str) -> str:
    """The text of the page's preview section."""
    preview = BeautifulSoup(html, "html.parser").select_one("#preview")
    assert preview is not None
    return preview.get_text(" ", strip=True)


def some_papers(site: WebSite) -> None:
    """Two recent papers (diffusion; graph networks) and an old diffusion one."""
    record(
        site,
        paper("2501.00001", "Diffusion models for proteins", "We study denoising."),
        paper(
            "2501.00002",
            "Message passing in graph neural networks",
            "Graph neural networks and molecules.",
            authors=("Guillaume Lajoie", "Ada Lovelace"),
        ),
    )
    record(site, paper("2401.00003", "Old diffusion news"), now=utcnow() - timedelta(days=9))


def test_manage_page_shows_the_alerts_and_what_they_matched_lately(web_site: WebSite) -> None:
    some_papers(web_site)
    client = web_site.client()
    path = subscribe(web_site, client, ADA, keywords="diffusion", categories="cs.LG")
    page = client.get(path)
    assert page.status_code == 200
    assert page_title(page.text) == "Your alerts"
    fields = form_fields(page.text)
    assert fields["keywords"] == "diffusion"
    assert fields["categories"] == "cs.LG"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "same-origin", "the token stays on this site"


def test_preview_lists_the_last_seven_days_matches_with_why(web_site: WebSite) -> None:
    some_papers(web_site)
    client = web_site.client()
    path = subscribe(web_site, client, ADA, keywords="diffusion")
    text = preview_text(client.get(path).text)
    assert "Diffusion models for proteins" in text
    assert "keyword: diffusion" in text
    assert "graph neural" not in text
    assert "Old diffusion news" not in text, "older than seven days"
    highlighted = BeautifulSoup(client.get(path).text, "html.parser").select("#preview mark")
    assert [m.get_text() for m in highlighted] == ["Diffusion"]


def test_preview_button_shows_the_edited_alerts_without_saving(web_site: WebSite) -> None:
    some_papers(web_site)
    client = web_site.client()
    path = subscribe(web_site, client, ADA, keywords="diffusion")
    answer = submit(
        client, path, keywords="graph neural networks", authors="G. Lajoie", action="preview"
    )
    assert answer.status_code == 200
    text = preview_text(answer.text)
    assert "Message passing in graph neural networks" in text
    assert "author: G. Lajoie" in text
    assert "keyword: graph neural networks" in text
    assert "Diffusion models" not in text
    assert form_fields(answer.text)["keywords"] == "graph neural networks"
    with web_site.store() as store:
        [sub] = store.subscribers.active()
    assert sub.keywords == ("diffusion",), "a preview saves nothing"


def test_live_preview_endpoint_returns_the_list_alone(web_site: WebSite) -> None:
    some_papers(web_site)
    client = web_site.client()
    fields = form_fields(client.get("/").text)
    answer = client.post("/preview", data={**fields, "keywords": "graph neural networks"})
    assert answer.status_code == 200
    assert "<html" not in answer.text
    text = BeautifulSoup(answer.text, "html.parser").get_text(" ", strip=True)
    assert "Message passing in graph neural networks" in text
    errors = client.post("/preview", data={**fields, "keywords": "(graph OR"})
    assert errors.status_code == 200
    assert "line 1, column" in errors.text


def test_save_changes_alerts_and_cadence(web_site: WebSite) -> None:
    some_papers(web_site)
    client = web_site.client()
    path = subscribe(web_site, client, ADA, keywords="diffusion")
    answer = submit(
        client,
        path,
        keywords="graph neural networks\ntransform*",
        exclude="survey",
        frequency="weekly",
        weekday="4",
        hour="18",
        timezone="America/New_York",
        action="save",
    )
    assert answer.status_code == 200
    assert "Saved" in answer.text
    assert "Message passing" in preview_text(answer.text)
    with web_site.store() as store:
        [sub] = store.subscribers.active()
    assert sub.keywords == ("graph neural networks", "transform*")
    assert sub.exclude == ("survey",)
    assert (sub.frequency, sub.weekday, sub.send_at, sub.timezone) == (
        "weekly",
        4,
        "18:00",
        "America/New_York",
    )
    assert form_fields(client.get(path).text)["hour"] == "18", "the page shows what is saved"


def test_an_invalid_alert_is_refused_inline_with_its_position(web_site: WebSite) -> None:
    client = web_site.client()
    path = subscribe(web_site, client, ADA, keywords="diffusion")
    answer = submit(client, path, keywords="diffusion\ngraph AND (neural OR", action="save")
    assert answer.status_code == 400
    soup = BeautifulSoup(answer.text, "html.parser")
    error = soup.select_one("#keywords-error")
    assert error is not None
    assert "line 2, column" in error.get_text()
    summary = soup.select_one(".error-summary a[href='#keywords']")
    assert summary is not None
    with web_site.store() as store:
        [sub] = store.subscribers.active()
    assert sub.keywords == ("diffusion",)


def test_email_me_my_link_mails_a_working_manage_link(web_site: WebSite) -> None:
    client = web_site.client()
    subscribe(web_site, client, ADA, keywords="diffusion")
    answer = submit(web_site.client(), "/link", email=ADA)
    assert answer.status_code == 200
    assert page_title(answer.text) == "Check your inbox"
    mail = web_site.mails_to(ADA)[-1]
    manage = web_site.link_in(mail, "manage")
    assert web_site.link_in(mail, "unsubscribe")
    page = httpx.get(manage)
    assert page.status_code == 200
    assert form_fields(page.text)["keywords"] == "diffusion"


def test_email_me_my_link_answers_alike_for_any_address(web_site: WebSite) -> None:
    client = web_site.client()
    subscribe(web_site, client, ADA, keywords="diffusion")
    submit(client, "/", email="pending@example.org", keywords="x", action="subscribe")
    answers = {
        email: submit(client, "/link", email=email)
        for email in (ADA, "pending@example.org", "nobody@example.org")
    }
    pages = {(a.status_code, a.text.replace(e, "EMAIL")) for e, a in answers.items()}
    assert len(pages) == 1, "one page whatever the address"
    assert "manage" in web_site.link_in(web_site.mails_to(ADA)[-1], "manage")
    assert web_site.link_in(web_site.mails_to("pending@example.org")[-1], "confirm")
    [stranger] = web_site.mails_to("nobody@example.org")
    assert "no active subscription" in " ".join(body_text(stranger).split())
    assert "/manage/" not in body_text(stranger)


def test_email_me_my_link_checks_the_address(web_site: WebSite) -> None:
    answer = submit(web_site.client(), "/link", email="not an address")
    assert answer.status_code == 400
    assert web_site.smtp.messages == []


def test_a_config_file_subscriber_sees_that_the_file_wins(
    web_site_factory: Callable[..., WebSite],
) -> None:
    site = web_site_factory(
        subscribers=[{"email": ADA, "keywords": ["grokking"], "authors": ["Y. Bengio"]}]
    )
    with site.store() as store:
        store.subscribers.sync_config(site.config.subscribers)
    client = site.client()
    submit(client, "/link", email=ADA)
    manage = site.link_in(site.mails_to(ADA)[-1], "manage").removeprefix(site.url)
    page = client.get(manage)
    assert page.status_code == 200
    assert "configuration file" in page.text
    assert "the file wins" in page.text
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.select("form") == [], "nothing on the page can change it"
    assert "keyword: grokking" in soup.get_text()

    token = manage.rsplit("/", 1)[1]
    fields = {**form_fields(client.get("/").text), "keywords": "changed", "action": "save"}
    refused = client.post(f"/manage/{token}", data=fields)
    assert refused.status_code == 403
    assert "configuration file" in refused.text
    with site.store() as store:
        store.subscribers.sync_config(site.config.subscribers)
        [sub] = store.subscribers.active()
    assert sub.keywords == ("grokking",)
    assert sub.origin == "config"


def test_manage_link_of_a_pending_signup_lets_them_edit_before_confirming(
    web_site: WebSite,
) -> None:
    client = web_site.client()
    submit(client, "/", email=ADA, keywords="diffusion", action="subscribe")
    page = client.get(f"/manage/{make_token(SECRET, 'manage', ADA)}")
    assert page.status_code == 200
    assert "Not confirmed yet" in page.text
    with web_site.store() as store:
        assert store.subscribers.active() == []


def test_preview_sees_papers_recorded_after_the_app_started(web_site: WebSite) -> None:
    some_papers(web_site)
    client = web_site.client()
    fields = {**form_fields(client.get("/").text), "keywords": "diffusion"}
    first = BeautifulSoup(client.post("/preview", data=fields).text, "html.parser")
    assert "Diffusion models for proteins" in first.get_text(" ", strip=True)
    record(web_site, paper("2501.00009", "Latent diffusion for weather"))
    second = BeautifulSoup(client.post("/preview", data=fields).text, "html.parser")
    assert "Latent diffusion for weather" in second.get_text(" ", strip=True)
