"""`connectors verify NAME`: compare what is at the source with what `run` loaded.

Read-only on both sides. The source is read through the connector's own source (its
auth, retries, pacing and paging, at the page sizes the connector asks for: the largest
each API allows), from a fresh, throwaway state, so every incremental resource reads
from its initial value, i.e. in full; only ids and cursor values are kept. The
destination is the DuckDB file `run` loads by default (`<name>.duckdb`, dataset
`<name>_data`), opened read-only. Neither the destination nor the pipeline's state is
ever written.

Per table with a primary key (a resource's own table; dlt's nested tables are not
compared), it counts the records at the source and the live rows in the destination (a
row is live while its `_deleted_at` is NULL, or always without that column), and lists:

- missing: at the source, not live in the destination;
- deleted: live in the destination, no longer at the source;
- stale: in both, the destination's cursor value older than the source's.

Exit status: 0 when they agree, 1 on drift, 2 when it cannot tell: bad input (unknown
connector or resource, no such database or dataset), missing or rejected credentials,
a failed read. So 1 always means drift.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from connectors.cli.console import check_base_url, print_table
from shared.errors import ConnectorError

#: example ids shown per category and table
EXAMPLES = 5
#: exit status on drift; and when verify cannot tell (bad input, a failed read)
DRIFT = 1
CANNOT_TELL = 2
#: the column that marks a destination row deleted at the source (NULL: live)
DELETED_AT = "_deleted_at"


class VerifyUsageError(ConnectorError):
    """Input verify cannot work with (no such database or dataset, a relative
    `--base-url`): said in one line, exit status `CANNOT_TELL`."""


@dataclass(frozen=True)
class ComparedTable:
    """One table verify compares: the resource that loads it, its primary key columns and
    its incremental cursor (the API's field and the loaded column), if any."""

    resource: str
    table: str
    key: tuple[str, ...]
    cursor_path: str | None = None
    cursor_column: str | None = None


@dataclass
class TableDrift:
    """The comparison of one table: counts, and the keys in each category."""

    table: str
    source: int = 0
    destination: int = 0
    missing: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not (self.missing or self.deleted or self.stale)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "missing": len(self.missing),
            "deleted": len(self.deleted),
            "stale": len(self.stale),
            "examples": {
                "missing": self.missing[:EXAMPLES],
                "deleted": self.deleted[:EXAMPLES],
                "stale": self.stale[:EXAMPLES],
            },
        }


# -- what is compared ------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _snake(name: str) -> str:
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention().normalize_identifier(name)


def _loaded_column(cursor: str) -> str:
    """The column dlt loads an API field into: `updatedAt` -> `updated_at`, `a.b` -> `a__b`."""
    return "__".join(_snake(part) for part in cursor.split("."))


def compared_tables(source: Any) -> tuple[list[ComparedTable], list[str]]:
    """The selected resources' tables that have a primary key, and the names of those
    that have none (not compared)."""
    from dlt.extract.exceptions import DataItemRequiredForDynamicTableHints

    from shared.incremental.cursors import declared_incremental

    compared, skipped = [], []
    for name, resource in source.selected_resources.items():
        try:
            schema = resource.compute_table_schema()
        except DataItemRequiredForDynamicTableHints:
            skipped.append(name)
            continue
        key = tuple(
            _snake(column)
            for column, hints in (schema.get("columns") or {}).items()
            if hints.get("primary_key")
        )
        if not key:
            skipped.append(name)
            continue
        incremental = declared_incremental(resource)
        cursor = incremental.cursor_path if incremental is not None else None
        compared.append(
            ComparedTable(
                resource=name,
                table=_snake(schema["name"]),
                key=key,
                cursor_path=cursor,
                cursor_column=_loaded_column(cursor) if cursor else None,
            )
        )
    return compared, skipped


# -- the source ------------------------------------------------------------------------


def _key_text(values: Sequence[Any]) -> str:
    return "/".join("" if value is None else str(value) for value in values)


def _field(row: dict[str, Any], column: str) -> Any:
    """The value of loaded column `column` in an API record (`updatedAt` -> `updated_at`)."""
    if column in row:
        return row[column]
    for name, value in row.items():
        if _snake(name) == column:
            return value
    return None


def _cursor_value(row: dict[str, Any], compared: ComparedTable) -> Any:
    if compared.cursor_path is None:
        return None
    if compared.cursor_path in row:
        return row[compared.cursor_path]
    from dlt.common.jsonpath import find_values

    values = find_values(compared.cursor_path, row)
    if values:
        return values[0]
    return _field(row, compared.cursor_column or "")


def _rows(item: Any) -> Iterator[dict[str, Any]]:
    import pyarrow as pa

    if isinstance(item, pa.Table):
        yield from item.to_pylist()
    elif isinstance(item, list):
        yield from (row for row in item if isinstance(row, dict))
    elif isinstance(item, dict):
        yield item


def read_source(
    source: Any, tables: Sequence[ComparedTable]
) -> dict[str, dict[str, tuple[Any, Any]]]:
    """Per table: key -> (cursor value, comparable cursor) of every record at the source,
    read in full from a fresh state that is thrown away afterwards."""
    from dlt.extract.items import TableNameMeta

    from shared._dlt_compat import iterate_with_origin
    from shared.arrow.tables import rows_through_dlt_normalizer

    by_resource = {compared.resource: compared for compared in tables}
    found: dict[str, dict[str, tuple[Any, Any]]] = {compared.table: {} for compared in tables}
    # rows, not dlt's tables split in Arrow: only the resources' own records are compared
    rows_through_dlt_normalizer(source)
    for resource, item, meta in iterate_with_origin(source, state={}):
        compared = by_resource.get(resource)
        if compared is None:
            continue
        if isinstance(meta, TableNameMeta) and _snake(meta.table_name) != compared.table:
            continue
        records = found[compared.table]
        for row in _rows(item):
            if _field(row, DELETED_AT) is not None:
                # a deletion the source reports (a feed's tombstone): not a record there
                continue
            key = _key_text([_field(row, column) for column in compared.key])
            value = _cursor_value(row, compared)
            comparable = _comparable(value)
            known = records.get(key)
            # a record read twice (keyset paging re-reads page boundaries): the newest
            if known is None or _older(known[1], comparable):
                records[key] = (value, comparable)
    return found


# -- the destination -------------------------------------------------------------------


def datasets(connection: Any) -> list[str]:
    rows = connection.execute("SELECT schema_name FROM information_schema.schemata").fetchall()
    return sorted({row[0] for row in rows})


def read_destination(
    connection: Any, dataset: str, compared: ComparedTable
) -> dict[str, tuple[Any, Any]]:
    """key -> (cursor value, comparable cursor) of the table's live rows; empty when the
    table was never loaded."""
    columns = {
        row[0]
        for row in connection.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [dataset, compared.table],
        ).fetchall()
    }
    if not columns or not set(compared.key) <= columns:
        return {}
    selected = [_quoted(column) for column in compared.key]
    cursor = compared.cursor_column if compared.cursor_column in columns else None
    selected.append(_quoted(cursor) if cursor else "NULL")
    where = f" WHERE {_quoted(DELETED_AT)} IS NULL" if DELETED_AT in columns else ""
    sql = f"SELECT {', '.join(selected)} FROM {_quoted(dataset)}.{_quoted(compared.table)}{where}"
    live: dict[str, tuple[Any, Any]] = {}
    for row in connection.execute(sql).fetchall():
        live[_key_text(row[:-1])] = (row[-1], _comparable(row[-1]))
    return live


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# -- comparing -------------------------------------------------------------------------


def _comparable(value: Any) -> Any:
    """A cursor value made comparable across the API's text and DuckDB's types: date-times
    as aware UTC datetimes, numbers as floats; None when absent."""
    from shared.timestamps import to_datetime

    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return to_datetime(value)
        except Exception:  # not a date-time: compared as text
            return value
    return str(value)


def _older(earlier: Any, later: Any) -> bool:
    """Whether `earlier` is strictly older than `later` (False when either is unknown or
    they cannot be compared)."""
    if earlier is None or later is None:
        return False
    try:
        return bool(earlier < later)
    except TypeError:
        return False


def compare(
    table: str, at_source: dict[str, tuple[Any, Any]], live: dict[str, tuple[Any, Any]]
) -> TableDrift:
    drift = TableDrift(table, source=len(at_source), destination=len(live))
    drift.missing = sorted((key for key in at_source if key not in live), key=_natural)
    drift.deleted = sorted((key for key in live if key not in at_source), key=_natural)
    drift.stale = sorted(
        (
            key
            for key, (_, loaded) in live.items()
            if key in at_source and _older(loaded, at_source[key][1])
        ),
        key=_natural,
    )
    return drift


def _natural(key: str) -> tuple[Any, ...]:
    """Numeric ids in numeric order (`9` before `10`), others as text."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in key.split("/"))


# -- the command -----------------------------------------------------------------------


@dataclass
class Verification:
    connector: str
    database: Path
    dataset: str
    tables: list[TableDrift]
    not_compared: list[str]
    seconds: float

    @property
    def agrees(self) -> bool:
        return all(table.agrees for table in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "database": str(self.database),
            "dataset": self.dataset,
            "agrees": self.agrees,
            "tables": {table.table: table.as_dict() for table in self.tables},
            "not_compared": self.not_compared,
            "seconds": round(self.seconds, 1),
        }


def verify(entry: Any, source: Any, database: Path, dataset: str) -> Verification:
    """Compare `source` (the connector's dlt source, with the resources to compare
    selected) with `dataset` in the DuckDB file `database` (both checked to exist by the
    caller). Raises what reading the source raises."""
    import duckdb

    started = time.monotonic()
    tables, not_compared = compared_tables(source)
    with duckdb.connect(str(database), read_only=True) as connection:
        live = {
            compared.table: read_destination(connection, dataset, compared) for compared in tables
        }
    at_source = read_source(source, tables)
    drifts = [compare(c.table, at_source[c.table], live[c.table]) for c in tables]
    return Verification(
        entry.name, database, dataset, drifts, not_compared, time.monotonic() - started
    )


def check_destination(entry: Any, database: str | None, dataset: str | None) -> tuple[Path, str]:
    """The DuckDB file and dataset to compare with, or a `VerifyUsageError` in one line
    when either does not exist or cannot be read (verify never creates them)."""
    import duckdb

    from connectors.cli import runner

    path = runner.database_path(entry, False, database)
    dataset = dataset or f"{entry.name}_data"
    if not path.is_file():
        hint = f"run `python -m connectors run {entry.name}` first" + (
            "" if database else ", or give --database"
        )
        raise VerifyUsageError(f"no database at {path}; {hint}")
    try:
        with duckdb.connect(str(path), read_only=True) as connection:
            present = datasets(connection)
    except duckdb.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VerifyUsageError(f"cannot open {path} read-only: {reason}") from exc
    if dataset not in present:
        ours = [
            name for name in present if name not in ("information_schema", "main", "pg_catalog")
        ]
        raise VerifyUsageError(
            f"{path} has no dataset `{dataset}`; it has: {', '.join(ours) or 'none'} "
            "(choose one with --dataset)"
        )
    return path, dataset


def cmd_verify(args: argparse.Namespace) -> int:
    from connectors.cli import runner
    from connectors.cli.explain import explain
    from connectors.declarative.entry import entry_for
    from shared.tooling.catalog import UnknownConnectorError

    entry = entry_for(args.name)  # a catalog connector, or a spec path
    resources = [name.strip() for name in (args.resources or "").split(",") if name.strip()]
    try:
        check_base_url(args.base_url, VerifyUsageError)
        # unknown resources and missing credentials are said before the destination
        source = runner.build_source(entry, resources=resources, base_url=args.base_url)
        database, dataset = check_destination(entry, args.database, args.dataset)
        result = verify(entry, source, database, dataset)
    except VerifyUsageError as exc:
        if args.traceback:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return CANNOT_TELL
    except Exception as exc:
        if runner.interrupted(exc):
            raise KeyboardInterrupt from exc
        if args.traceback or isinstance(exc, UnknownConnectorError):
            raise
        print(f"error: {explain(exc, entry)}", file=sys.stderr)
        return CANNOT_TELL
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print_report(result)
    return 0 if result.agrees else DRIFT


def print_report(result: Verification) -> None:
    """The comparison as a table, then a few example ids per kind of drift."""
    print(
        f"{result.connector}: source vs {result.database}, dataset {result.dataset} "
        f"({result.seconds:.1f} s)"
    )
    rows = [
        (t.table, t.source, t.destination, len(t.missing), len(t.deleted), len(t.stale))
        for t in result.tables
    ]
    print_table(rows, ("TABLE", "SOURCE", "DESTINATION", "MISSING", "DELETED", "STALE"))
    if result.not_compared:
        print(f"not compared (no primary key): {', '.join(result.not_compared)}")
    for line in drift_lines(result.tables):
        print(line)
    if result.agrees:
        print(f"{result.connector}: the destination agrees with the source")
    else:
        drifting = sum(not table.agrees for table in result.tables)
        print(f"{result.connector}: drift in {drifting} table{'s' * (drifting != 1)}")


KINDS = (
    ("missing", "missing (at the source, not in the destination)"),
    ("deleted", "deleted at the source but live in the destination"),
    ("stale", "stale (the destination's cursor is older than the source's)"),
)


def drift_lines(tables: Iterable[TableDrift]) -> Iterator[str]:
    for table in tables:
        for attribute, label in KINDS:
            keys = getattr(table, attribute)
            if keys:
                shown = ", ".join(keys[:EXAMPLES]) + (", ..." if len(keys) > EXAMPLES else "")
                yield f"  {table.table}: {len(keys)} {label}: {shown}"


def add_parser(commands: Any) -> None:
    """Register `verify` on the CLI's subcommands."""
    parser = commands.add_parser(
        "verify", help="compare the source with the destination, read-only (exit 1 on drift)"
    )
    parser.add_argument("name")
    parser.add_argument(
        "--database",
        metavar="PATH",
        help="the DuckDB file `run` loaded (default: <name>.duckdb in the current folder)",
    )
    parser.add_argument("--dataset", help="the dataset (schema) to compare (default: <name>_data)")
    parser.add_argument("--resources", help="comma-separated resources to compare (default: all)")
    parser.add_argument("--base-url", help="the API's base URL (default: dlt config, then catalog)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.set_defaults(handler=cmd_verify)
