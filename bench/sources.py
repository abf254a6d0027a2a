"""Benchmark of the page and API parsers (not a test): how long big real-sized documents take.

    .venv/bin/python bench/sources.py [--repeat 5]

Builds, from the test fixtures, documents the size of the real ones: a Hugging Face trending
page of ~1.5 MB (50 items of 150 authors, every item's cards twice, like the 2026 capture),
the same items as an API answer, a lab publications page of 200 entries, an alphaXiv feed
page of 100 papers and a bioRxiv details page of 30 records. Prints size and median parse time.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.ingest.sources.alphaxiv import AlphaxivOptions, AlphaxivSource
from bot.ingest.sources.biorxiv import BiorxivOptions, BiorxivSource
from bot.ingest.sources.html import HtmlOptions, HtmlSource
from bot.ingest.sources.huggingface import HuggingfaceOptions, HuggingfaceSource

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
sys.path.insert(0, str(FIXTURES / "huggingface"))

from make_pages import page  # noqa: E402

MILA = HtmlOptions(
    url="https://mila.quebec/en/research/publications",
    item="article.publication-card",
    title=".publication-card__title",
    authors=".publication-card__authors a, .publication-card__authors .author-list",
    abstract=".publication-card__abstract",
    date="time",
    remove=["button.see-more"],
    next="a[rel=next]",
)


def hf_items(count: int, authors: int) -> list[dict[str, object]]:
    """`count` API items with `authors` authors each (distinct ids), from the written fixture."""
    base = json.loads(
        (FIXTURES / "huggingface/api_daily_papers_2024-11-28_handwritten.json").read_text()
    )
    items = []
    for n in range(count):
        item = copy.deepcopy(base[n % len(base)])
        paper = item["paper"]
        paper["id"] = f"2411.{18000 + n:05d}"
        paper["authors"] = [
            {"_id": f"{n:08x}{a:016x}", "name": f"Author {a} of {n}", "hidden": False}
            for a in range(authors)
        ]
        items.append(item)
    return items


def lab_page(entries: int) -> bytes:
    """The Mila-like page with its entries repeated to `entries`."""
    html = (FIXTURES / "html/mila_publications_page0_handwritten.html").read_text()
    start = html.index("      <article")
    end = html.rindex("</article>") + len("</article>\n")
    block = html[start:end]
    cards = [
        block.replace("publications/", f"publications/{n}-")
        .replace("</a></h2>", f" (part {n})</a></h2>")
        .replace("2411.17792", f"2411.{20000 + n}")
        .replace("10.1101/456574", f"10.1101/{456000 + n}")
        for n in range(entries // 3)
    ]
    return (html[:start] + "".join(cards) + html[end:]).encode()


def timed(label: str, data: bytes, parse: Callable[[bytes], int], repeat: int) -> None:
    """Print the document's size, the papers read and the median parse time."""
    times = []
    count = 0
    for _ in range(repeat):
        started = time.perf_counter()
        count = parse(data)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(f"{label:<34} {len(data) / 1e6:6.2f} MB  {count:4d} papers  {median * 1000:8.1f} ms")


def main() -> None:
    """Build the documents and time each parser."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat

    items = hf_items(50, authors=150)
    hf_page = page(items, "2026-10-07").encode()
    hf_api = json.dumps(items).encode()
    hf = HuggingfaceSource()
    hf_options = HuggingfaceOptions()
    url = "https://huggingface.co/papers/trending"
    timed(
        "huggingface page (50 items)",
        hf_page,
        lambda b: len(hf.parse(b, url, hf_options).papers),
        repeat,
    )
    timed(
        "huggingface API (50 items)",
        hf_api,
        lambda b: len(hf.parse(b, url, hf_options).papers),
        repeat,
    )

    lab = lab_page(200)
    timed(
        "html lab page (200 entries)",
        lab,
        lambda b: len(HtmlSource().parse(b, MILA.url, MILA).papers),
        repeat,
    )

    record = json.loads((FIXTURES / "alphaxiv/feed_hot_7days_page0_handwritten.json").read_text())[
        "papers"
    ][0]
    feed = {
        "page": 0,
        "papers": [dict(record, universal_paper_id=f"2411.{17000 + n:05d}") for n in range(100)],
    }
    ax = json.dumps(feed).encode()
    ax_url = "https://api.alphaxiv.org/papers/v3/feed?pageNum=0&pageSize=100"
    timed(
        "alphaxiv feed (100 papers)",
        ax,
        lambda b: len(AlphaxivSource().parse(b, ax_url, AlphaxivOptions()).papers),
        repeat,
    )

    bx_page = json.loads(
        (FIXTURES / "biorxiv/details_2018-10-29_2018-10-31_cursor0_handwritten.json").read_text()
    )
    real = bx_page["collection"][1]
    bx_page["collection"] = [dict(real, doi=f"10.1101/{456000 + n}") for n in range(30)]
    bx = json.dumps(bx_page).encode()
    bx_url = "https://api.biorxiv.org/details/biorxiv/2018-10-29/2018-10-31/0/json"
    timed(
        "biorxiv details (30 records)",
        bx,
        lambda b: len(BiorxivSource().parse(b, bx_url, BiorxivOptions()).papers),
        repeat,
    )


if __name__ == "__main__":
    main()
