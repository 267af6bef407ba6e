"""`connectors state NAME`: the cursor each resource stored after `run NAME`, and how to
reset one with dlt's own command.

Read from the local state of the run's dlt pipeline (`connectors_<name>` in dlt's
pipelines folder, `~/.dlt/pipelines` unless `DLT_DATA_DIR` says otherwise), the state the
next `run` starts from; nothing is written. Per resource: the cursor (the API field), the
last value stored (the next run asks for what changed since, less the connector's lag)
and the initial value the first run started from. A resource without a cursor reads in
full every run and has none.

A cursor is reset with dlt's `dlt pipeline <pipeline> drop <resource>`, which drops the
resource's tables and its state (the next run reloads it in full), or with
`--state-only` only its state (the next run reads from the initial value and merges).
dlt finds a DuckDB file only where told (`DESTINATION__DUCKDB__CREDENTIALS`): the
command printed names the file `run` loads (`--database`).
"""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shared.errors import ConnectorError
from shared.tooling.catalog import ConnectorEntry


class NoStateError(ConnectorError):
    """The pipeline has never run here: there is no state to show."""


@dataclass(frozen=True)
class StoredCursor:
    """One resource's cursor: `last_value` None when nothing is stored yet."""

    resource: str
    field: str | None
    last_value: Any = None
    initial_value: Any = None


def pipeline_folder(pipeline_name: str) -> Path:
    """Where dlt keeps the pipeline's local state: `<pipelines dir>/<pipeline_name>`."""
    from dlt.common.pipeline import get_dlt_pipelines_dir

    return Path(get_dlt_pipelines_dir()) / pipeline_name


def stored_state(entry: ConnectorEntry) -> tuple[str, dict[str, Any]]:
    """The run pipeline's name and its state, or `NoStateError` when it never ran."""
    import dlt

    from connectors.cli.runner import pipeline_name

    name = pipeline_name(entry)
    folder = pipeline_folder(name)
    if not (folder / "state.json").is_file():
        raise NoStateError(
            f"{entry.name}: no stored state: dlt pipeline {name} has not run here "
            f"({folder}); run `python -m connectors run {entry.name}` first"
        )
    pipeline = dlt.attach(name, pipelines_dir=str(folder.parent))
    return name, json.loads(json.dumps(pipeline.state, default=str))


def stored_cursors(entry: ConnectorEntry, state: dict[str, Any]) -> list[StoredCursor]:
    """Every resource's cursor: the catalog's resources in its order, with their stored
    values, then any other resource the state holds a cursor for (a configured one)."""
    stored: dict[str, StoredCursor] = {}
    for source in (state.get("sources") or {}).values():
        for resource, resource_state in (source.get("resources") or {}).items():
            for field, cursor in (resource_state.get("incremental") or {}).items():
                stored[resource] = StoredCursor(
                    resource, field, cursor.get("last_value"), cursor.get("initial_value")
                )
    cursors = [stored.pop(r.name, StoredCursor(r.name, r.incremental)) for r in entry.resources]
    return cursors + list(stored.values())


def drop_command(pipeline: str, resource: str, database: Path | None) -> str:
    """dlt's command that drops `resource`'s tables and state (for a DuckDB destination,
    told the file)."""
    prefix = f"DESTINATION__DUCKDB__CREDENTIALS={shlex.quote(str(database))} " if database else ""
    return f"{prefix}dlt pipeline {pipeline} drop {resource}"


def print_cursors(
    entry: ConnectorEntry, pipeline: str, cursors: list[StoredCursor], database: Path | None
) -> None:
    from connectors.cli.console import print_table

    print(f"{entry.name}: cursors stored by dlt pipeline {pipeline} ({pipeline_folder(pipeline)})")
    rows = [
        (
            cursor.resource,
            cursor.field,
            _value(cursor.last_value, "not stored yet"),
            _value(cursor.initial_value, "the beginning"),
        )
        for cursor in cursors
        if cursor.field is not None
    ]
    if rows:
        print_table(rows, ("RESOURCE", "CURSOR", "LAST VALUE", "INITIAL VALUE"))
    without = [cursor.resource for cursor in cursors if cursor.field is None]
    if without:
        print(f"no cursor (read in full, or once per parent row): {', '.join(without)}")
    example = next((c.resource for c in cursors if c.last_value is not None), "RESOURCE")
    command = drop_command(pipeline, example, database)
    print(
        f"\nreset one: drop its tables and cursor (the next run reloads it in full):\n"
        f"  {command}\n"
        f"or only its cursor, keeping its rows (the next run reads from the initial value):\n"
        f"  {command} --state-only"
    )


def _value(value: Any, missing: str) -> str:
    return missing if value is None else str(value)


def cmd_state(args: argparse.Namespace) -> int:
    from connectors.cli.runner import database_path
    from connectors.declarative.entry import entry_for

    entry = entry_for(args.name)  # a catalog connector, or a spec path
    pipeline, state = stored_state(entry)
    cursors = stored_cursors(entry, state)
    duckdb = str(state.get("destination_type", "")).endswith("duckdb")
    database = database_path(entry, False, args.database) if duckdb else None
    if args.json:
        print(json.dumps({"pipeline": pipeline, "cursors": [asdict(c) for c in cursors]}))
    else:
        print_cursors(entry, pipeline, cursors, database)
    return 0


def add_parser(commands: Any) -> None:
    """Register `state` on the CLI's subcommands."""
    parser = commands.add_parser(
        "state", help="the cursor each resource stored, and how to reset one"
    )
    parser.add_argument("name")
    parser.add_argument(
        "--database",
        metavar="PATH",
        help="the DuckDB file `run` loaded, named in the reset command "
        "(default: <name>.duckdb in the current folder)",
    )
    parser.add_argument("--json", action="store_true", help="print the cursors as JSON")
    parser.set_defaults(handler=cmd_state)
