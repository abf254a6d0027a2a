"""Retention as the config says (`retention:`): after each run, and by `paperbot retention`."""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta

from bot.config.settings import Config, RetentionSettings
from bot.errors import PaperbotError
from bot.store.retention import Pruned, RetentionRules
from bot.store.store import Store

log = logging.getLogger(__name__)


def retention_rules(settings: RetentionSettings) -> RetentionRules:
    """The store's rules from the config's days (0 or null: keep forever)."""
    return RetentionRules(
        papers=_days(settings.papers_days),
        fetches=_days(settings.fetches_days),
        runs=_days(settings.runs_days),
    )


def _days(days: int | None) -> timedelta | None:
    return timedelta(days=days) if days else None


def apply_retention(config: Config, store: Store, now: datetime | None = None) -> Pruned | None:
    """Apply `retention:` after a run: never fails the run (one warning line on error)."""
    try:
        pruned = store.retention.apply(retention_rules(config.retention), now)
    except (PaperbotError, sqlite3.Error) as exc:  # the run's work is done and stays done
        log.warning("retention: skipped this time: %s", exc)
        return None
    if pruned.papers or pruned.fetches or pruned.runs or pruned.reclaimed:
        log.info("%s", pruned.describe())
    return pruned


def describe_retention(settings: RetentionSettings) -> str:
    """What `retention:` means, for `check-config`."""

    def kept(days: int | None) -> str:
        return f"{days} days" if days else "forever"

    return (
        f"retention: unmatched papers {kept(settings.papers_days)}, fetch log"
        f" {kept(settings.fetches_days)}, runs {kept(settings.runs_days)}; the sent ledger,"
        " digests, seeds and feedback forever"
    )
