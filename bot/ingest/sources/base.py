"""The source-kind registry: every kind is a class registered by name, one file per kind."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, Generic, TypeVar

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


#: a kind's options: its own subclass of SourceOptions
Options = TypeVar("Options", bound=SourceOptions)


class SourceKind(ABC, Generic[Options]):
    """A kind of source: which URLs to fetch and how to read what they return (no I/O here).

    A kind is declared with its options, `class RssSource(SourceKind[RssOptions])`, and says
    `options_model = RssOptions`: the checker holds the two to each other and to the
    options every method takes.
    """

    name: ClassVar[str]
    #: the model a source's config entry is validated into (a ClassVar cannot be generic)
    options_model: type[Options]
    #: when the worker fetches a source of this kind unless its `schedule:` says otherwise
    default_schedule: ClassVar[Schedule] = Schedule("0 5 * * *")

    @abstractmethod
    def start_urls(self, options: Options, window: FetchWindow) -> list[str]:
        """The URLs one fetch of this source starts from."""

    @abstractmethod
    def parse(self, body: bytes, url: str, options: Options) -> Listing:
        """Read one fetched document; raise `ParseError` when it is not what this kind expects."""

    def max_pages(self, options: Options) -> int:
        """How many `next_url` pages one fetch may follow."""
        return 1

    def explain(self, body: bytes) -> str | None:
        """What an error answer's body (a 4xx) says, when this kind knows its format."""
        return None


#: the kinds by name; a caller holds a kind by its name, so its options are any kind's
KINDS: dict[str, type[SourceKind[Any]]] = {}

Kind = TypeVar("Kind", bound="SourceKind[Any]")


def register(cls: type[Kind]) -> type[Kind]:
    """Class decorator: make a source kind available under its `name`."""
    KINDS[cls.name] = cls
    return cls


def get_kind(name: str) -> SourceKind[Any]:
    """An instance of the registered kind `name` (KeyError when unknown)."""
    return KINDS[name]()
