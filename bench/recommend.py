"""Benchmark of the recommendation model (not a test): quality on real arXiv days, and speed.

    .venv/bin/python bench/recommend.py [--listings PATH ...] [--seeds 10] [--draws 3]
    .venv/bin/python bench/recommend.py --speed [--subscribers 100000] [--seeds 10]
                                        [--papers 2000] [--repeat 3]

Listings are files or directories of real arXiv days, one file a day: the JSON lines that
bench/data ships (`*.jsonl`, `*.jsonl.gz`: id, title, abstract, categories, primary first;
see bench/data/PROVENANCE.md) or arXiv RSS/Atom feeds and API answers (`*.xml`, `*.rdf`),
read by paperbot's own arXiv parsers. Default: bench/data. The text model is fitted on
every listed paper, as the pipeline fits it on the store's papers.

Quality: for each category with at least `--seeds` papers of that primary category on at
least `--min-days` days (3; on bench/data: astro-ph.CO, astro-ph.GA, cs.AI, cs.CL, cs.CV),
a subscriber is seeded with `--seeds` papers of it from one day (drawn with a fixed seed;
every such day in turn, `--draws` draws each) and scored against every paper of the OTHER
days. A recommendation is relevant when its primary category is the seeds'.
Precision@5 and @10 (a list shorter than k counts its missing places as misses) per
category and averaged over them, against two baselines: random papers (fixed seed), and the
subscriber's keywords taken from the seeds' titles (their `--keywords` most frequent title
words, as keyword alerts matched by the real alert engine, best score first). Then the
floor: the same subscribers offered only the papers of other archives (cs for astro-ph
seeds, astro-ph for cs seeds): how many get anything at all.

Speed: `--subscribers` synthetic profiles, each liking `--seeds` papers drawn (fixed seed)
from the listed real papers, all scored against `--papers` real candidates (when the listings
hold fewer, they are repeated under new ids, each copy without one sentence of its
abstract, so that no two texts are the same). Prints the model fit and the scoring
separately: best and cold of `--repeat` timed runs, then one run under tracemalloc for the
extra peak memory the scoring allocates (numpy, scipy and Python objects alike).
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import random
import re
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.alerts.index import AlertIndex
from bot.ingest.sources.arxiv_api import ArxivApiOptions, ArxivApiSource
from bot.ingest.sources.arxiv_rss import ArxivRssOptions, ArxivRssSource
from bot.models import Paper, Subscriber
from bot.recommend.model import Example, TextModel, analyse, paper_text
from bot.recommend.scorer import Profile, Recommendation, recommend

DATA = Path(__file__).resolve().parent / "data"
CATEGORY = re.compile(r"[a-z-]+(\.[A-Za-z-]+)?")
LIST_URL = "https://export.arxiv.org/bench"


@dataclass(frozen=True)
class Day:
    """One listing: its name (the file's) and its papers (with abstract and a primary)."""

    name: str
    papers: list[Paper]


def read_jsonl(path: Path) -> list[Paper]:
    """Papers of one JSON-lines day; a line without id, title, abstract or category is
    skipped with one warning."""
    opener = gzip.open if path.suffix == ".gz" else open
    papers = []
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
                categories = tuple(c for c in row["categories"] if CATEGORY.fullmatch(c))
                paper = Paper(
                    id=str(row["id"]),
                    title=str(row["title"]),
                    abstract=str(row["abstract"]),
                    categories=categories,
                )
            except (ValueError, KeyError, TypeError) as error:
                print(f"warning: {path.name} line {number}: skipped ({error!r})")
                continue
            papers.append(paper)
    return papers


def read_feed(path: Path) -> list[Paper]:
    """Papers of one arXiv RSS/Atom feed or API answer, read by paperbot's parsers."""
    body = path.read_bytes()
    if b"export.arxiv.org/api" in body[:4000] or b"<opensearch:" in body[:4000]:
        listing = ArxivApiSource().parse(body, LIST_URL, ArxivApiOptions(url=LIST_URL))
    else:
        listing = ArxivRssSource().parse(body, LIST_URL, ArxivRssOptions(url=LIST_URL))
    return list(listing.papers)


def read_days(paths: Sequence[Path]) -> list[Day]:
    """Every listing under `paths`, one day per file, papers with an abstract and a primary
    category only (an id seen on an earlier day is that day's)."""
    files: list[Path] = []
    for path in paths:
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    seen: set[str] = set()
    days = []
    for path in files:
        if path.name.endswith((".jsonl", ".jsonl.gz")):
            papers = read_jsonl(path)
        elif path.suffix in (".xml", ".rdf", ".atom"):
            papers = read_feed(path)
        else:
            continue
        kept = [p for p in papers if p.abstract and p.categories and p.id not in seen]
        seen.update(p.id for p in kept)
        if kept:
            days.append(Day(path.name, kept))
    return days


def primary(paper: Paper) -> str:
    """A paper's primary category (listed first)."""
    return paper.categories[0]


def example(paper: Paper) -> Example:
    """The paper as a liked example."""
    return Example.of_paper(paper)


# ---------------------------------------------------------------------------- quality


@dataclass(frozen=True)
class Run:
    """One seeded subscriber: the category, the seed day and its seeds, the candidates."""

    category: str
    day: str
    seeds: list[Paper]
    candidates: list[Paper]


def runs(
    days: list[Day], seeds: int, draws: int, min_days: int, rng: random.Random
) -> Iterator[Run]:
    """Every (category, seed day, draw) of the categories with `seeds` papers on `min_days`
    days or more."""
    counts = [Counter(primary(p) for p in day.papers) for day in days]
    categories = sorted({c for count in counts for c, n in count.items() if n >= seeds})
    for category in categories:
        seed_days = [d for d, count in zip(days, counts, strict=True) if count[category] >= seeds]
        if len(seed_days) < max(2, min_days):
            continue
        for day in seed_days:
            own = sorted((p for p in day.papers if primary(p) == category), key=lambda p: p.id)
            others = [p for d in days if d is not day for p in d.papers]
            for _ in range(draws):
                yield Run(category, day.name, rng.sample(own, seeds), others)


def model_top(model: TextModel, run: Run, k: int) -> list[Recommendation]:
    """The model's top k for the run's subscriber."""
    profile = Profile(1, tuple(example(p) for p in run.seeds), (), frozenset(), k)
    return recommend(model, [profile], run.candidates)


def keyword_top(run: Run, k: int, keywords: int) -> list[str]:
    """The top k papers of the baseline subscriber whose keywords are the seeds' most
    frequent title words, matched by the real alert engine, best score first."""
    count = Counter(w for p in run.seeds for w in dict.fromkeys(analyse(p.title)))
    words = [w for w, _ in sorted(count.items(), key=lambda item: (-item[1], item[0]))]
    subscriber = Subscriber(email="bench@example.org", keywords=tuple(words[:keywords]))
    matches = AlertIndex.build([subscriber]).match(run.candidates).get(subscriber.email, [])
    ranked = sorted(matches, key=lambda m: (-m.score, m.paper_id))
    return [m.paper_id for m in ranked[:k]]


def precision(ids: Sequence[str], relevant: set[str], k: int) -> float:
    """Share of the first k places that hold a relevant paper (empty places are misses)."""
    return sum(1 for i in ids[:k] if i in relevant) / k


def quality(days: list[Day], args: argparse.Namespace) -> None:
    """Fit on every listed paper, score every run, print precision per category."""
    papers = [p for d in days for p in d.papers]
    print(
        f"{len(days)} days, {len(papers):,} papers: "
        + ", ".join(f"{d.name} ({len(d.papers)})" for d in days)
    )
    start = time.perf_counter()
    model = TextModel.fit([paper_text(p.title, p.abstract) for p in papers])
    print(f"model fit: {time.perf_counter() - start:.2f} s, {model.dimension:,} words")
    rng = random.Random(args.seed)
    table: dict[str, dict[str, list[float]]] = {}
    example_shown: Recommendation | None = None
    seeds_shown: Run | None = None
    scores: dict[bool, list[float]] = {True: [], False: []}
    floor_runs, floor_kept = 0, []
    for run in runs(days, args.seeds, args.draws, args.min_days, rng):
        relevant = {p.id for p in run.candidates if primary(p) == run.category}
        by_id = {p.id: p for p in run.candidates}
        top = model_top(model, run, 10)
        for r in top:
            scores[r.paper_id in relevant].append(r.score)
        ranked = {
            "model": [r.paper_id for r in top],
            "keywords": keyword_top(run, 10, args.keywords),
            "random": [p.id for p in rng.sample(run.candidates, 10)],
        }
        row = table.setdefault(run.category, {})
        for name, ids in ranked.items():
            for k in (5, 10):
                row.setdefault(f"{name}@{k}", []).append(precision(ids, relevant, k))
        if example_shown is None and top and primary(by_id[top[0].paper_id]) == run.category:
            example_shown, seeds_shown = top[0], run
        # the floor: offered only papers of other archives (astro-ph for cs seeds, cs for
        # astro-ph seeds), a subscriber should get little or nothing
        archive = run.category.split(".")[0]
        elsewhere = [p for p in run.candidates if primary(p).split(".")[0] != archive]
        floor_runs += 1
        floor_kept.append(len(model_top(model, replace(run, candidates=elsewhere), 5)))
    if not table:
        sys.exit(
            f"no category has {args.seeds} papers (--seeds) on {args.min_days} days (--min-days)"
        )
    report(table)
    print(
        f"\nfloor: offered only other archives' papers, {sum(1 for k in floor_kept if k)} of"
        f" {floor_runs} subscribers got any recommendation (of 5 places:"
        f" {sum(floor_kept) / max(1, 5 * floor_runs):.0%} filled)"
    )
    for label, values in (("relevant", scores[True]), ("other field", scores[False])):
        if values:
            print(
                f"model scores of its top 10, {label}: {len(values)} papers, median"
                f" {statistics.median(values):.3f}, 10th-90th percentile"
                f" {_quantile(values, 0.1):.3f}-{_quantile(values, 0.9):.3f}"
            )
    if example_shown and seeds_shown:
        paper = {p.id: p for p in seeds_shown.candidates}[example_shown.paper_id]
        print(
            f"\nexample ({seeds_shown.category}, seeds of {seeds_shown.day}):"
            f"\n  recommended {paper.id} [{primary(paper)}] {paper.title}"
            f"\n  score {example_shown.score:.3f}, because like: {example_shown.because}"
            f"\n  shared words: {', '.join(example_shown.shared)}"
        )


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile of values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(table: dict[str, dict[str, list[float]]]) -> None:
    """Print precision per category and averaged over categories."""
    columns = [f"{n}@{k}" for n in ("model", "keywords", "random") for k in (5, 10)]
    print(f"\n{'category':<14}{'runs':>5}  " + "  ".join(f"{c:>11}" for c in columns))
    means: dict[str, list[float]] = {c: [] for c in columns}
    for category, row in sorted(table.items()):
        values = [statistics.mean(row[c]) for c in columns]
        for c, v in zip(columns, values, strict=True):
            means[c].append(v)
        runs_done = len(row[columns[0]])
        print(f"{category:<14}{runs_done:>5}  " + "  ".join(f"{v:>11.3f}" for v in values))
    print(
        f"{'average':<14}{'':>5}  "
        + "  ".join(f"{statistics.mean(means[c]):>11.3f}" for c in columns)
    )


# ---------------------------------------------------------------------------- speed


def candidates_of(papers: list[Paper], count: int, rng: random.Random) -> list[Paper]:
    """`count` real papers; when there are fewer, copies under new ids, each without one
    (random) sentence of its abstract, so that every text differs."""
    out = list(papers[:count])
    copy = 0
    while len(out) < count:
        paper = papers[copy % len(papers)]
        sentences = paper.abstract.split(". ")
        if len(sentences) > 1:
            del sentences[rng.randrange(len(sentences))]
        out.append(
            replace(
                paper, id=f"{paper.id}-{copy // len(papers) + 1}", abstract=". ".join(sentences)
            )
        )
        copy += 1
    return out


def speed(days: list[Day], args: argparse.Namespace) -> None:
    """Time the fit, then the scoring of `--subscribers` profiles (best and cold of
    `--repeat` runs), then the extra peak memory of one scoring under tracemalloc."""
    papers = [p for d in days for p in d.papers]
    rng = random.Random(args.seed)
    candidates = candidates_of(papers, args.papers, rng)
    start = time.perf_counter()
    model = TextModel.fit([paper_text(p.title, p.abstract) for p in papers])
    fit = time.perf_counter() - start
    examples = [example(p) for p in papers]
    profiles = [
        Profile(
            n,
            liked := tuple(rng.sample(examples, args.seeds)),
            (),
            frozenset(e.key for e in liked),
            5,
        )
        for n in range(args.subscribers)
    ]
    print(
        f"{args.subscribers:,} profiles x {args.seeds} seeds (from {len(papers):,} real papers),"
        f" {len(candidates):,} candidates ({min(len(papers), args.papers):,} real"
        f"{', the rest copies' if args.papers > len(papers) else ''})"
    )
    print(f"model fit on {len(papers):,} papers: {fit:.2f} s, {model.dimension:,} words")
    times = []
    result: list[Recommendation] = []
    for _ in range(args.repeat):
        result = []
        gc.collect()
        start = time.perf_counter()
        result = recommend(model, profiles, candidates)
        times.append(time.perf_counter() - start)
    spread = ", ".join(f"{t:.2f}" for t in times)
    print(f"scoring: best {min(times):.2f} s, cold {times[0]:.2f} s (runs: {spread})")
    reached = len({r.subscriber_id for r in result})
    print(f"{len(result):,} recommendations for {reached:,} subscribers")
    del result
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    traced = recommend(model, profiles, candidates)
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    print(
        f"extra peak memory of one scoring (tracemalloc, result included):"
        f" {peak / 2**20:.0f} MB for {len(traced):,} recommendations"
    )


def main() -> None:
    """Read the listings, run the quality or the speed benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listings", type=Path, nargs="+", default=[DATA])
    parser.add_argument("--seeds", type=int, default=10, help="liked papers per subscriber")
    parser.add_argument("--draws", type=int, default=3, help="seed draws per category and day")
    parser.add_argument("--keywords", type=int, default=5, help="keywords of the baseline")
    parser.add_argument(
        "--min-days", type=int, default=3, help="days a category needs --seeds papers on"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--speed", action="store_true", help="the speed benchmark instead")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=2000, help="candidates (speed)")
    parser.add_argument("--repeat", type=int, default=3, help="timed scoring runs (speed)")
    args = parser.parse_args()
    days = read_days(args.listings)
    if not days:
        parser.error(f"no listing with papers under {', '.join(map(str, args.listings))}")
    (speed if args.speed else quality)(days, args)


if __name__ == "__main__":
    main()
