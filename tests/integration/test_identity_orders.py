"""One paper whatever order its sources arrive in, through `paperbot once`: a real HTTP
server serves the arXiv feed (real capture, the entry carries the journal DOI), the
journal's feed (the DOI under another title) and a lab page (the title only); a real SMTP
server receives the digests; the store is the real SQLite file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.store.store import Store
from tests.httpserver import LocalHTTPServer
from tests.integration.test_once import mails_to, run, smtp_section, text_part, write_config
from tests.unit.test_store_identity import (
    ADA,
    ARXIV_TITLE,
    FEEDS,
    LAB_TITLE,
    ORDERS,
    TITLES,
    assert_one_paper_with_every_source,
    first_pair_shares_nothing,
)


def source(name: str, server: LocalHTTPServer) -> dict[str, Any]:
    """The config entry of one of the three sources, reading its file from the server."""
    kind, path, options = FEEDS[name]
    return {"name": name, "kind": kind, "url": server.url(path), **options}


def configure(tmp_path: Path, server: LocalHTTPServer, smtp: Any, names: Sequence[str]) -> Path:
    """A config with these sources, in this order, and Ada."""
    return write_config(
        tmp_path,
        sources=[source(name, server) for name in names],
        smtp=smtp_section(smtp),
        subscribers=[{"email": ADA.email, "keywords": list(ADA.keywords)}],
    )


def delivered_titles(smtp: Any) -> list[str]:
    """Every title of this paper in every digest Ada received, in any spelling."""
    return [
        line
        for mail in mails_to(smtp, ADA.email)
        for line in text_part(mail).splitlines()
        if line in TITLES
    ]


def assert_store_holds_one_paper(config: Path) -> None:
    """Read the database file the runs wrote."""
    store = Store.open(config.parent / "paperbot.db")
    try:
        assert_one_paper_with_every_source(store)
    finally:
        store.close()


@pytest.mark.parametrize("order", ORDERS, ids="-".join)
def test_three_sources_in_one_run_mail_the_paper_once(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any, order: tuple[str, ...]
) -> None:
    config = configure(tmp_path, http_server, smtp_server, order)
    assert run(config, "once") == 0
    assert delivered_titles(smtp_server) == [ARXIV_TITLE], "once, under arXiv's title"
    assert_store_holds_one_paper(config)
    assert run(config, "once") == 0
    assert delivered_titles(smtp_server) == [ARXIV_TITLE], "and never again"


@pytest.mark.parametrize(
    "order",
    [("arxiv", "journal", "lab"), ("journal", "lab", "arxiv")],
    ids=["arxiv-with-doi-first", "doi-and-title-before-arxiv"],
)
def test_sources_added_run_by_run_never_mail_the_paper_again(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: Any, order: tuple[str, ...]
) -> None:
    for count in range(1, len(order) + 1):
        config = configure(tmp_path, http_server, smtp_server, order[:count])
        assert run(config, "once") == 0
    assert_store_holds_one_paper(config)
    # journal then lab page: nothing links them before arXiv does, so two mails hold it
    expected = 2 if first_pair_shares_nothing(order, LAB_TITLE) else 1
    assert len(delivered_titles(smtp_server)) == expected
    assert run(config, "once") == 0
    assert len(delivered_titles(smtp_server)) == expected, "nothing more once they are one"
