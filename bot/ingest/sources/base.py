"""The source-kind registry: every kind is a class registered by name, one file per kind."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.models import Listing
from bot.timing.schedule import Schedule, check_cron

#: the longest deadline a source fetch may be given, in seconds (an hour: longer holds the run)
MAX_DEADLINE = 3600.0


class SourceOptions(BaseModel):
    """Options every source kind accepts; kinds subclass this to add their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        None, description="override the endpoint (a mirror, a local test server)"
    )
    schedule: str | None = Field(
        None,
        description="when `paperbot run` fetches it: cron, e.g. '0 6 * * *', in the config's"
        " timezone (default: the kind's rhythm, shown by check-config)",
    )
    deadline: float | None = Field(
        None,
        gt=0,
        le=MAX_DEADLINE,
        description="seconds one fetch of it may take, pages, retries and waits included"
        " (default: fetch.deadline)",
    )

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str | None) -> str | None:
        return check_cron(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class FetchWindow:
    """When this source last fetched successfully and what day it is, for date-windowed kinds."""

    today: date
    last_success: date | None = None


class SourceKind(ABC):
    """A kind of source: which URLs to fetch and how to read what they return (no I/O here)."""

    name: ClassVar[str]
    options_model: ClassVar[type[SourceOptions]] = SourceOptions
    #: when the worker fetches a source of this kind unless its `schedule:` says otherwise
    default_schedule: ClassVar[Schedule] = Schedule("0 5 * * *")

    @abstractmethod
    def start_urls(self, options: Any, window: FetchWindow) -> list[str]:
        """The URLs one fetch of this source starts from."""

    @abstractmethod
    def parse(self, body: bytes, url: str, options: Any) -> Listing:
        """Read one fetched document; raise `ParseError` when it is not what this kind expects."""

    def max_pages(self, options: Any) -> int:
        """How many `next_url` pages one fetch may follow."""
        return 1

    def explain(self, body: bytes) -> str | None:
        """What an error answer's body (a 4xx) says, when this kind knows its format."""
        return None


KINDS: dict[str, type[SourceKind]] = {}


def register(cls: type[SourceKind]) -> type[SourceKind]:
    """Class decorator: make a source kind available under its `name`."""
    KINDS[cls.name] = cls
    return cls


def get_kind(name: str) -> SourceKind:
    """An instance of the registered kind `name` (KeyError when unknown)."""
    return KINDS[name]()
