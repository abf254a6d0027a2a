"""The links a paper gets from its ids, the same whichever source found it: arXiv's abstract
page and PDF, and a DOI's resolver. (The signed links in mail are `bot.mail.links`.)
"""

from __future__ import annotations

from bot.models import Link


def arxiv_abs_url(arxiv_id: str) -> str:
    """The abstract page of an arXiv paper (latest version)."""
    return f"https://arxiv.org/abs/{arxiv_id}"


def arxiv_pdf_url(arxiv_id: str) -> str:
    """The PDF of an arXiv paper (latest version)."""
    return f"https://arxiv.org/pdf/{arxiv_id}"


def arxiv_links(arxiv_id: str) -> list[Link]:
    """The abstract page and PDF links of an arXiv paper."""
    return [Link("abs", arxiv_abs_url(arxiv_id)), Link("pdf", arxiv_pdf_url(arxiv_id))]


def doi_url(doi: str) -> str:
    """Where a DOI resolves: its page at doi.org."""
    return f"https://doi.org/{doi}"
