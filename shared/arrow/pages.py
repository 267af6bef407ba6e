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
  each holds the API's JSON text of the value, keys as the API spells and orders them;
- ISO 8601 date-times with a zone (`2024-03-19T18:25:25Z`; `shared.timestamps` names the
  forms) become UTC timestamp columns,
  as dlt's own `iso_timestamp` detection does for rows. The conversion runs after the
  incremental step, so cursor state holds the API's strings on either path.

Every batch of a table has one Arrow schema (`OneSchemaPerTable`), whatever its pages
hold: dlt concatenates a table's batches as they are and fails on batches whose schemas
differ. A column keeps the type it first had a value in; a batch without a value in it
holds nulls of that type; a nested value is JSON text, whose type no page can change (an
Arrow list or struct would take the type of the values one batch holds: a list of nulls,
a field null in every object). A batch whose values do not fit a column's type (an int
column, later a fraction) fails the sync in one line naming the column.

Child resources get the rows of an Arrow page through `shared.arrow.tables.rows_of`.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Collection, Iterable, Iterator
from contextlib import suppress
from functools import lru_cache
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.json import json as dlt_json
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.extract.exceptions import DataItemRequiredForDynamicTableHints
from dlt.extract.hints import HintsMeta, make_hints
from dlt.extract.items import DataItemWithMeta
from dlt.extract.items_transform import ItemTransform, LimitItem
from dlt.extract.resource import DltResource

from shared._dlt_compat import thread_name_sharing_dlt_context
from shared.collector import fewer_collections
from shared.errors import ConnectorError
from shared.timestamps import iso_kind, truncated_fractions

UTC_MICROSECONDS = pa.timestamp("us", tz="UTC")
#: pages requested ahead of the one being converted; 0 reads them in the consumer's thread
READ_AHEAD_PAGES = 20
#: how long a consumer that stops early waits for the reader to close the pages
READER_JOIN_SECONDS = 1.0
#: the metadata of a column holding nested values as JSON text (dlt type `json`)
JSON_TEXT = {b"dlt_connector_catalog.json": b"1"}


def records_to_table(rows: Iterable[dict[str, Any]], not_null: Collection[str] = ()) -> pa.Table:
    """One Arrow table from JSON records.

    Columns are the union of the records' keys in order of first appearance (unlike
    `pa.Table.from_pylist`, which only looks at the first record). A column holding
    arrays or objects holds each value as JSON text, marked `JSON_TEXT` (a `json`
    column); one Arrow cannot type (mixed scalars) holds each value as JSON text too.

    Args:
        rows: the records of one page.
        not_null: columns declared non-nullable (primary keys), as dlt's hints declare
            them; a record key matches by its own spelling or dlt's snake_case of it.
    """
    rows = list(rows)
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = [_to_array([row.get(name) for row in rows]) for name in names]
    fields = [
        pa.field(
            name,
            array.type,
            nullable=not (name in not_null or _snake(name) in not_null),
            metadata=JSON_TEXT if nested else None,
        )
        for name, (array, nested) in zip(names, columns, strict=True)
    ]
    return pa.Table.from_arrays([array for array, _ in columns], schema=pa.schema(fields))


def parse_iso_datetimes(table: pa.Table) -> pa.Table:
    """Turn text columns holding ISO 8601 instants into UTC timestamps.

    A column is converted when its first value is an instant (`shared.timestamps`: a
    date and time with a zone) and every value casts (Arrow reads exactly the instants of
    that grammar: one cast checks the whole column); otherwise it stays text. Naive
    date-times and dates stay text: once stored as UTC they would be ambiguous.
    """
    for index, field in enumerate(table.schema):
        column = table.column(index)
        if pa.types.is_string(field.type) and column.null_count < len(column):
            converted = _instants_as_timestamps(column)
            if converted is not column:
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
        # `add_limit(n)` counts the items the pipe yields: batched, one item would be up to
        # `batch_rows` rows of pages requested ahead; limited, pages pass one by one
        limited = any(isinstance(step, LimitItem) for step in pipe.steps)
        if self.batch_rows > 1 and isinstance(pipe.gen, Iterator) and not limited:
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


class MixedTypesError(ConnectorError):
    """A batch of a table's pages holds values that do not fit a column's type."""


class JsonColumnsMeta(HintsMeta):
    """The meta of the batch JSON-text columns first appear in: their `json` hint, which
    dlt merges into the hints of the resource it extracts. The resource's children still
    get the batch's rows (`shared.arrow.tables.rows_of`)."""

    def __init__(self, columns: Iterable[str]) -> None:
        hints = make_hints(columns=[{"name": name, "data_type": "json"} for name in columns])
        super().__init__(hints, False)


def rows_of_batch(table: pa.Table) -> list[dict[str, Any]]:
    """The rows of a batch of this path, nested values as the API sent them (decoded from
    their JSON text), for the resource's children."""
    rows = table.to_pylist()
    nested = [field.name for field in table.schema if field.metadata == JSON_TEXT]
    for row in rows:
        for name in nested:
            if row[name] is not None:
                row[name] = json.loads(row[name])
    return rows


class OneSchemaPerTable(ItemTransform[Any, dict[str, Any]]):
    """Pipe step, after the incremental step: each Arrow batch in the one schema of its
    table (see the module), ISO 8601 instants as timestamps (`parse_iso_datetimes`).

    A column with no value yet is left out (dlt adds no column for it); once it has had
    one, every later batch holds it, nulls where it has no value. A JSON-text column's
    `json` type reaches the resource's hints with the batch it first appears in.
    """

    placement_affinity: ClassVar[float] = 1.05

    def __init__(self, resource: str) -> None:
        super().__init__(lambda item: item)
        self.resource = resource
        self.fields: dict[str, pa.Field] = {}
        self.json: set[str] = set()
        self.unhinted: list[str] = []  # json columns whose hint is not yet merged

    def bind(self, pipe: Any) -> OneSchemaPerTable:
        self.fields = {}
        self.json = set()
        self.unhinted = []
        return self

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if not isinstance(item, pa.Table):
            return item
        table = self.conform(item)
        if self.unhinted and meta is None:
            # dlt merges hints an item carries into the resource it extracts
            _OWN_JSON_HINTS.quiet(self.resource)
            meta = JsonColumnsMeta(self.unhinted)
            self.unhinted = []
            return DataItemWithMeta(meta, table)
        return table

    def conform(self, table: pa.Table) -> pa.Table:
        """`table` in the schema of the batches before it, widened by its new columns."""
        columns: dict[str, Any] = {}
        column: Any
        for field, column in zip(table.schema, table.columns, strict=True):
            if column.null_count == len(column):
                continue  # no value here: its known type's nulls, or no column yet
            known = self.fields.get(field.name)
            if known is None:
                column = _instants_as_timestamps(column)
                is_json = field.metadata == JSON_TEXT
                self.fields[field.name] = pa.field(
                    field.name, column.type, field.nullable, metadata=field.metadata
                )
                if is_json:
                    self.json.add(field.name)
                    self.unhinted.append(field.name)
            elif field.name in self.json and field.metadata != JSON_TEXT:
                column = _as_json_text(column.to_pylist())  # scalars in a json column
            elif column.type != known.type:
                column = self._cast(column, known)
            columns[field.name] = column
        arrays = [
            columns[name] if name in columns else pa.nulls(len(table), field.type)
            for name, field in self.fields.items()
        ]
        return pa.Table.from_arrays(arrays, schema=pa.schema(list(self.fields.values())))

    def _cast(self, column: Any, known: pa.Field) -> Any:
        converted = None
        if pa.types.is_timestamp(known.type) and pa.types.is_string(column.type):
            converted = cast_iso(column, known.type)
        elif not pa.types.is_string(known.type):  # text stays as the API wrote it
            with suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                converted = pc.cast(column, known.type)  # safe: an int column takes no 1.5
        if converted is None:
            raise MixedTypesError(
                f"resource `{self.resource}`: field `{known.name}` holds {column.type} "
                f"values where earlier pages held {known.type}; load it without arrow_pages"
            )
        return converted


class _OwnJsonHints(logging.Filter):
    """Drops dlt's warning, repeated for every Arrow item, that a resource's hints differ
    from its Arrow types ("dlt schema hints were kept"), for resources of this path: the
    `json` hint on a JSON-text column is the one such difference, and is meant (dlt types
    Arrow text as `text`, only nested Arrow types as `json`). Other resources keep it."""

    def __init__(self) -> None:
        super().__init__()
        self.resources: set[str] = set()

    def quiet(self, resource: str) -> None:
        """Drop the warning for `resource` from now on (the filter goes on dlt's logger
        with the first such resource, not on import)."""
        if not self.resources:
            logging.getLogger("dlt").addFilter(self)
        self.resources.add(resource)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or record.funcName != "_compute_tables":
            return True
        message = record.getMessage()
        name = message.removeprefix("In resource: ").partition(",")[0]
        return not (name in self.resources and "several column hints were different" in message)


_OWN_JSON_HINTS = _OwnJsonHints()


def _instants_as_timestamps(column: Any) -> Any:
    """A text column of ISO 8601 instants as UTC timestamps (`parse_iso_datetimes`)."""
    if not pa.types.is_string(column.type):
        return column
    first = column.drop_null()[0].as_py()
    converted = cast_iso(column, UTC_MICROSECONDS) if iso_kind(first) == "instant" else None
    return column if converted is None else converted


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
    resource.add_step(OneSchemaPerTable(resource.name))
    return resource


@lru_cache(maxsize=4096)
def _snake(name: str) -> str:
    return _NAMING.normalize_identifier(name)


_NAMING = NamingConvention()


def _batched_pages(pages: Iterator[Any], batch_rows: int) -> Iterator[Any]:
    """Concatenate consecutive pages (lists) until `batch_rows`; anything else (a single
    item, an item with meta) passes through in order. While the pages are read, the
    garbage collector walks fewer objects (`shared.collector`)."""
    with fewer_collections():
        yield from _batches(pages, batch_rows)


def _batches(pages: Iterator[Any], batch_rows: int) -> Iterator[Any]:
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


def _to_array(values: list[Any]) -> tuple[pa.Array, bool]:
    """The column of `values`, and whether it holds nested values (as JSON text)."""
    if any(isinstance(value, (dict, list)) for value in values):
        return _as_json_text(values), True
    try:
        return pa.array(values), False
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return _as_json_text(values), False


def _as_json_text(values: list[Any]) -> pa.Array:
    try:
        texts = [None if value is None else dlt_json.dumps(value) for value in values]
    except (TypeError, ValueError, OverflowError):  # dlt's (orjson's) limits: ints past 64 bits
        texts = [None if value is None else json.dumps(value) for value in values]
    return pa.array(texts, type=pa.string())
