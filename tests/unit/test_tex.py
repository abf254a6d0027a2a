"""decode_tex: TeX as arXiv writes it, to plain Unicode text; math left alone.

Real strings come from `arxiv/rss_all-archives_2024-11-28_wild_items.xml` (see PROVENANCE);
the parametrized one-liners without a source are hand-written complements.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.alerts.index import AlertIndex
from bot.ingest.sources.arxiv_rss import ArxivRssOptions, ArxivRssSource
from bot.models import Paper, Subscriber
from bot.text.tex import decode_tex

ARXIV = Path(__file__).parents[1] / "fixtures" / "arxiv"
WILD = ARXIV / "rss_all-archives_2024-11-28_wild_items.xml"
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
    assert decode_tex(r"see \foo{x} and \bar") == r"see \foo{x} and \bar"


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


@given(st.text(alphabet=st.characters(blacklist_characters="\\{}$`'-~")))
def test_text_without_tex_only_gets_nfc(text: str) -> None:
    assert decode_tex(text) == unicodedata.normalize("NFC", text)


@given(st.text())
def test_never_raises(text: str) -> None:
    assert isinstance(decode_tex(text), str)


# --- letters, presentation macros and ties (issue 12) ------------------------------------


@pytest.mark.parametrize(
    ("tex", "expected"),
    [
        (r"consistent with {\Lambda}CDM", "consistent with ΛCDM"),  # real: 2411.17813
        (r"a {\Lambda}CDM-based model", "a ΛCDM-based model"),  # real: 2411.17813
        (r"index {\gamma} ~ 3.5-4.0", "index γ ~ 3.5-4.0"),  # real
        (r"Metastable \beta-CuGaO2", "Metastable β-CuGaO2"),  # real
        (r"duration of 2 {\mu}s", "duration of 2 μs"),  # real
        (r"\Delta \phi < 0", "Δ ϕ < 0"),  # real
        (r"constant, \tau in 3 channels", "constant, τ in 3 channels"),  # real
        (r"an \ell_1 penalty", r"an \ell_1 penalty"),  # followed by _: math without dollars
        (r"\sigma _{n-1} and x^{2}", r"\sigma _{n-1} and x^{2}"),  # braces of _ and ^ stay
        (r"$\Lambda$CDM", r"$\Lambda$CDM"),  # real: 2411.17754, math
        (r"\alphabet", r"\alphabet"),  # not \alpha
    ],
)
def test_letters_outside_math(tex: str, expected: str) -> None:
    assert decode_tex(tex) == expected


@pytest.mark.parametrize(
    ("tex", "expected"),
    [
        (r"at \href{https://github.com/Kanyooo/EEG-DCNet}{here}.", "at here."),  # real: 2411.17705
        (
            r"[\href{https://link.springer.com/article/10.1007/s00220-003-0877-6}"
            r"{DiVincenzo {\it et al}. Commun. Math. Phys. \textbf{238}, 379-410(2003)}]",
            "[DiVincenzo et al. Commun. Math. Phys. 238, 379-410(2003)]",
        ),  # real: 2411.18036
        (
            r"at \href{https://eduardzamfir.github.io/moceir/}{\texttt{eduardzamfir.github.io/MoCE-IR/}}",
            "at eduardzamfir.github.io/MoCE-IR/",
        ),  # real: 2411.18466
        (r"at \url{https://github.com/ch9397/FixedWing-MonoPPO}.", "at https://github.com/ch9397/FixedWing-MonoPPO."),
        (r"the results in \cite{BCPR}. Namely", "the results in [BCPR]. Namely"),  # real
        (r"(MEGNet~\cite{Chen2019})", "(MEGNet [Chen2019])"),  # real: 2411.18259
        (r"{\small FEGA} (\citealt{contini2024c})", "FEGA ([contini2024c])"),  # real
        (r"\textit{et al.~}\cite{richers:2017} waveform", "et al. [richers:2017] waveform"),
        (r"see \cite[p.~3]{a, b}", "see [a, b]"),
        (r"Fig.~\ref{fig:arch} and Eq.~\eqref{eq1}", "Fig. [fig:arch] and Eq. [eq1]"),
        (r"at least \SI{100}{}-\SI{500}{} times faster", "at least 100-500 times faster"),  # real
        (r"cooled to \SI{3}{\kelvin}", "cooled to 3 K"),
        (r"\SI{5}{\milli\metre\per\second}, \si{\micro\metre}", "5 mm/s, µm"),
        (r"\SIrange{1}{5}{\kelvin} and \num{42}", "1–5 K and 42"),
        (r"library\footnote{\texttt{https://github.com/JokerJohn/Cloud\_Map\_Evaluation}} will",
         "library (https://github.com/JokerJohn/Cloud_Map_Evaluation) will"),  # real: 2411.17928
        (r"at 5\,K", "at 5 K"),
    ],
)  # fmt: skip
def test_presentation_macros_become_their_text(tex: str, expected: str) -> None:
    assert decode_tex(tex) == expected


@pytest.mark.parametrize(
    ("tex", "expected"),
    [
        (r"we need, i.e.~significant supernova", "we need, i.e. significant supernova"),  # real
        (r"part of Artemis~1 mission", "part of Artemis 1 mission"),  # real
        (r"NGC6300, and NGC~7582.", "NGC6300, and NGC 7582."),  # real
        (r"accounts for ~70% of cases", "accounts for ~70% of cases"),  # real: "about"
        (r"(~100 V, ~0.8 W)", "(~100 V, ~0.8 W)"),  # real
        (r"https://example.org/~user/x", "https://example.org/~user/x"),
        (r"J$\sim$0.22~K", r"J$\sim$0.22 K"),
        (r"Ma\~nas", "Mañas"),  # an accent, not a tie
    ],
)
def test_a_tie_is_a_space_and_about_stays(tex: str, expected: str) -> None:
    assert decode_tex(tex) == expected


def _wild_items() -> dict[str, ET.Element]:
    """The real items of the wild capture by arXiv id."""
    items = ET.parse(WILD).getroot().iter("item")
    return {(i.findtext("link") or "").rsplit("/", 1)[1]: i for i in items}


def test_display_math_is_left_intact_character_for_character() -> None:
    description = _wild_items()["2411.18457"].findtext("description") or ""
    start = description.index(r"\begin{equation*}")
    end = description.index(r"\end{equation*}") + len(r"\end{equation*}")
    display = description[start:end]
    assert r"\widehat{fd\sigma _{n-1}}" in display
    decoded = decode_tex(description)
    assert display in decoded
    assert r"where $\sigma _{n-1}$ is surface measure" in decoded


def _wild_papers() -> dict[str, Paper]:
    """The wild capture read by the arxiv-rss kind, by id."""
    url = "https://rss.arxiv.org/rss/x"
    listing = ArxivRssSource().parse(WILD.read_bytes(), url, ArxivRssOptions(url=url))
    return {paper.id: paper for paper in listing.papers}


def test_real_abstracts_read_as_text() -> None:
    papers = _wild_papers()
    assert papers["2411.17813"].title == (
        "New tools for studying planarity in galaxy satellite systems: Milky Way satellite planes"
        " are consistent with ΛCDM"
    )
    assert papers["2411.17813"].abstract.endswith(
        "is not in tension with the standard ΛCDM paradigm."
    )
    assert "every bipartition [DiVincenzo et al. Commun. Math. Phys. 238, 379-410(2003)]." in (
        papers["2411.18036"].abstract
    )
    assert papers["2411.17928"].abstract.count("100-500 times faster") == 1
    assert "(MEGNet [Chen2019]) and show" in papers["2411.18259"].abstract
    assert papers["2411.18009"].abstract.endswith(
        "publicly available at https://github.com/ch9397/FixedWing-MonoPPO."
    )
    assert "i.e. significant supernova emissivity" in papers["2411.18052"].abstract
    assert "accounts for ~70% of cases" in papers["2411.17717"].abstract
    assert r"\begin{equation*} \left\Vert \widehat{fd\sigma _{n-1}}\right\Vert" in (
        papers["2411.18457"].abstract
    )
    for paper in papers.values():
        prose = re.sub(r"\$[^$]*\$|\\begin\{equation\*\}.*\\end\{equation\*\}", "", paper.abstract)
        assert not re.search(r"\\(?:cite|href|url|SI|Lambda|footnote|texttt|it)\b", prose), paper.id


def test_a_keyword_in_greek_matches_the_tex_of_a_real_abstract() -> None:
    papers = list(_wild_papers().values())
    index = AlertIndex.build([Subscriber("ada@example.org", keywords=("ΛCDM",))])
    [match] = index.match(papers)["ada@example.org"]
    # 2411.17813 writes {\Lambda}CDM; 2411.17754 writes math, $\Lambda$CDM, left as written
    assert match.paper_id == "2411.17813"
    assert match.reasons[0].terms == ("ΛCDM",)
