"""Source kinds, one module each; importing this package registers them all."""

from bot.ingest.sources import (  # noqa: F401  (registration side effect)
    alphaxiv,
    arxiv_api,
    arxiv_rss,
    biorxiv,
    html,
    huggingface,
    rss,
)
from bot.ingest.sources.base import (
    KINDS,
    FetchWindow,
    SourceKind,
    SourceOptions,
    get_kind,
    register,
)

__all__ = ["KINDS", "FetchWindow", "SourceKind", "SourceOptions", "get_kind", "register"]
