"""Read the YAML config once, safely (size, encoding, aliases, duplicate keys), and validate
it into a `Config`; everything after this sees typed, frozen values."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ValidationError

from bot.config.checks import (
    SHORT_REPR,
    check_email,
    check_url,
)
from bot.config.settings import (
    Config,
    ConfigFile,
    SmtpSettings,
    SourceSpec,
    SubscriberSettings,
)
from bot.config.wiring import dkim_signer
from bot.errors import ConfigError
from bot.ingest.sources import KINDS
from bot.models import MAX_PAPERS, Subscriber
from bot.recommend.seeds import NOT_A_SEED, parse_seed
from bot.timing.cadence import parse_weekday

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)

#: largest config file read: room for about 100,000 subscribers with a few alerts each
#: (PyYAML reads a few hundred KB a second); longer lists belong in the store (web sign-up)
MAX_CONFIG_BYTES = 16 * 1024 * 1024
#: a config file from this size on is announced before it is read (it takes seconds)
LARGE_CONFIG_BYTES = 2**20


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
    settings = _validated(ConfigFile, raw, "")
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
        recommendations=settings.recommendations,
        retention=settings.retention,
        recommend=settings.recommend,
        bounces=settings.bounces,
        web=settings.web,
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
            message += f" (got {SHORT_REPR.repr(first['input'])})"
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


def _subscribers(settings: ConfigFile) -> tuple[Subscriber, ...]:
    seen: set[str] = set()
    result = []
    for index, sub in enumerate(settings.subscribers):
        where = f"subscribers[{index}]"
        if sub.email.lower() in seen:
            raise ConfigError(f"{where}.email", f"duplicate subscriber {sub.email!r}")
        seen.add(sub.email.lower())
        _check_queries(sub, where)
        result.append(_subscriber(sub, settings, where))
    return tuple(result)


def subscriber_entry(raw: Mapping[str, Any], defaults: ConfigFile | None = None) -> Subscriber:
    """The Subscriber one entry describes, checked by the config file's own rules (a
    `subscribers:` entry, a CSV row, `paperbot subscribers add`), with `defaults`' top-level
    values where it gives none; a ConfigError names the field (`keywords[1]`)."""
    sub = _validated(SubscriberSettings, raw, "")
    _check_queries(sub, "")
    return _subscriber(sub, defaults or _plain_defaults(), "")


@functools.cache
def _plain_defaults() -> ConfigFile:
    """The top level's defaults, made once (a ConfigFile costs tens of microseconds)."""
    return ConfigFile()


def _subscriber(sub: SubscriberSettings, settings: ConfigFile, where: str) -> Subscriber:
    """The Subscriber a config entry describes: its fields as written (lists as tuples), named
    as in the model, and the top level's defaults where it gives none."""
    given: dict[str, Any] = {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in dict(sub).items()
        if name != "like"
    }
    given.update(
        likes=_likes(sub, where),
        recommend=settings.recommend if sub.recommend is None else sub.recommend,
        max_papers=_capped_max_papers(sub.max_papers, settings.max_papers),
        frequency=sub.frequency or settings.frequency,
        weekday=parse_weekday(sub.weekday or settings.weekday),
        send_at=sub.send_at or settings.send_at,
    )
    return Subscriber(**given)


def _likes(sub: SubscriberSettings, where: str) -> tuple[str, ...]:
    """The seed keys of a subscriber's `like:` entries, each once, in the file's order."""
    keys: dict[str, None] = {}
    for index, text in enumerate(sub.like):
        seed = parse_seed(text)
        if seed is None:
            problem = f"{SHORT_REPR.repr(text)} {NOT_A_SEED}"
            raise ConfigError(format_path(where, ("like", index)), problem)
        keys.setdefault(seed.key)
    return tuple(keys)


def _capped_max_papers(own: int | None, default: int) -> int:
    """The subscriber's max_papers, at most MAX_PAPERS (what a digest holds).

    Lowered rather than refused, so that a config written before the bound keeps working;
    the papers past it are still listed in the digest, and check-config shows the value used.
    """
    return min(own or default, MAX_PAPERS)


def _check_queries(sub: SubscriberSettings, where: str) -> None:
    """Every author must be a name, every keyword and exclude entry an alert query."""
    check = _query_checker()
    for field in ("authors", "keywords", "exclude"):
        for index, text in enumerate(getattr(sub, field)):
            problem = check(text, field == "authors")
            if problem:
                raise ConfigError(format_path(where, (field, index)), problem)


@functools.cache
def _query_checker() -> Callable[[str, bool], str | None]:
    """The check of one alert (made once; its answers remembered: a list of 100,000
    subscribers repeats the same alerts)."""
    from bot.alerts.query import QueryError, parse_follow, parse_query

    def check(text: str, follow: bool) -> str | None:
        try:
            parse_follow(text) if follow else parse_query(text)
        except QueryError as exc:
            return str(exc)
        return None

    return functools.lru_cache(maxsize=65536)(check)


def _check_smtp(smtp: SmtpSettings | None) -> None:
    if smtp and smtp.password_env and smtp.password_env not in os.environ:
        raise ConfigError(
            "smtp.password_env", f"environment variable {smtp.password_env} is not set"
        )
    if smtp and smtp.password_env and not os.environ[smtp.password_env]:
        raise ConfigError("smtp.password_env", f"environment variable {smtp.password_env} is empty")
    if smtp and smtp.dkim:
        dkim_signer(smtp.dkim)


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
