"""`connectors schema NAME`: the tables a connector loads, for every resource: columns
and their types, primary and merge keys, write disposition, incremental cursor (the API
field, its column and initial value) and how deletions are learned.

Offline and without credentials: the connector's source is built as `run --replay`
builds it (stand-in credentials, the catalog's replay arguments, the rest from dlt's
config), its cassette is replayed through dlt's extract and normalize steps into a
throwaway pipeline, and what dlt's schema then holds is printed. So the columns and types
are dlt's own, nested tables included, as a first sync of the recorded data makes them;
a field the recording never holds is not listed (a table the recording leaves empty
shows the columns its hints declare). Keys, disposition and cursor come from the
resources' hints; deletions from the catalog (`catalog.yml`, `deletions:` per resource).
A connector whose resources are configuration (`analytics`) shows the replay
configuration's resources.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from connectors.cli.console import FAILED
from shared.tooling.catalog import ConnectorEntry

#: what each way of learning deletions means, as the text output says it
DELETIONS = {
    "feed": "from the API's feed of deleted records, read after the list every run",
    "full_list": "listed in full every run: a record no longer listed was deleted",
    "reconcile": "only by `run --reconcile` (no feed; the list is incremental)",
    "none": "not learned",
}


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str | None
    nullable: bool
    primary_key: bool
    merge_key: bool


@dataclass(frozen=True)
class Table:
    """One table: a resource's own, or a nested one (`parent` names its parent table)."""

    name: str
    parent: str | None
    columns: list[Column]


@dataclass(frozen=True)
class Cursor:
    """A resource's incremental cursor: the API's field, the column it loads into, and
    the value the first sync starts from (None: from the beginning)."""

    field: str
    column: str
    initial_value: Any


@dataclass(frozen=True)
class ResourceSchema:
    """One resource: `parent` is the resource whose rows it requests one by one."""

    name: str
    parent: str | None
    write_disposition: str
    primary_key: list[str]
    merge_key: list[str]
    cursor: Cursor | None
    deletions: str
    tables: list[Table]


@dataclass(frozen=True)
class ConnectorSchema:
    connector: str
    #: where the columns and types come from (the replayed cassette)
    columns_from: str
    resources: list[ResourceSchema]

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


def replayed_schema(entry: ConnectorEntry, source: Any, workdir: str) -> Any:
    """dlt's schema after replaying the entry's cassette through extract and normalize
    into a pipeline in `workdir` (nothing is loaded)."""
    from connectors.cli.null_columns import null_columns_held_back
    from connectors.cli.runner import replay_scrubber
    from shared.loading import DEFAULT_LOADER_FILE_FORMAT, duckdb_pipeline
    from shared.tooling.cassettes import replaying

    pipeline = duckdb_pipeline(
        f"schema_{entry.name}",
        database=str(Path(workdir) / "unused.duckdb"),
        pipelines_dir=workdir,
    )
    with replaying(entry.cassette_path(), replay_scrubber(entry), require_all_played=False):
        pipeline.extract(source, loader_file_format=DEFAULT_LOADER_FILE_FORMAT)
    with null_columns_held_back() as nulls:
        pipeline.normalize()
    if held_back := nulls.summary(entry.name, where="in the replayed cassette"):
        print(held_back, file=sys.stderr)
    return pipeline.default_schema


def connector_schema(entry: ConnectorEntry) -> ConnectorSchema:
    """Build the source as a replay does, replay it, and describe every resource."""
    from dlt.common.schema.utils import get_root_table

    from connectors.cli import runner

    source = runner.build_source(entry, replay=True)
    with tempfile.TemporaryDirectory(prefix="connectors-schema-") as workdir:
        schema = replayed_schema(entry, source, workdir)
    tables = schema.tables
    by_resource: dict[str, list[Table]] = {}
    for name in schema.data_table_names():
        root = get_root_table(tables, name)
        by_resource.setdefault(str(root.get("resource") or root["name"]), []).append(
            _table(name, tables[name])
        )
    resources = [
        _resource(entry, name, resource, by_resource.get(name), schema.naming)
        for name, resource in source.selected_resources.items()
    ]
    cassette = f"cassettes/{entry.name}/{entry.replay.cassette}.yaml"
    return ConnectorSchema(entry.name, cassette, resources)


def _table(name: str, table: dict[str, Any]) -> Table:
    columns = [
        Column(
            name=column,
            data_type=hints.get("data_type"),
            nullable=bool(hints.get("nullable", True)),
            primary_key=bool(hints.get("primary_key")),
            merge_key=bool(hints.get("merge_key")),
        )
        for column, hints in table.get("columns", {}).items()
    ]
    return Table(name, table.get("parent"), columns)


def _resource(
    entry: ConnectorEntry, name: str, resource: Any, tables: list[Table] | None, naming: Any
) -> ResourceSchema:
    """`naming`: the dlt schema's naming convention (an API field's column name)."""
    from dlt.extract.exceptions import DataItemRequiredForDynamicTableHints

    from shared.incremental.cursors import declared_incremental
    from shared.incremental.deletions import learns_deletions

    try:
        hints: dict[str, Any] = dict(resource.compute_table_schema())
    except DataItemRequiredForDynamicTableHints:  # hints that depend on the data
        hints = {"name": name, "columns": {}}
    if not tables:  # nothing recorded: the columns the hints declare
        tables = [_table(str(hints.get("name") or name), hints)]
    own = tables[0].columns
    incremental = declared_incremental(resource)
    cursor = None
    if incremental is not None and incremental.cursor_path:
        path = str(incremental.cursor_path)
        # a nested field `a.b` lands in column `a__b`
        column = naming.make_path(*map(naming.normalize_identifier, path.split(".")))
        cursor = Cursor(path, column, incremental.initial_value)
    listed = {r.name: r for r in entry.resources}
    return ResourceSchema(
        name=name,
        parent=listed[name].parent if name in listed else None,
        write_disposition=str(hints.get("write_disposition") or resource.write_disposition),
        primary_key=[c.name for c in own if c.primary_key],
        merge_key=[c.name for c in own if c.merge_key],
        cursor=cursor,
        deletions=listed[name].deletions if name in listed else learns_deletions(resource),
        tables=tables,
    )


# -- output ----------------------------------------------------------------------------


def text_lines(described: ConnectorSchema) -> list[str]:
    """The schema for people: per resource, a summary line, then each table's columns."""
    count = sum(len(resource.tables) for resource in described.resources)
    resources = len(described.resources)
    lines = [
        f"{described.connector}: {resources} resource{'s' * (resources != 1)}, {count} "
        f"table{'s' * (count != 1)} (columns and types: dlt's schema after replaying "
        f"{described.columns_from})"
    ]
    for resource in described.resources:
        lines += ["", f"{resource.name}"]
        lines.append(f"  write:      {_write(resource)}")
        if resource.parent:
            lines.append(
                f"  parent:     {resource.parent} (requested once per {resource.parent} row)"
            )
        lines.append(f"  cursor:     {_cursor(resource.cursor)}")
        lines.append(f"  deletions:  {resource.deletions}: {DELETIONS.get(resource.deletions, '')}")
        for table in resource.tables:
            nested = f" (nested in {table.parent})" if table.parent else ""
            lines.append(f"  table {table.name}{nested}")
            lines += _columns(table.columns)
    return lines


def _write(resource: ResourceSchema) -> str:
    keys = []
    if resource.primary_key:
        keys.append(f"primary key {', '.join(resource.primary_key)}")
    if resource.merge_key:
        keys.append(f"merge key {', '.join(resource.merge_key)}")
    return resource.write_disposition + (f" on {'; '.join(keys)}" if keys else "")


def _cursor(cursor: Cursor | None) -> str:
    if cursor is None:
        return "none"
    where = cursor.field if cursor.column == cursor.field else f"{cursor.field} -> {cursor.column}"
    start = "the beginning" if cursor.initial_value is None else repr(cursor.initial_value)
    return f"{where}, the first sync from {start}"


def _columns(columns: list[Column]) -> list[str]:
    width = max((len(column.name) for column in columns), default=0)
    types = max((len(str(column.data_type)) for column in columns), default=0)
    lines = []
    for column in columns:
        notes = [
            note
            for note, present in (
                ("primary key", column.primary_key),
                ("merge key", column.merge_key),
                ("not null", not column.nullable),
            )
            if present
        ]
        line = f"    {column.name.ljust(width)}  {str(column.data_type).ljust(types)}  "
        lines.append((line + ", ".join(notes)).rstrip())
    return lines


def cmd_schema(args: argparse.Namespace) -> int:
    import sys

    from connectors.cli.explain import explained
    from connectors.declarative.entry import entry_for

    entry = entry_for(args.name)  # a catalog connector, or a spec path
    try:
        described = connector_schema(entry)
    except Exception as exc:
        print(f"error: {explained(exc, entry, args.traceback)}", file=sys.stderr)
        return FAILED
    if args.json:
        print(json.dumps(described.as_dict(), indent=2))
    else:
        print("\n".join(text_lines(described)))
    return 0


def add_parser(commands: Any) -> None:
    """Register `schema` on the CLI's subcommands."""
    parser = commands.add_parser(
        "schema", help="tables, columns, types, keys, cursors and deletions of every resource"
    )
    parser.add_argument("name")
    parser.add_argument("--json", action="store_true", help="print the schema as JSON")
    parser.set_defaults(handler=cmd_schema)
