"""The config file's schema: every section and option, with its bounds and description."""

from __future__ import annotations

import os
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.config.checks import (
    SHORT_REPR,
    address_part,
    cadence_value,
    check_ca_file,
    check_email,
    check_header_address,
    check_header_text,
    check_url,
    is_host,
    rate_per_second,
)
from bot.ingest.sources import SourceOptions
from bot.ingest.sources.base import MAX_DEADLINE
from bot.models import DEFAULT_RECOMMEND, MAX_PAPERS, Frequency, Subscriber
from bot.timing.schedule import check_cron

DEFAULT_CONFIG = Path("config/paperbot.yaml")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
#: the longest an SMTP reply may be waited for (RFC 5321's longest client timeout, for the
#: reply to the final dot, is 10 minutes), and one message's whole exchange
MAX_SMTP_TIMEOUT, MAX_MESSAGE_DEADLINE = 600.0, 3600.0
#: the longest a run waits for the store or for another run (a stuck one must not hold every
#: later run for ever), and the latest a missed worker job still runs (a weekly job's week)
MAX_STORE_WAIT, MAX_MISFIRE_GRACE = 3600.0, 7 * 86400.0
#: counts compared in the store: within SQLite's integers, far above any sensible value
MAX_COUNT = 1000
#: the most `like:` entries one subscriber may have (a library export is a few hundred)
MAX_LIKES = 1000
#: the longest retention a number can say (100 years); 0 or null keeps forever
MAX_RETENTION_DAYS = 36_500


class _Strict(BaseModel):
    # .inf and .nan are never a number of seconds or a count: a wait of .inf never ends
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class DkimSettings(_Strict):
    """DKIM signing: the selector and domain published in DNS, and where the key is."""

    selector: str = Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
    domain: str = Field(pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
    key_file: Path | None = Field(None, description="PEM RSA private key file")
    key_env: str | None = Field(None, description="environment variable holding the PEM key")


class SmtpSettings(_Strict):
    """How to reach the mail server; the password comes from the environment only."""

    host: str = Field(description="the mail server's host name or IP address, without a port")
    port: int | None = Field(None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    from_: str = Field(alias="from")
    timeout: float = Field(
        30.0, gt=0, le=MAX_SMTP_TIMEOUT, description="seconds one SMTP reply may take"
    )
    message_deadline: float = Field(
        60.0,
        gt=0,
        le=MAX_MESSAGE_DEADLINE,
        description="seconds one message's whole exchange may take, reconnect included",
    )
    max_failures_in_a_row: int = Field(
        5,
        ge=1,
        le=MAX_COUNT,
        description="timeouts or lost connections in a row that stop sending",
    )
    connections: int = Field(4, ge=1, le=64, description="persistent connections in parallel")
    rate_limit: str | None = Field(None, description="at most this many messages: 10/s, 600/min")
    retries: int = Field(2, ge=0, le=10, description="in-run retries of a 4xx or lost connection")
    retry_delay: float = Field(
        5.0,
        ge=0,
        le=MAX_SMTP_TIMEOUT,
        description="first retry delay in seconds, doubling (each at most 10 minutes)",
    )
    max_hard_bounces: int = Field(
        3, ge=1, le=MAX_COUNT, description="consecutive 5xx refusals to suspend"
    )
    reply_to: str | None = None
    sender: str | None = None
    unsubscribe_mailto: str | None = None
    dkim: DkimSettings | None = None

    @field_validator("rate_limit")
    @classmethod
    def _valid_rate(cls, value: str | None) -> str | None:
        if value is not None:
            rate_per_second(value)
        return value

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str) -> str:
        if not is_host(value):
            raise ValueError(
                f"not a host name or IP address (got {SHORT_REPR.repr(value)}); the port"
                " goes in port:"
            )
        return value

    @field_validator("from_", "reply_to", "sender", "unsubscribe_mailto")
    @classmethod
    def _valid_header_address(cls, value: str | None) -> str | None:
        return None if value is None else check_header_address(value)

    @property
    def effective_port(self) -> int:
        """The port, defaulting by security mode (587, 465, 25)."""
        return self.port or DEFAULT_PORTS[self.security]

    @property
    def messages_per_second(self) -> float | None:
        """The rate limit as messages per second (None: as fast as the server takes them)."""
        return rate_per_second(self.rate_limit) if self.rate_limit else None

    @property
    def unsubscribe_address(self) -> str:
        """The mailto: address of List-Unsubscribe: the setting, else From's `local+unsubscribe`."""
        if self.unsubscribe_mailto:
            return self.unsubscribe_mailto
        local, _, domain = address_part(self.from_).rpartition("@")
        return f"{local.partition('+')[0]}+unsubscribe@{domain}"

    def password(self) -> str | None:
        """The SMTP password read from the environment variable named in the config."""
        return os.environ.get(self.password_env) if self.password_env else None


class ImapSettings(_Strict):
    """The IMAP mailbox bounces and mailed unsubscribes arrive in; password from the env."""

    host: str = Field(description="the IMAP server's host name or IP address, without a port")
    port: int | None = Field(None, ge=1, le=65535)
    security: Literal["tls", "starttls", "none"] = "tls"
    username: str = Field(min_length=1, description="the mailbox's login name")
    password_env: str = Field(
        min_length=1, description="environment variable holding the mailbox password"
    )
    folder: str = Field("INBOX", min_length=1, description="the folder that is read")
    processed_folder: str | None = Field(
        "paperbot-processed",
        description="where read messages are moved; null: flagged \\Seen and $PaperbotRead",
    )
    timeout: float = Field(
        30.0, gt=0, le=MAX_SMTP_TIMEOUT, description="seconds one IMAP reply may take"
    )
    ca_file: Path | None = Field(
        None,
        description="PEM file of the CA(s) to trust for the server's certificate instead of"
        " the system's (a private CA); certificates are always verified",
    )

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str) -> str:
        if not is_host(value):
            raise ValueError(f"not a host name or IP address (got {SHORT_REPR.repr(value)})")
        return value

    @field_validator("ca_file")
    @classmethod
    def _valid_ca_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            check_ca_file(value)
        return value

    @field_validator("folder", "processed_folder")
    @classmethod
    def _valid_folder(cls, value: str | None) -> str | None:
        if value is not None and (not value.isprintable() or '"' in value or "\\" in value):
            raise ValueError(f"not a folder name (got {SHORT_REPR.repr(value)})")
        return value

    @property
    def effective_port(self) -> int:
        """The port, defaulting by security mode (993 for tls, else 143)."""
        return self.port or (993 if self.security == "tls" else 143)

    def password(self) -> str | None:
        """The mailbox password read from the environment variable named in the config."""
        return os.environ.get(self.password_env)


class BounceSettings(_Strict):
    """Where bounces and mailed unsubscribes are read back: an IMAP mailbox or a Maildir."""

    imap: ImapSettings | None = None
    maildir: Path | None = Field(
        None, description="a Maildir (with new/ and cur/) the mail server delivers them to"
    )
    verp: bool = Field(
        True,
        description="each digest's envelope sender names its subscriber: bot+b-<tag>@domain",
    )

    @model_validator(mode="after")
    def _one_mailbox(self) -> BounceSettings:
        if (self.imap is None) == (self.maildir is None):
            raise ValueError("give exactly one of imap: or maildir:")
        return self


MAX_INTERVAL = 600.0


class FetchSettings(_Strict):
    """How politely and how patiently sources are fetched."""

    timeout: float = Field(
        30.0, gt=0, description="seconds one connect or read may wait for the server"
    )
    deadline: float = Field(
        300.0,
        gt=0,
        le=MAX_DEADLINE,
        description="seconds one source's whole fetch may take: pages, retries, waits",
    )
    retries: int = Field(3, ge=0, le=10, description="retries on 429/5xx/network errors")
    backoff: float = Field(2.0, ge=0, description="first retry delay in seconds, doubling")
    max_retry_after: float = Field(
        300.0, ge=0, description="longest Retry-After waited for; a longer one fails at once"
    )
    max_bytes: int = Field(25_000_000, gt=0, description="largest response accepted")
    default_interval: float = Field(
        1.0,
        ge=0,
        le=MAX_INTERVAL,
        description="seconds between requests to a host not in hosts (none to this machine)",
    )
    hosts: dict[str, float] = Field(
        default_factory=dict,
        description="seconds between requests per host and its subdomains, over the built-in"
        " arxiv.org 3, huggingface.co, biorxiv.org, alphaxiv.org 1",
    )

    @field_validator("hosts")
    @classmethod
    def _valid_hosts(cls, value: dict[str, float]) -> dict[str, float]:
        for host, seconds in value.items():
            if not is_host(host):
                raise ValueError(f"{host!r} is not a host name (write it bare: arxiv.org)")
            if not 0 <= seconds <= MAX_INTERVAL:
                raise ValueError(f"{host}: {seconds:g} is not 0 to {MAX_INTERVAL:g} seconds")
        return value


class SubscriberSettings(_Strict):
    """One subscriber as written in the config file."""

    email: str
    name: str | None = None
    keywords: list[str] = []
    authors: list[str] = []
    categories: list[str] = []
    exclude: list[str] = []
    max_papers: int | None = Field(None, ge=1)
    frequency: Frequency | None = None
    weekday: str | None = None
    send_at: str | None = None
    timezone: str | None = None
    like: list[str] = Field([], max_length=MAX_LIKES)
    recommend: int | None = Field(None, ge=0, le=MAX_PAPERS)

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        return check_email(value)

    @field_validator("weekday", "send_at", "timezone")
    @classmethod
    def _valid_cadence(cls, value: str | None, info: ValidationInfo) -> str | None:
        return cadence_value(info.field_name, value)


class SchedulingSettings(_Strict):
    """When the worker delivers, how late a missed job may still run, how long runs wait."""

    deliver: str = Field(
        "* * * * *", description="when the worker looks for subscribers whose digest is due"
    )
    misfire_grace: float = Field(
        6 * 3600,
        gt=0,
        le=MAX_MISFIRE_GRACE,
        description="seconds a missed job may be late and still run (once)",
    )
    lock_wait: float = Field(
        5.0,
        ge=0,
        le=MAX_STORE_WAIT,
        description="seconds a run waits for another to finish before giving up",
    )
    database_wait: float = Field(
        30.0,
        gt=0,
        le=MAX_STORE_WAIT,
        description="seconds a write waits while another process writes to the database",
    )

    @field_validator("deliver")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return check_cron(value)


class AlertSettings(_Strict):
    """When the operator (`admin_email`) is told that something is wrong."""

    source_failures: int = Field(
        3,
        ge=1,
        le=MAX_COUNT,
        description="failed fetches in a row before a source counts as broken",
    )


class RecommendationSettings(_Strict):
    """Where seeds the store does not have are looked up, and how long that may take."""

    lookup_url: str = Field(
        "https://export.arxiv.org/api/query",
        description="the arXiv API's query URL (a mirror, or a local server in tests)",
    )
    lookup_deadline: float = Field(
        60.0,
        gt=0,
        le=MAX_DEADLINE,
        description="seconds all of one run's seed lookups may take",
    )

    @field_validator("lookup_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return check_url(value)


class RetentionSettings(_Strict):
    """How long the store keeps what it no longer needs (0 or null: forever); applied after
    each run and by `paperbot retention`. The "already sent" ledger is never deleted."""

    papers_days: int | None = Field(
        90,
        ge=0,
        le=MAX_RETENTION_DAYS,
        description="days before a paper nobody was matched or recommended is forgotten",
    )
    fetches_days: int | None = Field(
        30,
        ge=0,
        le=MAX_RETENTION_DAYS,
        description="days the fetch log (one row per source per run) is kept",
    )
    runs_days: int | None = Field(
        90,
        ge=0,
        le=MAX_RETENTION_DAYS,
        description="days finished runs are kept (the last run and last good run always stay)",
    )


#: the most requests a web limit may allow per hour, and the longest confirmation window
MAX_WEB_LIMIT, MAX_CONFIRM_HOURS = 1_000_000, 24 * 30


class WebSettings(_Strict):
    """The web app's rate limits (per hour, kept in the store) and its confirmation window."""

    mails_per_client: int = Field(
        20,
        ge=1,
        le=MAX_WEB_LIMIT,
        description="sign-up and link mails one client network may ask for per hour",
    )
    mails_per_address: int = Field(
        5, ge=1, le=MAX_WEB_LIMIT, description="sign-up and link mails one address gets per hour"
    )
    previews_per_client: int = Field(
        300, ge=1, le=MAX_WEB_LIMIT, description="alert previews one client network gets per hour"
    )
    confirm_hours: int = Field(
        48,
        ge=1,
        le=MAX_CONFIRM_HOURS,
        description="hours a confirmation link (double opt-in) works",
    )


class ConfigFile(_Strict):
    """The top level of the config file, sources left raw for per-kind validation."""

    database: Path = Path("data/paperbot.db")
    outbox: Path = Path("outbox")
    timezone: str = "UTC"
    contact: str | None = None
    base_url: str | None = None
    admin_email: str | None = None
    list_name: str = "paperbot"
    max_papers: int = Field(
        50,
        ge=1,
        description=f"papers a digest holds (at most {MAX_PAPERS}); the rest are listed",
    )
    recommend: int = Field(
        DEFAULT_RECOMMEND,
        ge=0,
        le=MAX_PAPERS,
        description="recommended papers a digest holds for subscribers with seeds or feedback",
    )
    frequency: Frequency = "daily"
    weekday: str = "monday"
    send_at: str | None = None
    recommendations: RecommendationSettings = RecommendationSettings()
    retention: RetentionSettings = RetentionSettings()
    scheduling: SchedulingSettings = SchedulingSettings()
    alerts: AlertSettings = AlertSettings()
    fetch: FetchSettings = FetchSettings()
    web: WebSettings = WebSettings()
    sources: list[dict[str, Any]] = []
    smtp: SmtpSettings | None = None
    bounces: BounceSettings | None = None
    subscribers: list[SubscriberSettings] = []

    @field_validator("weekday", "send_at")
    @classmethod
    def _valid_cadence(cls, value: str | None, info: ValidationInfo) -> str | None:
        return cadence_value(info.field_name, value)

    @field_validator("database")
    @classmethod
    def _valid_database(cls, value: Path) -> Path:
        if value.name in ("", ".", "..") or str(value).endswith(("/", "\\")):
            raise ValueError(f"must name a file, e.g. data/paperbot.db (got {str(value)!r})")
        return value

    @field_validator("list_name")
    @classmethod
    def _valid_list_name(cls, value: str) -> str:
        return check_header_text(value)

    @field_validator("contact")
    @classmethod
    def _valid_contact(cls, value: str | None) -> str | None:
        if value is not None and not value.isascii():  # it goes into the User-Agent
            raise ValueError(f"must be ASCII: write an address or URL (got {value!r})")
        return None if value is None else check_header_text(value)


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A configured source: its unique name, its kind and that kind's validated options."""

    name: str
    kind: str
    options: SourceOptions


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    path: Path | None
    database: Path
    outbox: Path
    timezone: str
    contact: str | None
    base_url: str | None
    admin_email: str | None
    list_name: str
    fetch: FetchSettings
    sources: tuple[SourceSpec, ...]
    smtp: SmtpSettings | None
    subscribers: tuple[Subscriber, ...]
    scheduling: SchedulingSettings = dataclass_field(default_factory=SchedulingSettings)
    alerts: AlertSettings = dataclass_field(default_factory=AlertSettings)
    recommendations: RecommendationSettings = dataclass_field(
        default_factory=RecommendationSettings
    )
    #: recommended papers per digest for subscribers who do not say (`recommend:`)
    recommend: int = DEFAULT_RECOMMEND
    retention: RetentionSettings = dataclass_field(default_factory=RetentionSettings)
    #: where bounces and mailed unsubscribes are read back (None: they are not)
    bounces: BounceSettings | None = None
    web: WebSettings = dataclass_field(default_factory=WebSettings)


def config_path(cli_value: str | None) -> Path:
    """The config file to use: --config, else $PAPERBOT_CONFIG, else config/paperbot.yaml."""
    return Path(cli_value or os.environ.get("PAPERBOT_CONFIG") or DEFAULT_CONFIG)
