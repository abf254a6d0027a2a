"""The text model: TF-IDF vectors of papers' titles and abstracts, fitted on the store's papers.

Words are the alert language's words (`bot.text.fold.words`: casefolded, accents removed),
so that "In-Context" and "in context" are one word here as in an alert; English stop words,
one-letter words and numbers are dropped. Term frequency is sublinear (a word said ten times
is not ten times the topic) and every vector has unit length, so a dot product is a cosine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from bot.models import Paper
from bot.text.fold import words

#: a word in fewer papers than this says nothing about a subscriber's topic (a typo, a name);
#: measured on bench/recommend.py's days: 2 keeps precision and halves the vocabulary
MIN_DF = 2
#: a word in more than this share of papers ("model", "results") is no topic either
MAX_DF = 0.5
#: below this many papers every word counts (a small store, a test), or nothing would be left
SMALL_CORPUS = 50
#: how many of the corpus's papers stand for "not what they like" in a classifier: enough to
#: cover the fields of a store, few enough that one subscriber's fit takes milliseconds
BACKGROUND = 300
#: the background sample is drawn with this seed, so that a model is the same for the same texts
BACKGROUND_SEED = 14

# English stop words, and the words of links that abstracts carry ("code at https://github.com/")
_STOP = frozenset(ENGLISH_STOP_WORDS) | {"http", "https", "www", "com", "org", "github", "io"}


def analyse(text: str) -> list[str]:
    """The words of `text` the model counts: folded words less stop words, numbers, letters."""
    return [w for w in words(text) if len(w) > 1 and not w.isdigit() and w not in _STOP]


def paper_text(title: str, abstract: str) -> str:
    """The one text a paper is modelled by: its title, then its abstract."""
    return f"{title}. {abstract}" if abstract else title


@dataclass(frozen=True, slots=True)
class Example:
    """A paper a profile learns from: its seed key or paper id, title, and title + abstract."""

    key: str
    title: str
    text: str

    @classmethod
    def of_paper(cls, paper: Paper) -> Example:
        """The example a stored paper gives (keyed by its paper id)."""
        return cls(paper.id, paper.title, paper_text(paper.title, paper.abstract))


@dataclass(frozen=True, eq=False)
class TextModel:
    """A fitted TF-IDF vectoriser, its words by column, and a background sample of its corpus.

    A model fitted on texts with no word at all has no vectoriser: every vector is empty, and
    nothing is ever recommended from it.
    """

    vectorizer: Any  # a fitted TfidfVectorizer, or None (sklearn has no type stubs)
    words: npt.NDArray[np.str_]
    background: csr_matrix = field(repr=False)

    @classmethod
    def fit(cls, texts: Sequence[str]) -> TextModel:
        """The model of these texts (titles + abstracts); the same texts give the same model."""
        small = len(texts) < SMALL_CORPUS
        vectorizer = TfidfVectorizer(
            analyzer=analyse,
            sublinear_tf=True,
            min_df=1 if small else MIN_DF,
            max_df=1.0 if small else MAX_DF,
            dtype=np.float32,
        )
        try:
            matrix = vectorizer.fit_transform(texts)
        except ValueError:  # no text has a word the model counts ("empty vocabulary")
            return cls(None, np.array([], dtype=np.str_), csr_matrix((0, 0), dtype=np.float32))
        return cls(vectorizer, vectorizer.get_feature_names_out(), _background(matrix))

    @property
    def dimension(self) -> int:
        """How many words the model knows (the vectors' length)."""
        return len(self.words)

    def vectors(self, texts: Sequence[str]) -> csr_matrix:
        """Unit-length TF-IDF rows of `texts`, one per text (an empty row for a text of no
        known word)."""
        if self.vectorizer is None or not texts:  # sklearn refuses no text at all
            return csr_matrix((len(texts), self.dimension), dtype=np.float32)
        return csr_matrix(self.vectorizer.transform(texts), dtype=np.float32)


def _background(matrix: csr_matrix) -> csr_matrix:
    """A fixed-seed sample of the corpus's rows (all of them when there are few), in order."""
    rows = matrix.shape[0]
    if rows <= BACKGROUND:
        return matrix
    chosen = np.random.default_rng(BACKGROUND_SEED).choice(rows, BACKGROUND, replace=False)
    return matrix[np.sort(chosen)]
