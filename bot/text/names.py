"""Author lists: one joined string of names split into names, by one rule for every kind.

Sources hand authors over as one string in many shapes: "A B, C D and E F", "A B, C D, &
E F", bioRxiv's "Naka, A.; Shababo, B.", arXiv's "A (Univ, X), B and C", a lab page's "A,
B, and 3 more authors". The rule:

- a colon ends a group's name before its members ("LHCb collaboration: R. Aaij, et al.");
  each side is then split by the rules below;
- `;` separates names when there is one (then "Naka, A." is one name);
- otherwise commas and "and"/"&" do, except that "Lastname, Given" is one name: a list of
  exactly two such pieces, or of such pairs joined by "and" ("Einstein, Albert and Taub,
  AH"), or pieces alternating with initials ("Naka, A., Shababo, B.");
- a single word is a name ("Kavita Dorai, Arvind"); "and", "&", "et al.", "others", "N
  more authors", "and N others", "N additional authors not shown" and degrees ("PhD")
  never are;
- a parenthesised part that ends a name is an affiliation and is dropped, one inside a name
  ("Qiuyi (Richard) Zhang") is a nickname and is kept; an unmatched parenthesis is dropped.

Names are returned as written otherwise (TeX escapes, "Lastname, Given" order): decoding
and reordering are the kinds' business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# "and" or "&" between names, with the comma that may precede it ("A, B, and C").
_AND = re.compile(r"(?:\s*,)?\s*(?<![^\s,])(?:and|&)(?!\S)\s*")
# A colon after a collaboration's name, before its members (arXiv: "ATLAS Collaboration: ...").
_GROUP_END = re.compile(r"\s*:\s+")
_EDGE_AND = re.compile(r"^(?:and|&)(?:\s+|$)|\s+(?:and|&)$")
_NAME_SUFFIX = re.compile(r"(?:Jr|Sr|II|III|IV)\.?", re.I)
_TRAILING_PARENS = re.compile(r"^(?P<name>.*?)\s*\((?P<inner>[^()]*(?:\([^()]*\)[^()]*)*)\)$")
# Placeholders a list uses for the names it does not show.
_NOT_A_NAME = re.compile(
    r"(?:and\s+|&\s*)?"
    r"(?:et\.?\s*al\.?|others?|more|…|\.\.\.|and|&"
    r"|\+?\d+\s+(?:more|others?|additional)(?:\s+(?:co-?)?authors?)?(?:\s+not\s+shown)?"
    r"|(?:show|see|view)\s+(?:all|more)(?:\s+\d+)?(?:\s+authors?)?"
    r"|(?-i:Ph\.?\s?D|M\.?\s?D|D\.?Phil|M\.?Sc|B\.?Sc|MPH|MBA|FRS))\.?",
    re.I,
)
_ET_AL_TAIL = re.compile(r"\s*,?\s+et\.?\s*al\.?$", re.I)
_EDGE_JUNK = re.compile(r"^[\s,;]+|[\s,;]+$")
_INITIALS = re.compile(r"(?:[A-Z]{1,3}\.?[\s-]*)+")
_PARTICLES = "al|bin|da|das|de|del|della|den|der|di|do|dos|du|el|ibn|la|le|st|ten|ter|van|von|y|zu"
_PARTICLE = re.compile(_PARTICLES, re.I)
_GIVEN_WORD = re.compile(r"[A-Z][^\s,()]*|\(\S+\)")


@dataclass(frozen=True, slots=True)
class _Piece:
    """A piece of an author list: the name part, and the parenthesised text that ended it."""

    name: str
    trailing: str = ""


def split_authors(text: str) -> list[str]:
    """Split one joined author string into names (see the module docstring for the rule)."""
    text = _balanced(" ".join(text.split()))
    groups = [group for group in _split_top(text, _GROUP_END) if group.strip(" ,;")]
    return [name for group in groups for name in _split_list(group)]


def _split_list(text: str) -> list[str]:
    """Names from a list without group colons: by `;`, else by commas and "and"."""
    if ";" in text:
        by_semicolon = [p for p in split_top_level(text, ";") if _EDGE_JUNK.sub("", p)]
        if len(by_semicolon) > 1:
            return author_names(by_semicolon)
    segments = [s for s in _split_top(text, _AND) if s.strip(" ,")]
    pairs = [split_top_level(s, ",") for s in segments]
    if len(segments) > 1 and all(len(p) == 2 and _is_inverted(*p) for p in pairs):
        return author_names(segments)  # "Einstein, Albert and Taub, AH"
    pieces = _merge_suffixes([piece for pair in pairs for piece in _pieces(pair)])
    if len(segments) == 1 and len(pieces) == 2 and _is_inverted(pieces[0].name, pieces[1].name):
        return [_join_inverted(pieces[0], pieces[1])]
    if _alternate_with_initials(pieces):
        pairs_of = zip(pieces[::2], pieces[1::2], strict=True)
        return [_join_inverted(surname, given) for surname, given in pairs_of]
    return [piece.name for piece in _join_nicknames(pieces)]


def author_names(pieces: Iterable[str]) -> list[str]:
    """Each piece as one name (affiliation, stray "and", "et al." dropped); non-names left out."""
    return [piece.name for piece in _pieces(pieces)]


def is_author_name(text: str) -> bool:
    """Whether a piece of an author list names somebody ("et al.", "3 more authors" do not)."""
    text = _EDGE_JUNK.sub("", text)
    return bool(text) and not _NOT_A_NAME.fullmatch(text)


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on `separator` where it is outside (), [] and {} (affiliations, TeX groups)."""
    pieces: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        elif char == separator and depth == 0:
            pieces.append(text[start:index])
            start = index + 1
    pieces.append(text[start:])
    return pieces


def _split_top(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Split where `pattern` matches outside brackets ("and" inside an affiliation stays)."""
    if pattern.search(text) is None:
        return [text]
    depths = _depths(text)
    pieces: list[str] = []
    start = 0
    for match in pattern.finditer(text):
        if depths[match.start()] == 0:
            pieces.append(text[start : match.start()])
            start = match.end()
    pieces.append(text[start:])
    return pieces


def _depths(text: str) -> list[int]:
    """For each character, how many brackets are open before it."""
    depths: list[int] = []
    depth = 0
    for char in text:
        if char in ")]}":
            depth = max(depth - 1, 0)
        depths.append(depth)
        if char in "([{":
            depth += 1
    return depths


def _pieces(raw: Iterable[str]) -> list[_Piece]:
    """The pieces that name somebody, each without stray conjunctions and its affiliation."""
    pieces: list[_Piece] = []
    for text in raw:
        text = _EDGE_AND.sub("", _EDGE_JUNK.sub("", text))
        found = _TRAILING_PARENS.match(text)
        name, trailing = (found["name"], found["inner"].strip()) if found else (text, "")
        name = _EDGE_JUNK.sub("", _ET_AL_TAIL.sub("", name))
        if is_author_name(name):
            pieces.append(_Piece(" ".join(name.split()), trailing))
    return pieces


def _merge_suffixes(pieces: list[_Piece]) -> list[_Piece]:
    """Join a lone "Jr."/"III" piece back onto the name it belongs to."""
    merged: list[_Piece] = []
    for piece in pieces:
        if merged and _NAME_SUFFIX.fullmatch(piece.name):
            merged[-1] = _Piece(f"{merged[-1].name} {piece.name}", piece.trailing)
        else:
            merged.append(piece)
    return merged


def _is_inverted(surname: str, given: str) -> bool:
    """Whether two comma-separated pieces read as "Lastname, Given names" (one person)."""
    words = _TRAILING_PARENS.sub(r"\g<name>", given.strip()).split()
    return (
        _is_surname(surname)
        and 0 < len(words) <= 3
        and all(_GIVEN_WORD.fullmatch(word) for word in words)
    )


def _is_surname(text: str) -> bool:
    """One word, perhaps after particles ("Lajoie", "van der Berg"), and not initials."""
    words = text.split()
    while len(words) > 1 and _PARTICLE.fullmatch(words[0]):
        words = words[1:]
    return len(words) == 1 and not _INITIALS.fullmatch(words[0])


def _alternate_with_initials(pieces: list[_Piece]) -> bool:
    """Whether the pieces go surname, initials, surname, initials... ("Naka, A., Ng, W. L.")."""
    if len(pieces) < 4 or len(pieces) % 2:
        return False
    surnames, initials = pieces[::2], pieces[1::2]
    return all(_INITIALS.fullmatch(p.name) for p in initials) and not any(
        _INITIALS.fullmatch(p.name) for p in surnames
    )


def _join_inverted(surname: _Piece, given: _Piece) -> str:
    """One "Lastname, Given" name from its two pieces."""
    return f"{surname.name}, {given.name}"


def _join_nicknames(pieces: list[_Piece]) -> list[_Piece]:
    """Mend a name that arXiv split at its nickname: "Qiuyi (Richard),  Zhang" is one person.

    A one-word piece whose "affiliation" is one capitalised word, followed by a one-word
    piece without one, is a given name, nickname and surname.
    """
    joined: list[_Piece] = []
    index = 0
    while index < len(pieces):
        piece = pieces[index]
        following = pieces[index + 1] if index + 1 < len(pieces) else None
        if (
            following is not None
            and " " not in piece.name
            and re.fullmatch(r"[A-Z][\w'-]*", piece.trailing)
            and " " not in following.name
            and not following.trailing
        ):
            joined.append(_Piece(f"{piece.name} ({piece.trailing}) {following.name}"))
            index += 2
            continue
        joined.append(piece)
        index += 1
    return joined


def _balanced(text: str) -> str:
    """The text with every parenthesis that has no partner removed."""
    if "(" not in text and ")" not in text:
        return text
    unmatched: set[int] = set()
    stack: list[int] = []
    for index, char in enumerate(text):
        if char == "(":
            stack.append(index)
        elif char == ")":
            if stack:
                stack.pop()
            else:
                unmatched.add(index)
    unmatched.update(stack)
    return "".join(char for index, char in enumerate(text) if index not in unmatched)
