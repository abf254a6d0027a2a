"""The renderer's per-run caches: one owner makes them all, one clear() forgets them all."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from datetime import UTC, datetime

import bot.mail
import bot.mail.pieces
from bot.mail.caches import CACHES, PaperTable, Table
from bot.mail.mime import build_message
from bot.mail.pieces import PIECES_CACHE, entry_pieces
from bot.mail.render import render_digest
from bot.models import Digest, DigestEntry, Paper, Reason, Subscriber

#: not per-run caches: built once per process from the package's own files, or from the
#: config (a link secret, the sender's own addresses), holding nothing of a run's papers
PROCESS_CACHES = {
    "bot.mail.templates._environment",
    "bot.mail.templates._template",
    "bot.mail.templates._inliner",
    "bot.mail.templates._css",
    "bot.mail.templates._styled_tags",
    "bot.mail.links._serializer",
    "bot.mail.senders.base._parsed_addresses",
}


def mail_modules() -> Iterator[object]:
    """Every module of bot.mail (the senders included), imported."""
    for info in pkgutil.walk_packages(bot.mail.__path__, "bot.mail."):
        yield importlib.import_module(info.name)


def caches_in(module: object) -> list[tuple[str, object]]:
    """The module's module-level caches: memoized functions and tables defined there."""
    found = []
    for name, value in vars(module).items():
        memoized = hasattr(value, "cache_clear") and getattr(value, "__module__", None) == getattr(
            module, "__name__", None
        )
        if memoized or isinstance(value, (Table, PaperTable)):
            found.append((name, value))
    return found


def test_every_cache_of_the_mail_modules_is_made_by_the_one_owner() -> None:
    caches = [
        (f"{getattr(module, '__name__', '?')}.{name}", value)
        for module in mail_modules()
        for name, value in caches_in(module)
    ]
    assert len(caches) > 20, "the renderer's caches were found"
    stray = [name for name, cache in caches if not CACHES.owns(cache)]
    assert sorted(stray) == sorted(PROCESS_CACHES)


def digest() -> Digest:
    """A digest of one paper matched by a keyword and a followed author."""
    paper = Paper(
        id="2411.00001",
        title="Neural collapse in transformers",
        authors=("Ada Lovelace", "Alan Turing"),
        abstract="We observe neural collapse late in training.",
        url="https://arxiv.org/abs/2411.00001",
    )
    reasons = (
        Reason("keyword", "neural collapse", ("neural collapse",)),
        Reason("author", "Ada Lovelace", ("Ada Lovelace",)),
    )
    return Digest(Subscriber("ada@example.org"), (DigestEntry(paper, reasons),), "<d@e.org>")


def message_bytes() -> bytes:
    """The digest's email as sent (its Date fixed)."""
    rendered = render_digest(digest(), unsubscribe_url="https://p.example.org/unsubscribe/t")
    return build_message(
        rendered,
        sender="paperbot <bot@example.org>",
        recipient="ada@example.org",
        message_id="<d@example.org>",
        date=datetime(2024, 11, 28, 7, 0, tzinfo=UTC),
        list_id="paperbot <paperbot.example.org>",
    ).as_bytes()


def test_clear_forgets_every_cached_value_and_rendering_again_gives_the_same_message() -> None:
    first = message_bytes()
    assert CACHES.cached() > 10, "rendering filled the caches"
    CACHES.clear()
    assert CACHES.cached() == 0
    again = message_bytes()
    assert again.replace(boundary(again), boundary(first)) == first, "all but the boundary"


def boundary(raw: bytes) -> bytes:
    """The multipart boundary of a message (random: it differs between two builds)."""
    return raw.split(b'boundary="', 1)[1].split(b'"', 1)[0]


def test_limit_entries_shrinks_the_entry_caches_at_once_and_from_then_on() -> None:
    reasons = digest().entries[0].reasons
    papers = [DigestEntry(Paper(id=f"2411.{n:05d}", title=f"Paper {n}"), reasons) for n in range(5)]
    CACHES.clear()
    try:
        for entry in papers:
            entry_pieces(entry)
        CACHES.limit_entries(2)
        pieces = bot.mail.pieces._PIECES
        assert len(pieces.table) == 2
        for entry in papers:
            entry_pieces(entry)
        assert len(pieces.table) == 2
        CACHES.limit_entries(None)
        assert pieces.table.size == PIECES_CACHE
    finally:
        CACHES.limit_entries(None)
        CACHES.clear()
