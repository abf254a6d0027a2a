"""Per-subscriber scoring: each profile's best candidate papers, each with why.

A profile with only liked papers is scored by the cosine of each candidate with the
centroid (mean) of the liked papers' vectors; one that also has papers marked "less like
this" by a logistic regression of liked against disliked papers and a background sample of
the corpus (as arxiv-sanity-lite does), the disliked papers weighing more than the sample.
Either way a candidate whose cosine with the liked centroid is below `MIN_SIMILARITY` is
never recommended: a subscriber gets nothing rather than papers that are not like theirs.
The same inputs give the same output, whatever order the candidates come in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix, vstack
from sklearn.linear_model import LogisticRegression

from bot.models import Paper
from bot.recommend.explain import shared_words, written_forms
from bot.recommend.model import Example, TextModel, paper_text

#: the least cosine between a candidate and a profile's liked centroid that is recommended.
#: On bench/recommend.py's days the top five of a 10-paper profile of its own field score
#: 0.2-0.5 and a paper of another field rarely above 0.15 (docs/performance.md)
MIN_SIMILARITY = 0.15
#: a "less like this" paper weighs this many background papers in the classifier
DISLIKED_WEIGHT = 20.0
#: the classifier's inverse regularisation strength (scikit-learn's C)
CLASSIFIER_C = 1.0
#: a background paper this close to a liked or disliked one is that paper: not a background
SAME_PAPER = 0.98

# Bounds on the work arrays of the centroid path (see `_groups` and `_centroid_scores`):
# a group's liked examples x candidates similarities, float32, are at most 4,096 x 2,000 x 4
# = 33 MB, and its examples' Gram matrix 4,096 x 4,096 x 4 = 67 MB
EXAMPLES_PER_GROUP = 4_096
# subscribers x candidates scores, float32: 4,096 x 2,000 x 4 = 33 MB
SUBSCRIBERS_PER_CHUNK = 4_096
# candidates per sparse product, so its sparse result stays a few tens of MB
CANDIDATES_PER_PRODUCT = 512


@dataclass(frozen=True, slots=True)
class Profile:
    """What a subscriber's recommendations learn from, and what they must not contain.

    `liked`: resolved seeds and papers marked "more like this"; `disliked`: papers marked
    "less like this"; `skip`: candidate paper ids never to recommend to them (already
    matched or sent, excluded, disliked, their seeds); `limit`: how many to keep.
    """

    subscriber_id: int
    liked: tuple[Example, ...]
    disliked: tuple[Example, ...] = ()
    skip: frozenset[str] = frozenset()
    limit: int = 5


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A paper recommended to a subscriber: the score it ranked by (the cosine with their
    liked centroid, or the classifier's probability when they disliked papers), the title of
    the liked paper it is most like, and up to five words the two share, most telling first."""

    subscriber_id: int
    paper_id: str
    score: float
    because: str
    shared: tuple[str, ...]


def recommend(
    model: TextModel, profiles: Iterable[Profile], candidates: Sequence[Paper]
) -> list[Recommendation]:
    """Each profile's best `limit` candidates, best first, profiles in the order given.

    Profiles without liked papers or with `limit` 0 cost nothing and get nothing.
    """
    pool = _Pool.of(model, candidates)
    wanted = [p for p in profiles if p.limit > 0 and p.liked]
    if not pool.papers or model.dimension == 0 or not wanted:
        return []
    found: dict[int, list[Recommendation]] = {}
    by_centroid = [(n, p) for n, p in enumerate(wanted) if not p.disliked]
    for n, recommendations in _by_centroid(model, by_centroid, pool):
        found[n] = recommendations
    for n, profile in enumerate(wanted):
        if profile.disliked:
            found[n] = _by_classifier(model, profile, pool)
    return [r for n in sorted(found) for r in found[n]]


@dataclass(frozen=True, eq=False)
class _Pool:
    """The candidates once each, ordered by paper id (so that their order given does not
    matter), their vectors, and how they write the model's words (made when first asked)."""

    papers: list[Paper]
    vectors: csr_matrix
    index: dict[str, int]
    vocabulary: npt.NDArray[np.str_]
    _forms: list[npt.NDArray[np.object_]] = field(default_factory=list)

    @classmethod
    def of(cls, model: TextModel, candidates: Sequence[Paper]) -> _Pool:
        """The pool of these candidates (the first of two papers with one id kept)."""
        unique: dict[str, Paper] = {}
        for paper in candidates:
            unique.setdefault(paper.id, paper)
        papers = [unique[key] for key in sorted(unique)]
        vectors = model.vectors([paper_text(p.title, p.abstract) for p in papers])
        return cls(papers, vectors, {p.id: n for n, p in enumerate(papers)}, model.words)

    @property
    def forms(self) -> npt.NDArray[np.object_]:
        """The model's words as these candidates write them (see `written_forms`)."""
        if not self._forms:
            texts = [paper_text(p.title, p.abstract) for p in self.papers]
            self._forms.append(written_forms(self.vocabulary, texts))
        return self._forms[0]

    def skipped(self, skip: frozenset[str]) -> list[int]:
        """The columns of the candidates in `skip` (walking the smaller of the two)."""
        if len(skip) <= len(self.index):
            return [self.index[key] for key in skip if key in self.index]
        return [n for key, n in self.index.items() if key in skip]


# ---------------------------------------------------------------------------- centroids


@dataclass(frozen=True, eq=False)
class _Group:
    """Consecutive profiles whose liked examples, `EXAMPLES_PER_GROUP` at most, are scored
    against the candidates together: their examples once each, and each profile's rows."""

    profiles: list[tuple[int, Profile]]
    examples: list[Example]
    rows: list[list[int]]


def _groups(profiles: list[tuple[int, Profile]]) -> Iterator[_Group]:
    """The profiles in groups of at most `EXAMPLES_PER_GROUP` distinct liked examples.

    centroid . candidate = mean over the liked examples of example . candidate, so the
    example x candidate similarities are computed once for a group and shared by all its
    subscribers: with 100,000 subscribers whose seeds come from a few thousand papers that
    is one group, and no subscriber's centroid (about 1,000 non-zero words) is ever kept.
    An example is known by its key: two with one key are one paper.
    """
    group: list[tuple[int, Profile]] = []
    examples: dict[str, int] = {}
    texts: list[Example] = []
    rows: list[list[int]] = []
    for n, profile in profiles:
        # a profile's liked papers may all be new: close the group before it could overflow
        if group and len(texts) + len(profile.liked) > EXAMPLES_PER_GROUP:
            yield _Group(group, texts, rows)
            group, examples, texts, rows = [], {}, [], []
        mine = []
        for example in profile.liked:
            row = examples.setdefault(example.key, len(texts))
            if row == len(texts):
                texts.append(example)
            mine.append(row)
        group.append((n, profile))
        rows.append(list(dict.fromkeys(mine)) if len(set(mine)) < len(mine) else mine)
    if group:
        yield _Group(group, texts, rows)


def _similarities(examples: csr_matrix, candidates: csr_matrix) -> npt.NDArray[np.float32]:
    """The dense example x candidate cosine matrix, built `CANDIDATES_PER_PRODUCT` candidates
    at a time so that no sparse intermediate product holds all pairs at once."""
    out = np.zeros((examples.shape[0], candidates.shape[0]), dtype=np.float32)
    for start in range(0, candidates.shape[0], CANDIDATES_PER_PRODUCT):
        part = candidates[start : start + CANDIDATES_PER_PRODUCT]
        out[:, start : start + part.shape[0]] = (examples @ part.T).toarray()
    return out


def _weights(rows: list[list[int]], examples: int) -> csr_matrix:
    """Subscriber x example weights: 1/k for each of a subscriber's k liked examples, so that
    weights @ similarities is each subscriber's centroid's dot product with every candidate."""
    counts = [len(r) for r in rows]
    data = np.repeat(1.0 / np.array(counts, dtype=np.float32), counts).astype(np.float32)
    indices = np.fromiter((i for r in rows for i in r), dtype=np.int32, count=sum(counts))
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    return csr_matrix((data, indices, indptr), shape=(len(rows), examples))


def _by_centroid(
    model: TextModel, profiles: list[tuple[int, Profile]], pool: _Pool
) -> Iterator[tuple[int, list[Recommendation]]]:
    """Each profile's recommendations by cosine with its liked centroid, in chunks."""
    for group in _groups(profiles):
        vectors = model.vectors([e.text for e in group.examples])
        similarity = _similarities(vectors, pool.vectors)
        gram = (vectors @ vectors.T).toarray()
        for start in range(0, len(group.profiles), SUBSCRIBERS_PER_CHUNK):
            chunk = group.profiles[start : start + SUBSCRIBERS_PER_CHUNK]
            weights = _weights(group.rows[start : start + SUBSCRIBERS_PER_CHUNK], len(gram))
            scores = _centroid_scores(weights, gram, similarity)
            for row, (_, profile) in enumerate(chunk):
                scores[row, pool.skipped(profile.skip)] = -np.inf
            columns, values = _top(scores, [p.limit for _, p in chunk])
            best = _most_similar(weights, similarity, columns)
            yield from _explained(chunk, columns, values, best, group, vectors, pool)


def _centroid_scores(
    weights: csr_matrix, gram: npt.NDArray[np.float32], similarity: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Subscriber x candidate cosines with each subscriber's *unit* centroid.

    weights @ similarity is the dot product with the mean of the liked vectors; dividing by
    that mean's length makes it a cosine, comparable between subscribers, which the floor
    needs (a subscriber with ten scattered seeds has a short mean, one with ten alike a long
    one). See `_squared_lengths` for the lengths.
    """
    squared = _squared_lengths(weights, gram)
    lengths = np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)
    lengths[lengths == 0] = 1.0  # liked papers with no known word: every score is 0
    scores = np.asarray(weights @ similarity, dtype=np.float32)
    scores /= lengths[:, None]
    return scores


def _squared_lengths(weights: csr_matrix, gram: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Each row's |sum_i w_i e_i|^2 = sum_ij w_i w_j G[i, j], G the examples' Gram matrix,
    summed from a gather of each row's k^2 entries: 10x faster than building the chunk's
    sparse centroids (~0.01 s, not 0.13 s, per 4,096 subscribers of 10 liked papers each)."""
    counts = np.diff(weights.indptr)
    squares = counts * counts
    owner = np.repeat(np.arange(len(counts)), squares)
    offset = np.arange(int(squares.sum())) - np.repeat(np.cumsum(squares) - squares, squares)
    each = np.repeat(counts, squares)
    base = np.repeat(weights.indptr[:-1], squares)
    first, second = base + offset // each, base + offset % each
    values = gram[weights.indices[first], weights.indices[second]].astype(np.float64)
    values *= weights.data[first] * weights.data[second]
    return np.asarray(np.bincount(owner, values, minlength=len(counts)), dtype=np.float64)


#: up to this many kept per subscriber, `_top` takes row maxima one at a time
FEW = 16


def _top(
    scores: npt.NDArray[np.float32], limits: list[int]
) -> tuple[list[list[int]], list[list[float]]]:
    """Each row's best columns and their scores, at most its limit, at least `MIN_SIMILARITY`,
    best first, ties by column (that is by paper id). `scores` is overwritten.

    For a few per row, that many passes of argmax (the first maximum, so the lowest column
    wins a tie), each masking what it took: 0.01 s per 4,096 x 2,000 chunk for five, where
    one argpartition takes 0.13 s and would be 3 s of a 10 s budget at 100,000 subscribers.
    """
    width = min(max(limits), scores.shape[1])
    if width <= FEW:
        rows = np.arange(scores.shape[0])
        part = np.empty((scores.shape[0], width), dtype=np.intp)
        values = np.empty((scores.shape[0], width), dtype=np.float32)
        for k in range(width):
            part[:, k] = scores.argmax(axis=1)
            values[:, k] = scores[rows, part[:, k]]
            scores[rows, part[:, k]] = -np.inf
    else:
        part = np.argpartition(-scores, width - 1, axis=1)[:, :width]
        values = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, -values), axis=1)
        part = np.take_along_axis(part, order, axis=1)
        values = np.take_along_axis(values, order, axis=1)
    good = values >= MIN_SIMILARITY
    columns, kept_values = [], []
    for row, limit in enumerate(limits):
        mask = good[row, :limit]
        columns.append(part[row, :limit][mask].tolist())
        kept_values.append(values[row, :limit][mask].tolist())
    return columns, kept_values


def _most_similar(
    weights: csr_matrix, similarity: npt.NDArray[np.float32], kept: list[list[int]]
) -> npt.NDArray[np.intp]:
    """For each kept (subscriber, candidate) pair in order, the row of the subscriber's liked
    example most similar to the candidate (the first of equals), read from the similarity
    matrix for all pairs at once (a Python loop would cost ~1 s at 500,000 pairs)."""
    counts = np.array([len(c) for c in kept], dtype=np.intp)
    rows = np.repeat(np.arange(len(kept)), counts)
    columns = np.fromiter((c for cs in kept for c in cs), dtype=np.intp, count=len(rows))
    liked = np.diff(weights.indptr)[rows]  # how many examples each pair chooses from
    pair = np.repeat(np.arange(len(rows)), liked)
    first = np.repeat(np.cumsum(liked) - liked, liked)
    position = np.arange(len(pair)) - first
    example = weights.indices[np.repeat(weights.indptr[rows], liked) + position]
    values = similarity[example, columns[pair]]
    if not len(values):
        return np.zeros(0, dtype=np.intp)
    starts = np.cumsum(liked) - liked
    top = np.repeat(np.maximum.reduceat(values, starts), liked)
    # the first position holding its pair's maximum: two linear passes, no sort
    first_best = np.minimum.reduceat(np.where(values == top, position, len(values)), starts)
    return np.asarray(example[starts + first_best], dtype=np.intp)


def _explained(
    profiles: list[tuple[int, Profile]],
    columns: list[list[int]],
    values: list[list[float]],
    best: npt.NDArray[np.intp],
    group: _Group,
    vectors: csr_matrix,
    pool: _Pool,
) -> Iterator[tuple[int, list[Recommendation]]]:
    """The kept papers as recommendations, with the most similar liked example's title and
    the words the two share (one batch for the chunk)."""
    flat = [c for cs in columns for c in cs]
    words = shared_words(pool.forms, vectors[best], pool.vectors[flat]) if flat else []
    titles = [group.examples[b].title for b in best.tolist()]
    owners = [p.subscriber_id for (_, p), cs in zip(profiles, columns, strict=True) for _ in cs]
    made = list(
        map(
            Recommendation,
            owners,
            [pool.papers[c].id for c in flat],
            [v for vs in values for v in vs],
            titles,
            words,
        )
    )
    start = 0
    for (n, _), cs in zip(profiles, columns, strict=True):
        yield n, made[start : start + len(cs)]
        start += len(cs)


# ---------------------------------------------------------------------------- classifier


def _by_classifier(model: TextModel, profile: Profile, pool: _Pool) -> list[Recommendation]:
    """One profile with liked and disliked papers, ranked by a logistic regression.

    A paper both liked and disliked counts as disliked (a "less like this" is the later word).
    """
    disliked = list({e.key: e for e in profile.disliked}.values())
    liked = [
        e
        for e in {e.key: e for e in profile.liked}.values()
        if e.key not in {d.key for d in disliked}
    ]
    if not liked:
        return []
    positive = model.vectors([e.text for e in liked])
    negative = model.vectors([e.text for e in disliked])
    probability = _classifier_scores(model, positive, negative, pool.vectors)
    centroid = np.asarray(positive.mean(axis=0), dtype=np.float32).ravel()
    length = float(np.linalg.norm(centroid))
    cosine = pool.vectors @ (centroid / length) if length else np.zeros(len(pool.papers))
    eligible = cosine >= MIN_SIMILARITY
    eligible[pool.skipped(profile.skip)] = False
    columns = np.flatnonzero(eligible)
    # best first, ties by column (paper id); only the kept few are explained
    columns = columns[np.lexsort((columns, -probability[columns]))][: profile.limit]
    if not len(columns):
        return []
    nearest = np.asarray((positive @ pool.vectors[columns].T).toarray().argmax(axis=0)).ravel()
    words = shared_words(pool.forms, positive[nearest], pool.vectors[columns])
    return [
        Recommendation(
            profile.subscriber_id,
            pool.papers[column].id,
            float(probability[column]),
            liked[nearest[k]].title,
            words[k],
        )
        for k, column in enumerate(columns.tolist())
    ]


def _classifier_scores(
    model: TextModel, positive: csr_matrix, negative: csr_matrix, candidates: csr_matrix
) -> npt.NDArray[np.float64]:
    """P(liked) of each candidate from a logistic regression of the liked papers against the
    disliked ones and the model's background sample.

    Classes are balanced (the few liked papers weigh as much as all the negatives), and each
    disliked paper weighs `DISLIKED_WEIGHT` background papers. Background papers that are
    one of the liked or disliked papers are left out (the corpus holds the seeds too).
    """
    background = model.background
    known = vstack([positive, negative]).tocsr()
    if background.shape[0] and known.shape[0]:
        same = np.asarray((background @ known.T).max(axis=1).toarray()).ravel() >= SAME_PAPER
        background = background[np.flatnonzero(~same)]
    features = vstack([positive, negative, background]).tocsr()
    labels = np.r_[np.ones(positive.shape[0]), np.zeros(negative.shape[0] + background.shape[0])]
    against = np.r_[np.full(negative.shape[0], DISLIKED_WEIGHT), np.ones(background.shape[0])]
    weights = np.r_[np.full(positive.shape[0], against.sum() / positive.shape[0]), against]
    # the dual problem: a few hundred samples of ~10,000 words each (2-3x faster, same result)
    classifier = LogisticRegression(C=CLASSIFIER_C, solver="liblinear", dual=True, random_state=0)
    classifier.fit(features, labels, sample_weight=weights / weights.mean())
    return np.asarray(classifier.predict_proba(candidates)[:, 1], dtype=np.float64)
