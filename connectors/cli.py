"""`python -m connectors` (or `connectors`): browse the catalog, run a connector with no
code, sync the demo, start a new connector.

    connectors list
    connectors show crm
    connectors run crm [--destination duckdb] [--dataset D] [--resources a,b] [--replay]
    connectors demo
    connectors new my_shop [--from crm]
    connectors readme [--check]

Errors a user can fix (an unknown connector or resource, missing credentials, a
rejected token) end in one line saying what to set or what exists, and a non-zero exit.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

from connectors.scaffold import ScaffoldError  # noqa: E402
from shared.catalog import Auth, ConnectorEntry, UnknownConnectorError, load_catalog  # noqa: E402
from shared.errors import ConnectorError  # noqa: E402

#: exit status of a usage error (unknown connector, resource or destination, taken name)
USAGE = 2
#: exit status of a run that failed (missing credentials, rejected token, API errors)
FAILED = 1


def _print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], indent: str = "") -> None:
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(indent + line.rstrip())


# -- list / show ---------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    rows = [
        (e.name, e.title, e.category, e.auth.type, len(e.resources), e.maturity) for e in catalog
    ]
    _print_table(rows, ("NAME", "TITLE", "CATEGORY", "AUTH", "RESOURCES", "MATURITY"))
    print(f"\n{len(catalog)} connectors. Details: python -m connectors show NAME")
    return 0


def _rate_limits(entry: ConnectorEntry) -> str:
    if not entry.rate_limits:
        return "none documented"
    return ", ".join(
        f"{limit.requests} requests / {limit.per_seconds:g} s"
        + (f" on {limit.path}" if limit.path else "")
        for limit in entry.rate_limits
    )


def _auth_mode(mode: Auth) -> str:
    needs = ", ".join(mode.secrets) or "no secrets"
    if mode.config:
        needs += f"; config {', '.join(mode.config)}"
    return f"{mode.type} ({needs})"


def _auth_summary(entry: ConnectorEntry) -> str:
    modes = [_auth_mode(mode) for mode in entry.auth.modes]
    return modes[0] if len(modes) == 1 else "either " + " or ".join(modes)


def _print_secrets(entry: ConnectorEntry, settings: Any) -> None:
    """The `.dlt/secrets.toml` snippet, one per auth mode when there are several."""
    from connectors import snippets

    modes = entry.auth.modes
    for number, mode in enumerate(modes):
        if len(modes) == 1:
            print("\n.dlt/secrets.toml:\n")
            snippet, keys = snippets.secrets_toml(settings), settings.secrets
        else:
            lead = "\n.dlt/secrets.toml (one auth mode only), either" if number == 0 else "or"
            print(f"{lead} {mode.type}:\n")
            snippet = snippets.auth_mode_toml(entry, settings, mode)
            keys = snippets.auth_mode_keys(entry, settings, mode)
        print(snippet)
        envs = [settings.env_var(key) for key in keys]
        if envs:
            noun = "variable" if len(envs) == 1 else "variables"
            print(f"(or the environment {noun} {', '.join(envs)})\n")


def cmd_show(args: argparse.Namespace) -> int:
    from connectors import dango, snippets

    entry = load_catalog().get(args.name)
    settings = snippets.source_settings(entry)
    about = [entry.category, entry.maturity, f"seed {entry.seed}"]
    if entry.contract:
        about.append(f"contract {entry.contract}")
    print(f"{entry.name}: {entry.title} ({', '.join(about)})")
    print(f"  {entry.description}\n")
    for note in entry.notes:
        print(f"  note: {note}\n")
    print(f"source:      from {entry.module} import {entry.source_function}")
    print(f"base URL:    {entry.base_url}")
    print(f"auth:        {_auth_summary(entry)}")
    print(f"rate limit:  {_rate_limits(entry)}")
    print(f"replay:      cassettes/{entry.name}/{entry.replay.cassette}.yaml\n")
    if entry.configurable_resources:
        print(
            f"resources (configured by `sources.{settings.section}.resources`; "
            "these are the replay configuration's):"
        )
    else:
        print("resources:")
    rows = [
        (
            r.name,
            ", ".join(r.primary_key) or "-",
            r.write_disposition,
            r.incremental or "-",
            r.parent or "-",
        )
        for r in entry.resources
    ]
    _print_table(rows, ("NAME", "PRIMARY KEY", "WRITE", "INCREMENTAL", "PARENT"), indent="  ")
    _print_secrets(entry, settings)
    print(".dlt/config.toml (plain dlt):\n")
    print(snippets.config_toml(entry, settings))
    print(dango.show_text(entry, settings))
    print("plain dlt:\n")
    print(snippets.python_usage(entry))
    print(f"run it:  python -m connectors run {entry.name}    (offline: --replay)")
    return 0


# -- run / demo ------------------------------------------------------------------------


#: the message of a connection error `shared.session` re-raised with the URL redacted
OUR_CONNECTION_ERROR = re.compile(r"^[a-z][a-z0-9_]*: could not reach ")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it wraps, outermost first: dlt's step failures, causes, and
    contexts unless suppressed (`raise ... from None` hides a library message, e.g. one
    repeating a URL with its credentials)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (
            getattr(current, "exception", None),
            current.__cause__,
            None if current.__suppress_context__ else current.__context__,
        ):
            if isinstance(inner, BaseException):
                pending.append(inner)


def explain(exc: BaseException, entry: ConnectorEntry | None = None) -> str:
    """One line saying what went wrong and, where the user can fix it, what to set.

    Our own words come before a library's: missing config, then the outermost
    `ConnectorError` or message naming the connector, then a connection error our
    session re-raised with its URL redacted; only then the innermost exception.
    """
    from dlt.common.configuration.exceptions import ConfigFieldMissingException
    from dlt.common.destination.exceptions import UnknownDestinationModule

    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, ConfigFieldMissingException) and entry is not None:
            return _missing_config(entry, list(cause.fields))
        if isinstance(cause, UnknownDestinationModule):
            return _unknown_destination(cause)
    own_prefix = f"{entry.name}: " if entry is not None else None
    for cause in causes:
        if isinstance(cause, ConnectorError) or (
            own_prefix is not None and str(cause).startswith(own_prefix)
        ):
            return _first_line(cause)
    for cause in causes:
        if OUR_CONNECTION_ERROR.match(str(cause)):
            return _first_line(cause)
    root = causes[-1]
    prefix = f"{entry.name}: " if entry is not None else ""
    return f"{prefix}{type(root).__name__}: {_first_line(root)}"


def known_destinations() -> list[str]:
    """The destinations dlt ships, duckdb (the default) first."""
    import dlt.destinations

    shipped = sorted(name for name in dlt.destinations.__all__ if name != "destination")
    return sorted(shipped, key=lambda name: name != "duckdb")


def _unknown_destination(exc: Any) -> str:
    """dlt's multi-paragraph message about an unknown destination, in one line."""
    known = ", ".join(known_destinations())
    if getattr(exc, "destination_type", None):
        return (
            f"destination `{exc.ref}` has the unknown destination type "
            f"`{exc.destination_type}`; try {known}"
        )
    return f"unknown destination `{exc.ref}`; try {known}"


def _is_usage_error(exc: BaseException) -> bool:
    """A failed run the user fixes on the command line (e.g. `--destination nope`)."""
    from dlt.common.destination.exceptions import UnknownDestinationModule

    return any(isinstance(cause, UnknownDestinationModule) for cause in _causes(exc))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _missing_config(entry: ConnectorEntry, fields: list[str]) -> str:
    from connectors.snippets import source_settings

    settings = source_settings(entry)
    wanted = [
        f"`sources.{settings.section}.{field}` in .dlt/"
        f"{'secrets' if field in settings.secrets else 'config'}.toml "
        f"(or env {settings.env_var(field)})"
        for field in fields
    ]
    return f"{entry.name}: missing {', '.join(fields)}; set " + " and ".join(wanted)


def _resource_list(value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def cmd_run(args: argparse.Namespace) -> int:
    import tempfile

    from dlt.common.runtime.collector import LogCollector

    from connectors import runner

    entry = load_catalog().get(args.name)
    resources = _resource_list(args.resources)
    runner.check_resources(entry, resources)
    progress = LogCollector(log_period=1.0, logger=sys.stderr, dump_system_stats=False)
    mode = f"replaying cassettes/{entry.name}/{entry.replay.cassette}.yaml" if args.replay else ""
    with tempfile.TemporaryDirectory(prefix="connectors-replay-") as scratch:
        try:
            source = runner.build_source(
                entry, replay=args.replay, resources=resources, base_url=args.base_url
            )
            pipeline = runner.make_pipeline(
                entry,
                destination=args.destination,
                dataset=args.dataset,
                replay=args.replay,
                pipelines_dir=scratch if args.replay else None,
                progress=progress,
            )
            print(
                f"{entry.name}: loading into {args.destination} dataset "
                f"{pipeline.dataset_name}" + (f", {mode}" if mode else ""),
                file=sys.stderr,
            )
            result = runner.load(
                entry, pipeline, source, replay=args.replay, partial=bool(resources)
            )
        except Exception as exc:
            if args.traceback or isinstance(exc, UnknownConnectorError):
                raise
            print(f"error: {explain(exc, entry)}", file=sys.stderr)
            return USAGE if _is_usage_error(exc) else FAILED
    print(f"{entry.name}: rows loaded per table ({result.seconds:.1f} s)")
    _print_table(sorted(result.rows.items()), ("TABLE", "ROWS"))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from connectors import runner

    catalog = load_catalog()
    result = runner.demo(
        catalog, args.database, on_progress=lambda line: print(line, file=sys.stderr)
    )
    rows = [
        (f"{connector}.{table}", rows)
        for connector, tables in result.tables.items()
        for table, rows in tables.items()
    ]
    print(
        f"{result.database.name}: {len(result.tables)} connectors, {len(rows)} tables "
        "(one dataset per connector)"
    )
    _print_table(rows, ("TABLE", "ROWS"))
    for connector, exc in result.failures.items():
        print(f"error: {explain(exc, catalog.get(connector))}", file=sys.stderr)
    return FAILED if result.failures else 0


# -- new / readme ---------------------------------------------------------------------


def cmd_new(args: argparse.Namespace) -> int:
    from connectors.scaffold import create_connector

    written = create_connector(args.name, args.from_)
    origin = f"a copy of `{args.from_}`" if args.from_ else "the my_api template"
    print(f"created connector `{args.name}` from {origin}:")
    for path in written:
        print(f"  {path.as_posix()}")
    print(f"\nnext: make test-connector NAME={args.name}")
    return 0


def cmd_readme(args: argparse.Namespace) -> int:
    from connectors.readme import README_PATH, update_readme

    up_to_date = update_readme(load_catalog(), README_PATH, check=args.check)
    if args.check and not up_to_date:
        print("error: README.md's connector table is out of date; run: python -m connectors readme")
        return FAILED
    print("README.md's connector table is up to date" if up_to_date else "updated README.md")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="connectors", description="Browse and run the dlt connector catalog."
    )
    top.add_argument(
        "--traceback", action="store_true", help="show the full traceback of a failed run"
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("list", help="a table of the catalog's connectors").set_defaults(
        handler=cmd_list
    )
    show = commands.add_parser("show", help="resources, auth and ready-to-paste config")
    show.add_argument("name")
    show.set_defaults(handler=cmd_show)

    run = commands.add_parser("run", help="run a connector's pipeline")
    run.add_argument("name")
    run.add_argument("--destination", default="duckdb", help="a dlt destination (duckdb)")
    run.add_argument("--dataset", help="the dataset (schema) to load into")
    run.add_argument("--resources", help="comma-separated resources to load (default: all)")
    run.add_argument("--replay", action="store_true", help="run offline from the cassette")
    run.add_argument("--base-url", help="the API's base URL (default: dlt config, then catalog)")
    run.set_defaults(handler=cmd_run)

    demo = commands.add_parser("demo", help="sync every connector from its cassette")
    demo.add_argument("--database", default="demo.duckdb", help="the DuckDB file to load")
    demo.set_defaults(handler=cmd_demo)

    new = commands.add_parser("new", help="start a connector from the template or a copy")
    new.add_argument("name")
    new.add_argument("--from", dest="from_", metavar="CONNECTOR", help="copy this connector")
    new.set_defaults(handler=cmd_new)

    readme = commands.add_parser("readme", help="regenerate README.md's connector table")
    readme.add_argument("--check", action="store_true", help="only check it is up to date")
    readme.set_defaults(handler=cmd_readme)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return USAGE
    try:
        return int(args.handler(args))
    except BrokenPipeError:  # `connectors show crm | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ConnectorError as exc:
        if args.traceback:
            raise
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return USAGE if isinstance(exc, (UnknownConnectorError, ScaffoldError)) else FAILED
