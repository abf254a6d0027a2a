"""Seed papers a subscriber likes: one `like:` entry, or a BibTeX, RIS or Zotero CSV export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import bibtexparser
import rispy
from bibtexparser.bparser import BibTexParser

from bot.text.ids import arxiv_id_from, doi_from
from bot.text.tex import decode_tex

SeedKind = Literal["arxiv", "doi", "title"]

# An export bigger than this is refused whole: a library of a few thousand entries is well under.
MAX_EXPORT_BYTES = 5 * 1024 * 1024

_SPACE = re.compile(r"\s+")
# BibTeX entries that are not papers: `@string`, `@comment`, `@preamble`.
_BIB_ENTRY = re.compile(r"^[ \t]*@(?!(?:string|comment|preamble)\b)\w+\s*[{(]", re.I | re.M)
# Fields naming where a paper sits online; a DOI in them counts only behind a doi.org link.
_URL_FIELDS = frozenset({"url", "urls", "link", "howpublished"})
_DOI_FIELDS = frozenset({"doi"})
_TITLE_FIELDS = ("title", "primary_title")


@dataclass(frozen=True)
class Seed:
    """One paper a subscriber likes, by arXiv id (no version), lower-cased DOI or title."""

    kind: SeedKind
    value: str

    @property
    def key(self) -> str:
        """How the seed is kept (`Subscriber.likes`): `2411.01234`, `doi:10.1/x`, `title:Text`."""
        return self.value if self.kind == "arxiv" else f"{self.kind}:{self.value}"


#: the most a title seed keeps: a longer one is not a title
MAX_TITLE_LENGTH = 500


def seed_from_key(key: str) -> Seed | None:
    """The seed a stored key names (see `Seed.key`), or None when it names none."""
    if key.startswith("title:"):
        title = _SPACE.sub(" ", key[len("title:") :]).strip()
        return Seed("title", title) if 0 < len(title) <= MAX_TITLE_LENGTH else None
    if key.startswith("doi:"):
        doi = doi_from(key[len("doi:") :])
        return Seed("doi", doi) if doi is not None else None
    arxiv = arxiv_id_from(key)
    return Seed("arxiv", arxiv) if arxiv is not None and arxiv == key else None


@dataclass(frozen=True)
class Problem:
    """Something in an export that gave no seed: where (entry number and key, or file) and why."""

    where: str
    why: str


@dataclass(frozen=True)
class SeedReport:
    """What an export yielded: each seed once in file order, and what was not recognised."""

    seeds: tuple[Seed, ...]
    problems: tuple[Problem, ...]


#: what is said of a `like:` entry or a typed line that names no paper (after the entry)
NOT_A_SEED = "is not an arXiv id, arXiv link, DOI or doi.org link"


def parse_seed(text: str) -> Seed | None:
    """The seed one `like:` entry names (arXiv id, arXiv URL, DOI or doi.org link), or None."""
    text = text.strip()
    if not text:
        return None
    arxiv = arxiv_id_from(text)
    if arxiv is not None:
        return Seed("arxiv", arxiv)
    doi = doi_from(text)
    return Seed("doi", doi) if doi is not None else None


def read_export(data: bytes, filename: str) -> SeedReport:
    """The seeds in a .bib, .ris or Zotero .csv export; never raises, reports what it skipped."""
    if len(data) > MAX_EXPORT_BYTES:
        size = f"{len(data) / 1024 / 1024:.1f} MB"
        return _only(Problem("file", f"{size} is over the {_MB} MB limit; nothing was read"))
    reader = _READERS.get(filename.rsplit(".", 1)[-1].lower() if "." in filename else "")
    if reader is None:
        return _only(Problem("file", f"{filename!r} is not a .bib, .ris or .csv export"))
    problems: list[Problem] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8-sig", errors="replace")
        problems.append(Problem("file", f"not UTF-8 (byte {exc.start}); odd bytes were replaced"))
    seeds: dict[Seed, None] = {}
    for where, fields in reader(text, problems):
        seed = _entry_seed(fields)
        if seed is None:
            problems.append(Problem(where, "no arXiv id, DOI or title"))
        else:
            seeds.setdefault(seed)
    return SeedReport(tuple(seeds), tuple(problems))


_MB = MAX_EXPORT_BYTES // (1024 * 1024)

# An entry as (field name lower-cased, value) pairs, in the order the export gives them.
_Fields = list[tuple[str, str]]


def _only(problem: Problem) -> SeedReport:
    """A report with no seeds and one problem."""
    return SeedReport((), (problem,))


def _entry_seed(fields: _Fields) -> Seed | None:
    """An entry's arXiv id, else its DOI, else its title."""
    arxiv = _first(_arxiv_candidates(fields), arxiv_id_from)
    if arxiv is not None:
        return Seed("arxiv", arxiv)
    doi = _first(_doi_candidates(fields), doi_from)
    if doi is not None:
        return Seed("doi", doi)
    for name, value in fields:
        if name in _TITLE_FIELDS:
            title = _clean_title(value)
            if 0 < len(title) <= MAX_TITLE_LENGTH:
                return Seed("title", title)
    return None


def _first(candidates: Iterable[str], parse: Any) -> str | None:
    """The first candidate string the parser makes something of."""
    for candidate in candidates:
        found: str | None = parse(candidate)
        if found is not None:
            return found
    return None


def _arxiv_candidates(fields: _Fields) -> Iterator[str]:
    """`eprint` of an arXiv entry, then any value that says arXiv (journal, URL, note, DOI)."""
    names = {name: value.strip().lower() for name, value in fields}
    prefix = names.get("archiveprefix") or names.get("eprinttype") or "arxiv"
    if prefix == "arxiv":
        yield from (value for name, value in fields if name == "eprint")
    # A bare number elsewhere (`volume = {1234.5678}`) is not trusted: the value must say arXiv.
    yield from (value for _, value in fields if "arxiv" in value.lower())


def _doi_candidates(fields: _Fields) -> Iterator[str]:
    """The DOI field, then doi.org links among the URLs."""
    yield from (value for name, value in fields if name in _DOI_FIELDS)
    for name, value in fields:
        if name in _URL_FIELDS and "doi.org/" in value.lower():
            yield value


def _clean_title(title: str) -> str:
    """A title with TeX and BibTeX's case-protecting braces undone and whitespace collapsed."""
    return _SPACE.sub(" ", decode_tex(title).replace("{", "").replace("}", "")).strip()


def _read_bib(text: str, problems: list[Problem]) -> Iterator[tuple[str, _Fields]]:
    """BibTeX entries by number and key; entries the parser dropped are counted as one problem."""
    parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False)
    try:
        entries = bibtexparser.loads(text, parser=parser).entries
    except Exception as exc:  # the parser raises what its pyparsing grammar raises
        problems.append(Problem("file", f"not readable as BibTeX ({type(exc).__name__})"))
        return
    dropped = len(_BIB_ENTRY.findall(text)) - len(entries)
    if dropped > 0:
        problems.append(Problem("file", f"{dropped} BibTeX entries could not be parsed"))
    for number, entry in enumerate(entries, 1):
        fields = [(name.lower(), value) for name, value in entry.items() if isinstance(value, str)]
        yield f"entry {number} ({entry.get('ID', 'no key')})", fields


def _read_ris(text: str, problems: list[Problem]) -> Iterator[tuple[str, _Fields]]:
    """RIS records by number (and ID tag if any)."""
    try:
        records = rispy.loads(text)
    except Exception as exc:  # rispy raises IOError/ValueError/KeyError on malformed input
        problems.append(Problem("file", f"not readable as RIS ({type(exc).__name__})"))
        return
    for number, record in enumerate(records, 1):
        fields = list(_flatten(record))
        key = record.get("id")
        yield f"entry {number}" + (f" ({key})" if isinstance(key, str) else ""), fields


def _flatten(record: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """A rispy record's values as (name, string) pairs; list tags give one pair per value."""
    for name, value in record.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str):
                yield name.lower(), item


def _read_csv(text: str, problems: list[Problem]) -> Iterator[tuple[str, _Fields]]:
    """Zotero CSV rows by row number and Zotero key."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        problems.append(Problem("file", f"not readable as CSV ({exc})"))
        return
    if not rows:
        problems.append(Problem("file", "empty CSV"))
        return
    header = [name.strip().lower() for name in rows[0]]
    if "title" not in header:
        problems.append(Problem("file", "no Title column; not a Zotero CSV export"))
        return
    for number, row in enumerate(rows[1:], 1):
        fields = list(zip(header, row, strict=False))
        key = dict(fields).get("key", "")
        yield f"row {number}" + (f" ({key})" if key else ""), fields


_READERS = {"bib": _read_bib, "ris": _read_ris, "csv": _read_csv}
