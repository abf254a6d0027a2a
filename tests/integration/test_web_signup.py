"""Sign-up on the web: the form, double opt-in, the stored cadence, and no enumeration."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from bs4 import BeautifulSoup

from tests.webapp import (
    WebSite,
    body_text,
    form_fields,
    page_title,
    paper,
    record,
    sign_up,
    submit,
)

ADA = "ada@example.org"


def test_signup_form_is_on_the_front_page_labelled_and_phone_ready(web_site: WebSite) -> None:
    page = web_site.client().get("/")
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    form = soup.select_one("form")
    assert form is not None
    assert form.get("method") == "post"
    email = form.select_one("input[name=email]")
    assert email is not None
    assert email.get("type") == "email"
    keywords = form.select_one("[name=keywords]")
    assert keywords is not None
    assert soup.select_one("label[for=keywords]").get_text(strip=True) == "Keywords"
    for name in ("authors", "categories", "frequency", "hour", "timezone"):
        assert form.select_one(f"[name={name}]") is not None, name
    # every control a person fills has a label tied to it (the honeypot is hidden from them)
    for control in form.select("input:not([type=hidden]), textarea, select"):
        if control.find_parent(class_="hp"):
            continue
        labelled = soup.select_one(f"label[for={control['id']}]") or control.find_parent("label")
        assert labelled is not None, f"{control['name']} has no label"
    viewport = soup.select_one("meta[name=viewport]")
    assert viewport is not None
    assert "width=device-width" in str(viewport["content"])
    assert soup.html is not None
    assert soup.html.get("lang") == "en"


def test_pages_load_nothing_from_elsewhere(web_site: WebSite) -> None:
    client = web_site.client()
    for path in ("/", "/link"):
        soup = BeautifulSoup(client.get(path).text, "html.parser")
        tags = soup.select("[src], link[href]")
        assert tags, f"{path} has its stylesheet and script"
        for tag in tags:
            url = str(tag.get("src") or tag.get("href"))
            assert not urlsplit(url).netloc, f"{path} loads {url}"
            asset = client.get(url)
            assert asset.status_code == 200, url
    headers = client.get("/").headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


def test_signup_is_pending_until_the_mailed_link_is_opened(web_site: WebSite) -> None:
    client = web_site.client()
    answer = sign_up(client, ADA, keywords="diffusion\ngrokking", authors="Guillaume Lajoie")
    assert answer.status_code == 200
    assert page_title(answer.text) == "Check your inbox"
    with web_site.store() as store:
        record = store.subscribers.find(ADA)
        assert record is not None
        assert record.subscriber.status == "pending"
        assert record.subscriber.origin == "web"
        assert store.subscribers.active() == [], "nothing goes to an unconfirmed address"

    [mail] = web_site.mails_to(ADA)
    assert "Confirm" in str(mail["Subject"])
    assert "keyword: diffusion" in body_text(mail)
    confirmed = client.get(web_site.link_in(mail, "confirm"))
    assert confirmed.status_code == 200
    assert page_title(confirmed.text) == "You are subscribed"
    with web_site.store() as store:
        [active] = store.subscribers.active()
    assert active.email == ADA
    assert active.keywords == ("diffusion", "grokking")
    assert active.authors == ("Guillaume Lajoie",)


def test_confirming_twice_is_harmless(web_site: WebSite) -> None:
    client = web_site.client()
    sign_up(client, ADA, keywords="diffusion")
    link = web_site.link_in(web_site.mails_to(ADA)[0], "confirm")
    assert client.get(link).status_code == 200
    again = client.get(link)
    assert again.status_code == 200, "a mail scanner opening it first does not lock it"
    assert page_title(again.text) == "You are subscribed"
    with web_site.store() as store:
        assert [s.email for s in store.subscribers.active()] == [ADA]


def test_cadence_fields_are_stored_in_the_subscriber_columns(web_site: WebSite) -> None:
    client = web_site.client()
    sign_up(
        client,
        ADA,
        keywords="diffusion",
        categories="cs.LG, stat.ML",
        frequency="weekly",
        weekday="2",
        hour="7",
        timezone="Europe/Paris",
    )
    client.get(web_site.link_in(web_site.mails_to(ADA)[0], "confirm"))
    with web_site.store() as store:
        [sub] = store.subscribers.active()
    assert (sub.frequency, sub.weekday, sub.send_at, sub.timezone) == (
        "weekly",
        2,
        "07:00",
        "Europe/Paris",
    )
    assert sub.categories == ("cs.LG", "stat.ML")


def test_default_cadence_is_as_soon_as_papers_arrive(web_site: WebSite) -> None:
    client = web_site.client()
    defaults = form_fields(client.get("/").text)
    assert defaults["hour"] == ""
    sign_up(client, ADA, keywords="diffusion")
    with web_site.store() as store:
        record = store.subscribers.find(ADA)
    assert record is not None
    assert (record.subscriber.frequency, record.subscriber.send_at) == ("daily", None)


def test_invalid_query_is_shown_next_to_the_field_with_its_position(web_site: WebSite) -> None:
    client = web_site.client()
    answer = sign_up(client, ADA, keywords='diffusion\n"neural collapse')
    assert answer.status_code == 400
    soup = BeautifulSoup(answer.text, "html.parser")
    errors = soup.select_one("#keywords-error")
    assert errors is not None
    assert "line 2, column 1" in errors.get_text(" ")
    assert "quote" in errors.get_text(" ")
    keywords = soup.select_one("textarea[name=keywords]")
    assert keywords is not None
    assert keywords.get("aria-invalid") == "true"
    assert keywords.get_text() == 'diffusion\n"neural collapse', "what was typed is kept"
    assert web_site.mails_to(ADA) == []


def test_bad_email_address_is_refused_with_nothing_sent(web_site: WebSite) -> None:
    client = web_site.client()
    for bad in ("ada", "ada@", "ada@example..org", "a" * 300 + "@example.org"):
        answer = sign_up(client, bad, keywords="diffusion")
        assert answer.status_code == 400, bad
        assert "#email" in answer.text, "the error summary links to the field"
    assert web_site.smtp.messages == []


def test_alerts_are_required(web_site: WebSite) -> None:
    answer = sign_up(web_site.client(), ADA)
    assert answer.status_code == 400
    assert "at least one keyword or one author" in answer.text
    assert web_site.mails_to(ADA) == []


def test_signup_answer_never_reveals_whether_the_address_is_subscribed(
    web_site_factory: Callable[..., WebSite],
) -> None:
    site = web_site_factory(subscribers=[{"email": "config@example.org", "keywords": ["grokking"]}])
    client = site.client()
    with site.store() as store:
        store.subscribers.sync_config(site.config.subscribers)
    # an active web subscriber, a pending one, a config-file one, and a stranger
    sign_up(client, "active@example.org", keywords="diffusion")
    client.get(site.link_in(site.mails_to("active@example.org")[0], "confirm"))
    sign_up(client, "pending@example.org", keywords="diffusion")
    before = len(site.smtp.messages)

    answers = {
        email: sign_up(client, email, keywords="diffusion")
        for email in (
            "active@example.org",
            "pending@example.org",
            "config@example.org",
            "stranger@example.org",
        )
    }
    pages = {
        email: (a.status_code, a.text.replace(email, "EMAIL"), sorted(a.headers))
        for email, a in answers.items()
    }
    assert len(set(map(repr, pages.values()))) == 1, "one page whatever the address"
    assert len(site.smtp.messages) == before + 4, "one mail each, whatever the address"
    for email in answers:
        assert len(site.mails_to(email)) >= 1
    [already] = site.mails_to("active@example.org")[-1:]
    assert "already subscribed" in body_text(already)
    assert site.link_in(already, "manage")


def test_resubmitting_an_active_address_changes_nothing(web_site: WebSite) -> None:
    client = web_site.client()
    sign_up(client, ADA, keywords="diffusion")
    client.get(web_site.link_in(web_site.mails_to(ADA)[0], "confirm"))
    sign_up(client, ADA, keywords="something else entirely")
    with web_site.store() as store:
        [sub] = store.subscribers.active()
    assert sub.keywords == ("diffusion",), "a stranger cannot rewrite someone's alerts"


def test_preview_button_on_the_signup_page_sends_nothing(web_site: WebSite) -> None:
    record(
        web_site,
        paper("2501.00001", "Diffusion models for proteins"),
        paper("2501.00002", "A survey of graph kernels"),
    )
    client = web_site.client()
    answer = submit(client, "/", email=ADA, keywords="diffusion", action="preview")
    assert answer.status_code == 200
    assert page_title(answer.text).startswith("New papers")
    preview = BeautifulSoup(answer.text, "html.parser").select_one("#preview")
    assert preview is not None
    text = preview.get_text(" ", strip=True)
    assert "Diffusion models for proteins" in text
    assert "graph kernels" not in text
    assert "keyword: diffusion" in text
    assert form_fields(answer.text)["email"] == ADA, "the form keeps what was typed"
    assert web_site.smtp.messages == []
    with web_site.store() as store:
        assert store.subscribers.find(ADA) is None
