"""Merge what several sources know about one paper into one record (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

from bot.models import Link, Paper

T = TypeVar("T")

#: fields whose change can change what a paper matches; a change re-runs matching for it
MATCHED_FIELDS = ("title", "abstract", "authors", "categories", "sources", "votes")


def identity_rank(paper: Paper) -> int:
    """How strong a paper's id is: arXiv id (2) over DOI (1) over a title hash (0)."""
    if paper.arxiv_id:
        return 2
    return 1 if paper.doi else 0


@dataclass(frozen=True, slots=True)
class Identity:
    """The arXiv id and DOI that records found to be one paper have settled on."""

    arxiv_id: str | None = None
    doi: str | None = None

    def admits(self, paper: Paper) -> bool:
        """Whether `paper` may be another record of this paper.

        Two different arXiv ids are two papers; so are two different DOIs, unless the
        arXiv ids agree (one paper, one of its DOIs given wrongly or arXiv's own).
        """
        if self.arxiv_id and paper.arxiv_id:
            return self.arxiv_id == paper.arxiv_id
        return not (self.doi and paper.doi and self.doi != paper.doi)

    def joined(self, paper: Paper) -> Identity:
        """This identity after `paper` was found to be a record of it."""
        return Identity(self.arxiv_id or paper.arxiv_id, self.doi or paper.doi)


def union(*groups: Iterable[T]) -> tuple[T, ...]:
    """The items of every group in first-seen order, each once."""
    return tuple(dict.fromkeys(item for group in groups for item in group))


def _max_opt(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def merge_papers(old: Paper, new: Paper) -> Paper:
    """One paper from two records of it; the record with the stronger id leads.

    Text fields take the fuller version (a lab page's teaser loses to arXiv's whole abstract,
    a members-only author list to the full one); lists are unions; counters the maximum.
    """
    lead, other = (new, old) if identity_rank(new) > identity_rank(old) else (old, new)
    links = {link.label: link for link in (*other.links, *lead.links)}
    return replace(
        lead,
        title=lead.title or other.title,
        authors=lead.authors if len(lead.authors) >= len(other.authors) else other.authors,
        abstract=lead.abstract if len(lead.abstract) >= len(other.abstract) else other.abstract,
        url=lead.url or other.url,
        arxiv_id=lead.arxiv_id or other.arxiv_id,
        doi=lead.doi or other.doi,
        published=min(
            (d for d in (lead.published, other.published) if d is not None), default=None
        ),
        categories=union(old.categories, new.categories),
        links=tuple(_ordered_links(old, new, links)),
        sources=union(old.sources, new.sources),
        announce_type=old.announce_type or new.announce_type,
        votes=_max_opt(old.votes, new.votes),
        stars=_max_opt(old.stars, new.stars),
        keywords=union(old.keywords, new.keywords),
        organizations=union(old.organizations, new.organizations),
        first_seen=old.first_seen or new.first_seen,
    )


def _ordered_links(old: Paper, new: Paper, by_label: dict[str, Link]) -> list[Link]:
    labels = union((lk.label for lk in old.links), (lk.label for lk in new.links))
    return [by_label[label] for label in labels]


def matching_changed(old: Paper, new: Paper) -> bool:
    """Whether the merge changed anything alerts look at."""
    return any(getattr(old, f) != getattr(new, f) for f in MATCHED_FIELDS)
