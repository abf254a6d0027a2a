"""TeX in prose to plain Unicode text, as arXiv writes it in titles, abstracts and authors.

Accents and special letters become letters (`R\\'emy` is Rémy, `Przemys{\\l}aw` Przemysław),
and so do Greek letters written outside math (`{\\Lambda}CDM` is ΛCDM, so that the keyword
`ΛCDM` finds it); presentation macros become their text (`\\href{url}{text}` is the text,
`\\emph{x}` x, `\\cite{key}` `[key]`, `\\url{u}` u, `\\SI{3}{\\kelvin}` 3 K) and a tie `~` a
space. Math is left exactly as written: `$...$`, `$$...$$`, `\\(...\\)`, `\\[...\\]`, math
environments (`\\begin{equation*}...`), a Greek letter followed by `_` or `^`, and the
braces of a `_{...}` or `^{...}` group.
"""

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
# Greek letters (and ell) that name a letter; outside math they are text (`{\Lambda}CDM`).
_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ϵ", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "ϑ", "iota": "ι", "kappa": "κ",
    "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "varpi": "ϖ", "rho": "ρ",
    "varrho": "ϱ", "sigma": "σ", "varsigma": "ς", "tau": "τ", "upsilon": "υ", "phi": "ϕ",
    "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω", "Gamma": "Γ", "Delta": "Δ",
    "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π", "Sigma": "Σ", "Upsilon": "Υ",
    "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω", "ell": "ℓ",
}  # fmt: skip
# siunitx units and prefixes, for `\SI{3}{\milli\kelvin}` -> "3 mK".
_UNITS = {
    "kelvin": "K", "metre": "m", "meter": "m", "second": "s", "gram": "g", "kilogram": "kg",
    "hertz": "Hz", "tesla": "T", "volt": "V", "watt": "W", "joule": "J", "ampere": "A",
    "newton": "N", "pascal": "Pa", "electronvolt": "eV", "mole": "mol", "percent": "%",
    "degree": "°", "celsius": "°C", "degreeCelsius": "°C", "ohm": "Ω", "litre": "L",
    "liter": "L", "minute": "min", "hour": "h", "day": "d", "byte": "B", "bit": "bit",
    "femto": "f", "pico": "p", "nano": "n", "micro": "µ", "milli": "m", "centi": "c",
    "kilo": "k", "mega": "M", "giga": "G", "tera": "T", "peta": "P", "per": "/",
    "squared": "²", "cubed": "³",
}  # fmt: skip
# Markup whose argument is the text itself; the formatting is of no use in a plain string.
_TEXT_COMMANDS = (
    "emph|textit|textbf|textsc|texttt|textrm|textsf|textsl|textup|textmd|textnormal|underline"
    "|mbox|text|textsuperscript|textsubscript"
)
_ESCAPED_SPECIALS = {"&": "&", "%": "%", "$": "$", "#": "#", "_": "_", "{": "{", "}": "}", " ": " "}

# Math is left exactly as written: `$H^3$` must not lose its caret or braces.
_MATH_ENVIRONMENTS = "equation|align|alignat|flalign|gather|multline|eqnarray|displaymath|math"
_MATH = re.compile(
    r"\$\$.+?\$\$|(?<!\\)\$(?:[^$\\]|\\.)+?\$|\\\(.+?\\\)|\\\[.+?\\\]"
    rf"|\\begin\{{(?P<env>(?:{_MATH_ENVIRONMENTS})\*?)\}}.*?\\end\{{(?P=env)\}}",
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
# Not before `_` or `^`: `\sigma_{n}` is math written without dollars.
_GREEK_LETTER = re.compile(r"\\(" + "|".join(_GREEK) + r")(?![A-Za-z])(?:\{\})?(?!\s*[_^])")
_TEXT_COMMAND = re.compile(r"\\(?:" + _TEXT_COMMANDS + r")\s*\{([^{}]*)\}")
# Old-style font and size switches (`{\it word}`, `{\small FEGA}`) only change the look.
_FONT_SWITCH = re.compile(
    r"\\(?:it|bf|em|rm|sc|tt|sl|sf|cal|itshape|bfseries|ttfamily|scshape|rmfamily|sffamily"
    r"|upshape|mdseries|tiny|scriptsize|footnotesize|small|normalsize|large|Large|LARGE|huge"
    r"|Huge)(?![A-Za-z])\s*"
)
_ARG = r"\s*\{([^{}]*)\}"
_OPTIONAL = r"(?:\s*\[[^\]]*\])*"
# Presentation macros, read innermost first (their arguments hold no braces by then).
_HREF = re.compile(r"\\href" + _ARG + _ARG)
_URL = re.compile(r"\\(?:url|nolinkurl)" + _ARG)
_CITE = re.compile(
    r"\\(?:cite|citep|citet|citealt|citealp|citeauthor|citeyear|citeyearpar|parencite"
    r"|textcite|autocite|footcite)\*?" + _OPTIONAL + _ARG
)
_NOCITE = re.compile(r"\\nocite" + _ARG)
_REF = re.compile(r"\\(?:ref|eqref|autoref|cref|Cref|pageref|nameref)\*?" + _ARG)
_FOOTNOTE = re.compile(r"\s*\\footnote" + _OPTIONAL + _ARG)
_SI_RANGE = re.compile(r"\\SIrange" + _OPTIONAL + _ARG + _ARG + _ARG)
_SI = re.compile(r"\\(?:SI|qty)" + _OPTIONAL + _ARG + _ARG)
_SI_UNIT = re.compile(r"\\(?:si|unit)" + _OPTIONAL + _ARG)
_NUM = re.compile(r"\\num" + _OPTIONAL + _ARG)
_PRESENTATION = re.compile(
    r"\\(?:href|url|nolinkurl|\w*cite\w*|\w*ref|footnote|SI|SIrange|qty|si|unit|num)\b"
)
_UNIT_MACRO = re.compile(r"\\([A-Za-z]+)\s*")
# A command with its brace arguments is kept whole; any other `{...}` group loses its braces,
# except the argument of `_` or `^` (math written without dollars: `\sigma _{n-1}`).
_BRACE_GROUP = re.compile(
    r"\\[A-Za-z]+\*?(?:\s*\{[^{}]*\})*|(?<![\\_^])\{((?:[^{}\\]|\\[^A-Za-z])*)\}"
)
# A tie between words is a space; `~70%` after a space means "about" and stays.
_TIE = re.compile(r"(?<=[\w.,;:!?)\]}'])~")
_THIN_SPACE = re.compile(r"\\[,;:]")
_NEGATIVE_SPACE = re.compile(r"\\!")
_ESCAPE = re.compile(r"\\([&%$#_{} ])")
_LINE_BREAK = re.compile(r"\\\\")
_QUOTES = re.compile(r"``(.*?)''", re.DOTALL)
# Dashes only between words or spaced out: `--flag` and `a---` are left alone.
_EM_DASH = re.compile(r"(?<=\w)---(?=\w)|(?<=\s)---(?=\s)")
_EN_DASH = re.compile(r"(?<=\w)--(?=\w)|(?<=\s)--(?=\s)")
_TEX_MARKS = ("\\", "{", "--", "``", "~")  # text without any of them is only normalized


def decode_tex(text: str) -> str:
    """TeX prose as plain Unicode text (NFC), math left exactly as written (module docstring)."""
    if not any(mark in text for mark in _TEX_MARKS):
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
    text = _GREEK_LETTER.sub(lambda m: _GREEK[m.group(1)], text)
    text = _SPECIAL_SYMBOL.sub(lambda m: _SPECIAL_SYMBOLS[m.group(1)], text)
    text = _repeat_all(_unwrap_once, text)
    text = _TIE.sub(" ", text)
    text = _THIN_SPACE.sub(" ", _NEGATIVE_SPACE.sub("", text))
    text = _LINE_BREAK.sub(" ", text)
    text = _ESCAPE.sub(lambda m: _ESCAPED_SPECIALS[m.group(1)], text)
    text = _QUOTES.sub(lambda m: f"“{m.group(1)}”", text)
    text = _EM_DASH.sub("—", text)
    return _EN_DASH.sub("–", text)


def _unwrap_once(text: str) -> str:
    """One pass of reducing markup to its text, innermost groups first."""
    if "\\" in text:
        text = _TEXT_COMMAND.sub(lambda m: m.group(1), text)
        text = _FONT_SWITCH.sub("", text)
        if _PRESENTATION.search(text):
            text = _presentation_once(text)
    return _BRACE_GROUP.sub(_unbrace, text)


def _presentation_once(text: str) -> str:
    """Links, citations, references, footnotes and quantities as their text (one pass)."""
    text = _HREF.sub(lambda m: m.group(2), text)
    text = _URL.sub(lambda m: m.group(1), text)
    text = _CITE.sub(lambda m: _marker(m.group(1)), text)
    text = _NOCITE.sub("", text)
    text = _REF.sub(lambda m: _marker(m.group(1)), text)
    text = _FOOTNOTE.sub(lambda m: f" ({m.group(1).strip()})", text)
    text = _SI_RANGE.sub(lambda m: _quantity(f"{m.group(1)}–{m.group(2)}", m.group(3)), text)
    text = _SI.sub(lambda m: _quantity(m.group(1), m.group(2)), text)
    text = _SI_UNIT.sub(lambda m: _unit(m.group(1)), text)
    return _NUM.sub(lambda m: m.group(1).strip(), text)


def _marker(keys: str) -> str:
    """A readable stand-in for a citation or reference: `[key1, key2]`."""
    return "[" + ", ".join(k.strip() for k in keys.split(",") if k.strip()) + "]"


def _quantity(number: str, unit: str) -> str:
    """`\\SI{3}{\\kelvin}` as "3 K" (no unit: just the number)."""
    written = _unit(unit)
    return f"{number.strip()} {written}" if written else number.strip()


def _unit(unit: str) -> str:
    """A siunitx unit as text: `\\milli\\metre\\per\\second` is "mm/s"."""
    return _UNIT_MACRO.sub(lambda m: _UNITS.get(m.group(1), m.group(1)), unit).strip()


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


def _repeat_all(step: Callable[[str], str], text: str) -> str:
    """Apply `step` until nothing changes, so nested groups unwrap from the inside out."""
    while True:
        new = step(text)
        if new == text:
            return new
        text = new
