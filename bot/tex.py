"""TeX escapes to Unicode, as arXiv writes them in titles, abstracts and `dc:creator`."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# Accent command -> combining character; NFC then composes the precomposed letter where
# Unicode has one, and leaves a correct base + combining mark where it does not.
_SYMBOL_ACCENTS = {
    "'": "\u0301",  # acute
    "`": "\u0300",  # grave
    "^": "\u0302",  # circumflex
    '"': "\u0308",  # diaeresis
    "~": "\u0303",  # tilde
    "=": "\u0304",  # macron
    ".": "\u0307",  # dot above
}
_LETTER_ACCENTS = {
    "u": "\u0306",  # breve
    "v": "\u030c",  # caron
    "H": "\u030b",  # double acute
    "c": "\u0327",  # cedilla
    "k": "\u0328",  # ogonek
    "r": "\u030a",  # ring above
    "d": "\u0323",  # dot below
    "b": "\u0331",  # macron below
}
_SPECIAL_LETTERS = {
    "ss": "ß",
    "aa": "å",
    "AA": "Å",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "o": "ø",
    "O": "Ø",
    "l": "ł",
    "L": "Ł",
    "i": "ı",
    "j": "ȷ",
    "dh": "ð",
    "DH": "Ð",
    "th": "þ",
    "TH": "Þ",
    "ng": "ŋ",
    "NG": "Ŋ",
    "dj": "đ",
    "DJ": "Đ",
}
# Symbols keep the space after them: `\ldots x` reads better as "… x" than TeX's "…x".
_SPECIAL_SYMBOLS = {
    "textendash": "–",
    "textemdash": "—",
    "ldots": "…",
    "dots": "…",
    "textquoteright": "’",
    "textquoteleft": "‘",
}
# Markup whose argument is the text itself; the formatting is of no use in a plain string.
_TEXT_COMMANDS = (
    "emph|textit|textbf|textsc|texttt|textrm|textsf|textsl|textup|textmd|textnormal|underline|mbox"
)
_ESCAPED_SPECIALS = {"&": "&", "%": "%", "$": "$", "#": "#", "_": "_", "{": "{", "}": "}", " ": " "}

# Math is left exactly as written: `$H^3$` must not lose its caret or braces.
_MATH = re.compile(
    r"\$\$.+?\$\$|(?<!\\)\$(?:[^$\\]|\\.)+?\$|\\\(.+?\\\)|\\\[.+?\\\]",
    re.DOTALL,
)
# An accent's argument: a letter, or a dotless i/j that gets its dot back under the accent.
_BASE = r"\\[ij](?![A-Za-z])|[A-Za-z]"
# Unbraced, `\i` is a control word and swallows the spaces after it: `Mart\'\i n` is Martín.
_BARE_BASE = r"\\[ij](?![A-Za-z])[ \t]*|[A-Za-z]"
_SYMBOL_ACCENT = re.compile(
    r"\\(?P<acc>['`^\"~=.])\s*(?:\{\s*(?P<braced>"
    + _BASE
    + r")?\s*\}|(?P<bare>"
    + _BARE_BASE
    + r"))"
)
# Letter accents (`\v`, `\c`...) need a brace or a space, else `\vs` would be a command.
_LETTER_ACCENT = re.compile(
    r"\\(?P<acc>[uvHckrdb])(?:\s*\{\s*(?P<braced>"
    + _BASE
    + r")?\s*\}|\s+(?P<bare>"
    + _BARE_BASE
    + r"))"
)
# TeX swallows the spaces after a control word: `Gro\ss e` is `Große`.
_SPECIAL_LETTER = re.compile(r"\\(" + "|".join(_SPECIAL_LETTERS) + r")(?![A-Za-z])(?:\{\})?[ \t]*")
_SPECIAL_SYMBOL = re.compile(r"\\(" + "|".join(_SPECIAL_SYMBOLS) + r")(?![A-Za-z])(?:\{\})?")
_TEXT_COMMAND = re.compile(r"\\(?:" + _TEXT_COMMANDS + r")\s*\{([^{}]*)\}")
# Old-style font switches (`{\it word}`) only change the look.
_FONT_SWITCH = re.compile(r"\\(?:it|bf|em|rm|sc|tt|sl|sf|cal)(?![A-Za-z])\s*")
# A command with its brace arguments is kept whole; any other `{...}` group loses its braces.
_BRACE_GROUP = re.compile(r"\\[A-Za-z]+\*?(?:\s*\{[^{}]*\})*|(?<!\\)\{((?:[^{}\\]|\\[^A-Za-z])*)\}")
_ESCAPE = re.compile(r"\\([&%$#_{} ])")
_LINE_BREAK = re.compile(r"\\\\")
_QUOTES = re.compile(r"``(.*?)''", re.DOTALL)
# Dashes only between words or spaced out: `--flag` and `a---` are left alone.
_EM_DASH = re.compile(r"(?<=\w)---(?=\w)|(?<=\s)---(?=\s)")
_EN_DASH = re.compile(r"(?<=\w)--(?=\w)|(?<=\s)--(?=\s)")


def decode_tex(text: str) -> str:
    """Turn TeX accents and specials into Unicode (NFC), leaving `$...$` math untouched."""
    if "\\" not in text and "{" not in text and "--" not in text and "``" not in text:
        return unicodedata.normalize("NFC", text)
    out: list[str] = []
    pos = 0
    for math in _MATH.finditer(text):
        out.append(_decode_prose(text[pos : math.start()]))
        out.append(math.group())
        pos = math.end()
    out.append(_decode_prose(text[pos:]))
    return unicodedata.normalize("NFC", "".join(out))


def _decode_prose(text: str) -> str:
    """Decode one stretch of text that holds no math."""
    text = _SYMBOL_ACCENT.sub(_accent(_SYMBOL_ACCENTS), text)
    text = _LETTER_ACCENT.sub(_accent(_LETTER_ACCENTS), text)
    text = _SPECIAL_LETTER.sub(lambda m: _SPECIAL_LETTERS[m.group(1)], text)
    text = _SPECIAL_SYMBOL.sub(lambda m: _SPECIAL_SYMBOLS[m.group(1)], text)
    text = _repeat(_TEXT_COMMAND, lambda m: m.group(1), text)
    text = _FONT_SWITCH.sub("", text)
    text = _repeat(_BRACE_GROUP, _unbrace, text)
    text = _LINE_BREAK.sub(" ", text)
    text = _ESCAPE.sub(lambda m: _ESCAPED_SPECIALS[m.group(1)], text)
    text = _QUOTES.sub(lambda m: f"“{m.group(1)}”", text)
    text = _EM_DASH.sub("—", text)
    return _EN_DASH.sub("–", text)


def _accent(table: dict[str, str]) -> Callable[[re.Match[str]], str]:
    """A substitution that puts the matched accent on its base letter."""

    def sub(match: re.Match[str]) -> str:
        """The accented letter, NFC-composable; nothing for an accent on `{}`."""
        base = match.group("braced") or match.group("bare") or ""
        if base.startswith("\\"):
            base = base[1]  # `\'\i` is í: the accent replaces the dot
        return base + table[match.group("acc")] if base else ""

    return sub


def _unbrace(match: re.Match[str]) -> str:
    """Drop the braces of a bare group (`{\\l}`, `{B}ayes`); keep commands with arguments."""
    inner = match.group(1)
    return match.group() if inner is None else inner


def _repeat(pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str], text: str) -> str:
    """Substitute until nothing changes, so nested groups unwrap from the inside out."""
    while True:
        new = pattern.sub(repl, text)
        if new == text:
            return new
        text = new
