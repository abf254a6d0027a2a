"""Signed links: forged, foreign, expired and rotated tokens get a 4xx page, never a redirect."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from bot.mail.links import make_token
from tests.webapp import (
    SECRET,
    WebSite,
    page_title,
    sign_up,
)

ADA = "ada@example.org"
PATHS = ("confirm", "manage", "unsubscribe")


def assert_refused_page(answer: httpx.Response, status: int) -> None:
    """A 4xx HTML page that says what happened, with nowhere to be sent on to."""
    assert answer.status_code == status, answer.text
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert page_title(answer.text)


def subscribed(site: WebSite, client: httpx.Client) -> None:
    sign_up(client, ADA, keywords="diffusion")
    client.get(site.link_in(site.mails_to(ADA)[0], "confirm"))


def old_token(purpose: str, email: str, age: float) -> str:
    """A token signed with the app's secret `age` seconds ago."""

    class Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age)

    serializer = URLSafeTimedSerializer(SECRET, salt=f"paperbot-{purpose}", signer=Past)
    return str(serializer.dumps([email, 0]))


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "WyJhZGFAZXhhbXBsZS5vcmciLDBd.Zz0000.AAAAAAAAAAAAAAAAAAAAAAAAAAA",
        make_token("another-secret-entirely-xxxxxxxx", "manage", ADA),
    ],
    ids=["garbage", "bad-signature", "other-secret"],
)
def test_forged_tokens_get_a_404_page(web_site: WebSite, token: str) -> None:
    client = web_site.client()
    subscribed(web_site, client)
    for path in PATHS:
        assert_refused_page(client.get(f"/{path}/{token}"), 404)
    for path in ("manage", "unsubscribe"):
        assert_refused_page(httpx.post(f"{web_site.url}/{path}/{token}"), 404)
    with web_site.store() as store:
        assert [s.email for s in store.subscribers.active()] == [ADA], "nothing changed"


def test_a_token_for_one_purpose_does_not_open_another(web_site: WebSite) -> None:
    client = web_site.client()
    subscribed(web_site, client)
    confirm = make_token(SECRET, "confirm", ADA)
    manage = make_token(SECRET, "manage", ADA)
    assert_refused_page(httpx.post(f"{web_site.url}/unsubscribe/{manage}"), 404)
    assert_refused_page(httpx.post(f"{web_site.url}/unsubscribe/{confirm}"), 404)
    assert_refused_page(client.get(f"/manage/{confirm}"), 404)
    with web_site.store() as store:
        assert [s.email for s in store.subscribers.active()] == [ADA]


def test_expired_confirmation_link_gets_a_410_page_and_activates_nothing(
    web_site: WebSite,
) -> None:
    sign_up(web_site.client(), ADA, keywords="diffusion")
    expired = old_token("confirm", ADA, age=49 * 3600)
    answer = web_site.client().get(f"/confirm/{expired}")
    assert_refused_page(answer, 410)
    assert "expired" in page_title(answer.text)
    with web_site.store() as store:
        assert store.subscribers.active() == []
    fresh = old_token("confirm", ADA, age=47 * 3600)
    assert web_site.client().get(f"/confirm/{fresh}").status_code == 200


def test_confirmation_lifetime_is_the_apps_setting(web_site_factory: Any) -> None:
    from datetime import timedelta

    site = web_site_factory(confirm_max_age=timedelta(hours=1))
    sign_up(site.client(), ADA, keywords="diffusion")
    assert "1 hour" in site.mails_to(ADA)[0].get_body().get_content()
    answer = site.client().get(f"/confirm/{old_token('confirm', ADA, age=2 * 3600)}")
    assert_refused_page(answer, 410)


def test_manage_and_unsubscribe_links_never_expire(web_site: WebSite) -> None:
    client = web_site.client()
    subscribed(web_site, client)
    year = 365 * 86400
    assert client.get(f"/manage/{old_token('manage', ADA, age=year)}").status_code == 200
    answer = httpx.post(f"{web_site.url}/unsubscribe/{old_token('unsubscribe', ADA, age=year)}")
    assert answer.status_code == 200


def test_a_valid_token_for_an_unknown_address_is_a_4xx(web_site: WebSite) -> None:
    client = web_site.client()
    for path in PATHS:
        answer = client.get(f"/{path}/{make_token(SECRET, path, 'ghost@example.org')}")
        assert 400 <= answer.status_code < 500
        assert "location" not in answer.headers


def test_unknown_paths_and_methods_get_pages(web_site: WebSite) -> None:
    client = web_site.client()
    assert_refused_page(client.get("/nothing/here"), 404)
    assert_refused_page(client.delete("/"), 405)
    assert_refused_page(client.get("/confirm/"), 404)


def signed(purpose: str, payload: Any) -> str:
    """A token signed with the app's own secret around a payload make_token never writes
    (hand-made: a leaked secret, or a bug in an older version)."""
    return str(URLSafeTimedSerializer(SECRET, salt=f"paperbot-{purpose}").dumps(payload))


@pytest.mark.parametrize(
    "payload",
    [
        [ADA, "x"],
        [ADA, "1"],
        [ADA, 2**70],
        [ADA, -1],
        [ADA, True],
        [ADA, 1.5],
        [ADA, None],
        [None, 0],
        [["nested"], 0],
        ["a" * 300 + "@example.org", 0],
        [ADA],
        [ADA, 0, "extra"],
        {"email": ADA, "version": 0},
        "ada",
        42,
    ],
    ids=lambda payload: repr(payload)[:30],
)
def test_a_correctly_signed_malformed_token_is_a_404_never_a_500(
    web_site: WebSite, payload: Any
) -> None:
    client = web_site.client()
    subscribed(web_site, client)
    for path in PATHS:
        answer = client.get(f"/{path}/{signed(path, payload)}")
        assert_refused_page(answer, 404)
        assert answer.headers["x-frame-options"] == "DENY"
    for path in ("manage", "unsubscribe"):
        assert_refused_page(httpx.post(f"{web_site.url}/{path}/{signed(path, payload)}"), 404)
    with web_site.store() as store:
        assert [s.email for s in store.subscribers.active()] == [ADA], "nothing changed"
