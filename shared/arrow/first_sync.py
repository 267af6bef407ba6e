"""A merge table's first sync loads without dlt's staging merge, where the result is the same.

dlt loads a `merge` table (delete-insert, the catalog's way) in two steps: its files are
copied into a staging dataset, then SQL deletes the destination's rows with those keys,
keeps one copy of each key (the newest by the `dedup_sort` cursor) and inserts them, child
tables too. Into a table that does not exist yet, that is the same as appending the rows,
as long as no key came twice; the copy and the merge took 38% (crm) and 78%
(project_tracker) of what the whole load may take in `make bench`.

So, once a sync's extract has finished, each table that a resource marked here loads
(`skip_merge_on_first_sync`) is appended instead of merged when all of these hold:

- it merges by delete-insert on a primary key (no other strategy);
- it is new: dlt's schema did not know it before this sync, and the destination has no
  such table (or this sync drops or truncates it first: a full refresh, dlt's `refresh`);
- every row reached it as an Arrow table (parquet files, as the catalog's fast paths
  write them) and no key is in two of them: the keys are read back from those files.

Anything else (a key seen twice in the sync, rows dlt's normalizer writes, a destination
that cannot be asked, any error while deciding) leaves dlt's merge, as before.

The decision is made in one place, after dlt's extract of a source, and noted in the load
package's state; when that package loads, the noted root tables are `append` in the schema
the load step reads (a schema version of its own, which the destination stores as it
stores each), without the `dedup_sort` and `hard_delete` column hints only a merge reads
(both hooks: `shared._dlt_compat.after_extract_and_before_load`). The pipeline's schema
is never changed: its tables stay `merge`, and everything else is as the merge path makes
it: child tables carry `_dlt_root_id`, so the next sync merges into them as into any
merged table. A package loaded without the hook (another process, dlt's own CLI) merges.
`merge_every_sync(source)` turns it off (dlt's merge every time, e.g. to compare).

The same hook hands the memory Arrow's allocator kept from the extract back to the system
before every load, first sync or not: the load's DuckDB allocates its own.
"""

from __future__ import annotations

import logging
import os
from array import array
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import dlt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dlt.common.storages.load_package import ParsedLoadJobFileName, load_package_state
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.extract.items_transform import ItemTransform
from dlt.extract.resource import DltResource

from shared._dlt_compat import after_extract_and_before_load, pipe_steps, remove_steps_of

logger = logging.getLogger(__name__)

#: where a load package's state names the tables it appends
PACKAGE_STATE_KEY = "first_sync_appends"
#: rows of a parquet file read at a time when its keys are checked
KEY_BATCH_ROWS = 65_536
#: column hints that only a merge reads (the next sync's resource hints bring them back)
MERGE_ONLY_HINTS = ("dedup_sort", "hard_delete")


class AppendFirstSync(ItemTransform[Any, Any]):
    """Pipe step marking a resource whose new merge table may load by appending (it
    passes items through unchanged)."""

    placement_affinity: ClassVar[float] = 0.5

    def __init__(self) -> None:
        super().__init__(lambda item: item)

    def __call__(self, item: Any, meta: Any = None) -> Any:
        return item


def skip_merge_on_first_sync(resources: Iterable[DltResource]) -> None:
    """Let each of `resources` load its table's first sync without dlt's staging merge,
    where the result is the same (see the module), in place; on a dlt without the hooks
    it needs, they keep dlt's merge (one WARNING says so)."""
    if not after_extract_and_before_load(_after_extract, _before_load):
        return
    for resource in resources:
        if not any(isinstance(step, AppendFirstSync) for step in pipe_steps(resource)):
            resource.add_step(AppendFirstSync())


def merge_every_sync(source: Any) -> Any:
    """Load `source` (a dlt source or resource) through dlt's merge on every sync, the first
    too: slower; the escape hatch (and what `tests/shared/arrow/test_first_sync.py`
    compares with).

    Returns:
        `source`, changed in place.
    """
    return remove_steps_of(source, AppendFirstSync)


def appendable_tables(source: Any, package_files: Iterable[str]) -> list[str]:
    """The root tables of `source`'s marked resources that this sync may append (see the
    module). `package_files`: the full paths of the files the extract wrote into the load
    package."""
    schema = source.schema
    marked = {
        resource.name
        for resource in source.resources.selected.values()
        if any(isinstance(step, AppendFirstSync) for step in pipe_steps(resource))
    }
    if not marked:
        return []
    files: dict[str, list[tuple[str, str]]] = {}
    for path in package_files:
        parsed = ParsedLoadJobFileName.parse(path)
        files.setdefault(parsed.table_name, []).append((path, parsed.file_format))
    appended = []
    for name, table in schema.tables.items():
        if table.get("parent") or table.get("resource") not in marked:
            continue
        if table.get("write_disposition") != "merge" or name not in files:
            continue
        if table.get("x-merge-strategy", "delete-insert") != "delete-insert":
            continue
        columns = table.get("columns", {})
        keys = [c for c, hints in columns.items() if hints.get("primary_key")]
        if not keys or not _is_new(name, schema.name):
            continue
        written = files[name]
        if any(file_format != "parquet" for _, file_format in written):
            continue  # rows through dlt's normalizer: their keys are not read here
        # a row marked for a hard delete: dlt's merge would not insert it
        deleting = [c for c, hints in columns.items() if hints.get("hard_delete")]
        if not _unique_and_kept([path for path, _ in written], keys, deleting):
            continue  # a key came twice: dlt's merge keeps the newest copy
        appended.append(name)
    return appended


def append_in_load(schema: Any, tables: Iterable[str]) -> list[str]:
    """`tables` set to `append` in `schema` (a load package's, as its load step reads it),
    without the column hints only a merge reads; those it has that merge by delete-insert."""
    appended = []
    for name in tables:
        table = schema.tables.get(name)
        if table is None or table.get("write_disposition") != "merge":
            continue
        if table.get("x-merge-strategy", "delete-insert") != "delete-insert":
            continue
        table["write_disposition"] = "append"
        for hints in table.get("columns", {}).values():
            for hint in MERGE_ONLY_HINTS:  # dlt warns of each on an appended table
                hints.pop(hint, None)
        appended.append(name)
    return appended


def _unique_and_kept(paths: list[str], keys: list[str], deleting: list[str]) -> bool:
    """Whether no value of `keys` is in two rows of the parquet files `paths`, and every
    column of `deleting` (dlt's `hard_delete`) is null where there is one.

    The files are read a batch at a time and each key kept as a 64-bit hash (8 bytes a
    row, sorted once at the end): a hash shared by two keys only keeps dlt's merge."""
    hashes = array("q")
    for path in paths:
        parquet = pq.ParquetFile(path)
        marks = [c for c in deleting if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=KEY_BATCH_ROWS, columns=keys + marks):
            if any(batch.column(c).null_count < batch.num_rows for c in marks):
                return False
            values = [batch.column(k).to_pylist() for k in keys]
            hashes.extend(map(hash, values[0] if len(keys) == 1 else zip(*values, strict=True)))
    if len(hashes) < 2:
        return True
    hashed = pa.Array.from_buffers(pa.int64(), len(hashes), [None, pa.py_buffer(hashes)])
    ordered = pc.take(hashed, pc.array_sort_indices(hashed))
    return not pc.any(pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))).as_py()


def _is_new(table: str, schema_name: str) -> bool:
    """Whether `table` holds no rows when this sync loads: this sync drops or truncates
    it first, or neither dlt's schema nor the destination knows it."""
    state = load_package_state()["state"]
    cleared = [*(state.get("dropped_tables") or ()), *(state.get("truncated_tables") or ())]
    if table in {str(cleared_table.get("name")) for cleared_table in cleared}:
        return True
    pipeline = dlt.current.pipeline()
    if schema_name in pipeline.schema_names:  # as it was before this sync's extract
        known = pipeline.schemas[schema_name].tables.get(table) or {}
        if any(hints.get("data_type") for hints in known.get("columns", {}).values()):
            return False
    return not _in_destination(pipeline, table, schema_name)


def _in_destination(pipeline: Any, table: str, schema_name: str) -> bool:
    """Whether the destination has `table` (True when it cannot tell). A DuckDB file that
    is not there yet has no table: no connection is opened (DuckDB's takes about 35 MB)."""
    try:
        database = getattr(pipeline.destination_client().config.credentials, "database", None)
        file = database if pipeline.destination.destination_name == "duckdb" else None
        if isinstance(file, str) and file != ":memory:" and not os.path.exists(file):
            return False
        known = schema_name if schema_name in pipeline.schema_names else None
        with pipeline.sql_client(known) as client:
            if not client.has_dataset():
                return False
            try:
                client.execute_sql(
                    f"SELECT 1 FROM {client.make_qualified_table_name(table)} LIMIT 1"
                )
            except DatabaseUndefinedRelation:
                return False
            return True
    except Exception as why:  # no SQL client, or it cannot connect: dlt's merge
        logger.debug("first sync: cannot tell whether %s exists (%s)", table, why)
        return True


def _after_extract(source: Any, files: list[str]) -> None:
    """Note the tables this sync appends in its load package's state."""
    try:
        tables = appendable_tables(source, files)
    except Exception as why:  # deciding failed: every table merges, as dlt does
        logger.warning("first sync: every table merges this sync (%s)", why)
        return
    if tables:
        # dlt saves the package's state (a dict) with the package, keys of ours too
        state: dict[str, Any] = load_package_state()["state"]  # type: ignore[assignment]
        state[PACKAGE_STATE_KEY] = [*(state.get(PACKAGE_STATE_KEY) or ()), *tables]


def _before_load(schema: Any, package_state: Mapping[str, Any]) -> bool:
    """Give the extract's spare Arrow memory back to the system, then append the tables
    the package's state notes, in `schema` (the load step's)."""
    # Arrow's allocator keeps what the extract's tables freed, for reuse; the load (DuckDB
    # reading the parquet files) allocates its own: given back, a sync's peak is about
    # 50 MB lower (crm, 300,000 parties: 423 MB, 376 MB)
    pa.default_memory_pool().release_unused()
    appended = append_in_load(schema, package_state.get(PACKAGE_STATE_KEY) or ())
    if appended:
        logger.info("first sync of %s: appended, without the staging merge", appended)
    return bool(appended)


__all__ = [
    "AppendFirstSync",
    "append_in_load",
    "appendable_tables",
    "merge_every_sync",
    "skip_merge_on_first_sync",
]
