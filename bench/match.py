"""Benchmark of the alert index (not a test): synthetic arXiv-like days x 100,000 subscribers.

    .venv/bin/python bench/match.py [--papers 2000 10000] [--subscribers 100000] [--seed 1]
                                    [--repeat 3] [--check 2500 | --check all]

Papers: ~10-word titles and ~180-word abstracts of filler words with Zipf-like
frequencies, plus 3-6 topic phrases per paper drawn from a pool with Zipf-like popularity
(so a few topics are in many papers); ~5 authors each from a pool where a few are
prolific. Subscribers: ~5 keyword phrases (some quoted, capitalised, hyphenated, a
prefix, a boolean query, a title: scope) and ~3 followed authors (some as "F. Last" or
"Last, First") drawn with the same kind of popularity; some restrict categories or
exclude a phrase. Prints index build time, match times, match counts, peak memory
(max RSS).

A run is what the daily cycle does once: build a fresh index, then match each day on it
(the first day's match is that index's first: its finder has read no paper yet). There
are `--repeat` runs; each figure is printed for every run, with the best (noise from a
shared machine only ever adds time) and the *cold* one, run 1, in a fresh process (the
parser's and folding's caches empty). Then the first day is matched once more on the
last index, whose finder caches are filled: what a warm cache would give, shown apart.

Then the index is checked against the plain per-subscriber evaluator
(`bot.alerts.reference`) on the whole first day: `--check` subscribers spread evenly over
all of them (every one with `--check all`), each against every paper.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from itertools import accumulate
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.alerts.index import AlertIndex
from bot.alerts.reference import reference_matches
from bot.models import Match, Paper, Subscriber

VOCABULARY = 20_000
TOPICS = 30_000
AUTHORS = 200_000
T = TypeVar("T")
CATEGORIES = ["cs.LG", "cs.CV", "cs.CL", "cs.AI", "stat.ML", "cs.RO", "math.OC", "q-bio.NC"]
FIRST = (
    "Guillaume Yoshua Samy Rémy Ana María José Wei Li Xin Yu Jing Hao Chen Ming Olga Ivan"
    " Sofia Lukas Zoë Hélène François Jürgen Søren Łukasz Ahmed Fatima Priya Arjun Kenji"
    " Yuki Min-jun Seo-yeon Oriol Geoffrey Yann Emma Noah Liam Mia Lucas Chloé Mateo Ines"
).split()
LAST = (
    "Lajoie Bengio Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He"
    " Lin Smith Johnson Müller Schmidt García Martínez Rossi Dubois Nguyen Kim Park Lee"
    " Suzuki Tanaka Kowalski Novák Ivanov Petrov Singh Kumar Sharma Das Silva Santos Costa"
    " Hinton LeCun Vinyals Pérez Gómez Jansen de-Vries Andersen Nielsen Virtanen Öztürk"
).split()


def zipf_weights(n: int, shift: float, power: float = 1.0) -> list[float]:
    """Cumulative Zipf–Mandelbrot weights 1/(rank+shift)^power for random.choices."""
    return list(accumulate(1.0 / (rank + shift) ** power for rank in range(1, n + 1)))


def make_words(rng: random.Random, count: int) -> list[str]:
    """Distinct pronounceable words, most frequent first."""
    onsets = [*"bcdfghjklmnprstvz", "br", "ch", "cr", "gr", "pl", "qu", "sh", "st", "th", "tr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou"]
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        syllables = rng.choice((1, 2, 2, 3, 3, 4))
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables))
        word += rng.choice(("", "", "n", "s", "r", "l", "x", "m"))
        if word not in seen and len(word) > 2:
            seen.add(word)
            out.append(word)
    return out


class World:
    """The shared vocabulary, topics and people that papers and subscribers draw from."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = make_words(rng, VOCABULARY)
        self.word_weights = zipf_weights(VOCABULARY, 2.7, 1.07)
        content = self.words[1000:]  # topic words are not the filler's commonest words
        self.topics = [
            tuple(rng.sample(content, rng.choice((1, 2, 2, 2, 3, 3)))) for _ in range(TOPICS)
        ]
        self.paper_topic_weights = zipf_weights(TOPICS, 30.0)
        self.subscriber_topic_weights = zipf_weights(TOPICS, 1000.0)
        self.people = self.make_people()
        self.paper_author_weights = zipf_weights(AUTHORS, 2000.0)
        self.follow_weights = zipf_weights(AUTHORS, 300.0)

    def make_people(self) -> list[tuple[str, str, float]]:
        """Authors: (first, last, how a follower writes the name); surnames are Zipf-like."""
        rng = self.rng
        made = [w.capitalize() for w in make_words(rng, 40_000)]
        firsts, lasts = FIRST + made[:5_000], LAST + made[5_000:]
        first_weights = zipf_weights(len(firsts), 20.0)
        last_weights = zipf_weights(len(lasts), 10.0)
        return [
            (first, last, rng.random())
            for first, last in zip(
                rng.choices(firsts, cum_weights=first_weights, k=AUTHORS),
                rng.choices(lasts, cum_weights=last_weights, k=AUTHORS),
                strict=True,
            )
        ]

    def filler(self, count: int) -> list[str]:
        """Filler words with Zipf-like frequencies."""
        return self.rng.choices(self.words, cum_weights=self.word_weights, k=count)

    def written(self, topic: tuple[str, ...], title_case: bool) -> str:
        """A topic phrase as a paper writes it: sometimes hyphenated or capitalised."""
        words = [w.capitalize() for w in topic] if title_case else list(topic)
        if len(words) > 1 and self.rng.random() < 0.2:
            return "-".join(words)
        return " ".join(words)


def make_paper(world: World, number: int) -> Paper:
    """One synthetic arXiv-like paper."""
    rng = world.rng
    topics = rng.choices(world.topics, cum_weights=world.paper_topic_weights, k=rng.randint(3, 6))
    title = world.filler(rng.randint(5, 9))
    title.insert(rng.randrange(len(title) + 1), world.written(topics[0], title_case=True))
    abstract = world.filler(rng.randint(160, 200))
    for topic in [*topics, *topics[:2]]:
        abstract.insert(rng.randrange(len(abstract) + 1), world.written(topic, title_case=False))
    for i in range(12, len(abstract), 15):
        abstract[i] += "."
    people = rng.choices(world.people, cum_weights=world.paper_author_weights, k=rng.randint(1, 9))
    return Paper(
        id=f"2501.{number:05d}",
        title=" ".join(w.capitalize() for w in title),
        abstract=" ".join(abstract).capitalize(),
        authors=tuple(dict.fromkeys(f"{first} {last}" for first, last, _ in people)),
        categories=tuple(rng.sample(CATEGORIES, rng.choice((1, 1, 2, 3)))),
        sources=("arxiv",),
        votes=rng.choice((None, None, 0, 1, 3, 12, 40)),
    )


def keyword(world: World, topic: tuple[str, ...]) -> str:
    """A keyword entry as a subscriber writes it."""
    rng = world.rng
    roll = rng.random()
    text = " ".join(topic)
    if roll < 0.05 and len(topic) == 1 and len(text) >= 7:
        return f"{text[:-2]}*"  # a stem, as in transform*
    if roll < 0.10:
        first, second = rng.choice(world.words[1000:4000]), rng.choice(world.words[1000:4000])
        return f'"{text}" AND ({first} OR {second})'
    if roll < 0.13:
        return f"{text} -{rng.choice(world.words[1000:4000])}"
    if roll < 0.16:
        return f"title:{text}"
    if roll < 0.26:
        return f'"{text}"'
    if roll < 0.36:
        return text.title()
    if roll < 0.42 and len(topic) > 1:
        return "-".join(topic)
    return text


def follow(world: World, person: tuple[str, str, float]) -> str:
    """An author follow as a subscriber writes it: full name, initial, or comma form."""
    first, last, style = person
    if style < 0.2:
        return f"{first[0]}. {last}"
    if style < 0.3:
        return f"{last}, {first}"
    return f"{first} {last}"


def make_subscriber(world: World, number: int) -> Subscriber:
    """One synthetic subscriber with ~5 phrases and ~3 follows."""
    rng = world.rng
    topics = rng.choices(
        world.topics, cum_weights=world.subscriber_topic_weights, k=rng.randint(3, 7)
    )
    people = rng.choices(world.people, cum_weights=world.follow_weights, k=rng.randint(1, 5))
    roll = rng.random()
    return Subscriber(
        email=f"user{number}@example.org",
        keywords=tuple(dict.fromkeys(keyword(world, t) for t in topics)),
        authors=tuple(dict.fromkeys(follow(world, p) for p in people)),
        categories=tuple(rng.sample(CATEGORIES, 2)) if roll < 0.15 else (),
        exclude=(" ".join(rng.choice(world.topics[:2000])),) if 0.15 <= roll < 0.25 else (),
    )


def max_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(action: Callable[[], T]) -> tuple[float, T]:
    """Seconds that `action` took (after a full collection), and what it returned."""
    gc.collect()
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def timed_runs(
    subscribers: list[Subscriber], days: dict[int, list[Paper]], repeat: int
) -> tuple[list[float], dict[int, list[float]], AlertIndex]:
    """`repeat` runs of a fresh build then each day's match on it: the seconds of each
    build, of each day's matches, and the last index."""
    builds: list[float] = []
    matches: dict[int, list[float]] = {n: [] for n in days}
    index = None
    for _ in range(repeat):
        index = None  # the previous one is freed first: one index in memory at a time
        seconds, built = timed(lambda: AlertIndex.build(subscribers))
        builds.append(seconds)
        for n, papers in days.items():
            matches[n].append(timed(partial(built.match, papers))[0])
        index = built
        del built  # only `index` holds it: freed before the next build
    assert index is not None
    return builds, matches, index


def spread(times: list[float]) -> str:
    """Best of the runs and the cold one (run 1), and every run: a shared machine's noise
    only ever adds time."""
    runs = ", ".join(f"{t:.3f}" for t in times)
    return f"best {min(times):.3f} s, cold {times[0]:.3f} s (runs: {runs})"


def report_matches(label: str, result: dict[str, list[Match]], subscribers: int) -> None:
    """Print how many matches a day produced."""
    counts = [len(v) for v in result.values()]
    total = sum(counts)
    per_subscriber = counts + [0] * (subscribers - len(counts))
    print(
        f"{label}: {total:,} matches; {len(counts):,} subscribers reached;"
        f" per subscriber mean {total / subscribers:.1f}, median"
        f" {statistics.median(per_subscriber):.0f}, max {max(counts, default=0)}"
    )


def reference_check(
    subscribers: list[Subscriber], papers: list[Paper], result: dict[str, list[Match]], count: int
) -> None:
    """Check the index against the plain evaluator for `count` subscribers on every paper."""
    step = max(1, len(subscribers) // max(count, 1))
    sample = subscribers[::step][:count]
    start = time.perf_counter()
    expected = reference_matches(sample, papers)
    seconds = time.perf_counter() - start
    wrong = [s.email for s in sample if expected.get(s.email, []) != result.get(s.email, [])]
    compared = sum(len(result.get(s.email, [])) for s in sample)
    print(
        f"reference check: {len(sample):,} subscribers (1 in {step:,}) x {len(papers):,}"
        f" papers = {len(sample) * len(papers):,} pairs in {seconds:.0f} s"
        f" ({len(sample) * len(papers) / seconds:,.0f} pairs/s): ",
        end="",
    )
    print(
        f"index agrees ({compared:,} matches, each paper, reason, quote and score)"
        if not wrong
        else f"DIFFERS for {len(wrong)} subscribers, e.g. {wrong[:5]}"
    )


def main() -> None:
    """Generate, build, match, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--papers", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--check",
        type=lambda text: 1 << 62 if text == "all" else int(text),
        default=2500,
        help="subscribers checked against the reference, or all (0: none)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of build and match")
    args = parser.parse_args()

    start = time.perf_counter()
    world = World(random.Random(args.seed))
    subscribers = [make_subscriber(world, i) for i in range(args.subscribers)]
    days = {n: [make_paper(world, i) for i in range(n)] for n in args.papers}
    print(
        f"generated in {time.perf_counter() - start:.1f} s (seed {args.seed}); "
        f"max RSS {max_rss_mb():.0f} MB"
    )
    gc.collect()

    builds, matches, index = timed_runs(subscribers, days, args.repeat)
    print(f"index build: {spread(builds)} for {len(subscribers):,} subscribers")
    first = args.papers[0]
    for n, times in matches.items():
        print(f"{n:,} papers: match {spread(times)}, each the first of a fresh index")
    both = [b + m for b, m in zip(builds, matches[first], strict=True)]
    print(
        f"build + match of {first:,} papers: cold {both[0]:.3f} s (run 1);"
        f" best {min(builds) + min(matches[first]):.3f} s (best build + best match);"
        f" max RSS {max_rss_mb():.0f} MB"
    )

    for n, papers in days.items():
        seconds, result = timed(partial(index.match, papers))
        if n == first:
            print(f"{n:,} papers again on the last index (finder caches warm): {seconds:.3f} s")
        report_matches(f"{n:,} papers", result, len(subscribers))
        if args.check and n == first:
            reference_check(subscribers, papers, result, args.check)
        del result
        gc.collect()
    print(f"peak memory (max RSS, whole process incl. generated data): {max_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
