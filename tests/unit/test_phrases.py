"""The phrase finder: every alert phrase found in many texts at once (bot.phrases)."""

from __future__ import annotations

from bot.fold import words
from bot.phrases import PhraseFinder

PATTERNS = {
    ("neural",): 0,
    ("neural", "collapse"): 1,
    ("in", "context", "learning"): 2,
    ("transform*",): 3,
    ("in", "contex*"): 4,
    ("gro*", "fast"): 5,
    ("lodz",): 6,
    ("2d",): 7,
    ("a", "b", "c", "d"): 8,
}


def found(
    texts: list[str], patterns: dict[tuple[str, ...], int] = PATTERNS
) -> set[tuple[int, int, str, int, int]]:
    """(text, pattern, the occurrence as written, first word, last word) of every find."""
    got = PhraseFinder(patterns).find(texts)
    return {
        (t, p, texts[t][b:e], first, last)
        for t, p, b, e, first, last in zip(
            got.text.tolist(),
            got.pattern.tolist(),
            got.begin.tolist(),
            got.end.tolist(),
            got.first.tolist(),
            got.last.tolist(),
            strict=True,
        )
    }


def test_phrases_are_found_with_the_words_as_the_text_writes_them() -> None:
    texts = ["Neural Collapse in In-Context Learning", "a neural-collapse view"]
    assert found(texts) == {
        (0, 0, "Neural", 0, 0),
        (0, 1, "Neural Collapse", 0, 1),
        (0, 2, "In-Context Learning", 3, 5),
        (0, 4, "In-Context", 3, 4),
        (1, 0, "neural", 1, 1),
        (1, 1, "neural-collapse", 1, 2),
    }


def test_no_phrase_spans_two_texts() -> None:
    assert found(["the last word is neural", "collapse comes first here"]) == {
        (0, 0, "neural", 4, 4)
    }


def test_a_phrase_cut_off_by_the_end_of_the_texts_is_not_found() -> None:
    assert found(["x a b c"]) == set()
    assert found(["a b c d", "a b c"]) == {(0, 8, "a b c d", 0, 3)}
    assert found(["a b c"], {("a", "b", "c", "c"): 0}) == set()  # "c" again: past the end


def test_texts_with_accents_are_folded_and_quoted_as_written() -> None:
    texts = ["Łódź: naïve transformers in contexts", "2D grokking fast"]
    assert found(texts) == {
        (0, 6, "Łódź", 0, 0),
        (0, 3, "transformers", 2, 2),
        (0, 4, "in contexts", 3, 4),
        (1, 7, "2D", 0, 0),
        (1, 5, "grokking fast", 1, 2),
    }


def test_prefixes_match_any_word_they_begin_but_not_a_shorter_one() -> None:
    assert found(["transform transformer Transformers transfor"]) == {
        (0, 3, "transform", 0, 0),
        (0, 3, "transformer", 1, 1),
        (0, 3, "Transformers", 2, 2),
    }


def test_word_positions_agree_with_the_folded_words() -> None:
    text = "We study neural collapse (NC) — see neural-collapse.org"
    got = PhraseFinder(PATTERNS).find([text])
    folded = words(text)
    for first, last, pattern in zip(
        got.first.tolist(), got.last.tolist(), got.pattern.tolist(), strict=True
    ):
        phrase = next(p for p, n in PATTERNS.items() if n == pattern)
        assert tuple(folded[first : last + 1]) == phrase


def test_spellings_are_equal_exactly_when_the_written_words_are() -> None:
    texts = ["2D maps", "Łódź 2D", "2d maps"]  # ASCII, not ASCII, ASCII
    got = PhraseFinder({("2d",): 0}).find(texts)
    spelling = dict(zip(got.text.tolist(), got.spelling.tolist(), strict=True))
    assert spelling[0] == spelling[1]  # "2D" in both, hashed the same way
    assert spelling[0] != spelling[2]  # "2d" is written differently


def test_no_patterns_and_no_texts_find_nothing() -> None:
    assert found([], {}) == set()
    assert found(["neural collapse"], {}) == set()
    assert found([], PATTERNS) == set()
    assert found(["", "   "], PATTERNS) == set()
