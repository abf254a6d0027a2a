"""The "more/less like this" links of a digest against the real web app: a GET records
nothing (mail scanners fetch every link), the page's POST records, Undo removes it, and a
link that names no subscriber, verdict or paper of this site is a 4xx page."""

from __future__ import annotations

from urllib.parse import urljoin

import httpx
from bs4 import BeautifulSoup

from bot.mail.links import feedback_link, make_token
from tests.webapp import SECRET, WebSite, form_fields, page_title, paper, record, subscribe

ADA = "ada@example.org"
BOB = "bob@example.org"
PAPERS = (
    paper("2501.00001", "Diffusion models for proteins"),
    # an old-style arXiv id: the slash must survive the link's quoting
    paper("hep-ph/9411242", "Quarks in a box"),
)


def subscribed(site: WebSite, email: str = ADA) -> tuple[httpx.Client, str]:
    """A confirmed web subscriber's client and manage token, the papers in the store."""
    record(site, *PAPERS)
    client = site.client()
    path = subscribe(site, client, email, keywords="diffusion")
    return client, path.removeprefix("/manage/")


def feedback_of(site: WebSite, email: str = ADA) -> list[tuple[str, str]]:
    """What the store holds of a subscriber's feedback: (paper id, verdict), newest first."""
    with site.store() as store:
        sid = store.subscribers.id_of(email)
        assert sid is not None
        return [(f.paper_id, f.verdict) for f in store.feedback.of_subscriber(sid)]


def press(client: httpx.Client, url: str, page: httpx.Response) -> httpx.Response:
    """Send the page's form (what its script does at once, or its button)."""
    return client.post(url, data=form_fields(page.text))


def test_following_a_link_asks_and_records_nothing_until_the_page_posts(
    web_site: WebSite,
) -> None:
    client, token = subscribed(web_site)
    url = feedback_link(web_site.url, token, "more", "2501.00001")
    page = client.get(url)
    assert page.status_code == 200
    assert "Diffusion models for proteins" in page.text
    assert "more like this" in page_title(page.text).lower()
    assert feedback_of(web_site) == [], "a GET records nothing"
    form = BeautifulSoup(page.text, "html.parser").select_one("form[data-autosubmit]")
    assert form is not None
    assert form.get("method") == "post"
    recorded = press(client, url, page)
    assert recorded.status_code == 200
    assert page_title(recorded.text) == "Noted: more like this"
    assert feedback_of(web_site) == [("2501.00001", "more")]
    manage = BeautifulSoup(recorded.text, "html.parser").find("a", string=lambda s: "alerts" in s)
    assert manage is not None
    assert str(manage["href"]).endswith(f"/manage/{token}")


def test_a_scanner_fetching_every_link_records_nothing(web_site: WebSite) -> None:
    _, token = subscribed(web_site)
    links = [
        feedback_link(web_site.url, token, verdict, p.id)
        for p in PAPERS
        for verdict in ("more", "less")
    ]
    scanner = web_site.client()  # no cookie of the subscriber's, as a mail scanner
    seen: set[str] = set()
    while links:
        url = links.pop()
        if url in seen or not url.startswith(web_site.url):
            continue
        seen.add(url)
        answer = scanner.get(url)
        assert answer.status_code == 200, url
        soup = BeautifulSoup(answer.text, "html.parser")
        links += [urljoin(url, str(a["href"])) for a in soup.select("a[href]")]
    assert len(seen) > 4, "the pages' own links were followed too"
    assert feedback_of(web_site) == []


def test_undo_removes_the_verdict_and_can_be_pressed_twice(web_site: WebSite) -> None:
    client, token = subscribed(web_site)
    url = feedback_link(web_site.url, token, "less", "hep-ph/9411242")
    recorded = press(client, url, client.get(url))
    assert feedback_of(web_site) == [("hep-ph/9411242", "less")]
    undo = form_fields(recorded.text)
    assert undo["action"] == "undo"
    undone = client.post(url, data=undo)
    assert undone.status_code == 200
    assert page_title(undone.text) == "Undone"
    assert feedback_of(web_site) == []
    assert client.post(url, data=undo).status_code == 200, "undo again: still fine"
    again = press(client, url, undone)
    assert page_title(again.text) == "Noted: less like this"
    assert feedback_of(web_site) == [("hep-ph/9411242", "less")]


def test_the_later_verdict_on_a_paper_replaces_the_earlier(web_site: WebSite) -> None:
    client, token = subscribed(web_site)
    for verdict in ("more", "less"):
        url = feedback_link(web_site.url, token, verdict, "2501.00001")
        press(client, url, client.get(url))
    assert feedback_of(web_site) == [("2501.00001", "less")]


def test_a_post_without_the_pages_csrf_token_records_nothing(web_site: WebSite) -> None:
    client, token = subscribed(web_site)
    url = feedback_link(web_site.url, token, "more", "2501.00001")
    client.get(url)
    refused = client.post(url, data={"action": "record"})
    assert refused.status_code == 403
    assert feedback_of(web_site) == []


def test_links_naming_no_verdict_paper_or_subscriber_here_are_refused(web_site: WebSite) -> None:
    client, token = subscribed(web_site)
    bad_verdict = client.get(feedback_link(web_site.url, token, "maybe", "2501.00001"))
    assert bad_verdict.status_code == 404
    unknown = client.get(feedback_link(web_site.url, token, "more", "2501.99999"))
    assert unknown.status_code == 404
    assert page_title(unknown.text) == "Paper not found"
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert (
        client.get(feedback_link(web_site.url, tampered, "more", "2501.00001")).status_code == 404
    )
    # the tokens someone would need to vote for Bob: another purpose's, or one they signed
    for forged in (
        make_token(SECRET, "unsubscribe", BOB),
        make_token("not-the-secret", "manage", BOB),
    ):
        url = feedback_link(web_site.url, forged, "more", "2501.00001")
        assert client.get(url).status_code == 404
        assert client.post(url, data={"action": "record"}).status_code == 404


def test_the_link_not_the_browser_says_whose_feedback_it_is(web_site: WebSite) -> None:
    ada, _ = subscribed(web_site, ADA)
    _, bob_token = subscribed(web_site, BOB)
    url = feedback_link(web_site.url, bob_token, "more", "2501.00001")
    press(ada, url, ada.get(url))  # Ada's cookies, Bob's link
    assert feedback_of(web_site, BOB) == [("2501.00001", "more")]
    assert feedback_of(web_site, ADA) == []


def test_after_unsubscribing_the_links_no_longer_work(web_site: WebSite) -> None:
    client, token = subscribed(web_site)
    url = feedback_link(web_site.url, token, "more", "2501.00001")
    page = client.get(url)
    with web_site.store() as store:
        assert store.subscribers.unsubscribe(ADA, 0)
    assert client.get(url).status_code == 410
    assert press(client, url, page).status_code == 410
    assert feedback_of(web_site) == []
