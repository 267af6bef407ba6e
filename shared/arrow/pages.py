"""Pages of JSON records as Arrow tables: the fast path for high-volume resources.

dlt normalizes a page of dicts row by row in Python: it flattens nested objects, turns
nested arrays into child tables and infers each value's type. On a large sync that is
most of the time and memory. A resource that yields `pyarrow.Table`s skips it: dlt
writes them to parquet as they are and DuckDB loads the files directly.

`yield_arrow_pages(resource)` adds that to a resource built by dlt's `rest_api`:

- its pages are read ahead in a thread (requests and JSON parsing overlap with the
  conversion) and gathered into batches of about 1,000 rows, because dlt's work per
  item costs about as much as converting a 100-row page;
- each batch becomes one Arrow table before dlt's incremental step, which then works
  on whole columns;
- after the incremental step, ISO 8601 instants become timestamps.

What lands differently from dlt's row-by-row path, by design:

- nested arrays and objects stay in their row, as `json` columns (DuckDB `JSON`), instead
  of becoming child tables (`parties__email_addresses`) or flattened `a__b` columns;
  keys inside them keep the API's spelling;
- ISO 8601 date-times with a zone (`2024-03-19T18:25:25Z`; `shared.timestamps` names the
  forms) become UTC timestamp columns,
  as dlt's own `iso_timestamp` detection does for rows. The conversion runs after the
  incremental step, so cursor state holds the API's strings on either path.

Child resources get the rows of an Arrow page through `shared.arrow.tables.rows_of`.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Collection, Iterable, Iterator
from functools import lru_cache
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.extract.exceptions import DataItemRequiredForDynamicTableHints
from dlt.extract.items_transform import ItemTransform
from dlt.extract.resource import DltResource

from shared._dlt_compat import thread_name_sharing_dlt_context
from shared.timestamps import iso_kind, truncated_fractions

UTC_MICROSECONDS = pa.timestamp("us", tz="UTC")
#: pages requested ahead of the one being converted; 0 reads them in the consumer's thread
READ_AHEAD_PAGES = 20
#: how long a consumer that stops early waits for the reader to close the pages
READER_JOIN_SECONDS = 1.0


def records_to_table(rows: Iterable[dict[str, Any]], not_null: Collection[str] = ()) -> pa.Table:
    """One Arrow table from JSON records.

    Columns are the union of the records' keys in order of first appearance (unlike
    `pa.Table.from_pylist`, which only looks at the first record). Arrays and objects
    become Arrow lists and structs; a column Arrow cannot type (mixed scalars, empty
    objects parquet cannot store) holds each value as JSON text.

    Args:
        rows: the records of one page.
        not_null: columns declared non-nullable (primary keys), as dlt's hints declare
            them; a record key matches by its own spelling or dlt's snake_case of it.
    """
    rows = list(rows)
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    arrays = [_to_array([row.get(name) for row in rows]) for name in names]
    fields = [
        pa.field(name, array.type, nullable=not (name in not_null or _snake(name) in not_null))
        for name, array in zip(names, arrays, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def parse_iso_datetimes(table: pa.Table) -> pa.Table:
    """Turn text columns holding ISO 8601 instants into UTC timestamps.

    A column is converted when its first value is an instant (`shared.timestamps`: a
    date and time with a zone) and every value casts (Arrow reads exactly the instants of
    that grammar: one cast checks the whole column); otherwise it stays text. Naive
    date-times and dates stay text: once stored as UTC they would be ambiguous.
    """
    for index, field in enumerate(table.schema):
        if not pa.types.is_string(field.type):
            continue
        column = table.column(index)
        valid = column.drop_null()
        if not len(valid) or iso_kind(valid[0].as_py()) != "instant":
            continue
        converted = cast_iso(column, UTC_MICROSECONDS)
        if converted is not None:
            table = table.set_column(index, field.with_type(UTC_MICROSECONDS), converted)
    return table


def cast_iso(strings: Any, to: pa.DataType) -> Any:
    """ISO 8601 strings (of one kind) cast to the timestamp type `to`, fractional seconds
    past microseconds truncated as dlt's parser does; None when a value does not cast (a
    shape with no such day or hour, `2024-02-30`)."""
    try:
        return pc.cast(strings, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:  # only after a failure: fractions past microseconds are rare
        return pc.cast(truncated_fractions(strings), to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


class RecordsToArrow(ItemTransform[Any, dict[str, Any]]):
    """Pipe step: a page (or batch of pages) of dicts becomes one Arrow table.

    It sits after the resource's row maps and before its incremental step (which then
    works on whole columns instead of row by row). On a resource that pages by itself
    (not a transformer), binding it wraps the resource's generator: pages are read
    ahead and gathered into batches of about `batch_rows` rows, because dlt's work per
    item (schema hints, incremental, writer) costs about as much as converting a
    100-row page, and is paid once per batch this way.
    """

    placement_affinity: ClassVar[float] = 0.5

    def __init__(self, not_null: Collection[str] = (), batch_rows: int = 1000) -> None:
        super().__init__(lambda item: item)
        self.not_null = frozenset(not_null)
        self.batch_rows = batch_rows

    def bind(self, pipe: Any) -> RecordsToArrow:
        if self.batch_rows > 1 and isinstance(pipe.gen, Iterator):
            pipe.replace_gen(_batched_pages(pipe.gen, self.batch_rows))
        return self

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if isinstance(item, pa.Table):
            return item
        rows = item if isinstance(item, list) else [item]
        if not rows:
            # an empty item with meta is a signal to a later step (the end of a listing,
            # `shared.incremental.deletions`): it passes on
            return None if meta is None else item
        return records_to_table(rows, self.not_null)


class IsoDatetimesToTimestamps(ItemTransform[Any, dict[str, Any]]):
    """Pipe step: `parse_iso_datetimes` on each Arrow page, after the incremental step."""

    placement_affinity: ClassVar[float] = 1.05

    def __init__(self) -> None:
        super().__init__(lambda item: item)

    def __call__(self, item: Any, meta: Any = None) -> Any:
        return parse_iso_datetimes(item) if isinstance(item, pa.Table) else item


def yield_arrow_pages(resource: DltResource) -> DltResource:
    """Make `resource` yield Arrow tables instead of rows (see the module's notes).

    Columns the resource's hints declare non-nullable (its primary key) are declared so
    in the tables too, so dlt finds no conflict between the hints and the data.
    """
    try:
        columns = resource.compute_table_schema().get("columns", {})
    except DataItemRequiredForDynamicTableHints:  # hints that depend on the data: none known
        columns = {}
    not_null = [name for name, column in columns.items() if column.get("nullable") is False]
    resource.add_step(RecordsToArrow(not_null=not_null))
    resource.add_step(IsoDatetimesToTimestamps())
    return resource


@lru_cache(maxsize=4096)
def _snake(name: str) -> str:
    return _NAMING.normalize_identifier(name)


_NAMING = NamingConvention()


def _batched_pages(pages: Iterator[Any], batch_rows: int) -> Iterator[Any]:
    """Concatenate consecutive pages (lists) until `batch_rows`; anything else (a single
    item, an item with meta) passes through in order."""
    batch: list[Any] = []
    for page in _read_ahead(pages) if READ_AHEAD_PAGES else pages:
        if not isinstance(page, list):
            if batch:
                yield batch
                batch = []
            yield page
            continue
        batch.extend(page)
        if len(batch) >= batch_rows:
            yield batch
            batch = []
    if batch:
        yield batch


_DONE = object()


def _read_ahead(items: Iterator[Any], depth: int = READ_AHEAD_PAGES) -> Iterator[Any]:
    """Iterate `items` in a thread, up to `depth` items ahead of the consumer.

    The pages' requests and JSON parsing then overlap with the conversion and dlt's
    work on earlier pages. The thread starts on the first `next()` (after dlt has bound
    the resource's incremental), re-raises its errors here, and closes `items` itself
    when the consumer stops early (waited for up to `READER_JOIN_SECONDS`).
    """
    ahead: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: Any) -> bool:
        while not stop.is_set():
            try:
                ahead.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    break
            else:
                put((_DONE, None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            put((_DONE, error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(
        target=produce, name=thread_name_sharing_dlt_context("arrow-pages-read-ahead"), daemon=True
    )
    reader.start()
    try:
        while True:
            item, error = ahead.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        # the reader stops at its next page; one asleep in the rate limiter's wait (a
        # Ctrl-C, a failed sync) is a daemon and is not waited for
        reader.join(timeout=READER_JOIN_SECONDS)


def _to_array(values: list[Any]) -> pa.Array:
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return _as_json_text(values)
    if _holds_empty_struct(array.type):
        return _as_json_text(values)
    return array


def _as_json_text(values: list[Any]) -> pa.Array:
    return pa.array(
        [None if value is None else json.dumps(value) for value in values], type=pa.string()
    )


def _holds_empty_struct(data_type: pa.DataType) -> bool:
    if pa.types.is_struct(data_type):
        return data_type.num_fields == 0 or any(
            _holds_empty_struct(data_type.field(i).type) for i in range(data_type.num_fields)
        )
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        return _holds_empty_struct(data_type.value_type)
    return False
