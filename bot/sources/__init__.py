"""Source kinds, one module each; importing this package registers them all."""

from bot.sources import arxiv_rss, rss  # noqa: F401  (registration side effect)
from bot.sources.base import KINDS, FetchWindow, SourceKind, SourceOptions, get_kind, register

__all__ = ["KINDS", "FetchWindow", "SourceKind", "SourceOptions", "get_kind", "register"]
