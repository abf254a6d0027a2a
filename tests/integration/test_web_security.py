"""CSRF, honeypot, rate limits, body size and escaping: what keeps a public form safe."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from bs4 import BeautifulSoup

from bot.web.limits import RateLimits
from tests.webapp import (
    SIGNUP_DEFAULTS,
    WebSite,
    form_fields,
    page_title,
    paper,
    record,
    sign_up,
    submit,
    subscribe,
)

ADA = "ada@example.org"
SCRIPT_TITLE = "<script>alert(1)</script> Diffusion done right"


def manage_path(site: WebSite, client: httpx.Client, email: str = ADA) -> str:
    """Sign `email` up, confirm, and return the manage page's path."""
    return subscribe(site, client, email, keywords="diffusion")


# --- CSRF ---------------------------------------------------------------------------------


def test_every_form_post_without_a_csrf_token_is_refused(web_site: WebSite) -> None:
    client = web_site.client()
    path = manage_path(web_site, client)
    mails = len(web_site.smtp.messages)
    posts = {
        "/": {"email": "bob@example.org", "keywords": "x", "action": "subscribe"},
        "/link": {"email": ADA},
        path: {"keywords": "changed", "action": "save", **SIGNUP_DEFAULTS},
        "/preview": {"keywords": "diffusion"},
    }
    for target, data in posts.items():
        for cookies in (client.cookies, None):  # with the visitor's cookie, and with none
            answer = httpx.post(web_site.url + target, data=data, cookies=cookies)
            assert answer.status_code == 403, target
            assert page_title(answer.text) == "This form has expired"
    assert len(web_site.smtp.messages) == mails, "no mail went out"
    with web_site.store() as store:
        [sub] = store.subscribers.active()
        assert store.subscribers.find("bob@example.org") is None
    assert sub.keywords == ("diffusion",)


def test_forged_csrf_tokens_are_refused(web_site: WebSite) -> None:
    victim, attacker = web_site.client(), web_site.client()
    path = manage_path(web_site, victim)
    # the attacker's own valid token does not go with the victim's cookie
    attackers_token = form_fields(attacker.get("/").text)["csrf_token"]
    fields = form_fields(victim.get(path).text)
    for token in (attackers_token, fields["csrf_token"] + "x", "", "a.b.c"):
        forged = {**fields, "csrf_token": token, "keywords": "changed", "action": "save"}
        assert victim.post(path, data=forged).status_code == 403
    with web_site.store() as store:
        [sub] = store.subscribers.active()
    assert sub.keywords == ("diffusion",)


def test_a_post_from_another_site_is_refused_even_with_a_valid_token(web_site: WebSite) -> None:
    client = web_site.client()
    fields = {**form_fields(client.get("/").text), "email": ADA, "keywords": "diffusion"}
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        assert client.post("/", data=fields, headers=headers).status_code == 403
    assert web_site.smtp.messages == []
    same_site = client.post("/", data=fields, headers={"origin": web_site.url})
    assert same_site.status_code == 200


# --- honeypot -----------------------------------------------------------------------------


def test_a_filled_honeypot_looks_like_success_but_does_nothing(web_site: WebSite) -> None:
    client = web_site.client()
    bot = sign_up(client, ADA, keywords="diffusion", website="http://spam.example")
    person = sign_up(client, "bob@example.org", keywords="diffusion")
    assert bot.status_code == person.status_code == 200
    assert page_title(bot.text) == page_title(person.text) == "Check your inbox"
    assert web_site.mails_to(ADA) == []
    with web_site.store() as store:
        assert store.subscribers.find(ADA) is None
    link = submit(client, "/link", email=ADA, website="spam")
    assert link.status_code == 200
    assert web_site.mails_to(ADA) == []


def test_the_honeypot_is_hidden_from_people(web_site: WebSite) -> None:
    soup = BeautifulSoup(web_site.client().get("/").text, "html.parser")
    trap = soup.select_one("input[name=website]")
    assert trap is not None
    wrapper = trap.find_parent(class_="hp")
    assert wrapper is not None
    assert wrapper.get("aria-hidden") == "true"
    assert trap.get("tabindex") == "-1"
    assert trap.get("autocomplete") == "off"


# --- rate limits --------------------------------------------------------------------------


def test_signups_are_limited_per_client_address(web_site_factory: Callable[..., WebSite]) -> None:
    site = web_site_factory(limits=RateLimits(mails_per_ip=3, mails_per_address=10))
    client = site.client()
    answers = [sign_up(client, f"user{i}@example.org", keywords="x") for i in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[3].headers["retry-after"] == "3600"
    assert page_title(answers[3].text) == "Too many requests"
    assert len(site.smtp.messages) == 3
    # another client (behind the trusted local proxy) is not held back
    other = sign_up(client, "user9@example.org", keywords="x")
    assert other.status_code == 429
    elsewhere = site.client(headers={"x-forwarded-for": "203.0.113.7"})
    assert sign_up(elsewhere, "user9@example.org", keywords="x").status_code == 200


def test_ipv6_clients_are_counted_per_slash_64(web_site_factory: Callable[..., WebSite]) -> None:
    site = web_site_factory(limits=RateLimits(mails_per_ip=2, mails_per_address=10))
    first = site.client(headers={"x-forwarded-for": "2001:db8:1:2::1"})
    second = site.client(headers={"x-forwarded-for": "2001:db8:1:2::ffff"})
    assert sign_up(first, "a@example.org", keywords="x").status_code == 200
    assert sign_up(second, "b@example.org", keywords="x").status_code == 200
    assert sign_up(second, "c@example.org", keywords="x").status_code == 429
    third = site.client(headers={"x-forwarded-for": "2001:db8:1:3::1"})
    assert sign_up(third, "c@example.org", keywords="x").status_code == 200


def test_mails_to_one_address_are_limited_whoever_asks(
    web_site_factory: Callable[..., WebSite],
) -> None:
    site = web_site_factory(limits=RateLimits(mails_per_ip=100, mails_per_address=2))
    clients = [site.client(headers={"x-forwarded-for": f"198.51.100.{i}"}) for i in range(4)]
    assert sign_up(clients[0], ADA, keywords="x").status_code == 200
    assert submit(clients[1], "/link", email=ADA).status_code == 200
    assert sign_up(clients[2], ADA, keywords="x").status_code == 429
    assert submit(clients[3], "/link", email="ADA@example.org").status_code == 429
    assert len(site.mails_to(ADA)) == 2


def test_a_flood_gets_the_same_answer_for_subscribed_and_unknown_addresses(
    web_site_factory: Callable[..., WebSite],
) -> None:
    site = web_site_factory(limits=RateLimits(mails_per_ip=100, mails_per_address=1))
    client = site.client()
    sign_up(client, ADA, keywords="x")
    client.get(site.link_in(site.mails_to(ADA)[0], "confirm"))
    floods = {}
    for email in (ADA, "stranger@example.org"):
        answers = [submit(client, "/link", email=email) for _ in range(3)]
        floods[email] = [(a.status_code, a.text.replace(email, "EMAIL")) for a in answers]
    assert floods[ADA][1:] == floods["stranger@example.org"][1:]
    assert [status for status, _ in floods[ADA]] == [429, 429, 429]
    assert [status for status, _ in floods["stranger@example.org"]] == [200, 429, 429]


def test_rate_limits_survive_a_restart(
    web_site_factory: Callable[..., WebSite], tmp_path: pytest.TempPathFactory
) -> None:
    limits = RateLimits(mails_per_ip=2, mails_per_address=10)
    first = web_site_factory(limits=limits, directory=tmp_path / "shared")
    for i in range(2):
        assert sign_up(first.client(), f"u{i}@example.org", keywords="x").status_code == 200
    first.stop()
    again = web_site_factory(limits=limits, directory=tmp_path / "shared")
    assert sign_up(again.client(), "u3@example.org", keywords="x").status_code == 429


def test_previews_are_limited_per_client(web_site_factory: Callable[..., WebSite]) -> None:
    site = web_site_factory(limits=RateLimits(previews_per_ip=2))
    client = site.client()
    fields = {**form_fields(client.get("/").text), "keywords": "diffusion"}
    statuses = [client.post("/preview", data=fields).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


# --- size and escaping --------------------------------------------------------------------


def test_an_oversized_body_is_refused(web_site: WebSite) -> None:
    client = web_site.client()
    fields = form_fields(client.get("/").text)
    answer = client.post("/", data={**fields, "email": ADA, "keywords": "x" * 100_000})
    assert answer.status_code == 413
    assert page_title(answer.text) == "Too much data"
    assert web_site.smtp.messages == []


def test_a_script_in_a_paper_title_is_shown_as_text_everywhere(web_site: WebSite) -> None:
    record(
        web_site,
        paper(
            "2501.00666",
            SCRIPT_TITLE,
            abstract="<img src=x onerror=alert(2)> diffusion",
            authors=("<b>Mallory</b>",),
        ),
    )
    client = web_site.client()
    path = manage_path(web_site, client)
    pages = {
        "signup preview": submit(client, "/", keywords="diffusion", action="preview").text,
        "manage page": client.get(path).text,
        "live preview": client.post(
            "/preview", data={**form_fields(client.get(path).text), "keywords": "diffusion"}
        ).text,
    }
    for where, html in pages.items():
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, where
        assert "<script>alert" not in html, where
        assert "<b>Mallory" not in html, where
        assert "onerror" not in html.replace("&lt;img", ""), where
        soup = BeautifulSoup(html, "html.parser")
        assert not [s for s in soup.find_all("script") if not s.get("src")], where
        assert SCRIPT_TITLE.split(" D")[0] in soup.get_text(), f"{where}: shown as text"


def test_what_a_visitor_typed_is_escaped_when_shown_back(web_site: WebSite) -> None:
    client = web_site.client()
    typed = '"><script>alert(3)</script>'
    answer = sign_up(client, typed + "@example.org", keywords=typed, authors=typed)
    assert answer.status_code == 400
    assert "<script>alert(3)" not in answer.text
    assert form_fields(answer.text)["email"] == typed + "@example.org"
