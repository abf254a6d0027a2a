"""Folding text and author names: one spelling for every way a paper writes a word or a name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.text.fold import AuthorKey, author_key, fold, fold_label, same_author, word_spans, words

# ------------------------------------------------------------------------ words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("In-Context", ["in", "context"]),
        ("in\u2010context", ["in", "context"]),  # U+2010 HYPHEN, as arXiv titles use it
        ("in\u2013context", ["in", "context"]),  # en dash
        ("IN CONTEXT", ["in", "context"]),
        ("Rémy", ["remy"]),
        ("nai\u0308ve", ["naive"]),  # decomposed: a combining diaeresis stays inside the word
        ("naïve", ["naive"]),
        ("Łódź", ["lodz"]),  # ł has no decomposition
        ("Ørsted", ["orsted"]),
        ("Æther", ["aether"]),
        ("Œuvre", ["oeuvre"]),
        ("Þór", ["thor"]),
        ("Straße", ["strasse"]),
        ("İstanbul", ["istanbul"]),
        ("ΣΊΣΥΦΟΣ", ["σισυφοσ"]),  # other scripts fold too
        ("trans\xadformer", ["transformer"]),  # a soft hyphen does not split a word
        ("zero\u200bwidth", ["zerowidth"]),
        ("ＧＡＮ", ["gan"]),  # full-width letters
        ("ﬁne-tuning", ["fine", "tuning"]),  # the fi ligature
        ("$\\alpha$-GAN", ["alpha", "gan"]),
        ("don't", ["don", "t"]),
        ("e.g. x_y a/b", ["e", "g", "x", "y", "a", "b"]),
        ("3D-printing", ["3d", "printing"]),
        ("C++", ["c"]),
        ("", []),
        ("--- !!", []),
    ],
)
def test_words_fold_case_accents_and_punctuation(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_fold_joins_the_words_with_single_spaces() -> None:
    assert fold("  Neural-Collapse,\tin\u2010Context ") == "neural collapse in context"


def test_whole_words_only_gan_is_not_organ() -> None:
    assert "gan" not in words("An organ of GANs")
    assert "gan" in words("a GAN-based organ")


def test_word_spans_quote_the_words_as_written() -> None:
    text = "Naïve-Bayes for Łódź (in\u2010context)"
    spans = word_spans(text)

    assert [text[a:b] for a, b in spans] == ["Naïve", "Bayes", "for", "Łódź", "in", "context"]
    assert len(spans) == len(words(text))


def test_a_character_that_folds_to_two_words_quotes_the_same_span_twice() -> None:
    assert words("½") == ["1", "2"]
    assert word_spans("½") == [(0, 1), (0, 1)]


@given(st.text(alphabet=st.sampled_from("aZé-‐ ½ß\u0308\xad.ŁØ$'ΣΊ1_ﬁ"), max_size=30))
def test_word_spans_line_up_with_words(text: str) -> None:
    spans = word_spans(text)
    assert len(spans) == len(words(text))
    # each distinct span, folded on its own, gives the words it stands for, in order
    distinct = list(dict.fromkeys(spans))
    assert [w for a, b in distinct for w in words(text[a:b])] == words(text)


@given(st.text(max_size=40))
def test_folding_is_idempotent(text: str) -> None:
    assert words(fold(text)) == words(text)


@pytest.mark.parametrize(
    ("text", "expected"), [("  CS.lg ", "cs.lg"), ("hf-Daily", "hf-daily"), ("stat.ML", "stat.ml")]
)
def test_fold_label_trims_and_casefolds(text: str, expected: str) -> None:
    assert fold_label(text) == expected


# ------------------------------------------------------------------------ author names


@pytest.mark.parametrize(
    ("name", "surname", "given"),
    [
        ("Guillaume Lajoie", "lajoie", ("guillaume",)),
        ("G. Lajoie", "lajoie", ("g",)),
        ("Lajoie, Guillaume", "lajoie", ("guillaume",)),
        ("Lajoie, G.", "lajoie", ("g",)),
        ("Guillaume LAJOIE", "lajoie", ("guillaume",)),
        ("Lajoie", "lajoie", ()),
        ("R\\'emy Dubois", "dubois", ("remy",)),  # TeX accents, as arXiv writes them
        ("Benjamin R\\'emy", "remy", ("benjamin",)),
        ("Przemys{\\l}aw Biecek", "biecek", ("przemyslaw",)),
        ("Serdar Kad{\\i}o\\u{g}lu", "kadioglu", ("serdar",)),
        ("Jarosław Żygierewicz", "zygierewicz", ("jaroslaw",)),
        ("Ada Lovelace (Analytical Engines)", "lovelace", ("ada",)),  # affiliation dropped
        ("GE Hinton", "hinton", ("g", "e")),  # initials written together
        ("J.-B. Smith", "smith", ("j", "b")),
        ("Smith, JB", "smith", ("j", "b")),
        ("Martin Luther King, Jr.", "king", ("martin", "luther")),
        ("King, Martin Luther, Jr.", "king", ("martin", "luther")),
        ("John Smith Jr", "smith", ("john",)),
        ("Vincent van Gogh", "gogh", ("vincent", "van")),  # a particle is a middle name
        ("Shu-Lin Liu", "liu", ("shu", "lin")),
    ],
)
def test_author_key_reads_every_way_of_writing_a_name(
    name: str, surname: str, given: tuple[str, ...]
) -> None:
    assert author_key(name) == AuthorKey(surname, given)


_NAME_PART = st.sampled_from(
    [
        *("G", "G.", "Guillaume", "guillaume", "LAJOIE", "Lajoie", "van", "Jr", "Jr.", "III"),
        *("Iii", "Li", "LI", "Ma", "Xu", "Rémy", "McDonald", "O'Neil", "Lajoie-Smith", "JB"),
        "J.-B.",
    ]
)


@given(
    st.lists(_NAME_PART, min_size=1, max_size=3),
    st.lists(_NAME_PART, max_size=2),
    st.booleans(),
)
def test_the_key_of_a_name_does_not_depend_on_stray_spaces(
    first: list[str], last: list[str], comma: bool
) -> None:
    name = f"{' '.join(last)}, {' '.join(first)}" if comma and last else " ".join(first + last)
    assert author_key(name) == author_key(f"  {name} ")
    assert author_key(name) == author_key(name.replace(" ", "  "))


@pytest.mark.parametrize("name", ["", "   ", "...", "(Mila)"])
def test_a_name_without_letters_has_no_key(name: str) -> None:
    assert author_key(name) is None


# An all-capitals word of 2-3 letters is usually initials ("GE Hinton"), but not a
# generational suffix: "Hal Daumé III" is a prolific ML author, and a follow of
# "Hal Daumé" must find his papers.
@pytest.mark.parametrize(
    "name", ["Hal Daumé III", "Daumé III, Hal", "Hal Daumé, III", "Hal Daume III"]
)
def test_a_roman_numeral_suffix_is_dropped(name: str) -> None:
    assert author_key(name) == AuthorKey("daume", ("hal",))


def test_a_roman_numeral_suffix_does_not_stop_a_follow() -> None:
    alert, paper = author_key("Hal Daumé"), author_key("Hal Daumé III")
    assert alert is not None
    assert paper is not None
    assert same_author(alert, paper)


# Nor is a short surname written in capitals, as some venues list authors: "Wei LI" is
# "Wei Li", not the initials L. I.
@pytest.mark.parametrize("name", ["Wei LI", "LI, Wei"])
def test_a_short_surname_in_capitals_is_still_the_surname(name: str) -> None:
    assert author_key(name) == AuthorKey("li", ("wei",))


def test_initial_is_the_first_letter_of_the_first_given_name() -> None:
    assert AuthorKey("lajoie", ("guillaume",)).initial == "g"
    assert AuthorKey("lajoie").initial == ""


@pytest.mark.parametrize(
    ("follow", "author"),
    [
        ("Guillaume Lajoie", "G. Lajoie"),
        ("G. Lajoie", "Guillaume Lajoie"),
        ("Lajoie, Guillaume", "Guillaume Lajoie"),
        ("Lajoie, G.", "Guillaume LAJOIE"),
        ("Lajoie", "Guillaume Lajoie"),  # a surname alone follows everyone of that name
        ("Benjamin Rémy", "Benjamin R\\'emy (LEMTA)"),
        ("Benjamin Remy", "Benjamin Rémy"),
        ("Núñez, José", "José Fernando Núñez"),
        ("Yoshua Bengio", "Yoshua B. Bengio"),  # a middle name on one side only
        ("John A. Smith", "John Smith"),
        ("J. A. Smith", "John Andrew Smith"),
        ("John Smith", "J Smith"),
    ],
)
def test_same_author_follows_initials_accents_and_name_order(follow: str, author: str) -> None:
    alert, paper = author_key(follow), author_key(author)
    assert alert is not None
    assert paper is not None
    assert same_author(alert, paper)


@pytest.mark.parametrize(
    ("follow", "author"),
    [
        ("Yoshua Bengio", "Samy Bengio"),  # another first name
        ("Y. Bengio", "Samy Bengio"),
        ("John A. Smith", "John B. Smith"),  # another middle name
        ("Lin Liu", "Ling Liu"),
        ("Lin Liu", "Shu-Lin Liu"),
        ("A. Martin", "Guillem Pérez Martín"),
        ("Martin", "J. C Martínez"),  # another surname
        ("Yoshua Bengio", "Bengio"),  # the paper gives no first name to compare
        ("G. Lajoie", "Lajoie, A."),
    ],
)
def test_same_author_never_follows_a_namesake(follow: str, author: str) -> None:
    alert, paper = author_key(follow), author_key(author)
    assert alert is not None
    assert paper is not None
    assert not same_author(alert, paper)
