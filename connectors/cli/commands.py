"""`python -m connectors` (or `connectors`): browse the catalog, run a connector with no
code, sync the demo, start a new connector.

    connectors list
    connectors show crm
    connectors run crm [--destination duckdb] [--database F] [--dataset D] [--resources a,b]
                       [--replay] [--base-url URL] [--progress] [--deletions soft|hard]
                       [--reconcile] [--full-refresh] [--json]
    connectors verify crm [--resources a,b] [--database F] [--dataset D] [--json]
    connectors check crm [--base-url URL] [--replay]
    connectors schema crm [--json]
    connectors state crm [--database F] [--json]
    connectors demo [--database F] [--progress]
    connectors new my_shop [--from crm | --auth KIND --paging STYLE | --declarative]
    connectors serve crm [--port 8765]
    connectors readme [--check]

Errors a user can fix (an unknown connector or resource, missing credentials, a
rejected token) end in one line saying what to set or what exists, and a non-zero exit;
Ctrl-C prints "interrupted" and exits 130.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connectors.cli.explain import explain, first_line, is_usage_error
from connectors.cli.scaffold import ScaffoldError
from shared.errors import ConnectorError
from shared.tooling.catalog import Auth, ConnectorEntry, UnknownConnectorError, load_catalog

#: exit status of a usage error (unknown connector, resource or destination, taken name)
USAGE = 2
#: exit status of a run that failed (missing credentials, rejected token, API errors)
FAILED = 1
#: exit status after Ctrl-C (128 + SIGINT), as a shell reports it
INTERRUPTED = 130
#: the distribution this package is installed as (for `--version`)
DISTRIBUTION = "dlt-connector-catalog"


#: `run --deletions`: shared.incremental.deletions.DELETION_MODES, named here so that
#: parsing arguments imports no dlt
DELETION_CHOICES = ("soft", "hard")


class UsageError(ConnectorError):
    """A command-line value that cannot work (a relative `--base-url`, a `--database` in
    a missing folder): said in one line, exit status `USAGE`."""


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
        (
            e.name,
            e.title,
            e.category,
            " or ".join(mode.type for mode in e.auth.modes),
            len(e.resources),
            e.maturity,
        )
        for e in catalog
    ]
    _print_table(rows, ("NAME", "TITLE", "CATEGORY", "AUTH", "RESOURCES", "MATURITY"))
    print(f"\n{len(catalog)} connectors. Details: python -m connectors show NAME")
    if catalog.specs:
        from connectors.declarative.entry import entry_for

        print("\nDeclarative connectors (specs; run, show, ... take the path):\n")
        specs = [entry_for(path) for path in catalog.specs]
        rows = [
            (path, e.name, e.title, e.auth.type, len(e.resources))
            for path, e in zip(catalog.specs, specs, strict=True)
        ]
        _print_table(rows, ("PATH", "NAME", "TITLE", "AUTH", "RESOURCES"))
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
    from connectors.cli import snippets

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


def loaded_column(cursor: str) -> str:
    """The column dlt loads an API field into: `updatedAt` -> `updated_at` (dlt's
    snake_case naming; a nested path `a.b` lands as `a__b`)."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    naming = NamingConvention()
    return "__".join(naming.normalize_identifier(part) for part in cursor.split("."))


def _cursor(cursor: str | None) -> str:
    """The incremental cursor as the API field and the loaded column, when they differ."""
    if not cursor:
        return "-"
    column = loaded_column(cursor)
    return cursor if column == cursor else f"{cursor} -> {column}"


def cmd_show(args: argparse.Namespace) -> int:
    from connectors.cli import dango, snippets
    from connectors.cli.readme import api_lines, connector_readme
    from connectors.declarative.entry import entry_for

    entry = entry_for(args.name)  # a catalog connector, or a spec path
    settings = snippets.source_settings(entry)
    print(f"{entry.name}: {entry.title} ({entry.category}, {entry.maturity})")
    print(f"  {entry.description}\n")
    for note in entry.notes:
        print(f"  note: {note}\n")
    print(f"source:      from {entry.module} import {entry.source_function}")
    print(*api_lines(entry), sep="\n")
    print(f"auth:        {_auth_summary(entry)}")
    print(f"rate limit:  {_rate_limits(entry)}")
    print(f"replay:      cassettes/{entry.name}/{entry.replay.cassette}.yaml")
    print(f"docs:        {connector_readme(entry)}\n")
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
            _cursor(r.incremental),
            r.parent or "-",
        )
        for r in entry.resources
    ]
    _print_table(
        rows, ("NAME", "PRIMARY KEY", "WRITE", "INCREMENTAL (API -> COLUMN)", "PARENT"), indent="  "
    )
    _print_secrets(entry, settings)
    print(".dlt/config.toml (plain dlt):\n")
    print(snippets.config_toml(entry, settings))
    print(dango.show_text(entry, settings))
    print("plain dlt:\n")
    print(snippets.python_usage(entry))
    print(f"run it:  python -m connectors run {args.name}    (offline: --replay)")
    return 0


# -- run / demo ------------------------------------------------------------------------


def _resource_list(value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def check_base_url(value: str | None) -> None:
    """Refuse a `--base-url` that is not an absolute http(s) URL, blaming the flag (dlt
    would otherwise report a bad `sources.<name>.base_url`)."""
    if value is None:
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"--base-url `{value}` is not an absolute http(s) URL; "
            "give scheme and host, e.g. --base-url https://api.example.com"
        )


def check_database(flag: str, value: str | None) -> None:
    """Refuse a DuckDB file in a folder that does not exist, once, before any load."""
    if value is None:
        return
    folder = Path(value).expanduser().resolve().parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {value}: the folder {folder} does not exist; create it first")


def progress_collector(args: argparse.Namespace, label: str) -> Any:
    """Our progress collector on stderr when stderr is a terminal or progress is forced
    (`--progress`, `CONNECTORS_PROGRESS=1`); None (dlt shows nothing) otherwise."""
    from connectors.cli.progress import Progress, wanted

    return Progress(sys.stderr, label) if wanted(sys.stderr, args.progress) else None


def cmd_run(args: argparse.Namespace) -> int:
    import tempfile

    from connectors.cli import runner
    from connectors.cli.request_log import RequestLog
    from connectors.cli.run_report import RunReport
    from connectors.declarative.entry import entry_for

    entry = entry_for(args.name)  # a catalog connector, or a spec path
    check_base_url(args.base_url)
    if args.database is not None and args.destination != "duckdb":
        raise UsageError(f"--database is a DuckDB file; --destination is {args.destination}")
    check_database("--database", args.database)
    resources = _resource_list(args.resources)
    mode = f"replaying cassettes/{entry.name}/{entry.replay.cassette}.yaml" if args.replay else ""
    if args.full_refresh:
        mode = ", ".join(filter(None, [mode, "full refresh: dropping its tables and state first"]))
    database = runner.database_path(entry, args.replay, args.database)
    report = RunReport(
        entry,
        args.destination,
        str(database) if args.destination == "duckdb" else None,
        replay=args.replay,
        full_refresh=args.full_refresh,
    )
    pipeline: Any = None  # none yet when building the source fails
    with tempfile.TemporaryDirectory(prefix="connectors-replay-") as scratch, RequestLog() as log:
        try:
            source = runner.build_source(
                entry,
                replay=args.replay,
                resources=resources,
                base_url=args.base_url,
                deletions=args.deletions,
                reconcile=args.reconcile,
            )
            pipeline = runner.make_pipeline(
                entry,
                destination=args.destination,
                dataset=args.dataset,
                replay=args.replay,
                pipelines_dir=scratch if args.replay else None,
                progress=progress_collector(args, entry.name),
                database=args.database,
            )
            where = _destination_of(entry, pipeline, args)
            print(
                f"{entry.name}: loading into {where}" + (f", {mode}" if mode else ""),
                file=sys.stderr,
            )
            result = runner.load(
                entry,
                pipeline,
                source,
                replay=args.replay,
                partial=bool(resources),
                full_refresh=args.full_refresh,
            )
        except Exception as exc:
            if runner.interrupted(exc):
                raise KeyboardInterrupt from exc
            if args.traceback or isinstance(exc, UnknownConnectorError):
                raise
            message = explain(exc, entry, args.destination)
            print(f"error: {message}", file=sys.stderr)
            if args.json:
                report.print(log, pipeline, error=message)
            return USAGE if is_usage_error(exc) else FAILED
    if args.json:
        report.print(log, pipeline, result.rows)
        return 0
    print(f"{entry.name}: loaded into {where}")
    print(f"rows loaded per table ({result.seconds:.1f} s)")
    _print_table(sorted(result.rows.items()), ("TABLE", "ROWS"))
    return 0


def _destination_of(entry: ConnectorEntry, pipeline: Any, args: argparse.Namespace) -> str:
    """Where a run loads: the DuckDB file (absolute), dataset and pipeline name."""
    from connectors.cli.runner import database_path

    if args.destination == "duckdb":
        target = str(database_path(entry, args.replay, args.database))
    else:
        target = str(args.destination)
    return f"{target}, dataset {pipeline.dataset_name} (dlt pipeline {pipeline.pipeline_name})"


def cmd_demo(args: argparse.Namespace) -> int:
    from connectors.cli import runner

    check_database("--database", args.database)
    catalog = load_catalog()
    result = runner.demo(
        catalog,
        args.database,
        on_progress=lambda line: print(line, file=sys.stderr),
        collector=lambda entry: progress_collector(args, entry.name),
    )
    rows = [
        (f"{connector}.{table}", rows)
        for connector, tables in result.tables.items()
        for table, rows in tables.items()
    ]
    print(
        f"{result.database}: {len(result.tables)} connectors, {len(rows)} tables "
        "(one dataset per connector)"
    )
    _print_table(rows, ("TABLE", "ROWS"))
    for connector, exc in result.failures.items():
        print(f"error: {explain(exc, catalog.get(connector))}", file=sys.stderr)
    return FAILED if result.failures else 0


# -- new / readme ---------------------------------------------------------------------


def cmd_new(args: argparse.Namespace) -> int:
    from connectors.cli.scaffold import ScaffoldError, create_connector

    if args.declarative:
        from connectors.cli.scaffold_spec import create_spec_connector

        if args.from_ or args.auth or args.paging:
            raise ScaffoldError(
                "--declarative starts from the spec template: no --from, --auth or --paging"
            )
        written = create_spec_connector(args.name)
        print(f"created declarative connector `{args.name}` from the my_spec template:")
        for path in written:
            print(f"  {path.as_posix()}")
        print(f"\nnext: python -m pytest tests/declarative/test_{args.name}.py")
        return 0
    written = create_connector(args.name, args.from_, auth=args.auth, paging=args.paging)
    chosen = ", ".join(f"--{o} {v}" for o, v in (("auth", args.auth), ("paging", args.paging)) if v)
    origin = f"a copy of `{args.from_}`" if args.from_ else "the my_api template"
    origin += f" ({chosen})" if chosen else ""
    print(f"created connector `{args.name}` from {origin}:")
    for path in written:
        print(f"  {path.as_posix()}")
    print(f"\nnext: make test-connector NAME={args.name}")
    return 0


def cmd_readme(args: argparse.Namespace) -> int:
    from connectors.cli.readme import REGENERATE, update_readmes

    stale = update_readmes(load_catalog(), check=args.check)
    if args.check and stale:
        for path in stale:
            print(f"error: {path} is out of date; run: {REGENERATE}")
        return FAILED
    for path in stale:
        print(f"updated {path}")
    if not stale:
        print("README.md's connector table and every connector README are up to date")
    return 0


PROGRESS_HELP = (
    "show progress on stderr (requests, rows per resource, pacing waits) even when it is "
    "not a terminal; CONNECTORS_PROGRESS=1 does the same, =0 silences it"
)


def version() -> str:
    """`connectors 0.1.0 (dlt 1.31.0)`: this catalog's version and dlt's."""
    import importlib.metadata

    try:
        ours = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        ours = "unknown (not installed)"
    return f"connectors {ours} (dlt {importlib.metadata.version('dlt')})"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="connectors", description="Browse and run the dlt connector catalog."
    )
    top.add_argument("--version", action="version", version=version())
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
    run.add_argument(
        "--database",
        metavar="PATH",
        help="the DuckDB file to load (default: <name>.duckdb, replays <name>_replay.duckdb)",
    )
    run.add_argument("--dataset", help="the dataset (schema) to load into")
    run.add_argument("--resources", help="comma-separated resources to load (default: all)")
    run.add_argument("--replay", action="store_true", help="run offline from the cassette")
    run.add_argument(
        "--base-url", help="the API's base URL (default: dlt config, then the source's default)"
    )
    run.add_argument("--progress", action="store_true", help=PROGRESS_HELP)
    run.add_argument(
        "--deletions",
        choices=DELETION_CHOICES,
        help="what a record deleted at the source does: soft (the default) sets its row's "
        "_deleted_at; hard deletes the row and its child-table rows",
    )
    run.add_argument(
        "--reconcile",
        action="store_true",
        help="read incremental resources in full, without their cursors: load what is "
        "missing or older, mark deleted what the source no longer lists",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="drop the tables and reset the state (cursors, deletion feeds) of the source "
        "(with --resources: of those resources) first, then load everything again",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout: status, rows per table, requests, retries, "
        "429s, seconds (progress and logs stay on stderr)",
    )
    run.set_defaults(handler=cmd_run)

    from connectors.cli.check import add_parser as add_check
    from connectors.cli.schema import add_parser as add_schema
    from connectors.cli.serve import add_parser as add_serve
    from connectors.cli.state import add_parser as add_state
    from connectors.cli.verify import add_parser as add_verify

    add_verify(commands)
    add_check(commands)
    add_schema(commands)
    add_state(commands)
    add_serve(commands)

    demo = commands.add_parser("demo", help="sync every connector from its cassette")
    demo.add_argument("--database", default="demo.duckdb", help="the DuckDB file to load")
    demo.add_argument("--progress", action="store_true", help=PROGRESS_HELP)
    demo.set_defaults(handler=cmd_demo)

    new = commands.add_parser("new", help="start a connector from the template or a copy")
    new.add_argument("name")
    new.add_argument("--from", dest="from_", metavar="CONNECTOR", help="copy this connector")
    from connectors.cli.scaffold import template_choices

    offered = template_choices()
    new.add_argument(
        "--auth",
        choices=offered["auth"],
        help=f"how the API authenticates (the template's: {offered['auth'][0]})",
    )
    new.add_argument(
        "--paging",
        choices=offered["paging"],
        help=f"how the API pages orders (the template's: {offered['paging'][0]})",
    )
    new.add_argument(
        "--declarative",
        action="store_true",
        help="a YAML spec, its fake and tests instead of a Python connector",
    )
    new.set_defaults(handler=cmd_new)

    readme = commands.add_parser(
        "readme", help="regenerate README.md's connector table and each connector README's tables"
    )
    readme.add_argument("--check", action="store_true", help="only check it is up to date")
    readme.set_defaults(handler=cmd_readme)
    return top


def interruptible() -> None:
    """Make SIGINT interrupt the command even when it started with SIGINT ignored, as a
    shell's background job and a script's `nohup ... &` do (and every process they
    start): `kill -INT` then stops a run with "interrupted", leaving its tables and
    cursors as they were, instead of being lost while the run goes on."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    # the command's own default (a user's setting wins); set when it runs, not at import:
    # importing the project leaves a host process's environment alone
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    interruptible()
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return USAGE
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        # Ctrl-C: one word, the shell's exit status for SIGINT; no traceback
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # `connectors show crm | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ConnectorError as exc:
        if args.traceback:
            raise
        print(f"error: {first_line(exc)}", file=sys.stderr)
        usage = (UnknownConnectorError, ScaffoldError, UsageError)
        return USAGE if isinstance(exc, usage) else FAILED
