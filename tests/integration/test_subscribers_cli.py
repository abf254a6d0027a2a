"""`paperbot subscribers`: the operator's list, run as real child processes on a real store.

The opt-in mail goes through the real SMTP server to a real web app, whose confirmation link
activates the address; config-file subscribers are refused; an import with bad rows names
each with its line and imports nothing; export and import round-trip; the web limits of the
config's `web:` section hold in the running app.
"""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from bot.config.load import parse_config
from bot.errors import ConfigError
from bot.store.store import Store
from tests.cli import run_paperbot
from tests.integration.test_web_tokens import old_token
from tests.webapp import SECRET, WebSite, body_text, form_fields, sign_up, submit

ADA, BOB, FILE_ONE = "ada@example.org", "bob@example.org", "file@example.org"
HEADER = "email,keywords,authors,categories,exclude,frequency,send_at,timezone\n"


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The web app's signing secret, which the child processes inherit."""
    monkeypatch.setenv("PAPERBOT_SECRET_KEY", SECRET)


@pytest.fixture
def site(web_site_factory: Callable[..., WebSite]) -> WebSite:
    """The web app on a store whose config file lists one subscriber; mail paced fast."""
    return web_site_factory(
        subscribers=[{"email": FILE_ONE, "keywords": ["diffusion"]}],
        smtp_options={"rate_limit": "100/s"},
    )


def paperbot(site: WebSite, *args: str) -> subprocess.CompletedProcess[str]:
    """`paperbot subscribers ARGS` on the site's config, in a child process."""
    return run_paperbot(site.config_path, "subscribers", *args)


def status_of(site: WebSite, email: str) -> str | None:
    with site.store() as store:
        record = store.subscribers.find(email)
    return record.subscriber.status if record else None


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_add_mails_the_web_apps_opt_in_link_and_it_confirms(site: WebSite) -> None:
    result = paperbot(site, "add", ADA, "--keyword", "grokking", "--author", "G. Lajoie")
    assert result.returncode == 0, result.stderr
    assert status_of(site, ADA) == "pending"
    [mail] = site.mails_to(ADA)
    assert "keyword: grokking" in body_text(mail)
    page = site.client().get(site.link_in(mail, "confirm"))
    assert page.status_code == 200, page.text
    assert status_of(site, ADA) == "active"


def test_add_with_confirm_is_active_at_once_and_mails_nothing(site: WebSite) -> None:
    result = paperbot(site, "add", ADA, "--keyword", "grokking", "--confirm")
    assert result.returncode == 0, result.stderr
    assert status_of(site, ADA) == "active"
    assert site.mails_to(ADA) == []
    again = paperbot(site, "add", ADA, "--keyword", "other", "--confirm")
    assert again.returncode == 2
    assert "already a subscriber" in one_line(again)


def test_add_checks_alerts_by_the_config_files_rules(site: WebSite) -> None:
    result = paperbot(site, "add", ADA, "--keyword", "grokking AND (")
    assert result.returncode == 2
    assert "keywords[0]" in one_line(result)
    assert status_of(site, ADA) is None
    assert site.smtp.messages == []


def test_config_file_subscribers_are_listed_and_never_changed(site: WebSite) -> None:
    for action in ("remove", "suspend"):
        result = paperbot(site, action, FILE_ONE)
        assert result.returncode == 2
        line = one_line(result)
        assert "config file, which wins" in line
        assert str(site.config_path) in line
    added = paperbot(site, "add", FILE_ONE, "--keyword", "x", "--confirm")
    assert added.returncode == 2
    listed = paperbot(site, "list", "--origin", "config", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert [(s["email"], s["origin"], s["status"]) for s in data["subscribers"]] == [
        (FILE_ONE, "config", "active")
    ]
    assert data["subscribers"][0]["keywords"] == ["diffusion"]


def test_list_show_remove_and_unknown_addresses(site: WebSite) -> None:
    assert paperbot(site, "add", ADA, "--keyword", "grokking", "--confirm").returncode == 0
    assert paperbot(site, "add", BOB, "--author", "G. Lajoie").returncode == 0
    table = paperbot(site, "list")
    assert table.returncode == 0, table.stderr
    assert "3 subscribers: 2 active, 1 pending; 1 from the config file, 2 from the store" in (
        table.stdout
    )
    pending = json.loads(paperbot(site, "list", "--status", "pending", "--json").stdout)
    assert [s["email"] for s in pending["subscribers"]] == [BOB]
    assert pending["counts"] == {"total": 1, "status": {"pending": 1}, "origin": {"web": 1}}
    shown = paperbot(site, "show", ADA)
    assert shown.returncode == 0, shown.stderr
    assert "keyword: grokking" in shown.stdout
    assert "status: active" in shown.stdout
    assert "pending digests: 0" in shown.stdout
    assert paperbot(site, "remove", ADA).returncode == 0
    assert status_of(site, ADA) == "removed"
    for action in ("show", "remove", "suspend"):
        unknown = paperbot(site, action, "nobody@example.org")
        assert unknown.returncode == 2
        assert "no subscriber nobody@example.org" in one_line(unknown)


def test_suspend_then_unsuspend_clears_the_bounce_count(site: WebSite) -> None:
    assert paperbot(site, "add", ADA, "--keyword", "grokking", "--confirm").returncode == 0
    with site.store() as store:
        store.db.execute("UPDATE subscribers SET hard_bounces = 3 WHERE email = ?", (ADA,))
    assert paperbot(site, "suspend", ADA).returncode == 0
    assert status_of(site, ADA) == "suspended"
    assert "hard bounces in a row: 3" in paperbot(site, "show", ADA).stdout
    assert paperbot(site, "unsuspend", ADA).returncode == 0
    assert status_of(site, ADA) == "active"
    assert "hard bounces in a row: 0" in paperbot(site, "show", ADA).stdout
    twice = paperbot(site, "unsuspend", ADA)
    assert twice.returncode == 2
    assert "is active: nothing to do" in one_line(twice)


def test_an_import_with_bad_rows_names_each_line_and_imports_nothing(
    site: WebSite, tmp_path: Path
) -> None:
    rows = tmp_path / "list.csv"
    rows.write_text(
        HEADER
        + "good@example.org,grokking;diffusion,,cs.LG,,weekly,07:00,Europe/Paris\n"  # line 2
        + "not-an-address,x,,,,,,\n"  # line 3
        + 'quoted@example.org,"two\nlines AND (",,,,,,\n'  # lines 4-5
        + "GOOD@example.org,x,,,,,,\n"  # line 6: the same address as line 2
        + f"{FILE_ONE},x,,,,,,\n"  # line 7
        + "late@example.org,x,,,,hourly,,\n"  # line 8
        + "cats@example.org,x,,cs.LG stat.ML,,,,\n"  # line 9: categories are ;-separated
        + "fine@example.org,x,,,,,,\n",
        encoding="utf-8",
    )
    result = paperbot(site, "import", str(rows))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ")[2] for line in lines[:-1]] == [
        "line 3",
        "line 4",
        "line 6",
        "line 7",
        "line 8",
        "line 9",
    ], result.stderr
    assert "email" in lines[0]
    assert "is also on line 2" in lines[2]
    assert "config file, which wins" in lines[3]
    assert "frequency" in lines[4]
    assert "not an arXiv category" in lines[5]
    assert lines[-1].endswith("6 bad rows: nothing imported")
    with site.store() as store:
        assert [e.subscriber.email for e in store.subscribers.roster(origin="web")] == []
    assert site.smtp.messages == []


def test_import_mails_each_new_address_and_export_round_trips(
    site: WebSite, tmp_path: Path
) -> None:
    rows = tmp_path / "list.csv"
    rows.write_text(
        HEADER
        + "one@example.org,grokking;sparse coding,G. Lajoie,cs.LG;stat.ML,survey,weekly,07:00,"
        "Europe/Paris\n"
        + "two@example.org,diffusion,,,,daily,,\n"
        + "\n"  # blank lines are skipped
        + "three@example.org,,Ada Lovelace,,,daily,18:30,Asia/Tokyo\n",
        encoding="utf-8",
    )
    imported = paperbot(site, "import", str(rows))
    assert imported.returncode == 0, imported.stderr
    assert "3 added (pending)" in imported.stdout
    for email in ("one@example.org", "two@example.org", "three@example.org"):
        assert status_of(site, email) == "pending"
        assert len(site.mails_to(email)) == 1
    page = site.client().get(site.link_in(site.mails_to("one@example.org")[0], "confirm"))
    assert page.status_code == 200
    # only active store subscribers are exported: the list owner's consented list
    exported = tmp_path / "out.csv"
    assert paperbot(site, "export", str(exported)).returncode == 0
    with exported.open(encoding="utf-8", newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row == {
        "email": "one@example.org",
        "keywords": "grokking;sparse coding",
        "authors": "G. Lajoie",
        "categories": "cs.LG;stat.ML",
        "exclude": "survey",
        "frequency": "weekly",
        "send_at": "07:00",
        "timezone": "Europe/Paris",
        "weekday": "monday",
    }


def test_export_then_import_into_a_new_store_gives_the_same_subscribers(
    site: WebSite, tmp_path: Path
) -> None:
    for email, extra in ((ADA, ["--category", "cs.LG"]), (BOB, ["--exclude", "survey"])):
        added = paperbot(site, "add", email, "--keyword", "grokking", *extra, "--confirm")
        assert added.returncode == 0, added.stderr
    exported = tmp_path / "out.csv"
    assert paperbot(site, "export", str(exported)).returncode == 0
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"database": str(tmp_path / "other.db")}), encoding="utf-8")
    result = run_paperbot(other, "subscribers", "import", str(exported), "--confirm")
    assert result.returncode == 0, result.stderr
    with site.store() as store:
        before = [e.subscriber for e in store.subscribers.roster("active", "web")]
    with Store.open(tmp_path / "other.db") as store:
        after = [e.subscriber for e in store.subscribers.roster("active", "web")]
    assert len(before) == 2
    assert after == before
    again = tmp_path / "again.csv"
    assert run_paperbot(other, "subscribers", "export", str(again)).returncode == 0
    assert again.read_bytes() == exported.read_bytes()


def test_without_base_url_or_secret_the_opt_in_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "paperbot.yaml"
    config.write_text(yaml.safe_dump({"database": str(tmp_path / "p.db")}), encoding="utf-8")
    result = run_paperbot(config, "subscribers", "add", ADA, "--keyword", "x")
    assert result.returncode == 2
    assert "base_url" in one_line(result)
    monkeypatch.delenv("PAPERBOT_SECRET_KEY")
    config.write_text(
        yaml.safe_dump({"database": str(tmp_path / "p.db"), "base_url": "https://a.example"}),
        encoding="utf-8",
    )
    result = run_paperbot(config, "subscribers", "add", ADA, "--keyword", "x")
    assert result.returncode == 2
    assert "PAPERBOT_SECRET_KEY" in one_line(result)


# --- the web limits of the config -----------------------------------------------------------


def test_the_configs_web_limits_hold_in_the_running_app(
    web_site_factory: Callable[..., WebSite],
) -> None:
    site = web_site_factory(web={"mails_per_client": 2, "previews_per_client": 1})
    client = site.client()
    answers = [sign_up(client, f"u{i}@example.org", keywords="x").status_code for i in range(3)]
    assert answers == [200, 200, 429]
    fields = {**form_fields(client.get("/").text), "keywords": "diffusion"}
    assert [client.post("/preview", data=fields).status_code for _ in range(2)] == [200, 429]


def test_the_configs_mails_per_address_holds(web_site_factory: Callable[..., WebSite]) -> None:
    site = web_site_factory(web={"mails_per_address": 1})
    assert sign_up(site.client(), ADA, keywords="x").status_code == 200
    assert submit(site.client(), "/link", email=ADA).status_code == 429


def test_the_configs_confirmation_window_is_the_apps_and_the_clis(
    web_site_factory: Callable[..., WebSite],
) -> None:
    site = web_site_factory(web={"confirm_hours": 1})
    assert sign_up(site.client(), ADA, keywords="x").status_code == 200
    assert "it expires in 1 hour" in body_text(site.mails_to(ADA)[0])
    assert paperbot(site, "add", BOB, "--keyword", "x").returncode == 0
    assert "it expires in 1 hour" in body_text(site.mails_to(BOB)[0])
    answer = site.client().get(f"/confirm/{old_token('confirm', ADA, age=2 * 3600)}")
    assert answer.status_code == 410


@pytest.mark.parametrize(
    ("web", "problem"),
    [
        ({"mails_per_client": 0}, "web.mails_per_client"),
        ({"previews_per_client": 10**7}, "web.previews_per_client"),
        ({"confirm_hours": 0}, "web.confirm_hours"),
        ({"confirm_hours": 24 * 365}, "web.confirm_hours"),
        ({"mails_per_hour": 3}, "web.mails_per_hour: unknown key"),
    ],
)
def test_web_limits_out_of_bounds_are_one_config_error(web: dict[str, int], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump({"web": web}))
    assert str(caught.value).startswith(problem)


def test_check_config_shows_the_web_limits_and_their_defaults(tmp_path: Path) -> None:
    config = tmp_path / "paperbot.yaml"
    config.write_text(yaml.safe_dump({"web": {"mails_per_address": 2}}), encoding="utf-8")
    result = run_paperbot(config, "check-config")
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("web:")]
    assert "20 sign-up/link mails per client network, 2 per address, 300 previews" in line
    assert "confirmation links work 48 hours" in line


def test_an_opt_in_mail_that_cannot_go_leaves_the_address_pending_and_add_retries(
    site: WebSite,
) -> None:
    site.smtp.stop()
    try:
        failed = paperbot(site, "add", ADA, "--keyword", "grokking")
    finally:
        site.smtp.start()
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert f"opt-in mails stopped at {ADA}" in failed.stdout
    assert status_of(site, ADA) == "pending"
    again = paperbot(site, "add", ADA, "--keyword", "grokking")
    assert again.returncode == 0, again.stderr
    assert len(site.mails_to(ADA)) == 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read"),
        (b"email,keywords\xff\n", "is not UTF-8 text"),  # hand-made: a Latin-1 byte
        (b"email,keywords\nada@example.org,x\n", "line 1: the header must name"),
        (HEADER.encode() + b"ada@example.org,x\n", "line 2: 2 cells, the header has 8"),
    ],
)
def test_a_file_that_is_not_the_csv_is_refused_in_a_line(
    site: WebSite, tmp_path: Path, content: bytes | None, problem: str
) -> None:
    rows = tmp_path / "list.csv"
    if content is not None:
        rows.write_bytes(content)
    result = paperbot(site, "import", str(rows), "--confirm")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    first, last = result.stderr.strip().splitlines()
    assert problem in first
    assert last.endswith("a bad row: nothing imported")
