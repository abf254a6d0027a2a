"""Seeds from `like:` entries and from BibTeX, RIS and Zotero CSV exports (bot/recommend/seeds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.recommend.seeds import MAX_EXPORT_BYTES, Seed, parse_seed, read_export

FIXTURES = Path(__file__).parent.parent / "fixtures" / "seeds"


@pytest.mark.parametrize(
    ("text", "seed"),
    [
        ("2411.01234", Seed("arxiv", "2411.01234")),
        ("arXiv:2411.01234v2", Seed("arxiv", "2411.01234")),
        (" https://arxiv.org/abs/2411.01234v3 ", Seed("arxiv", "2411.01234")),
        ("https://arxiv.org/pdf/hep-th/9901001v1", Seed("arxiv", "hep-th/9901001")),
        ("10.48550/arXiv.2411.01234", Seed("arxiv", "2411.01234")),
        ("10.1101/2024.01.01.123456", Seed("doi", "10.1101/2024.01.01.123456")),
        ("https://doi.org/10.1103/PhysRevD.76.044016", Seed("doi", "10.1103/physrevd.76.044016")),
    ],
)
def test_a_like_entry_names_one_paper(text: str, seed: Seed) -> None:
    assert parse_seed(text) == seed


@pytest.mark.parametrize(
    "text", ["", "   ", "attention is all you need", "2411.1234", "1234.56789"]
)
def test_a_like_entry_that_names_nothing_is_none(text: str) -> None:
    assert parse_seed(text) is None


def test_real_bibtex_without_ids_gives_the_titles_in_file_order() -> None:
    data = (FIXTURES / "bibtexparser_arxiv_pdf.bib").read_bytes()
    report = read_export(data, "library.bib")
    assert report.problems == ()
    assert [seed.kind for seed in report.seeds] == ["title"] * 5
    assert report.seeds[0].value == "Quantum Copy-Protection and Quantum Money"
    assert report.seeds[-1].value == "Experimental Quantum Computation and Information"


def test_real_ris_repeating_one_paper_gives_one_seed() -> None:
    report = read_export((FIXTURES / "rispy_example_urls.ris").read_bytes(), "x.RIS")
    assert report.seeds == (Seed("title", "A Mathematical Theory of Communication"),)
    assert report.problems == ()


# Hand-made, in the shapes Zotero (Better BibTeX), ADS and DBLP write arXiv entries.
BIB_WITH_IDS = rb"""
@misc{ferrari2024,
  title = {Random {{Disks}} of {{Constant Curvature}}: The {{Lattice Story}}},
  number = {arXiv:2406.06875}, eprint = {2406.06875v2}, primaryclass = {hep-th},
  doi = {10.48550/arXiv.2406.06875}, archiveprefix = {arXiv},
}
@article{ads2019, title = "{Fast ES-RNN}", journal = {arXiv e-prints},
  eid = {arXiv:1907.03329}, pages = {arXiv:1907.03329}}
@article{dblp2018, title = {Multilingual {NMT}}, journal = {CoRR},
  volume = {abs/1811.00498}, url = {http://arxiv.org/abs/1811.00498}}
@article{pubmed, title = {Not arXiv}, eprint = {1234.56789}, eprinttype = {pubmed},
  doi = {10.1088/1538-3873/ACB9BB}}
@article{numbers, title = {A   volume
   that looks like an id}, volume = {1501.01234}}
@article{bare, author = {Nobody}}
@misc{again, title = {dup}, note = {arXiv:2406.06875}}
"""


def test_bibtex_ids_come_from_eprint_journal_url_and_note_and_only_there() -> None:
    report = read_export(BIB_WITH_IDS, "zotero.bib")
    assert report.seeds == (
        Seed("arxiv", "2406.06875"),
        Seed("arxiv", "1907.03329"),
        Seed("arxiv", "1811.00498"),
        Seed("doi", "10.1088/1538-3873/acb9bb"),
        Seed("title", "A volume that looks like an id"),
    )
    assert [(p.where, p.why) for p in report.problems] == [
        ("entry 6 (bare)", "no arXiv id, DOI or title")
    ]


# Hand-made rows under the header Zotero 7 writes (first columns of its 87), values as Zotero
# fills them for an arXiv preprint and a journal article.
ZOTERO_CSV = (
    b'"Key","Item Type","Publication Year","Author","Title","Publication Title","ISBN","ISSN",'
    b'"DOI","Url","Abstract Note","Extra"\n'
    b'"ABCD1234","preprint","2024","Ferrari, Frank","Random Disks","","","",'
    b'"10.48550/arXiv.2406.06875","http://arxiv.org/abs/2406.06875","",'
    b'"arXiv:2406.06875 [hep-th]"\n'
    b'"EFGH5678","journalArticle","2018","Prandi, Dario","Quantum confinement","J. Spectr. Theory",'
    b'"","1664-039X","10.4171/JST/226","https://doi.org/10.4171/jst/226","",""\n'
    b'"IJKL9012","journalArticle","2020","","  Only   a title ","","","","","","",""\n'
    b'"MNOP3456","note","","","","","","","","","",""\n'
)


def test_zotero_csv_rows_give_arxiv_doi_and_title_and_name_the_empty_row() -> None:
    report = read_export(ZOTERO_CSV, "My Library.csv")
    assert report.seeds == (
        Seed("arxiv", "2406.06875"),
        Seed("doi", "10.4171/jst/226"),
        Seed("title", "Only a title"),
    )
    assert [p.where for p in report.problems] == ["row 4 (MNOP3456)"]


# Hostile inputs below are hand-made.


@pytest.mark.parametrize("name", ["x.bib", "x.ris", "x.csv"])
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff\xfe garbage \x89PNG\r\n",
        b"@article{a, title = {unterminated",
        b"TY  - JOUR\nTI",
    ],
)
def test_garbage_and_truncated_files_never_raise(data: bytes, name: str) -> None:
    report = read_export(data, name)
    assert all(seed.kind in ("arxiv", "doi", "title") for seed in report.seeds)


def test_a_truncated_bibtex_entry_is_reported_and_the_rest_kept() -> None:
    data = b"@misc{a, title = {Kept}, eprint = {2406.06875}}\n@article{b, title = {Cut off"
    report = read_export(data, "x.bib")
    assert report.seeds == (Seed("arxiv", "2406.06875"),)
    assert len(report.problems) == 1
    assert report.problems[0].where == "file"


def test_latin1_bytes_are_replaced_and_reported() -> None:
    data = "TY  - JOUR\nTI  - Über Kräfte\nER  - \n".encode("latin-1")
    report = read_export(data, "x.ris")
    assert report.seeds == (Seed("title", "\ufffdber Kr\ufffdfte"),)
    assert report.problems[0].where == "file"
    assert "UTF-8" in report.problems[0].why


def test_a_huge_file_is_refused_unread() -> None:
    report = read_export(b"@misc{a, eprint={2406.06875}}\n" * (MAX_EXPORT_BYTES // 20), "x.bib")
    assert report.seeds == ()
    assert "limit" in report.problems[0].why


def test_an_unknown_kind_of_file_is_reported() -> None:
    report = read_export(b"%PDF-1.7", "paper.pdf")
    assert report.seeds == ()
    assert report.problems[0].where == "file"


def test_a_real_zotero_csv_gives_arxiv_ids_dois_and_titles_wherever_zotero_put_them() -> None:
    report = read_export(
        (FIXTURES / "zotero_gabriel-p_arxiv_trimmed.csv").read_bytes(), "My Library.csv"
    )
    assert report.seeds == (
        Seed("arxiv", "1708.02025"),  # only in Pages; the ADS bibcode URL is not an id
        Seed("doi", "10.1002/asna.201211705"),
        Seed("arxiv", "1707.02160"),
        Seed("title", "Computer Programs for CCD Photometry"),  # neither id nor DOI
        Seed("doi", "10.17159/sajs.2016/20150034"),
        Seed("doi", "10.1086/666502"),  # written with a trailing ";"
        Seed("arxiv", "1212.0858"),
    )
    assert report.problems == ()
