"""The manage page's "Papers you like" and "Your feedback" against the real web app: seeds
typed (each bad line named), uploaded as BibTeX, RIS or Zotero CSV exports with a report,
removed; `recommend` set; feedback removed; saving the alerts keeps the seeds; a config-file
subscriber's seeds shown and never edited."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from bs4 import BeautifulSoup

from bot.mail.links import make_token
from bot.recommend.seeds import MAX_EXPORT_BYTES
from bot.web.guard import CSRF_FIELD, MAX_BODY
from tests.unit.test_seeds import ZOTERO_CSV
from tests.webapp import (
    SECRET,
    WebSite,
    form_fields,
    paper,
    record,
    submit,
    subscribe,
)

ADA = "ada@example.org"
SEEDS = Path(__file__).parent.parent / "fixtures" / "seeds"


def likes_of(site: WebSite, email: str = ADA) -> tuple[tuple[str, ...], int]:
    """The stored seeds and `recommend` of a subscriber."""
    with site.store() as store:
        found = store.subscribers.find(email)
    assert found is not None
    return found.subscriber.likes, found.subscriber.recommend


def section_text(html: str, selector: str = "#likes") -> str:
    """The text of a part of the page."""
    part = BeautifulSoup(html, "html.parser").select_one(selector)
    assert part is not None, f"no {selector} on the page"
    return part.get_text(" ", strip=True)


def add_typed(client: httpx.Client, path: str, seeds: str) -> httpx.Response:
    """Type seeds in the page's field and press Add."""
    fields = form_fields(client.get(path).text, "form.seeds")
    return client.post(f"{path}/likes", data={**fields, "seeds": seeds, "action": "add"})


def upload(client: httpx.Client, path: str, name: str, data: bytes) -> httpx.Response:
    """Choose a file in the page's upload field and press Upload."""
    csrf = form_fields(client.get(path).text, "form.upload")[CSRF_FIELD]
    files = {"export": (name, data, "application/octet-stream")}
    return client.post(f"{path}/likes/upload", data={CSRF_FIELD: csrf}, files=files)


def ada(site: WebSite) -> tuple[httpx.Client, str]:
    """Ada, a confirmed web subscriber, and her manage page's path."""
    client = site.client()
    return client, subscribe(site, client, ADA, keywords="diffusion")


def test_typed_seeds_are_added_in_order_and_listed_with_what_is_known(web_site: WebSite) -> None:
    record(web_site, paper("2501.00001", "Diffusion models for proteins"))
    client, path = ada(web_site)
    answer = add_typed(
        client,
        path,
        "2501.00001\n\nhttps://arxiv.org/abs/2411.01234v2\nhttps://doi.org/10.1101/2024.01.01.123456\n"
        "arXiv:2501.00001",
    )
    assert answer.status_code == 200
    assert likes_of(web_site)[0] == ("2501.00001", "2411.01234", "doi:10.1101/2024.01.01.123456")
    items = BeautifulSoup(answer.text, "html.parser").select("#likes ul.seed-list > li")
    texts = [li.get_text(" ", strip=True) for li in items]
    assert texts[0].startswith("Diffusion models for proteins arXiv:2501.00001")
    assert "(looked up at the next run)" in texts[1]
    assert "doi:10.1101/2024.01.01.123456" in texts[2]
    assert "Added 3 papers." in section_text(answer.text)
    again = add_typed(client, path, "2411.01234\n2411.09999")
    assert "Added 1 paper; 1 was already in your list." in section_text(again.text)
    assert likes_of(web_site)[0][-1] == "2411.09999"


def test_lines_that_name_no_paper_are_refused_each_with_its_line(web_site: WebSite) -> None:
    client, path = ada(web_site)
    typed = (
        "2411.01234\nattention is all you need\n2411.1\nhttps://doi.org/10.1103/PhysRevD.76.044016"
    )
    answer = add_typed(client, path, typed)
    assert answer.status_code == 400
    errors = [
        li.get_text(" ", strip=True)
        for li in BeautifulSoup(answer.text, "html.parser").select("#seeds-error li")
    ]
    assert errors == [
        "line 2: 'attention is all you need' is not an arXiv id, arXiv link, DOI or doi.org link",
        "line 3: '2411.1' is not an arXiv id, arXiv link, DOI or doi.org link",
    ]
    assert form_fields(answer.text, "form.seeds")["seeds"] == typed, "kept for fixing"
    assert likes_of(web_site)[0] == (), "nothing saved while a line is wrong"


def test_a_real_bibtex_export_adds_its_titles(web_site: WebSite) -> None:
    client, path = ada(web_site)
    data = (SEEDS / "bibtexparser_arxiv_pdf.bib").read_bytes()
    answer = upload(client, path, "library.bib", data)
    assert answer.status_code == 200
    likes = likes_of(web_site)[0]
    assert len(likes) == 5
    assert all(key.startswith("title:") for key in likes)
    report = section_text(answer.text, "#upload-report")
    assert report.startswith("From library.bib Recognised 5 papers: 5 added.")
    assert "Not recognised" not in report
    again = upload(client, path, "library.bib", data)
    assert "0 added, 5 already in your list" in section_text(again.text, "#upload-report")
    assert len(likes_of(web_site)[0]) == 5


def test_a_real_ris_export_of_one_paper_four_times_adds_it_once(web_site: WebSite) -> None:
    client, path = ada(web_site)
    answer = upload(client, path, "export.ris", (SEEDS / "rispy_example_urls.ris").read_bytes())
    assert answer.status_code == 200
    assert likes_of(web_site)[0] == ("title:A Mathematical Theory of Communication",)
    assert "Recognised 1 paper: 1 added" in section_text(answer.text, "#upload-report")


def test_a_zotero_csv_export_reports_what_it_did_not_recognise(web_site: WebSite) -> None:
    # the CSV is the hand-made one of tests/unit/test_seeds.py (no real Zotero CSV found)
    client, path = ada(web_site)
    add_typed(client, path, "2406.06875")
    answer = upload(client, path, "My Library.csv", ZOTERO_CSV)
    assert answer.status_code == 200
    assert likes_of(web_site)[0] == (
        "2406.06875",
        "doi:10.4171/jst/226",
        "title:Only a title",
    )
    report = BeautifulSoup(answer.text, "html.parser").select_one("#upload-report")
    assert report is not None
    text = report.get_text(" ", strip=True)
    assert "Recognised 3 papers: 2 added, 1 already in your list" in text
    added = [li.get_text(" ", strip=True) for li in report.select("ul.added li")]
    assert [a.split(" (")[0] for a in added] == ["doi:10.4171/jst/226", "Only a title"]
    problems = [li.get_text(" ", strip=True) for li in report.select("ul.problems li")]
    assert len(problems) == 1
    assert problems[0].endswith("no arXiv id, DOI or title")


def test_a_file_of_another_kind_is_reported_not_read(web_site: WebSite) -> None:
    client, path = ada(web_site)
    answer = upload(client, path, "notes.txt", b"2411.01234\n")
    assert answer.status_code == 200
    assert "'notes.txt' is not a .bib, .ris or .csv export" in section_text(answer.text)
    assert likes_of(web_site)[0] == ()


def test_an_over_size_upload_is_refused_clearly(web_site: WebSite) -> None:
    client, path = ada(web_site)
    # just over the export limit (read, then refused), and over the request's (never read)
    for extra in (1, MAX_BODY + 1):
        big = b"@article{a, title={x}}\n" + b"%" * (MAX_EXPORT_BYTES + extra)
        answer = upload(client, path, "huge.bib", big)
        assert answer.status_code == 413
        assert "The file is larger than 5 MB: nothing was read." in answer.text
        assert likes_of(web_site)[0] == ()


def test_an_upload_without_the_pages_csrf_token_is_refused(web_site: WebSite) -> None:
    client, path = ada(web_site)
    files = {"export": ("x.ris", (SEEDS / "rispy_example_urls.ris").read_bytes(), "text/plain")}
    answer = client.post(f"{path}/likes/upload", files=files)
    assert answer.status_code == 403
    assert likes_of(web_site)[0] == ()


def test_a_seed_is_removed_by_its_button(web_site: WebSite) -> None:
    client, path = ada(web_site)
    page = add_typed(client, path, "2411.01234\n2411.05678")
    forms = BeautifulSoup(page.text, "html.parser").select("#likes ul.seed-list form")
    fields = {str(i["name"]): str(i.get("value", "")) for i in forms[0].select("input[name]")}
    assert fields["key"] == "2411.01234"
    answer = client.post(f"{path}/likes", data=fields)
    assert answer.status_code == 200
    assert likes_of(web_site)[0] == ("2411.05678",)
    assert client.post(f"{path}/likes", data=fields).status_code == 200, "twice: fine"


def test_recommend_is_set_from_0_to_100(web_site: WebSite) -> None:
    client, path = ada(web_site)
    fields = form_fields(client.get(path).text, "form.recommend")
    assert fields["recommend"] == "5"
    answer = client.post(f"{path}/likes", data={**fields, "recommend": "0", "action": "recommend"})
    assert answer.status_code == 200
    assert likes_of(web_site)[1] == 0
    for bad in ("101", "-1", "many"):
        refused = client.post(
            f"{path}/likes", data={**fields, "recommend": bad, "action": "recommend"}
        )
        assert refused.status_code == 400
        assert "choose a number from 0 to 100" in refused.text
    assert likes_of(web_site)[1] == 0


def test_saving_the_alerts_keeps_the_seeds_and_recommend(web_site: WebSite) -> None:
    client, path = ada(web_site)
    add_typed(client, path, "2411.01234")
    fields = form_fields(client.get(path).text, "form.recommend")
    client.post(f"{path}/likes", data={**fields, "recommend": "7", "action": "recommend"})
    saved = submit(client, path, keywords="graph neural networks", action="save")
    assert saved.status_code == 200
    with web_site.store() as store:
        [sub] = store.subscribers.active()
    assert sub.keywords == ("graph neural networks",)
    assert (sub.likes, sub.recommend) == (("2411.01234",), 7)


def test_a_subscriber_with_seeds_may_save_without_keywords_or_authors(web_site: WebSite) -> None:
    client, path = ada(web_site)
    refused = submit(client, path, keywords="", action="save")
    assert refused.status_code == 400, "no seeds yet: an alert is needed"
    add_typed(client, path, "2411.01234")
    page = client.get(path)
    assert BeautifulSoup(page.text, "html.parser").select(".error-summary") == []
    # the live preview, as the page's script asks for it, accepts the empty alerts too
    form = BeautifulSoup(page.text, "html.parser").select_one("form[data-preview]")
    assert form is not None
    fields = {i["name"]: i.get("value", "") for i in form.select("input[name]")}
    live = client.post("/preview", data={**fields, "keywords": "", "authors": ""})
    assert live.status_code == 200
    assert "at least one keyword" not in live.text
    saved = submit(client, path, keywords="", action="save")
    assert saved.status_code == 200
    with web_site.store() as store:
        [sub] = store.subscribers.active()
    assert (sub.keywords, sub.authors, sub.likes) == ((), (), ("2411.01234",))


def test_feedback_is_listed_and_removed(web_site: WebSite) -> None:
    record(web_site, paper("2501.00001", "Diffusion models for proteins"))
    client, path = ada(web_site)
    with web_site.store() as store:
        sid = store.subscribers.id_of(ADA)
        assert sid is not None
        store.feedback.record(sid, "2501.00001", "less")
    page = client.get(path)
    listed = section_text(page.text, "#feedback")
    assert "Diffusion models for proteins less like this" in listed
    form = BeautifulSoup(page.text, "html.parser").select_one("#feedback form")
    assert form is not None
    fields = {str(i["name"]): str(i.get("value", "")) for i in form.select("input[name]")}
    answer = client.post(f"{path}/likes", data=fields)
    assert answer.status_code == 200
    assert "None yet" in section_text(answer.text, "#feedback")
    with web_site.store() as store:
        assert store.feedback.of_subscriber(sid) == []


def test_a_config_file_subscribers_seeds_are_shown_never_edited(
    web_site_factory: Callable[..., WebSite],
) -> None:
    site = web_site_factory(
        subscribers=[{"email": ADA, "keywords": ["grokking"], "like": ["2411.01234"]}]
    )
    record(site, paper("2501.00001", "Diffusion models for proteins"))
    with site.store() as store:
        store.subscribers.sync_config(site.config.subscribers)
        sid = store.subscribers.id_of(ADA)
        assert sid is not None
        store.feedback.record(sid, "2501.00001", "more")
    client = site.client()
    path = f"/manage/{make_token(SECRET, 'manage', ADA)}"
    page = client.get(path)
    assert page.status_code == 200
    likes = section_text(page.text)
    assert "arXiv:2411.01234" in likes
    assert "set in the configuration file" in likes
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.select("#likes form") == [], "nothing can change the file's seeds"
    form = soup.select_one("#feedback form")
    assert form is not None, "feedback is not in the file: it can be removed"
    fields = {str(i["name"]): str(i.get("value", "")) for i in form.select("input[name]")}
    refused = client.post(f"{path}/likes", data={**fields, "action": "add", "seeds": "2411.05678"})
    assert refused.status_code == 403
    assert client.post(f"{path}/likes", data=fields).status_code == 200
    with site.store() as store:
        assert store.feedback.of_subscriber(sid) == []
        found = store.subscribers.find(ADA)
    assert found is not None
    assert found.subscriber.likes == ("2411.01234",)
