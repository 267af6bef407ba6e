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

from connectors.cli.connector_names import ScaffoldError
from connectors.cli.console import FAILED, INTERRUPTED, USAGE, UsageError
from connectors.cli.explain import first_line
from connectors.cli.run import cmd_demo, cmd_run
from connectors.cli.show import cmd_list, cmd_show
from shared.errors import ConnectorError
from shared.tooling.catalog import UnknownConnectorError, load_catalog

#: the distribution this package is installed as (for `--version`)
DISTRIBUTION = "dlt-connector-catalog"


#: `run --deletions`: shared.incremental.deletions.DELETION_MODES, named here so that
#: parsing arguments imports no dlt
DELETION_CHOICES = ("soft", "hard")


# -- new / readme ---------------------------------------------------------------------


def cmd_new(args: argparse.Namespace) -> int:
    from connectors.cli.scaffold import create_connector

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
