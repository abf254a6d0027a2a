"""Why a paper is recommended: the words it shares with the liked paper it is most like.

A shared word is one with weight in both TF-IDF vectors; the product of its two weights
says how much it adds to their similarity, so the words are named most informative first.
They are shown as the candidate paper writes them ("LLMs", "diffusion"), not folded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix

from bot.recommend.model import analyse
from bot.text.fold import word_spans, words

#: how many shared words a recommendation names
SHARED_WORDS = 5


def surface_forms(text: str) -> dict[str, str]:
    """Each counted word of `text` (folded) -> how `text` writes it: lower case where the text
    ever writes it so (not "Diffusion" for a title's capital), else its first spelling ("LLM")."""
    forms: dict[str, str] = {}
    for word, (start, end) in zip(words(text), word_spans(text), strict=True):
        written = text[start:end]
        known = forms.get(word)
        if known is None or (not known.islower() and written.islower()):
            forms[word] = written
    counted = set(analyse(text))
    return {word: form for word, form in forms.items() if word in counted}


def shared_words(
    vocabulary: npt.NDArray[np.str_],
    liked: csr_matrix,
    candidates: csr_matrix,
    forms: Sequence[dict[str, str]],
) -> list[tuple[str, ...]]:
    """For each row pair (a liked example's vector, a candidate's vector), up to
    `SHARED_WORDS` words both have, most informative first, as `forms[row]` writes them.

    Done for a whole batch with one elementwise product and one sort (a recommendation run
    explains every subscriber's kept papers: 500,000 at 100,000 subscribers).
    """
    both = csr_matrix(liked.multiply(candidates), dtype=np.float32)
    both.eliminate_zeros()
    rows = np.repeat(np.arange(both.shape[0]), np.diff(both.indptr))
    # by row, then weight (highest first), then column: the vectoriser's columns are its words
    # in alphabetical order, so ties are named alphabetically
    order = np.lexsort((both.indices, -both.data, rows))
    rank = np.arange(len(order)) - both.indptr[rows[order]]
    kept = order[rank < SHARED_WORDS]
    kept_rows = rows[kept]
    names = vocabulary[both.indices[kept]].tolist()
    bounds = np.searchsorted(kept_rows, np.arange(both.shape[0] + 1))
    out: list[tuple[str, ...]] = []
    for row in range(both.shape[0]):
        written = forms[row]
        out.append(tuple(written.get(w, w) for w in names[bounds[row] : bounds[row + 1]]))
    return out
