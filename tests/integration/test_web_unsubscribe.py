"""Unsubscribe: a GET shows one button, an RFC 8058 POST needs nothing but the link."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from bs4 import BeautifulSoup

from bot.models import Match, Reason
from bot.store.store import Store
from tests.webapp import WebSite, page_title, paper, record, submit, subscribe

ADA = "ada@example.org"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def links(site: WebSite, client: httpx.Client, email: str = ADA) -> tuple[str, str]:
    """Subscribe `email`; return its (manage, unsubscribe) links from the link mail."""
    subscribe(site, client, email, keywords="diffusion")
    submit(client, "/link", email=email)
    mail = site.mails_to(email)[-1]
    return site.link_in(mail, "manage"), site.link_in(mail, "unsubscribe")


def status(site: WebSite, email: str = ADA) -> str:
    with site.store() as store:
        found = store.subscribers.find(email)
    assert found is not None
    return found.subscriber.status


def test_get_shows_one_button_and_changes_nothing(web_site: WebSite) -> None:
    _, unsubscribe = links(web_site, web_site.client())
    page = httpx.get(unsubscribe)
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    [form] = soup.select("form")
    assert form.get("method") == "post"
    assert [b.get_text(strip=True) for b in form.select("button")] == ["Unsubscribe"]
    assert status(web_site) == "active", "a link scanner's GET unsubscribes nobody"


def test_the_button_unsubscribes(web_site: WebSite) -> None:
    _, unsubscribe = links(web_site, web_site.client())
    browser = web_site.client()
    page = browser.get(unsubscribe)
    form = BeautifulSoup(page.text, "html.parser").select_one("form")
    assert form is not None
    answer = browser.post(unsubscribe, data={})
    assert answer.status_code == 200
    assert page_title(answer.text) == "You are unsubscribed"
    assert status(web_site) == "unsubscribed"


def test_rfc8058_one_click_post_needs_no_cookie_and_no_form(web_site: WebSite) -> None:
    _, unsubscribe = links(web_site, web_site.client())
    answer = httpx.post(unsubscribe, data=ONE_CLICK)
    assert answer.status_code == 200
    assert status(web_site) == "unsubscribed"
    with web_site.store() as store:
        assert store.subscribers.active() == []


def test_one_click_post_as_multipart_or_empty_works_too(web_site: WebSite) -> None:
    client = web_site.client()
    _, first = links(web_site, client, ADA)
    _, second = links(web_site, client, "bob@example.org")
    assert httpx.post(first, files={"List-Unsubscribe": (None, "One-Click")}).status_code == 200
    assert httpx.post(second).status_code == 200
    assert status(web_site, ADA) == status(web_site, "bob@example.org") == "unsubscribed"


def test_unsubscribing_rotates_every_link(web_site: WebSite) -> None:
    manage, unsubscribe = links(web_site, web_site.client())
    assert httpx.post(unsubscribe, data=ONE_CLICK).status_code == 200
    assert httpx.get(manage).status_code == 410, "the old manage link is dead"
    again = httpx.post(unsubscribe, data=ONE_CLICK)
    assert again.status_code == 200, "a mail client retrying the POST is told it is done"
    assert page_title(httpx.get(unsubscribe).text) == "You are unsubscribed"


def test_old_links_do_not_touch_a_new_subscription(web_site: WebSite) -> None:
    client = web_site.client()
    old_manage, old_unsubscribe = links(web_site, client)
    httpx.post(old_unsubscribe, data=ONE_CLICK)
    subscribe(web_site, client, ADA, keywords="grokking")
    assert status(web_site) == "active"
    assert httpx.post(old_unsubscribe, data=ONE_CLICK).status_code == 410
    assert httpx.get(old_manage).status_code == 410
    assert status(web_site) == "active"
    with web_site.store() as store:
        [sub] = store.subscribers.active()
    assert sub.keywords == ("grokking",)


def test_unsubscribing_drops_digests_already_waiting(web_site: WebSite) -> None:
    _, unsubscribe = links(web_site, web_site.client())
    record(web_site, paper("2501.00001", "Diffusion models for proteins"))
    with web_site.store() as store:
        store.matches.add({ADA: [Match("2501.00001", (Reason("keyword", "diffusion"),))]})
        assert store.outbox.create("example.org") == 1
        assert len(store.outbox.pending()) == 1
    assert httpx.post(unsubscribe, data=ONE_CLICK).status_code == 200
    with web_site.store() as store:
        assert store.outbox.pending() == []
        statuses = store.db.execute("SELECT status FROM digests").fetchall()
    assert statuses == [("dropped",)]


def test_a_config_file_subscriber_can_unsubscribe_and_it_holds(
    web_site_factory: Callable[..., WebSite],
) -> None:
    site = web_site_factory(subscribers=[{"email": ADA, "keywords": ["grokking"]}])
    with site.store() as store:
        store.subscribers.sync_config(site.config.subscribers)
    client = site.client()
    submit(client, "/link", email=ADA)
    unsubscribe = site.link_in(site.mails_to(ADA)[-1], "unsubscribe")
    assert httpx.post(unsubscribe, data=ONE_CLICK).status_code == 200
    with site.store() as store:
        store.subscribers.sync_config(site.config.subscribers)  # what every run does
        store.subscribers.sync_config(site.config.subscribers)
        assert store.subscribers.active() == [], "the person's unsubscribe beats the file"


def test_config_subscriber_can_come_back_through_the_signup_form(
    web_site_factory: Callable[..., WebSite],
) -> None:
    site = web_site_factory(subscribers=[{"email": ADA, "keywords": ["grokking"]}])
    with site.store() as store:
        store.subscribers.sync_config(site.config.subscribers)
        record_ = store.subscribers.find(ADA)
        assert record_ is not None
        assert store.subscribers.unsubscribe(ADA, record_.token_version)
    subscribe(site, site.client(), ADA, keywords="something else")
    with site.store() as store:
        store.subscribers.sync_config(site.config.subscribers)
        [sub] = store.subscribers.active()
    assert sub.keywords == ("grokking",), "the file still decides the alerts"


def test_pending_signup_waits_for_the_link_even_across_runs(web_site: WebSite) -> None:
    client = web_site.client()
    submit(client, "/", email=ADA, keywords="diffusion", action="subscribe")
    with web_site.store() as store:
        store.subscribers.sync_config([])
        assert store.subscribers.active() == []
        assert_status(store, "pending")


def assert_status(store: Store, expected: str) -> None:
    found = store.subscribers.find(ADA)
    assert found is not None
    assert found.subscriber.status == expected
