"""Paper identity: arXiv ids, DOIs, normalized titles and the canonical id built from them."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from urllib.parse import unquote

from bot.text.tex import decode_tex

# New-style ids are YYMM.NNNN (2007-04 to 2014-12) or YYMM.NNNNN (from 2015-01).
_NEW_ID = r"(?P<yymm>\d{4})\.(?P<seq>\d{4,5})"
# Old-style ids: archive, optional subject class (`math.GT`, not part of the id), YYMMNNN.
_OLD_ID = r"(?P<archive>[a-z]+(?:-[a-z]+)?)(?:\.[a-z]+(?:-[a-z]+)?)?/(?P<num>\d{7})"
_ID = rf"(?:{_NEW_ID}|{_OLD_ID})(?:v\d+)?(?!\d)"
# Where an arXiv id may be trusted inside a longer string; a bare number elsewhere in a URL
# (`/posts/2023.12345`) must not become a paper's identity.
_ID_CONTEXT = (
    r"arxiv\.org/(?:abs|pdf|html|ps|format|e-print)/"
    r"|arxiv\.org:"  # oai:arXiv.org:2411.01234v1
    r"|arxiv:\s*"
    r"|10\.48550/arxiv\."  # the DOI arXiv assigns to every paper
    r"|huggingface\.co/papers/"
    r"|alphaxiv\.org/(?:abs|overview|pdf)/"
)
_ARXIV_IN_TEXT = re.compile(rf"(?:{_ID_CONTEXT}){_ID}", re.IGNORECASE)
_ARXIV_ALONE = re.compile(rf"\s*{_ID}\s*", re.IGNORECASE)

_DOI = re.compile(r"10\.\d{4,9}/[^\s\"<>]+")
_ENCODED_SLASH = re.compile(r"%2f", re.IGNORECASE)
# The host of the URL a DOI sits in, if it sits in one.
_URL_HOST = re.compile(r"[a-z][a-z0-9+.-]*://([^/\s?#]+)\S*$", re.IGNORECASE)
_DOI_TRAILING = ".,;:!'\""
_CLOSERS = {")": "(", "]": "[", "}": "{"}
# Publisher landing pages append a view to the DOI (`.../10.1002/x/full`); bioRxiv and
# medRxiv append the version (`.../10.1101/2024.01.01.123456v2.full.pdf`).
_VIEW_SUFFIX = re.compile(r"/(?:full|abstract|pdf|epdf|pdfdirect|html|meta|summary)$")
_RXIV_SUFFIX = re.compile(r"v\d+(?:\.[a-z.-]+)?$")

# Inline markup sits inside words (`H<sup>3</sup>Fusion`); other tags separate them.
_INLINE_TAG = re.compile(
    r"</?(?:sub|sup|i|b|em|strong|span|a|u|tt|code|small|math|mi|mn|mo|msub|msup)\b[^>]*>",
    re.IGNORECASE,
)
_TAG = re.compile(r"<[^>]*>")
_TEX_COMMAND = re.compile(r"\\([A-Za-z]+)")
_MATH_MARKUP = re.compile(r"[$^_{}]")
_NON_WORD = re.compile(r"[\W_]+")


def arxiv_id_from(text: str) -> str | None:
    """The arXiv id (without version) in an arXiv URL, `arXiv:`/`oai:` string or bare id."""
    match = _ARXIV_ALONE.fullmatch(text) or _ARXIV_IN_TEXT.search(text)
    while match is not None:
        found = _valid_arxiv_id(match)
        if found is not None:
            return found
        match = _ARXIV_IN_TEXT.search(text, match.end())
    return None


def _valid_arxiv_id(match: re.Match[str]) -> str | None:
    """The id a match spells, if its date and length are ones arXiv can have issued."""
    if match.group("yymm") is not None:
        yymm, seq = match.group("yymm"), match.group("seq")
        if not 1 <= int(yymm[2:]) <= 12 or yymm < "0704":
            return None
        if len(seq) != (5 if yymm >= "1501" else 4):
            return None
        return f"{yymm}.{seq}"
    num = match.group("num")
    if not 1 <= int(num[2:4]) <= 12:
        return None
    return f"{match.group('archive').lower()}/{num}"


def doi_from(text: str) -> str | None:
    """The DOI (lowercased) in a doi.org link, `doi:` string, publisher URL or bare `10.x/y`."""
    # Only an encoded slash is decoded before the search: `%3F` inside a DOI is part of it,
    # while a real `?` after it starts the URL's query.
    for source in (text, _ENCODED_SLASH.sub("/", text)):
        match = _DOI.search(source)
        if match is not None:
            break
    else:
        return None
    doi = match.group()
    in_url = _URL_HOST.search(source, 0, match.start())
    if in_url is not None:
        doi = _strip_url_parts(doi, in_url, match.start())
    doi = _trim_punctuation(unquote(doi))
    return doi.lower() if not doi.endswith("/") else None


def _strip_url_parts(doi: str, url: re.Match[str], doi_start: int) -> str:
    """Cut what the URL a DOI sits in adds after it: query, fragment, view, version."""
    in_query = "?" in url.string[url.start() : doi_start]  # `...?doi=10.1/x&from=rss`
    doi = re.split(r"[&#]" if in_query else r"[?#]", doi, maxsplit=1)[0]
    host = url.group(1).lower()
    if host.endswith("doi.org"):
        return doi
    if host.endswith(("biorxiv.org", "medrxiv.org")):
        doi = _RXIV_SUFFIX.sub("", doi)
    return _VIEW_SUFFIX.sub("", doi)


def _trim_punctuation(doi: str) -> str:
    """Drop sentence punctuation and unbalanced closing brackets stuck to the end of a DOI."""
    while doi and (doi[-1] in _DOI_TRAILING or _unbalanced_closer(doi)):
        doi = doi[:-1]
    return doi


def _unbalanced_closer(doi: str) -> bool:
    """Whether the DOI ends in a bracket it never opened (`(see 10.1000/x)`)."""
    opener = _CLOSERS.get(doi[-1])
    return opener is not None and doi.count(opener) < doi.count(doi[-1])


def normalize_title(title: str) -> str:
    """A title reduced to casefolded, accent-free words, so two sources' spellings compare equal."""
    text = decode_tex(html.unescape(_TAG.sub(" ", _INLINE_TAG.sub("", title))))
    text = _TEX_COMMAND.sub(_tex_command_text, text)
    text = _MATH_MARKUP.sub("", text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return _NON_WORD.sub(" ", text).strip()


def _tex_command_text(match: re.Match[str]) -> str:
    """A Greek letter for `\\alpha`, nothing for other commands (`\\mathcal`, `\\log`)."""
    name = match.group(1).lower().removeprefix("var").replace("lambda", "lamda")
    try:
        return unicodedata.lookup(f"GREEK SMALL LETTER {name}")
    except KeyError:
        return " "


def title_key(title: str) -> str:
    """A short stable hash (16 hex digits) of the normalized title."""
    return hashlib.blake2b(normalize_title(title).encode(), digest_size=8).hexdigest()


def canonical_id(*, arxiv_id: str | None = None, doi: str | None = None, title: str = "") -> str:
    """The paper's identity: arXiv id without version, else `doi:<doi>`, else `title:<key>`."""
    if arxiv_id:
        found = arxiv_id_from(arxiv_id)
        if found is None:
            raise ValueError(f"not an arXiv id: {arxiv_id!r}")
        return found
    if doi:
        clean = doi_from(doi)
        if clean is None:
            raise ValueError(f"not a DOI: {doi!r}")
        return f"doi:{clean}"
    if not normalize_title(title):
        raise ValueError("a paper needs an arXiv id, a DOI or a title")
    return f"title:{title_key(title)}"
