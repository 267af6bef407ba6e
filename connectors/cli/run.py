"""`connectors run NAME` and `connectors demo`: load a connector (or every one, from its
cassette) and print the rows loaded per table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from connectors.cli.console import FAILED, USAGE, UsageError, check_base_url, print_table
from connectors.cli.explain import explain, is_usage_error
from shared.tooling.catalog import ConnectorEntry, UnknownConnectorError, load_catalog


def _resource_list(value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


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
    from connectors.cli.null_columns import null_columns_held_back
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
    with (
        tempfile.TemporaryDirectory(prefix="connectors-replay-") as scratch,
        RequestLog() as log,
        null_columns_held_back() as nulls,
    ):
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
    if held_back := nulls.summary(entry.name):
        print(held_back, file=sys.stderr)
    if args.json:
        report.print(log, pipeline, result.rows)
        return 0
    print(f"{entry.name}: loaded into {where}")
    print(f"rows loaded per table ({result.seconds:.1f} s)")
    print_table(sorted(result.rows.items()), ("TABLE", "ROWS"))
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
    from connectors.cli.null_columns import null_columns_held_back

    check_database("--database", args.database)
    catalog = load_catalog()
    with null_columns_held_back() as nulls:
        result = runner.demo(
            catalog,
            args.database,
            on_progress=lambda line: print(line, file=sys.stderr),
            collector=lambda entry: progress_collector(args, entry.name),
        )
    if held_back := nulls.summary("demo"):
        print(held_back, file=sys.stderr)
    rows = [
        (f"{connector}.{table}", rows)
        for connector, tables in result.tables.items()
        for table, rows in tables.items()
    ]
    print(
        f"{result.database}: {len(result.tables)} connectors, {len(rows)} tables "
        "(one dataset per connector)"
    )
    print_table(rows, ("TABLE", "ROWS"))
    for connector, exc in result.failures.items():
        print(f"error: {explain(exc, catalog.get(connector))}", file=sys.stderr)
    return FAILED if result.failures else 0
