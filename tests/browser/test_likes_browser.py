"""The feedback page and the manage page's seed list in a real headless Chromium: a
"more like this" link records at once with JavaScript and offers Undo; seeds are added,
uploaded from a file and removed with the page's own buttons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.mail.links import feedback_link
from tests.browser.test_signup_browser import browser, shots  # noqa: F401
from tests.webapp import WebSite, paper, record, subscribe

pytestmark = pytest.mark.browser

ADA = "ada@example.org"
SEEDS = Path(__file__).parent.parent / "fixtures" / "seeds"


def ada(site: WebSite) -> tuple[str, int]:
    """Ada subscribed with a paper in the store: her manage path and her row id."""
    record(site, paper("2501.00001", "Diffusion models for proteins"))
    path = subscribe(site, site.client(), ADA, keywords="diffusion")
    with site.store() as store:
        sid = store.subscribers.id_of(ADA)
    assert sid is not None
    return path, sid


def feedback(site: WebSite, sid: int) -> list[tuple[str, str]]:
    with site.store() as store:
        return [(f.paper_id, f.verdict) for f in store.feedback.of_subscriber(sid)]


def test_a_feedback_link_records_at_once_and_undo_takes_it_back(
    browser: Any,  # noqa: F811
    web_site: WebSite,
    shots: Path,  # noqa: F811
) -> None:
    path, sid = ada(web_site)
    token = path.removeprefix("/manage/")
    page = browser.new_context().new_page()
    page.goto(feedback_link(web_site.url, token, "more", "2501.00001"))
    page.wait_for_selector("h1:text('Noted: more like this')")
    page.screenshot(path=shots / "feedback-recorded.png")
    assert feedback(web_site, sid) == [("2501.00001", "more")]
    page.get_by_role("button", name="Undo").click()
    page.wait_for_selector("h1:text('Undone')")
    assert feedback(web_site, sid) == []
    page.get_by_role("link", name="Your alerts, papers you like and your feedback").click()
    page.wait_for_selector("h1:text('Your alerts')")
    assert feedback(web_site, sid) == [], "the Undone page does not record again"


def test_without_javascript_the_button_records(
    browser: Any,  # noqa: F811
    web_site: WebSite,
) -> None:
    path, sid = ada(web_site)
    page = browser.new_context(java_script_enabled=False).new_page()
    page.goto(feedback_link(web_site.url, path.removeprefix("/manage/"), "less", "2501.00001"))
    page.wait_for_selector("h1:text('Less like this?')")
    assert feedback(web_site, sid) == []
    page.get_by_role("button", name="Record less like this").click()
    page.wait_for_selector("h1:text('Noted: less like this')")
    assert feedback(web_site, sid) == [("2501.00001", "less")]


def test_seeds_are_added_uploaded_and_removed_on_the_manage_page(
    browser: Any,  # noqa: F811
    web_site: WebSite,
    shots: Path,  # noqa: F811
) -> None:
    path, _ = ada(web_site)
    page = browser.new_context().new_page()
    page.goto(web_site.url + path)
    page.get_by_label("Add papers").fill("2501.00001\nnot a paper")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_text("line 2: 'not a paper' is not an arXiv id").first.wait_for()
    page.get_by_label("Add papers").fill("2501.00001")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_text("Added 1 paper.").wait_for()
    seeds = page.locator("#likes > ul.seed-list")
    assert "Diffusion models for proteins" in seeds.inner_text()

    page.get_by_label("Or upload your library").set_input_files(SEEDS / "rispy_example_urls.ris")
    page.get_by_role("button", name="Upload", exact=True).click()
    page.locator("#upload-report").get_by_text("Recognised 1 paper: 1 added").wait_for()
    page.screenshot(path=shots / "seeds-uploaded.png", full_page=True)
    assert "A Mathematical Theory of Communication" in seeds.inner_text()

    page.get_by_role("button", name="Remove Diffusion models for proteins").click()
    page.get_by_text("Removed.").wait_for()
    with web_site.store() as store:
        found = store.subscribers.find(ADA)
    assert found is not None
    assert found.subscriber.likes == ("title:A Mathematical Theory of Communication",)
