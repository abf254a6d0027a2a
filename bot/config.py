"""Load and validate the YAML config once; everything after this sees typed, frozen values."""

from __future__ import annotations

import logging
import os
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import yaml
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from bot.errors import ConfigError
from bot.ingest.sources import KINDS, SourceOptions
from bot.ingest.sources.base import MAX_DEADLINE
from bot.mail.dkim import DkimSigner, load_key
from bot.models import MAX_PAPERS, Subscriber
from bot.timing.cadence import format_clock, parse_clock, parse_weekday
from bot.timing.schedule import check_cron

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("paperbot")

DEFAULT_CONFIG = Path("config/paperbot.yaml")
#: largest config file read: room for about 100,000 subscribers with a few alerts each
#: (PyYAML reads a few hundred KB a second); longer lists belong in the store (web sign-up)
MAX_CONFIG_BYTES = 16 * 1024 * 1024
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
#: a config file from this size on is announced before it is read (it takes seconds)
LARGE_CONFIG_BYTES = 2**20
#: the longest an SMTP reply may be waited for (RFC 5321's longest client timeout, for the
#: reply to the final dot, is 10 minutes), and one message's whole exchange
MAX_SMTP_TIMEOUT, MAX_MESSAGE_DEADLINE = 600.0, 3600.0
#: the longest a run waits for the store or for another run (a stuck one must not hold every
#: later run for ever), and the latest a missed worker job still runs (a weekly job's week)
MAX_STORE_WAIT, MAX_MISFIRE_GRACE = 3600.0, 7 * 86400.0
#: the slowest rate limit: one message an hour (slower, a run would hold the lock for days)
MIN_MESSAGES_PER_SECOND = 1 / 3600
#: counts compared in the store: within SQLite's integers, far above any sensible value
MAX_COUNT = 1000
#: the longest list name and contact: they go into every mail's headers, every User-Agent
MAX_HEADER_TEXT = 200


def _short_repr() -> reprlib.Repr:
    """How a wrong value is shown in an error: its start, never a whole huge list or text."""
    shown = reprlib.Repr()
    shown.maxlevel, shown.maxlist, shown.maxdict = 2, 4, 4
    shown.maxstring = shown.maxother = 60
    return shown


_SHORT_REPR = _short_repr()
_RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


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
        if not _is_host(value):
            raise ValueError(
                f"not a host name or IP address (got {_SHORT_REPR.repr(value)}); the port"
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
        local, _, domain = _address_part(self.from_).rpartition("@")
        return f"{local.partition('+')[0]}+unsubscribe@{domain}"

    def password(self) -> str | None:
        """The SMTP password read from the environment variable named in the config."""
        return os.environ.get(self.password_env) if self.password_env else None


#: the longest per-host interval accepted, in seconds
MAX_INTERVAL = 600.0
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


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
            if not _is_host(host):
                raise ValueError(f"{host!r} is not a host name (write it bare: arxiv.org)")
            if not 0 <= seconds <= MAX_INTERVAL:
                raise ValueError(f"{host}: {seconds:g} is not 0 to {MAX_INTERVAL:g} seconds")
        return value


def _is_host(text: str) -> bool:
    """A bare host name or IP address (no scheme, port or path), as `fetch.hosts` keys are."""
    name = text.strip(".").lower()
    if ":" in name:  # an IPv6 address such as ::1
        return 2 <= len(name) <= 45 and set(name.strip("[]")) <= set("0123456789abcdef:.")
    labels = name.split(".")
    return len(name) <= 253 and all(
        label
        and len(label) <= 63
        and set(label) <= _HOST_CHARS
        and label[0] != "-"
        and label[-1] != "-"
        for label in labels
    )


class SubscriberSettings(_Strict):
    """One subscriber as written in the config file."""

    email: str
    name: str | None = None
    keywords: list[str] = []
    authors: list[str] = []
    categories: list[str] = []
    exclude: list[str] = []
    max_papers: int | None = Field(None, ge=1)
    frequency: Literal["daily", "weekly"] | None = None
    weekday: str | None = None
    send_at: str | None = None
    timezone: str | None = None

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        return check_email(value)

    @field_validator("weekday", "send_at", "timezone")
    @classmethod
    def _valid_cadence(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _cadence_value(info.field_name, value)


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


class _Settings(_Strict):
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
    frequency: Literal["daily", "weekly"] = "daily"
    weekday: str = "monday"
    send_at: str | None = None
    scheduling: SchedulingSettings = SchedulingSettings()
    alerts: AlertSettings = AlertSettings()
    fetch: FetchSettings = FetchSettings()
    sources: list[dict[str, Any]] = []
    smtp: SmtpSettings | None = None
    subscribers: list[SubscriberSettings] = []

    @field_validator("weekday", "send_at")
    @classmethod
    def _valid_cadence(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _cadence_value(info.field_name, value)

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


def check_email(value: str) -> str:
    """Return the normalized address, or raise ValueError saying why it is not one.

    An address whose part before the @ is not ASCII is refused: it needs SMTPUTF8, which
    the messages paperbot writes do not use (an international domain is fine).
    """
    try:
        return validate_email(value, check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address {value!r}: {exc}") from None


def config_path(cli_value: str | None) -> Path:
    """The config file to use: --config, else $PAPERBOT_CONFIG, else config/paperbot.yaml."""
    return Path(cli_value or os.environ.get("PAPERBOT_CONFIG") or DEFAULT_CONFIG)


def check_url(value: str) -> str:
    """Return an absolute http(s) URL with a host, or raise ValueError saying what is wrong."""
    if any(char.isspace() or not char.isprintable() for char in value):
        raise ValueError(f"a URL cannot contain spaces or control characters (got {value!r})")
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid URL {value!r}: {exc}") from None
    if url.scheme not in ("http", "https"):
        raise ValueError(f"must start with https:// or http:// (got {value!r})")
    if not url.host:
        raise ValueError(f"has no host name (got {value!r})")
    if url.port is not None and not 0 < url.port < 65536:
        raise ValueError(f"port {url.port} is out of range (got {value!r})")
    return value


def check_header_text(value: str) -> str:
    """Text that goes into every mail's headers: no line break or other control character
    (every digest would fail for good), and at most MAX_HEADER_TEXT characters."""
    if not value.isprintable():
        raise ValueError(
            "a line break or other control character cannot be in a mail header"
            f" (got {_SHORT_REPR.repr(value)})"
        )
    if len(value) > MAX_HEADER_TEXT:
        raise ValueError(f"at most {MAX_HEADER_TEXT} characters (got {len(value):,})")
    return value


def check_header_address(value: str) -> str:
    """A sender-side address header (`Name <address>`) every digest carries: printable, and
    an address that is valid and all ASCII (it is also the unsubscribe mailto: URI's)."""
    check_header_text(value)
    address = _address_part(value)
    check_email(address)
    if not address.isascii():
        raise ValueError(
            f"write the domain of {address!r} in its ASCII form (xn--...): it goes into"
            " mailto: links and Message-IDs"
        )
    return value


def load_config(path: Path) -> Config:
    """Read and validate the config file at `path`, raising one-line ConfigErrors."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read config file: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            str(path),
            f"the file is larger than {MAX_CONFIG_BYTES // 2**20} MB, too large for a config"
            " (list that many subscribers in the store: they can sign up on the web page)",
        )
    if len(data) > LARGE_CONFIG_BYTES:  # a silent wait this long would look like a hang
        log.info(
            "reading %s: %.0f MB of config takes a while (about 2 s a MB)", path, len(data) / 2**20
        )
    return parse_config(_decoded(data, path), path)


def _decoded(data: bytes, path: Path) -> str:
    """The file's text; a ConfigError naming the line and column of the first byte that is
    not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise ConfigError(
            f"{path}:line {line}, column {column}",
            f"not UTF-8 text (byte {data[exc.start]:#04x}): save the file as UTF-8",
        ) from None


def parse_config(text: str, path: Path | None = None) -> Config:
    """Validate config YAML text (`path` only names it in errors and in the result)."""
    raw = _read_yaml(text, path)
    settings = _validated(_Settings, raw, "")
    sources = _source_specs(settings.sources)
    subscribers = _subscribers(settings)
    _check_smtp(settings.smtp)
    return Config(
        path=path,
        database=settings.database,
        outbox=settings.outbox,
        timezone=_check_timezone(settings.timezone),
        contact=settings.contact,
        base_url=_check_base_url(settings.base_url),
        admin_email=_check_admin(settings.admin_email),
        list_name=settings.list_name,
        fetch=settings.fetch,
        sources=sources,
        smtp=settings.smtp,
        subscribers=subscribers,
        scheduling=settings.scheduling,
        alerts=settings.alerts,
    )


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that the config does not accept (an alias, a duplicate key)."""


#: libyaml's parser when PyYAML was built with it: three times faster on a large config
_FastParser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ConfigLoader(yaml.composer.Composer, _FastParser):  # type: ignore[misc]
    """PyYAML's safe loader that refuses anchors and aliases, so no alias bomb can grow
    (the config has nothing to share between places), and duplicate keys at any depth,
    which YAML would otherwise settle silently with the last one.

    The text is scanned and parsed by libyaml where PyYAML has it, the nodes composed here
    (so that anchors and aliases are seen where they are written)."""

    def __init__(self, stream: str) -> None:
        _FastParser.__init__(self, stream)
        yaml.composer.Composer.__init__(self)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Refuse `&anchor` and `*alias` where they appear; compose anything else."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(
                problem="YAML anchors and aliases (&name, *name) are not allowed in the"
                " config: write the value out",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """The mapping, or `_Refused` naming a key that appears twice and where."""
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = lines.get(key)
            except TypeError:  # an unhashable key: PyYAML's own error says so
                continue
            if first is not None:
                raise _Refused(
                    problem=f"duplicate key {key!r} (first on line {first})",
                    problem_mark=key_node.start_mark,
                )
            lines[key] = key_node.start_mark.line + 1
        mapping: dict[Any, Any] = super().construct_mapping(node, deep)
        return mapping


def _read_yaml(text: str, path: Path | None) -> dict[str, Any]:
    try:
        raw = yaml.load(text, Loader=_ConfigLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        invalid = "" if isinstance(exc, _Refused) else "invalid YAML: "
        raise ConfigError(f"{path or 'config'}:{where}", f"{invalid}{problem}") from None
    except RecursionError:
        raise ConfigError(str(path or "config"), "invalid YAML: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        problem = str(exc).partition(";")[0]
        raise ConfigError(str(path or "config"), f"invalid YAML: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(str(path or "config"), "the top level must be a mapping of keys")
    return raw


def _validated(model: type[M], raw: Any, prefix: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(exc, prefix) from None


def _config_error(exc: ValidationError, prefix: str) -> ConfigError:
    """The first validation problem as `path: message` (pydantic's loc → `a[2].b`)."""
    first = exc.errors()[0]
    path = format_path(prefix, first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required key is missing"
    else:
        message = first["msg"].removeprefix("Value error, ")
        if "input" in first and kind not in ("value_error",):
            message += f" (got {_SHORT_REPR.repr(first['input'])})"
    more = len(exc.errors()) - 1
    return ConfigError(path, message + (f" (and {more} more problems)" if more else ""))


def format_path(prefix: str, loc: Sequence[int | str]) -> str:
    """Join a location like ('sources', 2, 'kind') into `sources[2].kind`."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _source_specs(entries: list[dict[str, Any]]) -> tuple[SourceSpec, ...]:
    specs: list[SourceSpec] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        spec = _source_spec(entry, f"sources[{index}]")
        if spec.name in seen:
            raise ConfigError(
                f"sources[{index}].name",
                f"duplicate source name {spec.name!r} (also sources[{seen[spec.name]}])",
            )
        seen[spec.name] = index
        specs.append(spec)
    return tuple(specs)


def _source_spec(entry: Mapping[str, Any], where: str) -> SourceSpec:
    options = dict(entry)
    name = options.pop("name", None)
    kind = options.pop("kind", None)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.name", "required: a unique name for this source")
    if not isinstance(kind, str):
        raise ConfigError(f"{where}.kind", f"required; known: {', '.join(sorted(KINDS))}")
    if kind not in KINDS:
        known = ", ".join(sorted(KINDS))
        raise ConfigError(f"{where}.kind", f"unknown kind {kind!r}; known: {known}")
    validated = _validated(KINDS[kind].options_model, options, where)
    url = getattr(validated, "url", None)
    if url is not None:
        try:
            check_url(url)
        except ValueError as exc:
            raise ConfigError(f"{where}.url", str(exc)) from None
    return SourceSpec(name=name, kind=kind, options=validated)


def _subscribers(settings: _Settings) -> tuple[Subscriber, ...]:
    seen: set[str] = set()
    result = []
    for index, sub in enumerate(settings.subscribers):
        where = f"subscribers[{index}]"
        if sub.email.lower() in seen:
            raise ConfigError(f"{where}.email", f"duplicate subscriber {sub.email!r}")
        seen.add(sub.email.lower())
        _check_queries(sub, where)
        result.append(
            Subscriber(
                email=sub.email,
                name=sub.name,
                keywords=tuple(sub.keywords),
                authors=tuple(sub.authors),
                categories=tuple(sub.categories),
                exclude=tuple(sub.exclude),
                max_papers=_capped_max_papers(sub.max_papers, settings.max_papers),
                frequency=sub.frequency or settings.frequency,
                weekday=parse_weekday(sub.weekday or settings.weekday),
                send_at=sub.send_at or settings.send_at,
                timezone=sub.timezone,
            )
        )
    return tuple(result)


def _capped_max_papers(own: int | None, default: int) -> int:
    """The subscriber's max_papers, at most MAX_PAPERS (what a digest holds).

    Lowered rather than refused, so that a config written before the bound keeps working;
    the papers past it are still listed in the digest, and check-config shows the value used.
    """
    return min(own or default, MAX_PAPERS)


def _cadence_value(key: str | None, value: str | None) -> str | None:
    """A subscriber's weekday, send_at or timezone, checked (send_at normalized to HH:MM)."""
    if value is None:
        return None
    if key == "weekday":
        parse_weekday(value)
    elif key == "send_at":
        return format_clock(parse_clock(value))
    elif key == "timezone":
        _zone_problem(value)
    return value


def _zone_problem(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _check_queries(sub: SubscriberSettings, where: str) -> None:
    """Every author must be a name, every keyword and exclude entry an alert query."""
    check = _query_checker()
    for field in ("authors", "keywords", "exclude"):
        for index, text in enumerate(getattr(sub, field)):
            problem = check(text, field == "authors")
            if problem:
                raise ConfigError(f"{where}.{field}[{index}]", problem)


def _query_checker() -> Callable[[str, bool], str | None]:
    from bot.alerts.query import QueryError, parse_follow, parse_query

    def check(text: str, follow: bool) -> str | None:
        try:
            parse_follow(text) if follow else parse_query(text)
        except QueryError as exc:
            return str(exc)
        return None

    return check


def _check_smtp(smtp: SmtpSettings | None) -> None:
    if smtp and smtp.password_env and smtp.password_env not in os.environ:
        raise ConfigError(
            "smtp.password_env", f"environment variable {smtp.password_env} is not set"
        )
    if smtp and smtp.password_env and not os.environ[smtp.password_env]:
        raise ConfigError("smtp.password_env", f"environment variable {smtp.password_env} is empty")
    if smtp and smtp.dkim:
        dkim_signer(smtp.dkim)


def dkim_signer(settings: DkimSettings) -> DkimSigner:
    """The signer for these DKIM settings (ConfigError naming smtp.dkim when the key is bad)."""
    if (settings.key_file is None) == (settings.key_env is None):
        raise ConfigError("smtp.dkim", "give exactly one of key_file and key_env")
    key = load_key(key_file=settings.key_file, key_env=settings.key_env, where="smtp.dkim")
    try:
        return DkimSigner(selector=settings.selector, domain=settings.domain, private_key=key)
    except ValueError as exc:
        key_key = "key_file" if settings.key_file else "key_env"
        raise ConfigError(f"smtp.dkim.{key_key}", str(exc)) from None


def rate_per_second(text: str) -> float:
    """`10/s`, `600/min`, `20000/h` (or `/second`, `/minute`, `/hour`) as messages per second."""
    count, _, unit = text.replace(" ", "").partition("/")
    seconds = _RATE_UNITS.get(unit.lower())
    try:
        number = float(count)
    except ValueError:
        number = 0.0
    if seconds is None or not 0 < number < float("inf"):
        raise ValueError(f"not a rate like 10/s, 600/min or 20000/h: {text!r}")
    if number / seconds < MIN_MESSAGES_PER_SECOND:
        raise ValueError(f"at least 1/h: a slower rate would hold a run for days ({text!r})")
    return number / seconds


def _address_part(value: str) -> str:
    return parseaddr(value)[1] or value


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("timezone", f"unknown time zone {name!r}") from None
    return name


def _check_base_url(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        check_url(url)
    except ValueError as exc:
        raise ConfigError("base_url", str(exc)) from None
    # every link in mail starts with it, List-Unsubscribe too, which must be plain ASCII
    if not url.isascii():
        raise ConfigError("base_url", f"write it in ASCII, the host in its xn-- form (got {url!r})")
    if "?" in url or "#" in url:
        raise ConfigError("base_url", f"the links go after it: no ? or # in it (got {url!r})")
    return url.rstrip("/")


def _check_admin(address: str | None) -> str | None:
    try:
        return check_email(address) if address else None
    except ValueError as exc:
        raise ConfigError("admin_email", str(exc)) from None
