"""The subscription pages in a real headless Chromium (Debian's `chromium`, driven by Playwright).

Sign up, read the confirmation from the test SMTP server, follow it, edit an alert and watch
the preview change, unsubscribe; the same without JavaScript; keyboard order and contrast.
Screenshots go to the test's tmp dir. Skipped only where chromium is not installed, never
in CI (`.ci/run` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.webapp import WebSite, paper, record

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
ADA = "ada@example.org"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from the system package (Playwright downloads no browser here)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs the Debian chromium package")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where this test's screenshots go (kept under pytest's tmp dir)."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


@pytest.fixture
def papers(web_site: WebSite) -> WebSite:
    record(
        web_site,
        paper("2501.00001", "Diffusion models for proteins", "Denoising, at scale."),
        paper(
            "2501.00002",
            "Message passing in graph neural networks",
            "Graph neural networks for molecules.",
            authors=("Guillaume Lajoie", "Ada Lovelace"),
        ),
        paper("2501.00003", "<script>alert(1)</script> diffusion in disguise"),
    )
    return web_site


def confirmation_link(site: WebSite, email: str) -> str:
    site.smtp.wait_for(1)
    [mail] = site.mails_to(email)
    return site.link_in(mail, "confirm")


def test_sign_up_confirm_edit_with_live_preview_and_unsubscribe(
    browser: Any, papers: WebSite, shots: Path
) -> None:
    site = papers
    page = browser.new_context(viewport=PHONE).new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(site.url + "/")
    page.get_by_label("Your email address").fill(ADA)
    page.get_by_label("Keywords").fill("diffusion")
    page.get_by_label("Weekly", exact=True).check()
    page.get_by_label("Delivery hour").select_option("7")
    page.get_by_label("Time zone").select_option("Europe/Paris")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
        "no sideways scrolling on a phone"
    )
    page.screenshot(path=shots / "1-signup.png", full_page=True)
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_selector("h1:text('Check your inbox')")
    page.screenshot(path=shots / "2-check-inbox.png")
    with site.store() as store:
        assert store.subscribers.active() == []

    page.goto(confirmation_link(site, ADA))
    page.wait_for_selector("h1:text('You are subscribed')")
    page.screenshot(path=shots / "3-confirmed.png", full_page=True)
    page.get_by_role("link", name="Review or change your alerts").click()
    preview = page.locator("#preview")
    preview.get_by_text("Diffusion models for proteins").wait_for()
    assert "graph neural" not in preview.inner_text()

    # the live preview follows the edit, without pressing any button
    page.get_by_label("Keywords").fill("graph neural networks")
    preview.get_by_text("Message passing in graph neural networks").wait_for()
    page.wait_for_function(
        "!document.querySelector('#preview').innerText.includes('Diffusion models')"
    )
    page.screenshot(path=shots / "4-manage-live-preview.png", full_page=True)
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()
    with site.store() as store:
        [sub] = store.subscribers.active()
    assert sub.keywords == ("graph neural networks",)
    assert (sub.frequency, sub.send_at, sub.timezone) == ("weekly", "07:00", "Europe/Paris")

    page.get_by_role("link", name="Unsubscribe").click()
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_selector("h1:text('You are unsubscribed')")
    page.screenshot(path=shots / "5-unsubscribed.png")
    with site.store() as store:
        assert store.subscribers.active() == []
    assert dialogs == [], "a paper's title never runs as script"
    assert sorted(p.name for p in shots.iterdir()) == [
        "1-signup.png",
        "2-check-inbox.png",
        "3-confirmed.png",
        "4-manage-live-preview.png",
        "5-unsubscribed.png",
    ]


def test_everything_works_without_javascript(browser: Any, papers: WebSite, shots: Path) -> None:
    site = papers
    page = browser.new_context(java_script_enabled=False, viewport=PHONE).new_page()
    page.goto(site.url + "/")
    page.get_by_label("Your email address").fill(ADA)
    page.get_by_label("Keywords").fill("diffusion")
    page.get_by_role("button", name="Preview").click()
    page.locator("#preview").get_by_text("Diffusion models for proteins").wait_for()
    assert page.get_by_label("Your email address").input_value() == ADA
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_selector("h1:text('Check your inbox')")

    page.goto(confirmation_link(site, ADA))
    page.get_by_role("link", name="Review or change your alerts").click()
    page.get_by_label("Keywords").fill("graph AND (neural OR")
    page.get_by_role("button", name="Preview").click()
    error = page.locator("#keywords-error")
    error.wait_for()
    assert re.search(r"line 1, column \d+", error.inner_text())
    page.screenshot(path=shots / "no-js-error.png", full_page=True)
    page.get_by_label("Keywords").fill("graph neural networks")
    page.get_by_role("button", name="Preview").click()
    page.locator("#preview").get_by_text("Message passing in graph neural networks").wait_for()
    page.screenshot(path=shots / "no-js-preview.png", full_page=True)


def test_keyboard_order_skips_the_honeypot(browser: Any, web_site: WebSite) -> None:
    page = browser.new_page()
    page.goto(web_site.url + "/")
    page.get_by_label("Your email address").focus()
    order = ["email"]
    for _ in range(11):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.name || document.activeElement.id"))
    assert order[:10] == [
        "email",
        "keywords",
        "authors",
        "categories",
        "exclude",
        "frequency",
        "weekday",
        "hour",
        "timezone",
        "action",
    ]
    assert "website" not in order


def test_text_and_buttons_have_enough_contrast(browser: Any, web_site: WebSite) -> None:
    page = browser.new_page()
    page.goto(web_site.url + "/")
    for selector in ("h1", "p.lead", "p.hint", "label[for=keywords]", "button.primary", "a"):
        colours = page.eval_on_selector(
            selector,
            """element => {
                let back = element, bg = 'rgba(0, 0, 0, 0)';
                while (back && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) {
                    bg = getComputedStyle(back).backgroundColor; back = back.parentElement;
                }
                return [getComputedStyle(element).color, bg];
            }""",
        )
        ratio = contrast(*colours)
        assert ratio >= 4.5, f"{selector}: {colours} has contrast {ratio:.1f}"


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two CSS rgb() colours."""

    def luminance(colour: str) -> float:
        red, green, blue = (int(x) / 255 for x in re.findall(r"\d+", colour)[:3])

        def linear(c: float) -> float:
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

        return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)

    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_chromium_is_the_system_package() -> None:
    """CI must run these tests, not skip them: the browser is where .ci/run puts it."""
    if os.environ.get("CI"):
        assert shutil.which("chromium") == CHROMIUM
