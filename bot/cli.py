"""The `paperbot` command line: every user error is one line and an exit code, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot import __version__
from bot.config.checks import check_email
from bot.config.load import load_config
from bot.config.settings import Config, config_path
from bot.errors import ConfigError, PaperbotError, StoreUnusable
from bot.ingest.fetch import merge_intervals
from bot.ingest.sources import KINDS, FetchWindow, get_kind
from bot.mail.links import SECRET_ENV
from bot.mail.render import render_digest
from bot.run.backup import backup
from bot.run.bounces import bounce_line, read_bounces
from bot.run.pipeline import RunReport, run_once
from bot.run.preview import preview_digest
from bot.run.progress import Progress, log_handler, progress_for
from bot.run.retention import describe_retention, retention_rules
from bot.run.roster import (
    ORIGINS,
    STATUSES,
    detail_lines,
    entry_of,
    file_wins,
    open_store,
    optin_refusal,
    read_csv,
    roster_json,
    send_optins,
    table_lines,
    write_csv,
)
from bot.run.sendtest import delivery_lines, send_test
from bot.run.shutdown import Shutdown
from bot.run.status import run_lines, stale_reasons, status_lines
from bot.run.worker import Worker, embedded_web, source_schedule
from bot.store.store import Store
from bot.store.subscribers import SubscriberRecord
from bot.timing.cadence import describe_cadence

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: hours without a good run before `paperbot status` fails (a daily job plus slack)
DEFAULT_MAX_AGE = 26.0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="paperbot", description="Daily-papers alert bot: fetch, match, mail digests."
    )
    parser.add_argument("--version", action="version", version=f"paperbot {__version__}")
    parser.add_argument(
        "--config", help="config file (default: $PAPERBOT_CONFIG, else config/paperbot.yaml)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more detail in the log")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    once = commands.add_parser("once", help="one full cycle now: fetch, record, match, send")
    mode = once.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run", action="store_true", help="write .eml files, change nothing in the store"
    )
    mode.add_argument(
        "--no-send",
        action="store_true",
        help="record and mark everything delivered (primes a new install)",
    )
    run = commands.add_parser("run", help="long-lived worker on the configured schedules")
    run.add_argument("--web", action="store_true", help="also serve the web app in this process")
    run.add_argument("--host", default="127.0.0.1", help="with --web: address to listen on")
    run.add_argument("--port", type=_port, default=8000, help="with --web: port to listen on")
    web = commands.add_parser("web", help="the subscription web app")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on")
    web.add_argument("--port", type=_port, default=8000, help="port to listen on")
    web.add_argument(
        "--dev",
        action="store_true",
        help=f"try it locally: no {SECRET_ENV} or base_url needed (links die on restart)",
    )
    preview = commands.add_parser("preview", help="render a subscriber's next digest, send nothing")
    preview.add_argument("email")
    preview.add_argument("--html", type=Path, metavar="FILE", help="also write the HTML part here")
    commands.add_parser("check-config", help="validate the config and print what it understood")
    send_test = commands.add_parser(
        "send-test", help="send one test message with the mail settings, step by step"
    )
    send_test.add_argument("address", help="where the test message goes")
    commands.add_parser("sources", help="list source kinds and their options")
    commands.add_parser(
        "bounces", help="read bounces and mailed unsubscribes from the bounces: mailbox now"
    )
    status = commands.add_parser(
        "status", help="last fetch per source, counts, pending/failed digests"
    )
    status.add_argument(
        "--max-age",
        type=_hours,
        default=DEFAULT_MAX_AGE,
        metavar="HOURS",
        help="exit 1 when the last good run, or the oldest waiting digest, is older than this,"
        f" or a source has been failing this long (default {DEFAULT_MAX_AGE:g})",
    )
    status.add_argument(
        "--runs",
        type=_positive_int,
        default=0,
        metavar="N",
        help="also show the last N runs: start, duration, outcome, counts, first error",
    )
    _add_store_commands(commands)
    _subscribers_parser(commands)
    return parser


def _add_store_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`backup` and `retention`: looking after the store file."""
    backup = commands.add_parser(
        "backup", help="copy the store to FILE, safely while paperbot runs (restore: copy back)"
    )
    backup.add_argument("file", type=Path, metavar="FILE", help="where the copy goes")
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
    commands.add_parser(
        "retention", help="forget what `retention:` lets go now, and reclaim the space"
    )


def _subscribers_parser(commands: Any) -> None:
    """`paperbot subscribers ACTION`: the operator's list of subscribers."""
    roster = commands.add_parser(
        "subscribers", help="list, show, add, remove, suspend, import and export subscribers"
    )
    actions = roster.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="every subscriber, with counts")
    listing.add_argument("--status", choices=STATUSES, help="only subscribers in this status")
    listing.add_argument("--origin", choices=ORIGINS, help="only the config file's, or the store's")
    listing.add_argument("--json", action="store_true", help="JSON for scripts")
    actions.add_parser("show", help="one subscriber: alerts, cadence, state").add_argument("email")
    add = actions.add_parser("add", help="add a subscriber (mailed the opt-in link)")
    add.add_argument("email")
    for name, what in (("keyword", "keyword"), ("author", "author"), ("category", "category")):
        add.add_argument(f"--{name}", action="append", default=[], help=f"a {what} (repeat)")
    add.add_argument("--exclude", action="append", default=[], help="never these (repeat)")
    add.add_argument(
        "--confirm", action="store_true", help="active at once: you vouch for their consent"
    )
    for name, what in (
        ("remove", "remove a store subscriber (mail stops, links die)"),
        ("suspend", "stop mailing a subscriber until unsuspend"),
        ("unsuspend", "mail a suspended subscriber again; clears the bounce count"),
    ):
        actions.add_parser(name, help=what).add_argument("email")
    imports = actions.add_parser("import", help="add or update subscribers from a CSV file")
    imports.add_argument("file", type=Path)
    imports.add_argument(
        "--confirm", action="store_true", help="active at once: you vouch for their consent"
    )
    actions.add_parser("export", help="active store subscribers to a CSV file").add_argument(
        "file", type=Path
    )


#: the longest `--max-age` (ten years): more is no threshold at all
MAX_HOURS = 87_600.0


def _hours(text: str) -> float:
    """An argparse type: a number of hours above 0 and at most ten years."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= MAX_HOURS:  # also refuses nan
        raise argparse.ArgumentTypeError(
            f"expected a number of hours above 0 and at most {MAX_HOURS:g}, not {text!r}"
        )
    return value


def _port(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free one) to 65535."""
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 5 else -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, not {text!r}")
    return value


#: the most runs `status --runs` lists (more than SQLite's integers was an internal error)
MAX_RUNS = 100_000


def _positive_int(text: str) -> int:
    """An argparse type: a whole number from 1 to MAX_RUNS, in ASCII digits."""
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else 0
    if not 1 <= value <= MAX_RUNS:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 1 to {MAX_RUNS}, not {text!r}"
        )
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    handler = COMMANDS[args.command]
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"paperbot: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreUnusable as exc:  # the file at `database:` must be dealt with by hand
        print(f"paperbot: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PaperbotError as exc:
        print(f"paperbot: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("paperbot: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line unless asked for the traceback
        if args.verbose:
            raise
        print(
            f"paperbot: internal error: {type(exc).__name__}: {exc} (run with -v for details)",
            file=sys.stderr,
        )
        return EXIT_FAILED


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO
    logging.basicConfig(level=level, format="paperbot: %(message)s", stream=sys.stderr)
    # libraries' own chatter is not paperbot's news: httpx logs every request, flufl.bounce
    # each detector it tries on every message
    for library in ("httpx", "flufl.bounce"):
        logging.getLogger(library).setLevel(logging.WARNING)


def _config(args: argparse.Namespace) -> Config:
    return load_config(config_path(args.config))


def cmd_once(args: argparse.Namespace) -> int:
    """`paperbot once`: one cycle; 0 all well, 1 a source or a send failed."""
    config = _config(args)
    progress = _progress(args)
    report = asyncio.run(_once(config, args, progress))
    delivery = report.delivery
    where = f"to {config.outbox}/" if args.dry_run or config.smtp is None else "by SMTP"
    log.info(
        "done: %d new papers, %d matches, %d digests sent %s, %d failed, %d pending",
        report.new_papers,
        report.matched,
        delivery.sent,
        where,
        delivery.failed,
        delivery.pending,
    )
    return report.exit_code


async def _once(config: Config, args: argparse.Namespace, progress: Progress) -> RunReport:
    shutdown = Shutdown()
    shutdown.install()
    try:
        return await run_once(
            config,
            send=not args.no_send,
            dry_run=args.dry_run,
            progress=progress,
            shutdown=shutdown,
        )
    finally:
        shutdown.uninstall()


def _progress(args: argparse.Namespace) -> Progress:
    """Bars on a terminal (log lines then print above them), plain lines otherwise."""
    progress = progress_for(sys.stderr, quiet=args.quiet)
    handler = log_handler(progress)
    if handler is not None:
        root = logging.getLogger()
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(handler)
    return progress


def cmd_run(args: argparse.Namespace) -> int:
    """`paperbot run`: the worker, until SIGTERM/SIGINT (then 0 after a clean stop)."""
    config = _config(args)
    web = embedded_web(config, args.host, args.port) if args.web else None
    if not args.verbose:
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return asyncio.run(Worker(config).run(web))


def cmd_web(args: argparse.Namespace) -> int:
    """`paperbot web`: the subscription web app, until SIGINT/SIGTERM."""
    from bot.web.server import serve  # the web stack loads only for this command

    serve(_config(args), host=args.host, port=args.port, dev=args.dev)
    return EXIT_OK


def cmd_preview(args: argparse.Namespace) -> int:
    """`paperbot preview EMAIL`: print the next digest's text part (and write the HTML)."""
    config = _config(args)
    digest = preview_digest(config, args.email)
    if digest is None:
        print(f"paperbot: no subscriber {args.email} in the config or the store", file=sys.stderr)
        return EXIT_USAGE
    if not digest.entries:
        print(f"nothing to send to {args.email} yet")
        return EXIT_OK
    rendered = render_digest(digest, list_name=config.list_name)
    print(f"Subject: {rendered.subject}\n\n{rendered.text}")
    if args.html:
        args.html.write_text(rendered.html, encoding="utf-8")
        print(f"HTML written to {args.html}", file=sys.stderr)
    return EXIT_OK


def cmd_bounces(args: argparse.Namespace) -> int:
    """`paperbot bounces`: read the bounce mailbox once and say what it held."""
    print(read_bounces(_config(args)).line())
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    """`paperbot check-config`: validate and print what was understood."""
    config = _config(args)
    print("\n".join(describe_config(config)))
    return EXIT_OK


def describe_config(config: Config) -> list[str]:
    """Human-readable lines saying what the config means."""
    today = FetchWindow(today=datetime.now(UTC).date())
    lines = [
        f"config: {config.path}",
        f"database: {config.database}",
        f"timezone: {config.timezone}",
    ]
    if config.smtp:
        smtp = config.smtp
        lines.append(
            f"delivery: SMTP {smtp.host}:{smtp.effective_port} ({smtp.security})"
            f"{' as ' + smtp.username if smtp.username else ''}, from {smtp.from_}"
        )
    else:
        lines.append(f"delivery: .eml files in {config.outbox}/ (no smtp: section)")
    lines += delivery_lines(config)
    lines += fetch_lines(config)
    rec = config.recommendations
    lines.append(
        f"recommendations: up to {config.recommend} per digest by default, for subscribers with"
        f" seeds (like:) or feedback; unknown seeds looked up at {rec.lookup_url}"
        f" within {rec.lookup_deadline:g} s"
    )
    lines.append(describe_retention(config.retention))
    lines.append(bounce_line(config))
    web = config.web
    lines.append(
        f"web: per hour at most {web.mails_per_client} sign-up/link mails per client network,"
        f" {web.mails_per_address} per address, {web.previews_per_client} previews per client"
        f" network; confirmation links work {web.confirm_hours} hours"
    )
    lines.append(f"sources ({len(config.sources)}):")
    for spec in config.sources:
        urls = get_kind(spec.kind).start_urls(spec.options, today)
        when = source_schedule(spec).describe(config.timezone)
        lines.append(f"  {spec.name} [{spec.kind}] {' '.join(urls)}; `run` fetches at {when}")
        if spec.options.deadline:
            lines.append(f"    deadline {spec.options.deadline:g} s (its own, not fetch.deadline)")
    lines.append(f"subscribers ({len(config.subscribers)}):")
    for sub in config.subscribers:
        parts = [f"keywords: {', '.join(sub.keywords)}" if sub.keywords else ""]
        parts.append(f"authors: {', '.join(sub.authors)}" if sub.authors else "")
        parts.append(f"categories: {', '.join(sub.categories)}" if sub.categories else "")
        parts.append(f"exclude: {', '.join(sub.exclude)}" if sub.exclude else "")
        parts.append(f"likes {len(sub.likes)} papers" if sub.likes else "")
        alerts = "; ".join(p for p in parts if p) or "no alerts"
        cadence = describe_cadence(sub, config.timezone)
        recommended = f", {sub.recommend} recommended" if sub.recommend else ""
        lines.append(
            f"  {sub.email} ({alerts}; at most {sub.max_papers} papers{recommended}; {cadence})"
        )
    return lines


def fetch_lines(config: Config) -> list[str]:
    """What `fetch:` means: each source's deadline and limits, and the pause per host."""
    fetch = config.fetch
    hosts = sorted(merge_intervals(fetch.hosts).items(), key=lambda item: (-item[1], item[0]))
    listed = ", ".join(f"{host} {seconds:g} s" for host, seconds in hosts)
    return [
        f"fetch: each source within {fetch.deadline:g} s (pages, retries and waits included),"
        f" each read within {fetch.timeout:g} s, {fetch.retries} retries, Retry-After up to"
        f" {fetch.max_retry_after:g} s, responses up to {fetch.max_bytes:,} bytes",
        f"  pause between requests: {listed or 'no host listed'}; any other host"
        f" {fetch.default_interval:g} s (this machine: none unless listed)",
    ]


def cmd_send_test(args: argparse.Namespace) -> int:
    """`paperbot send-test ADDRESS`: one real message, each step reported; 1 if one failed."""
    config = _config(args)
    try:
        address = check_email(args.address)
    except ValueError as exc:
        print(f"paperbot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sent = asyncio.run(send_test(config, address, print))
    return EXIT_OK if sent else EXIT_FAILED


def cmd_sources(args: argparse.Namespace) -> int:
    """`paperbot sources`: every kind and its options, from the code's docstrings."""
    print("\n".join(describe_kinds()))
    return EXIT_OK


def describe_kinds() -> list[str]:
    """Lines listing each source kind, its summary and its options."""
    lines: list[str] = []
    for name in sorted(KINDS):
        kind = KINDS[name]
        summary = (kind.__doc__ or "").strip().splitlines()[0]
        lines.append(f"{name}: {summary}")
        for option, info in kind.options_model.model_fields.items():
            default = (
                "required"
                if info.is_required()
                else f"default {info.get_default(call_default_factory=True)!r}"
            )
            lines.append(f"    {option} ({default}): {info.description or ''}")
        lines.append("")
    return lines[:-1]


def cmd_status(args: argparse.Namespace) -> int:
    """`paperbot status`: counts, source health, runs; 1 when monitoring should worry."""
    config = _config(args)
    if not config.database.exists():
        print(f"no store yet at {config.database}: paperbot has never run", file=sys.stderr)
        return EXIT_FAILED
    with Store.open(config.database, busy_timeout=config.scheduling.database_wait) as store:
        status = store.status()
        problems = [a for a in store.notices.alert_states().values() if a.state == "problem"]
        runs = store.health.runs(args.runs) if args.runs else None
    now, max_age = datetime.now(UTC), timedelta(hours=args.max_age)
    configured = [spec.name for spec in config.sources]
    print("\n".join(status_lines(status, problems, configured, now, max_age)))
    if runs is not None:
        print("\n".join(run_lines(runs)))
    reasons = stale_reasons(status, configured, now, max_age)
    for reason in reasons:
        print(f"paperbot status: {reason}", file=sys.stderr)
    return EXIT_FAILED if reasons else EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    """`paperbot backup FILE`: a checked copy of the store; one line saying what it holds."""
    print(backup(_config(args), args.file, force=args.force).describe())
    return EXIT_OK


def cmd_retention(args: argparse.Namespace) -> int:
    """`paperbot retention`: apply `retention:` now; one line saying what went."""
    config = _config(args)
    if not config.database.exists():
        print(f"no store yet at {config.database}: nothing to do", file=sys.stderr)
        return EXIT_OK
    with Store.open(config.database, busy_timeout=config.scheduling.database_wait) as store:
        pruned = store.retention.apply(retention_rules(config.retention))
    print(pruned.describe())
    return EXIT_OK


def cmd_subscribers(args: argparse.Namespace) -> int:
    """`paperbot subscribers ACTION`: 0 done, 2 refused (unknown, config file, bad rows),
    1 an opt-in mail not sent."""
    config = _config(args)
    action = ROSTER_ACTIONS[args.action]
    with open_store(config) as store:
        return action(config, store, args)


def _refused(message: str) -> int:
    print(f"paperbot: {message}", file=sys.stderr)
    return EXIT_USAGE


def _roster_list(config: Config, store: Store, args: argparse.Namespace) -> int:
    entries = store.subscribers.roster(args.status, args.origin)
    print(roster_json(entries) if args.json else "\n".join(table_lines(entries)))
    return EXIT_OK


def _roster_show(config: Config, store: Store, args: argparse.Namespace) -> int:
    details = store.subscribers.details(args.email)
    if details is None:
        return _refused(f"no subscriber {args.email}")
    print("\n".join(detail_lines(details, config)))
    return EXIT_OK


def _roster_add(config: Config, store: Store, args: argparse.Namespace) -> int:
    fields = {"email": args.email, "keywords": args.keyword, "authors": args.author}
    fields |= {"categories": args.category, "exclude": args.exclude}
    try:
        sub = entry_of(fields)
    except ConfigError as exc:
        return _refused(f"subscribers add: {exc}")
    refusal = file_wins(config, sub.email) or (None if args.confirm else optin_refusal(config))
    if refusal:
        return _refused(refusal)
    known = store.subscribers.find(sub.email)
    if known and known.subscriber.status in ("active", "suspended"):
        return _refused(f"{sub.email} is already a subscriber ({known.subscriber.status})")
    result = store.subscribers.sign_up(sub)
    if args.confirm:
        store.subscribers.confirm(sub.email, result.record.token_version)
        print(f"{sub.email} added, active")
        return EXIT_OK
    unsent = asyncio.run(send_optins(config, [result.record], print))
    print(f"{sub.email} added, pending{'' if unsent else ': opt-in mail sent'}")
    return EXIT_FAILED if unsent else EXIT_OK


def _roster_status(
    status: str, only: tuple[str, ...], done: str, *, file_too: bool = False
) -> RosterAction:
    """An action moving a subscriber to `status` from one of `only` (`file_too`: config-file
    subscribers as well: bounces suspend them, and only the operator can undo that)."""

    def change(config: Config, store: Store, args: argparse.Namespace) -> int:
        refusal = None if file_too else file_wins(config, args.email)
        if refusal:
            return _refused(refusal)
        known = store.subscribers.find(args.email)
        if known is None:
            return _refused(f"no subscriber {args.email}")
        if not store.subscribers.set_status(args.email, status, only=only):
            return _refused(f"{args.email} is {known.subscriber.status}: nothing to do")
        print(f"{args.email} {done}")
        return EXIT_OK

    return change


def _roster_import(config: Config, store: Store, args: argparse.Namespace) -> int:
    refusal = None if args.confirm else optin_refusal(config)
    if refusal:
        return _refused(refusal)
    subscribers, bad = read_csv(args.file, config)
    for row in bad:
        print(f"paperbot: {args.file}: {row}", file=sys.stderr)
    if bad:
        rows = "a bad row" if len(bad) == 1 else f"{len(bad)} bad rows"
        return _refused(f"{args.file}: {rows}: nothing imported")
    counts = store.subscribers.import_many(subscribers, "active" if args.confirm else "pending")
    state = "active" if args.confirm else "pending"
    print(f"{len(counts.added)} added ({state}), {counts.updated} already known updated")
    if args.confirm or not counts.added:
        return EXIT_OK
    added = set(counts.added)
    records = [SubscriberRecord(s, 0) for s in subscribers if s.email in added]
    unsent = asyncio.run(send_optins(config, records, print))
    print(f"{len(records) - len(unsent)} opt-in mails sent, {len(unsent)} not sent")
    return EXIT_FAILED if unsent else EXIT_OK


def _roster_export(config: Config, store: Store, args: argparse.Namespace) -> int:
    entries = store.subscribers.roster("active", "web")
    try:
        write_csv(args.file, [e.subscriber for e in entries])
    except OSError as exc:
        return _refused(f"cannot write {args.file}: {exc.strerror or exc}")
    print(f"{len(entries)} active store subscribers written to {args.file}")
    return EXIT_OK


RosterAction = Callable[[Config, Store, argparse.Namespace], int]
ROSTER_ACTIONS: dict[str, RosterAction] = {
    "list": _roster_list,
    "show": _roster_show,
    "add": _roster_add,
    "remove": _roster_status("removed", ("active", "pending", "suspended"), "removed"),
    "suspend": _roster_status("suspended", ("active", "pending"), "suspended"),
    "unsuspend": _roster_status("active", ("suspended",), "unsuspended", file_too=True),
    "import": _roster_import,
    "export": _roster_export,
}


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "once": cmd_once,
    "run": cmd_run,
    "web": cmd_web,
    "preview": cmd_preview,
    "check-config": cmd_check_config,
    "send-test": cmd_send_test,
    "sources": cmd_sources,
    "status": cmd_status,
    "backup": cmd_backup,
    "retention": cmd_retention,
    "bounces": cmd_bounces,
    "subscribers": cmd_subscribers,
}
