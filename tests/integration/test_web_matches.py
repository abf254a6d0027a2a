"""The page of recent matches: where a digest's left-out papers can really be seen."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage

import httpx
from bs4 import BeautifulSoup

from bot.alerts.index import AlertIndex
from bot.mail.compose import Letterhead, digest_message
from bot.mail.digest import build_digest
from bot.mail.links import make_token
from bot.models import Paper
from bot.store.outbox import PendingDigest
from bot.store.rows import utcnow
from bot.web.guard import SECURITY_HEADERS
from tests.webapp import SECRET, WebSite, body_text, paper, record, subscribe

ADA = "ada@example.org"


def diffusion_papers(count: int, start: int = 0) -> list[Paper]:
    """`count` papers about diffusion, the later ones with fewer matching words."""
    return [
        paper(
            f"2501.{n:05d}",
            f"Diffusion study number {n}",
            "We study diffusion models. " + "More diffusion. " * (n % 3),
        )
        for n in range(start, start + count)
    ]


def match_into_digest(site: WebSite, papers: list[Paper]) -> PendingDigest:
    """What a run does with new papers: match them, record the matches, make the digest."""
    record(site, *papers)
    with site.store() as store:
        subscriber = store.subscribers.find_active(ADA)
        assert subscriber is not None
        found = AlertIndex.build([subscriber]).match(papers)
        store.matches.add(found)
        store.outbox.create("example.org")
        [pending] = store.outbox.pending()
    return pending


def digest_mail(site: WebSite, pending: PendingDigest) -> EmailMessage:
    """The digest's email as delivery builds it, with the subscriber's own links."""
    head = Letterhead(
        from_="paperbot <bot@example.org>",
        domain="example.org",
        list_name="paperbot",
        unsubscribe_mailto="bot+unsubscribe@example.org",
        base_url=site.url,
        secret=SECRET,
    )
    with site.store() as store:
        papers = store.papers.by_id(m.paper_id for m in pending.matches)
        store.outbox.mark_sent(pending.id)
    return digest_message(head, pending, papers, utcnow())


def listed_titles(html: str) -> list[str]:
    """The paper titles a page lists, in order."""
    soup = BeautifulSoup(html, "html.parser")
    return [h.get_text(" ", strip=True) for h in soup.select("li.paper h3")]


def test_every_paper_a_digest_left_out_is_on_the_page_its_mail_links_to(
    web_site: WebSite,
) -> None:
    subscribe(web_site, web_site.client(), ADA, keywords="diffusion")  # 50 papers a digest
    pending = match_into_digest(web_site, diffusion_papers(60))
    with web_site.store() as store:
        papers = store.papers.by_id(m.paper_id for m in pending.matches)
    sent = build_digest(pending.subscriber, pending.matches, papers, message_id="<x@y>")
    left_out = [entry.paper.title for entry in sent.left_out]
    assert len(left_out) == 10

    mail = digest_mail(web_site, pending)
    assert mail["Subject"] == "paperbot: 50 of 60 new papers matching your alerts"
    text = body_text(mail)
    assert "10 more matching papers were left out" in text
    found = re.search(rf"{re.escape(web_site.url)}/manage/[^/\s]+/matches", text)
    assert found, text[-600:]
    page = httpx.get(found.group(0))  # a mail client's click: no cookie, no session
    assert page.status_code == 200
    titles = listed_titles(page.text)
    assert set(left_out) <= set(titles), "every left-out paper is listed"
    assert len(titles) == 60, "with those the digest showed"
    assert titles[50:] == left_out, "in the digest's order: the left-out ones come last"
    soup = BeautifulSoup(page.text, "html.parser")
    assert "keyword: diffusion" in soup.get_text(" ")
    assert soup.select_one("li.paper details summary"), "the abstract, one click away"
    assert "Digest of" in soup.select_one("section.matches h2").get_text()
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    assert page.headers["cache-control"] == "no-store"
    assert not soup.select("script[src]:not([src$='web.js'])"), "nothing from elsewhere"


def test_matches_not_yet_mailed_come_first_and_long_lists_have_pages(web_site: WebSite) -> None:
    client = web_site.client()
    path = subscribe(web_site, client, ADA, keywords="diffusion")
    digest_mail(web_site, match_into_digest(web_site, diffusion_papers(90)))
    waiting = diffusion_papers(40, start=100)
    record(web_site, *waiting)
    with web_site.store() as store:
        subscriber = store.subscribers.find_active(ADA)
        assert subscriber is not None
        store.matches.add(AlertIndex.build([subscriber]).match(waiting))

    first = client.get(f"{path}/matches")
    assert first.status_code == 200
    soup = BeautifulSoup(first.text, "html.parser")
    headings = [h.get_text(" ", strip=True) for h in soup.select("section.matches h2")]
    assert headings[0] == "Waiting for your next digest: 40 papers"
    assert headings[1].startswith("Digest of ")
    assert headings[1].endswith("(sent): 90 papers")
    assert len(listed_titles(first.text)) == 100
    second = client.get(f"{path}/matches", params={"page": "2"})
    titles = listed_titles(second.text)
    assert len(titles) == 30, "130 papers: 100 on the first page, 30 on the second"
    assert set(titles).isdisjoint(listed_titles(first.text))
    assert "(continued)" in BeautifulSoup(second.text, "html.parser").select_one("h2").get_text()
    assert client.get(f"{path}/matches", params={"page": "x"}).status_code == 200
    manage = BeautifulSoup(client.get(path).text, "html.parser")
    link = manage.select_one("a[href$='/matches']")
    assert link is not None, "the manage page links to it"
    assert listed_titles(client.get(str(link["href"])).text) == listed_titles(first.text)


def test_old_matches_are_not_listed(web_site: WebSite) -> None:
    client = web_site.client()
    path = subscribe(web_site, client, ADA, keywords="diffusion")
    old, new = diffusion_papers(1), diffusion_papers(1, start=5)
    with web_site.store() as store:
        subscriber = store.subscribers.find_active(ADA)
        assert subscriber is not None
        index = AlertIndex.build([subscriber])
        store.matches.add(index.match(old), now=utcnow() - timedelta(days=31))
        store.matches.add(index.match(new))
    record(web_site, *old, *new)
    assert listed_titles(client.get(f"{path}/matches").text) == [new[0].title]


def test_the_page_needs_a_valid_manage_link(web_site: WebSite) -> None:
    client = web_site.client()
    path = subscribe(web_site, client, ADA, keywords="diffusion")
    token = path.rsplit("/", 1)[1]
    forged = client.get(f"/manage/{token[:-2]}xy/matches")
    assert forged.status_code == 404
    other_purpose = client.get(f"/manage/{make_token(SECRET, 'unsubscribe', ADA)}/matches")
    assert other_purpose.status_code == 404
    soup = BeautifulSoup(
        client.get(f"/unsubscribe/{make_token(SECRET, 'unsubscribe', ADA)}").text, "html.parser"
    )
    form = soup.select_one("form")
    assert form is not None
    fields = {str(i["name"]): str(i.get("value", "")) for i in form.select("input[name]")}
    client.post(f"/unsubscribe/{make_token(SECRET, 'unsubscribe', ADA)}", data=fields)
    gone = client.get(f"{path}/matches")
    assert gone.status_code == 410, "unsubscribing ends every earlier link"
    for name in SECURITY_HEADERS:
        assert name in gone.headers
