"""A held-out hostile world for the web app: odd query strings and a subscriber with
thousands of matches, on the real app served by uvicorn over a real store."""

from __future__ import annotations

import pytest

from tests.integration.test_web_matches import diffusion_papers, listed_titles, match_into_digest
from tests.webapp import WebSite, form_fields, subscribe

ADA = "ada@example.org"


@pytest.mark.parametrize("page", ["²", "١", "-5", "x", "1e3", "", "9" * 50, "1000000000"])
def test_any_page_number_in_the_query_string_gets_a_page(web_site: WebSite, page: str) -> None:
    # hand-made hostile query strings: a superscript two is a digit to str.isdigit, and
    # int() refused it: a 500 page
    client = web_site.client()
    manage = subscribe(web_site, client, ADA, keywords="diffusion")
    with web_site.store() as store:
        store.outbox.mark_sent(match_into_digest(web_site, diffusion_papers(3)).id)
    answer = client.get(f"{manage}/matches", params={"page": page})
    assert answer.status_code == 200
    assert len(listed_titles(answer.text)) == 3


def test_ten_thousand_matches_come_back_as_pages(web_site: WebSite) -> None:
    client = web_site.client()
    manage = subscribe(web_site, client, ADA, keywords="diffusion")
    for start in range(0, 10_000, 2_000):
        with web_site.store() as store:
            store.outbox.mark_sent(match_into_digest(web_site, diffusion_papers(2_000, start)).id)
    first = client.get(f"{manage}/matches", timeout=60)
    last = client.get(f"{manage}/matches", params={"page": "999999"}, timeout=60)
    assert first.status_code == last.status_code == 200
    assert len(listed_titles(first.text)) == 100
    assert listed_titles(first.text) != listed_titles(last.text)


def test_a_mail_server_that_never_says_goodbye_does_not_hold_the_visitor(
    web_site: WebSite,
) -> None:
    # the confirmation is accepted at once; QUIT is never answered. The page waited out a
    # whole smtp.timeout (30 s) for that courtesy; the client gives up after 20 s here
    web_site.smtp.stall("QUIT")
    client = web_site.client(timeout=20)  # closed with the site
    page = client.get("/")
    answer = client.post(
        "/",
        data={
            **form_fields(page.text),
            "email": ADA,
            "keywords": "grokking",
            "action": "subscribe",
        },
    )
    assert answer.status_code == 200
    assert len(web_site.mails_to(ADA)) == 1
