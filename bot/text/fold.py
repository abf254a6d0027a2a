"""Text folding shared by the alert index and the queries: one word list for every spelling.

Words are maximal runs of letters and digits. Folding removes case (casefold), accents and
other diacritics (NFKD), and maps a few letters that have no decomposition (ł, ø, æ, ...)
to ASCII; every other character (hyphens and dashes including U+2010, apostrophes, dots,
slashes, TeX `$`...) is a word boundary. So "In-Context", "in context" and "in‐context"
all fold to the words `in context`, and "Rémy" folds to `remy`.

Author names fold into an `AuthorKey` (surname, given names); see `same_author` for the
rule that decides whether a followed name and a paper's author are the same person.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from sys import intern

from bot.text.tex import decode_tex

# Letters that NFKD leaves alone but a reader treats as accented Latin letters.
_SPECIAL = str.maketrans(
    {"ł": "l", "đ": "d", "ð": "d", "ø": "o", "æ": "ae", "œ": "oe", "þ": "th", "ı": "i", "ħ": "h"}
)
# Invisible characters that sit *inside* words (soft hyphen, zero-width joiners): removed,
# so that "trans\xadformer" stays one word instead of splitting at the soft hyphen.
_JOINERS = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
_WORD = re.compile(r"[^\W_]+")


@cache
def _marks_class() -> str:
    """A regex character class of every combining mark (Unicode category M) plus joiners.

    Only the Basic Multilingual Plane: then the regex engine can test a character with one
    bitmap look-up (a class with astral ranges is scanned range by range, per character).
    """
    ranges: list[tuple[int, int]] = []
    for cp in range(0x10000):
        if unicodedata.category(chr(cp))[0] != "M":
            continue
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    parts = "".join(f"\\u{a:04x}-\\u{b:04x}" if a != b else f"\\u{a:04x}" for a, b in ranges)
    return parts + "".join(f"\\u{ord(c):04x}" for c in _JOINERS)


@cache
def _run_pattern() -> re.Pattern[str]:
    """A word run in unfolded text: letters, digits, and the marks/joiners inside them."""
    return re.compile(f"(?:[^\\W_]|[{_marks_class()}])+")


@cache
def _marks_pattern() -> re.Pattern[str]:
    """Combining marks and joiners, to delete after NFKD."""
    return re.compile(f"[{_marks_class()}]+")


@lru_cache(maxsize=65536)
def _fold_run(run: str) -> tuple[str, ...]:
    """The folded words of one non-ASCII word run (usually one word; "½" gives two)."""
    text = unicodedata.normalize("NFKD", run).casefold()
    # casefold can produce new decomposable letters (Greek, ß → ss is fine), so decompose again
    text = unicodedata.normalize("NFKD", text)
    text = _marks_pattern().sub("", text).translate(_SPECIAL)
    return tuple(_WORD.findall(text))


def words(text: str) -> list[str]:
    """The folded words of `text`: casefolded, accents removed, punctuation as boundaries."""
    if text.isascii():
        return _ASCII_WORD.findall(text.lower())
    out: list[str] = []
    for run in _run_pattern().findall(text):
        if run.isascii():
            out.append(run.lower())
        else:
            out.extend(_fold_run(run))
    return out


def word_spans(text: str) -> list[tuple[int, int]]:
    """For each word of `words(text)`, its (start, end) in `text`, to quote what matched."""
    if text.isascii():
        return [m.span() for m in _ASCII_WORD.finditer(text)]
    spans: list[tuple[int, int]] = []
    for m in _run_pattern().finditer(text):
        run = m.group()
        count = 1 if run.isascii() else len(_fold_run(run))
        spans.extend([m.span()] * count)
    return spans


def fold(text: str) -> str:
    """`text` folded to its words joined by single spaces ("In-Context" → "in context")."""
    return " ".join(words(text))


def fold_label(text: str) -> str:
    """A category or source name folded for comparison: trimmed and casefolded (`cs.LG`)."""
    return text.strip().casefold()


# ---------------------------------------------------------------------------- authors

_PARENS = re.compile(r"\([^()]*\)")
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})


@dataclass(frozen=True, slots=True)
class AuthorKey:
    """A person's name folded for comparison: surname and given names (initials are 1 letter)."""

    surname: str
    given: tuple[str, ...] = ()

    @property
    def initial(self) -> str:
        """The first letter of the first given name, or "" when there is none."""
        return self.given[0][0] if self.given else ""


# The commonest ways to write a name, "Guillaume Lajoie", "G. Lajoie", "Lajoie, Guillaume",
# in ASCII letters: folded directly; every other name takes the general rule. No word here
# is in capitals (then it would be read as initials), and "G." folds to "g" either way.
_GIVEN_SURNAME = re.compile(r"([A-Za-z][a-z]*)\.? ([A-Za-z][a-z]+)")
_SURNAME_GIVEN = re.compile(r"([A-Za-z][a-z]+), ([A-Za-z][a-z]*)\.?")


def _simple_key(name: str) -> AuthorKey | None:
    """The key of a name written in one of the commonest ways, else None."""
    if "," in name:
        found = _SURNAME_GIVEN.fullmatch(name)
        if found is None:
            return None
        surname, given = found.groups()
    else:
        found = _GIVEN_SURNAME.fullmatch(name)
        if found is None:
            return None
        given, surname = found.groups()
    given = given.lower()
    surname = surname.lower()
    if given in _SUFFIXES or surname in _SUFFIXES:  # "John Jr", "Smith, Jr": general rule
        return None
    return AuthorKey(intern(surname), (intern(given),))  # one string for many follows


def _name_words(part: str, surname_last: bool = False) -> list[str]:
    """Folded words of a name part; an all-capitals short word ("JB") is a run of initials.

    Not when it is the surname (`surname_last`: the last word, as in "Wei LI") or a
    generational suffix ("Hal Daumé III").
    """
    pieces = part.split()
    for piece in pieces:  # a loop, not any(): this runs for every followed name
        if len(piece) > 1 and piece.isupper():
            break
    else:
        return words(part)
    out: list[str] = []
    last = len(pieces) - 1
    for i, raw in enumerate(pieces):
        folded = words(raw)
        letters = "".join(folded)
        # "GE Hinton", "J.-B. Smith": initials written together or hyphenated
        if (
            raw.isupper()
            and 1 < len(letters) <= 3
            and len(folded) == 1
            and letters.isalpha()
            and letters not in _SUFFIXES
            and not (surname_last and i == last)
        ):
            out.extend(letters)
        else:
            out.extend(folded)
    return out


def _drop_suffix(tokens: list[str]) -> list[str]:
    """Remove a trailing generational suffix (Jr., III) when a name remains."""
    while len(tokens) > 1 and tokens[-1] in _SUFFIXES:
        tokens = tokens[:-1]
    return tokens


def author_key(name: str) -> AuthorKey | None:
    """Fold an author name ("G. Lajoie", "Lajoie, Guillaume", "R\\'emy") to its key.

    The surname is the last word (or, in "Surname, Given" form, what comes before the
    comma); every other word is a given name or a middle name/initial, in order. A name
    particle such as "van" or "de" counts as a middle name. Returns None when the name has
    no letters or digits.
    """
    simple = _simple_key(name)
    return simple if simple is not None else _general_key(name)


# Cached: the general rule costs several times the simple forms' (which skip the cache, as
# a cache look-up and insertion would cost about as much as folding them).
@lru_cache(maxsize=65536)
def _general_key(name: str) -> AuthorKey | None:
    """`author_key` of a name not written in one of the commonest ways."""
    # TeX escapes (R\'emy) are decoded by bot.text.tex, the one place that knows them
    text = decode_tex(name) if "\\" in name or "{" in name else name
    if "(" in text:
        text = _PARENS.sub(" ", text)  # affiliations: "Ada Lovelace (Analytical Engines)"
    if "," not in text:
        tokens = _drop_suffix(_name_words(text, surname_last=True))
        return AuthorKey(tokens[-1], tuple(tokens[:-1])) if tokens else None
    parts = [p for p in text.split(",") if words(p)]
    if len(parts) >= 2 and not all(w in _SUFFIXES for w in words(parts[1])):
        # "Lajoie, Guillaume" / "Lajoie, G." / "King, Martin Luther, Jr."
        surname_words = _drop_suffix(words(parts[0]))  # a surname is never initials
        given = [w for p in parts[1:] for w in _name_words(p) if w not in _SUFFIXES]
        tokens = given + surname_words
    else:
        tokens = _drop_suffix([w for p in parts for w in _name_words(p)])
    return AuthorKey(tokens[-1], tuple(tokens[:-1])) if tokens else None


def _given_agree(alert: str, paper: str) -> bool:
    """Two given names agree when equal, or when one is an initial of the other."""
    if len(alert) == 1 or len(paper) == 1:
        return alert[0] == paper[0]
    return alert == paper


def same_author(alert: AuthorKey, paper: AuthorKey) -> bool:
    """Does a followed name (`alert`) designate this paper author?

    Rule: same surname; an alert with no given name follows every author of that surname;
    otherwise the paper author must have given names, and the given names are compared in
    order as far as both sides have them, an initial agreeing with any name it begins. A
    middle name present on one side only is not a conflict ("Yoshua Bengio" follows
    "Yoshua B. Bengio"), a different one is ("John A. Smith" never follows "John B. Smith"),
    and so is a different first name ("Samy Bengio" never follows "Yoshua Bengio").
    """
    if alert.surname != paper.surname:
        return False
    if not alert.given:
        return True
    if not paper.given:
        return False
    return all(_given_agree(a, p) for a, p in zip(alert.given, paper.given, strict=False))
