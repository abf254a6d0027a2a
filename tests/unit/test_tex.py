"""decode_tex: TeX escapes as arXiv writes them, to Unicode; math left alone."""

from __future__ import annotations

import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.tex import decode_tex

ARXIV = Path(__file__).parents[1] / "fixtures" / "arxiv"
DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"


@pytest.mark.parametrize(
    ("tex", "expected"),
    [
        (r"R\'emy", "Rémy"),
        (r"J\"org", "Jörg"),
        (r"Przemys{\l}aw", "Przemysław"),
        (r"{\L}ukasz", "Łukasz"),
        (r"S{\o}gaard", "Søgaard"),
        (r"{\O}stergaard", "Østergaard"),
        (r"Gro\ss e", "Große"),
        (r"Kra{\ss}", "Kraß"),
        (r"Mar{\aa}k", "Maråk"),
        (r"\AA{}ngstr\"om", "Ångström"),
        (r"Fran\c{c}ois", "François"),
        (r"Fran\c cois", "François"),
        (r"\v{S}imon Sedl\'a\v{c}ek", "Šimon Sedláček"),
        (r"N\'u\~nez", "Núñez"),
        (r"C\^ote", "Côte"),
        (r"\=a", "ā"),
        (r"Kad{\i}o\u{g}lu", "Kadıoğlu"),
        (r"Erd\H{o}s", "Erdős"),
        (r"\k{a}", "ą"),
        (r"Jaros{\l}aw \.Zygierewicz", "Jarosław Żygierewicz"),
        (r"Jakub\r{u}v", "Jakubův"),
        (r"{\'{e}}", "é"),
        (r"Mart\'\i n", "Martín"),
        (r"\'{\i}", "í"),
        (r"Aragon\`es", "Aragonès"),
        (r"\"{o}", "ö"),
        (r"\'E", "É"),
        (r"{\ae}", "æ"),
        (r"{B}ayesian {GPT}", "Bayesian GPT"),
        (r"\emph{Ab initio} and {\it in vitro}", "Ab initio and in vitro"),
        (r"Attributes \& Preferences", "Attributes & Preferences"),
        (r"50\% of \#1 \_x", "50% of #1 _x"),
        ("``quoted'' word", "“quoted” word"),
        (r"a\ldots b", "a… b"),
    ],
)
def test_accents_and_specials(tex: str, expected: str) -> None:
    assert decode_tex(tex) == expected


@pytest.mark.parametrize(
    ("tex", "expected"),
    [
        ("Privacy Personalised -- Mapping", "Privacy Personalised – Mapping"),
        ("Shastry--Sutherland", "Shastry–Sutherland"),
        ("pages 10--20", "pages 10–20"),
        ("yes---or no", "yes—or no"),
        ("run it with --verbose", "run it with --verbose"),
        ("X650->ZZ/WW", "X650->ZZ/WW"),
        ("Strang-Splittings", "Strang-Splittings"),
    ],
)
def test_dashes_only_where_they_are_dashes(tex: str, expected: str) -> None:
    assert decode_tex(tex) == expected


@pytest.mark.parametrize(
    "math",
    [
        "$H^3$Fusion: Helpful, Harmless, Honest Fusion",
        "the $J_1$-$J_2$ Heisenberg model",
        r"$\langle \kappa_\alpha: \alpha < \omega_2 \rangle$",
        r"$\frac{a}{b}$ and $a--b$",
        r"$$\sum_{i} x^{2}$$",
        r"\(x_{1}\) and \[y^{2}\]",
        r"$\'e$",
    ],
)
def test_math_is_left_alone(math: str) -> None:
    assert decode_tex(math) == math


def test_text_around_math_is_still_decoded() -> None:
    assert decode_tex(r"Lindel\"of $H^{3}$ {P}-spaces") == "Lindelöf $H^{3}$ P-spaces"


def test_escaped_dollar_is_not_math() -> None:
    assert decode_tex(r"costs \$5 for R\'emy") == "costs $5 for Rémy"


def test_unknown_commands_survive() -> None:
    assert (
        decode_tex(r"see \cite{x} and \url{https://a.b/c}")
        == r"see \cite{x} and \url{https://a.b/c}"
    )


def test_output_is_nfc() -> None:
    decoded = decode_tex(r"\v{S}imon R\'emy")
    assert decoded == unicodedata.normalize("NFC", decoded)
    assert len(decoded) == len("Šimon Rémy")


def test_accent_without_precomposed_letter_keeps_combining_mark() -> None:
    # There is no precomposed "q with caron": base letter plus U+030C is the right answer.
    assert decode_tex(r"\v{q}") == "q\u030c"


def _creator_containing(fixture: str, needle: str) -> str:
    """The first real dc:creator string in a capture that contains `needle`."""
    root = ET.parse(ARXIV / fixture).getroot()
    creators = (el.text or "" for el in root.iter(DC_CREATOR))
    return next(c for c in creators if needle in c)


@pytest.mark.parametrize(
    ("fixture", "escape", "name"),
    [
        ("rss_all-archives_2024-11-28_trimmed.xml", r"R\'emy", "Benjamin Rémy"),
        ("rss_all-archives_2024-11-28_trimmed.xml", r"Przemys{\l}aw", "Przemysław Olbratowski"),
        ("rss_all-archives_2024-11-28_trimmed.xml", r"\.Zygierewicz", "Jarosław Żygierewicz"),
        ("rss_all-archives_2024-11-28_trimmed.xml", r"Kad{\i}o\u{g}lu", "Serdar Kadıoğlu"),
        ("rss_atom_cs.AI_2025-08-20_trimmed.xml", r"J\"org Deigm\"oller", "Jörg Deigmöller"),
        ("rss_atom_cs.AI_2025-08-20_trimmed.xml", r"Mikol\'a\v{s}", "Mikoláš Janota"),
    ],
)
def test_real_creator_strings(fixture: str, escape: str, name: str) -> None:
    decoded = decode_tex(_creator_containing(fixture, escape))
    assert name in decoded
    assert "\\" not in decoded


@given(st.text(alphabet=st.characters(blacklist_characters="\\{}$`'-")))
def test_text_without_tex_only_gets_nfc(text: str) -> None:
    assert decode_tex(text) == unicodedata.normalize("NFC", text)


@given(st.text())
def test_never_raises(text: str) -> None:
    assert isinstance(decode_tex(text), str)
