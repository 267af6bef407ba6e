"""dlt's relational normalizer, done in Arrow: every resource's default load path.

dlt normalizes pages of dicts row by row in Python: it flattens nested objects into
`a__b` columns, turns nested lists into child tables linked by `_dlt_id`,
`_dlt_parent_id`, `_dlt_list_idx` (and `_dlt_root_id` on merge tables), and infers each
value's type (an ISO 8601 date-time string becomes a timestamp). On a large sync that is
most of the time. `load_as_arrow_tables(resources)` makes resources yield the same
tables as Arrow tables instead, which dlt writes to parquet as they are:

- pages are gathered into batches of about 2,000 rows and read ahead in a thread, as in
  `shared.arrow.pages`;
- after the resource's incremental step (which sees the rows exactly as before, so
  cursor state holds the API's values), each batch is split in Arrow into its root table
  and one table per nested list (`Splitter.split`), named, typed, ordered and linked as
  dlt's normalizer does; the child tables carry dlt's `parent` and key hints, so dlt's
  merge replaces a parent's old child rows;
- children of the resource (transformers) still receive the rows.

Whenever a batch holds a shape whose outcome in dlt depends on the order of values (an
int then a string in one column, an int column that later holds floats, a text column
with an ISO date-time dlt would detect, a timestamp that Arrow cannot parse as dlt
does, keys that collide once snake-cased, ...), that batch and the rest of the sync of
that resource go to dlt's own normalizer as rows: the result is dlt's, never a guess.
Transformers (one small page per parent row) stay rows: dlt's work per Arrow item
(about 10 ms) would cost more than its normalizer saves. A transformer whose pages are
large (declared in the resource table: `"large_pages": True`, e.g. up to 1,000 stories a
request) is split as well, page by page: the choice is per resource, never per page, so
one table never receives both Arrow tables and rows from pages of different sizes.

Known differences from dlt's normalizer: a child row's `_dlt_id` is
`<parent _dlt_id>.<key>.<position>` (unique in the dataset and deterministic, like dlt's
hash of the same, but built in Arrow), and child tables carry a `variant_name` in dlt's
schema (dlt's mark of tables a resource yields to by name).

Two dlt internals make child tables possible at extract time, where dlt itself only
writes root tables (both checked on dlt 1.28 and 1.31; without the first, resources stay
on dlt's normalizer):

- dlt's extract counts written rows per table by the table's `resource`, which nested
  tables lack: while it counts, the nested tables of resources with a `RowsToTables`
  step borrow their root's (`count_nested_tables_by_resource`; other sources' metrics
  are dlt's own);
- a child table's hints are a table variant of the resource set directly (dlt's own
  `with_hints` would start the variant from the resource's primary key and columns).

`rows_through_dlt_normalizer(source)` turns all of it off for a source (dlt's own path,
e.g. to compare, or if a table ever differs).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.normalizers.naming import NamingConvention
from dlt.common.normalizers.naming.snake_case import NamingConvention as SnakeCase
from dlt.common.normalizers.utils import generate_dlt_ids
from dlt.common.schema.detections import is_iso_timestamp
from dlt.common.storages.load_package import load_package_state
from dlt.extract.exceptions import DataItemRequiredForDynamicTableHints
from dlt.extract.hints import HintsMeta, make_hints
from dlt.extract.items import DataItemWithMeta, TableNameMeta
from dlt.extract.items_transform import ItemTransform, LimitItem
from dlt.extract.resource import DltResource

from shared._dlt_compat import (
    arrow_tables_supported,
    hints_variants,
    pipe_steps,
    remove_steps_of,
)
from shared.arrow.first_sync import skip_merge_on_first_sync
from shared.arrow.pages import JsonColumnsMeta, _batched_pages, cast_iso, rows_of_batch
from shared.timestamps import iso_kind_of_column

logger = logging.getLogger(__name__)

#: rows gathered into one batch before it is split into tables: dlt's work per Arrow item
#: (it computes the table's schema again for each) costs about 10 ms
BATCH_ROWS = 2000
#: more rows than this in one item are split `BATCH_ROWS` at a time: a child's item can
#: hold all of a parent's pages (dlt's parallelized transformers hand them on together),
#: and splitting them at once costs memory, not time
MAX_SPLIT_ROWS = 2 * BATCH_ROWS
UTC_MICROSECONDS = pa.timestamp("us", tz="UTC")
#: Arrow types of the dlt types this module writes
ARROW_TYPES: dict[str, Any] = {
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "timestamp": UTC_MICROSECONDS,
    "date": pa.date32(),
    "time": pa.time64("us"),
}

C_DLT_ID = "_dlt_id"
C_DLT_LOAD_ID = "_dlt_load_id"
C_DLT_ROOT_ID = "_dlt_root_id"
C_DLT_PARENT_ID = "_dlt_parent_id"
C_DLT_LIST_IDX = "_dlt_list_idx"
C_VALUE = "value"
EMPTY_KEY = "_empty"
#: dlt's hints on its linkage columns (`DataItemNormalizer.extend_schema`), which dlt adds
#: to rows only; without a data type, so the columns keep their place (after the data)
LINK_HINTS: dict[str, dict[str, Any]] = {
    C_DLT_ID: {"nullable": False, "unique": True, "row_key": True},
    C_DLT_PARENT_ID: {"nullable": False, "parent_key": True},
    C_DLT_LIST_IDX: {"nullable": False},
    C_DLT_ROOT_ID: {"nullable": False, "root_key": True},
    C_DLT_LOAD_ID: {"nullable": False},
}
#: merge strategies whose root `_dlt_id` is random, as here (others hash keys or rows)
RANDOM_ROW_ID_DISPOSITIONS = ("append", "replace", "merge")


class DoesNotFit(Exception):
    """A batch whose tables Arrow cannot build exactly as dlt's normalizer would."""


@dataclass
class Piece:
    """One table's rows from one batch."""

    table: str
    parent: str | None
    data: pa.Table


@dataclass
class _Leaf:
    name: str
    array: pa.Array
    path: tuple[Any, ...]  # keys (and LIST markers) from a row to the value, for checks


LIST = object()  # a path step into every element of a list


@dataclass
class Splitter:
    """Splits batches of rows into dlt's tables, remembering each column's type.

    Args:
        root: the resource's (normalized) table name.
        naming: the schema's naming convention.
        root_key: propagate the root `_dlt_id` as `_dlt_root_id` (merge tables).
        known: per table, the dlt data type of columns known already (declared in hints,
            in the pipeline's schema, or seen in an earlier batch).
    """

    root: str
    naming: NamingConvention = field(default_factory=SnakeCase)
    root_key: bool = False
    known: dict[str, dict[str, str]] = field(default_factory=dict)
    not_null: frozenset[str] = frozenset()
    declared: tuple[str, ...] = ()
    #: the table's `max_table_nesting`: rows nested deeper do not fit (dlt keeps their
    #: deeper values as JSON)
    max_nesting: int | None = None

    def split(self, rows: list[dict[str, Any]], load_id: str | None) -> list[Piece]:
        """The tables of `rows`; raises `DoesNotFit` when they cannot be exactly dlt's."""
        try:
            array = pa.array(rows)
        except (
            pa.ArrowInvalid,
            pa.ArrowTypeError,
            pa.ArrowNotImplementedError,
            OverflowError,
        ) as e:
            raise DoesNotFit(f"values of different types in one field ({e})") from None
        if not pa.types.is_struct(array.type):
            raise DoesNotFit("rows that are not objects")
        if self.max_nesting is not None and nesting_needed(array.type) > self.max_nesting:
            raise DoesNotFit(
                f"rows nested deeper than the table's bound of {self.max_nesting} levels "
                "(dlt keeps the deeper values as JSON)"
            )
        pieces: list[Piece] = []
        decided: dict[str, dict[str, str]] = {}
        ids = pa.array(generate_dlt_ids(len(rows)), pa.string())
        extra = [(C_DLT_LOAD_ID, pa.array([load_id] * len(rows), pa.string()))] if load_id else []
        self._table(
            rows,
            (self.root,),
            (),
            array,
            ids,
            extra,
            ids if self.root_key else None,
            pieces,
            decided,
        )
        for table, columns in decided.items():
            self.known.setdefault(table, {}).update(columns)
        return pieces

    # -- one table ---------------------------------------------------------------------
    def _table(
        self,
        rows: list[dict[str, Any]],
        fragments: tuple[str, ...],
        path: tuple[Any, ...],
        array: Any,
        ids: pa.Array,
        linkage: list[tuple[str, Any]],
        root_ids: pa.Array | None,
        pieces: list[Piece],
        decided: dict[str, dict[str, str]],
        parent: str | None = None,
    ) -> None:
        table = self.naming.shorten_fragments(*fragments)
        leaves, lists = self._flatten(rows, array, path)
        names: list[str] = []
        arrays: list[pa.Array] = []
        for leaf in leaves:
            typed = self._typed(rows, table, leaf, decided)
            if typed is not None:
                names.append(leaf.name)
                arrays.append(typed)
        if len(set(names)) != len(names):
            raise DoesNotFit(f"keys that collide once named as columns in `{table}`")
        is_root = len(fragments) == 1
        if is_root:
            tail = [*linkage, (C_DLT_ID, ids)]
        else:
            tail = [*([(C_DLT_ROOT_ID, root_ids)] if root_ids is not None else []), *linkage]
            tail.append((C_DLT_ID, ids))
        if is_root:
            # a column the hints declare with a type exists in dlt's table from the start,
            # values or not
            for name in self.declared:
                arrow_type = ARROW_TYPES.get(self.known.get(table, {}).get(name, ""))
                if name not in names and arrow_type is not None:
                    names.append(name)
                    arrays.append(pa.nulls(len(array), arrow_type))
        # columns the hints declare non-nullable (the primary key) are so in Arrow too, or
        # dlt warns of a conflict between hints and data
        fields = [
            pa.field(n, a.type, nullable=not (is_root and n in self.not_null and not a.null_count))
            for n, a in zip(names, arrays, strict=True)
        ]
        # dlt adds a table's columns as rows first hold a value, its linkage columns after
        # the first row's: a new table's columns come in that order
        # (columns declared with a type in the resource's hints are there from the start)
        first = [pc.index(pc.is_valid(a), True).as_py() % (len(a) + 1) for a in arrays]
        if is_root and self.declared:
            rank = {name: k - len(self.declared) for k, name in enumerate(self.declared)}
            first = [rank.get(n, f) for n, f in zip(names, first, strict=True)]
        order = sorted(range(len(arrays)), key=lambda i: first[i])
        cut = next((k for k, i in enumerate(order) if first[i] > 0), len(order))
        columns = [(fields[i], arrays[i]) for i in order[:cut]]
        columns += [(pa.field(n, a.type, nullable=False), a) for n, a in tail]
        columns += [(fields[i], arrays[i]) for i in order[cut:]]
        data = pa.Table.from_arrays(
            [a for _, a in columns], schema=pa.schema([f for f, _ in columns])
        )
        pieces.append(Piece(table, parent, data))
        for ident, key_path, values in lists:
            self._list(
                rows, (*fragments, *ident), key_path, values, ids, root_ids, pieces, decided, table
            )

    def _list(
        self,
        rows: list[dict[str, Any]],
        fragments: tuple[str, ...],
        path: tuple[Any, ...],
        lists: pa.Array,
        parent_ids: pa.Array,
        root_ids: pa.Array | None,
        pieces: list[Piece],
        decided: dict[str, dict[str, str]],
        parent: str,
    ) -> None:
        values = pc.list_flatten(lists)
        if len(values) == 0:
            return
        parents = pc.list_parent_indices(lists)
        lengths = pc.fill_null(pc.list_value_length(lists), 0).to_pylist()
        positions = pa.array([i for n in lengths for i in range(n)], pa.int64())
        parent_id = pc.take(parent_ids, parents)
        # `<parent _dlt_id>.<list's key>.<position>`: unique in the whole dataset and
        # deterministic, like dlt's hash of the same (`get_nested_row_hash`), but computed
        # in Arrow instead of once per row in Python
        join: Any = pc.binary_join_element_wise
        ids = join(parent_id, pc.cast(positions, pa.string()), f".{fragments[-1]}.")
        linkage = [
            (C_DLT_PARENT_ID, parent_id),
            (C_DLT_LIST_IDX, positions),
        ]
        child_root_ids = pc.take(root_ids, parents) if root_ids is not None else None
        item = values.type
        wrapped: Any
        element_path = (*path, LIST)
        if pa.types.is_struct(item):
            wrapped = values
        elif _is_list(item):
            # a list of lists: dlt keeps an intermediary row per inner list, `{"list": [...]}`
            wrapped = pa.StructArray.from_arrays([values], names=["list"])
            element_path = (*element_path, _WRAPPED)
        else:
            element_path = (*element_path, _WRAPPED)
            # a list of scalars: dlt wraps each in a row, `{"value": ...}`
            wrapped = pa.StructArray.from_arrays([values], names=[C_VALUE])
        self._table(
            rows,
            fragments,
            element_path,
            wrapped,
            ids,
            linkage,
            child_root_ids,
            pieces,
            decided,
            parent,
        )

    # -- columns -----------------------------------------------------------------------
    def _flatten(
        self, rows: list[dict[str, Any]], array: Any, path: tuple[Any, ...]
    ) -> tuple[list[_Leaf], list[tuple[tuple[str, ...], tuple[Any, ...], pa.Array]]]:
        """The scalar columns of a struct array, nested structs flattened to `a__b` in
        dlt's order, and its lists (child tables)."""
        leaves: list[_Leaf] = []
        lists: list[tuple[tuple[str, ...], tuple[Any, ...], pa.Array]] = []
        stack: list[tuple[Any, tuple[str, ...], tuple[Any, ...]]] = [(array, (), path)]
        while stack:
            current, fragments, key_path = stack.pop()
            children = current.flatten() if pa.types.is_struct(current.type) else []
            keys = [current.type.field(index).name for index in range(len(children))]
            if ARROW_SORTS_KEYS and len(keys) > 1:
                # dlt's columns come in the order the keys first appear
                first_seen = _key_order(_values_at(rows, key_path))
                order = sorted(range(len(keys)), key=lambda i: first_seen.get(keys[i], 0))
                keys = [keys[i] for i in order]
                children = [children[i] for i in order]
            for key, child in zip(keys, children, strict=True):
                if key_path and key_path[-1] is _WRAPPED:
                    # the wrapper dlt puts around a list's scalar or list: the element itself
                    child_path = key_path[:-1]
                else:
                    child_path = (*key_path, key)
                norm = self.naming.normalize_path(key) if key and not key.isspace() else EMPTY_KEY
                name = norm if not fragments else self.naming.shorten_fragments(*fragments, norm)
                if pa.types.is_struct(child.type):
                    stack.append((child, (*fragments, norm), child_path))
                elif _is_list(child.type):
                    ident = (*fragments, self.naming.normalize_tables_path(key))
                    lists.append((ident, child_path, child))
                else:
                    leaves.append(_Leaf(name, child, child_path))
        return leaves, lists

    def _typed(
        self,
        rows: list[dict[str, Any]],
        table: str,
        leaf: _Leaf,
        decided: dict[str, dict[str, str]],
    ) -> pa.Array | None:
        """The column as dlt would type it, None when every value is null (dlt adds no
        column for it)."""
        array = leaf.array
        kind = array.type
        if pa.types.is_null(kind) or array.null_count == len(array):
            return None
        known = self.known.get(table, {}).get(leaf.name) or decided.get(table, {}).get(leaf.name)
        if pa.types.is_int64(kind):
            arrow_type = "bigint"
        elif pa.types.is_float64(kind):
            arrow_type = "double"
            if known is None and _first_value_is_int(rows, leaf):
                # dlt types the column by its first value: bigint, then variants for floats
                raise DoesNotFit(f"`{table}.{leaf.name}` holds ints and floats")
        elif pa.types.is_boolean(kind):
            arrow_type = "bool"
        elif pa.types.is_string(kind) and known in ("date", "time"):
            array = _dates_or_times(array, known, f"{table}.{leaf.name}")
            arrow_type = known
        elif pa.types.is_string(kind):
            if known is None:
                first = _first_valid(array)
                known = "timestamp" if is_iso_timestamp(str, first) else "text"
            arrow_type = known if known in ("text", "timestamp") else "text"
        else:
            raise DoesNotFit(f"`{table}.{leaf.name}` has values of Arrow type {kind}")
        if known is not None and known != arrow_type:
            if known == "double" and arrow_type == "bigint":
                array = pc.cast(array, pa.float64())  # dlt coerces ints into a double column
                arrow_type = "double"
            else:
                raise DoesNotFit(
                    f"`{table}.{leaf.name}` is {known}, a batch holds {arrow_type} values"
                )
        decided.setdefault(table, {})[leaf.name] = arrow_type
        if arrow_type == "timestamp":
            array = _timestamps(array, f"{table}.{leaf.name}")
        return array


def _dates_or_times(array: pa.Array, kind: str, where: str) -> pa.Array:
    """Text a column's hints declare `date` (`2015-10-01`) or `time` (`18:00:00`) as Arrow
    dates or times, as dlt's normalizer coerces it; text of another form does not fit."""
    try:
        if kind == "date":
            return pc.cast(array, pa.date32())
        return pc.cast(pc.strptime(array, format="%H:%M:%S", unit="us"), pa.time64("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise DoesNotFit(f"`{where}` is {kind}, a batch holds text that is not one") from error


def _timestamps(array: pa.Array, where: str) -> pa.Array:
    """ISO 8601 strings as UTC timestamps, when every value is of one kind Arrow parses
    as dlt does (`shared.timestamps`): all instants, or all naive date-times (dlt reads
    those as UTC). Dates, mixed kinds and other spellings go to dlt."""
    kind = iso_kind_of_column(array)
    converted = None
    if kind == "instant":
        converted = cast_iso(array, UTC_MICROSECONDS)
    elif kind == "naive":
        naive = cast_iso(array, pa.timestamp("us"))
        converted = None if naive is None else pc.cast(naive, UTC_MICROSECONDS)
    if converted is None:
        raise DoesNotFit(f"`{where}` holds date-times in forms only dlt parses")
    return converted


_WRAPPED = object()  # path marker: a column of dlt's wrapper row is the element itself


def _key_order(objects: Iterable[Any]) -> dict[str, int]:
    """Each key of `objects` (dicts) and the position of its first appearance."""
    order: dict[str, int] = {}
    for item in objects:
        if isinstance(item, dict):
            for key in item:
                order.setdefault(key, len(order))
    return order


#: older pyarrow (16) sorts the keys of objects it infers a struct from
ARROW_SORTS_KEYS = pa.array([{"b": 1, "a": 1}]).type.field(0).name == "a"


def _is_list(data_type: pa.DataType) -> bool:
    return pa.types.is_list(data_type) or pa.types.is_large_list(data_type)


def _first_valid(array: pa.Array) -> Any:
    valid = array.drop_null()
    return valid[0].as_py() if len(valid) else None


def _first_value_is_int(rows: list[dict[str, Any]], leaf: _Leaf) -> bool:
    """Whether the first non-null value of a float column is a Python int (JSON `1`, not
    `1.0`), in the order dlt's normalizer meets them."""
    if pc.all(pc.not_equal(pc.floor(leaf.array.drop_null()), leaf.array.drop_null())).as_py():
        return False  # no integral value at all
    for value in _values_at(rows, leaf.path):
        if value is not None:
            return type(value) is int
    return False


def _values_at(items: Iterable[Any], path: tuple[Any, ...]) -> Iterator[Any]:
    if not path:
        yield from items
        return
    step, rest = path[0], path[1:]
    if step is LIST:
        for item in items:
            if isinstance(item, list):
                yield from _values_at(item, rest)
        return
    for item in items:
        if isinstance(item, dict):
            yield from _values_at([item.get(step)], rest)


class RowsMeta(TableNameMeta):
    """The meta of a batch's root table: its table, and the rows it was built from, which
    the resource's children (transformers) receive instead of the table."""

    def __init__(self, table_name: str, rows: list[dict[str, Any]]) -> None:
        super().__init__(table_name)
        self.rows = rows


class FirstRowsMeta(HintsMeta):
    """The meta of a sync's first root table: `RowsMeta`, plus dlt's hints on the root's
    linkage columns (which dlt's normalizer adds to rows only), merged into the resource."""

    def __init__(self, hints: Any, rows: list[dict[str, Any]]) -> None:
        super().__init__(hints, False)
        self.rows = rows


def rows_of(page: Any, meta: Any = None) -> list[Any] | None:
    """The rows behind what a resource yields, for its children: the rows of a root table
    built here, a child table's None (its rows are in the root's), the rows of a batch of
    `shared.arrow.pages`, a list's items."""
    if isinstance(meta, (RowsMeta, FirstRowsMeta)):
        return meta.rows
    if isinstance(meta, (TableNameMeta, HintsMeta)) and not isinstance(meta, JsonColumnsMeta):
        return None
    if isinstance(page, pa.Table):
        return rows_of_batch(page)
    return page if isinstance(page, list) else [page]


class RowsToTables(ItemTransform[Any, dict[str, Any]]):
    """Pipe step: a batch of rows becomes dlt's tables, as Arrow tables (see the module).

    It sits after the incremental step; binding it to a resource that pages by itself
    gathers the pages into batches, read ahead in a thread.
    """

    placement_affinity: ClassVar[float] = 1.5  # after the incremental (1) and limit (1.1)
    #: its resource's nested tables are written here, at extract (`shared._dlt_compat`)
    writes_nested_tables: ClassVar[bool] = True

    def __init__(
        self, resource: DltResource, connector: str, batch_rows: int | None = None
    ) -> None:
        super().__init__(lambda item: item)
        self.resource = resource
        self.connector = connector
        self.batch_rows = batch_rows or BATCH_ROWS
        self._splitter: Splitter | None = None
        self._rows_only = False
        self._hints: dict[str, Any] = {}
        self._first = True

    def bind(self, pipe: Any) -> RowsToTables:
        # `add_limit(n)` counts the items the pipe yields: batched, one item would be up to
        # `batch_rows` rows of pages requested ahead; limited, pages pass one by one
        limited = any(isinstance(step, LimitItem) for step in pipe.steps)
        if self.batch_rows > 1 and isinstance(pipe.gen, Iterator) and not limited:
            pipe.replace_gen(_batched_pages(pipe.gen, self.batch_rows))
        self._splitter = None
        self._rows_only = False
        self._first = True
        return self

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if meta is not None and not isinstance(meta, (RowsMeta, FirstRowsMeta)):  # to a table
            return item
        # a parent's root-table meta reaching a child resource is not the child's table
        as_rows = DataItemWithMeta(None, item) if meta is not None else item
        if self._rows_only or item is None or isinstance(item, pa.Table):
            return as_rows
        rows = item if isinstance(item, list) else [item]
        if not rows or not all(type(row) is dict for row in rows):
            return as_rows
        load_id = _load_id()
        if load_id is None:  # iterated outside a pipeline: whoever iterates wants rows
            return as_rows
        splitter = self._splitter or self._start()
        if splitter is None:
            return as_rows
        if len(rows) > MAX_SPLIT_ROWS:
            return self._parts(splitter, rows, load_id, meta is not None)
        try:
            pieces = splitter.split(rows, load_id)
        except DoesNotFit as why:
            self._fall_back(why)
            return as_rows
        return self._items(pieces, rows)

    def _parts(
        self, splitter: Splitter, rows: list[dict[str, Any]], load_id: str, has_meta: bool
    ) -> Iterator[Any]:
        """The tables of `rows`, split `batch_rows` at a time; from a part that does not
        fit on, rows."""
        for start in range(0, len(rows), self.batch_rows):
            part = rows[start : start + self.batch_rows]
            try:
                pieces = splitter.split(part, load_id)
            except DoesNotFit as why:
                self._fall_back(why)
                rest = rows[start:]
                yield DataItemWithMeta(None, rest) if has_meta else rest
                return
            yield from self._items(pieces, part)

    def _fall_back(self, why: DoesNotFit) -> None:
        self._rows_only = True
        logger.info(
            "%s: resource `%s`: %s; its rows go through dlt's normalizer for the rest of this sync",
            self.connector,
            self.resource.name,
            why,
        )

    def _items(self, pieces: list[Piece], rows: list[dict[str, Any]]) -> Iterator[Any]:
        root, *children = pieces
        if self._first:
            self._first = False
            hints = make_hints(
                columns=[{"name": name, **LINK_HINTS[name]} for name in (C_DLT_LOAD_ID, C_DLT_ID)]
            )
            yield DataItemWithMeta(FirstRowsMeta(hints, rows), root.data)
        else:
            yield DataItemWithMeta(RowsMeta(self._root_name, rows), root.data)
        for piece in children:
            if piece.table not in self._hints:
                # the child table's own hints: a variant dlt would start from the
                # resource's (its primary key, write disposition and columns)
                self._hints[piece.table] = make_hints(
                    table_name=piece.table,
                    parent_table_name=piece.parent,
                    columns=[
                        {"name": name, **LINK_HINTS[name]}
                        for name in piece.data.schema.names
                        if name in LINK_HINTS
                    ],
                )
            self._variants()[piece.table] = self._hints[piece.table]
            yield DataItemWithMeta(TableNameMeta(piece.table), piece.data)

    def _variants(self) -> dict[str, Any]:
        return hints_variants(self.resource)

    def _start(self) -> Splitter | None:
        """The splitter for this sync, or None (and rows) when the resource's table is one
        this module does not build (see `arrow_tables_fit`)."""
        table = _table_schema(self.resource)
        schema = _current_schema()
        naming = schema.naming if schema is not None else SnakeCase()
        if table is None or not arrow_tables_fit(table, schema):
            self._rows_only = True
            return None
        self._root_name = str(table["name"])
        root = naming.normalize_tables_path(self._root_name)
        known: dict[str, dict[str, str]] = {}
        if schema is not None:
            for name, stored in schema.tables.items():
                if name == root or name.startswith(root + "__"):
                    known[name] = {
                        column: str(c["data_type"])
                        for column, c in stored.get("columns", {}).items()
                        if c.get("data_type")
                    }
        declared = known.setdefault(root, {})
        for column in table.get("columns", {}).values():
            if column.get("data_type"):
                declared[naming.normalize_path(column["name"])] = str(column["data_type"])
        root_key = table.get("write_disposition") == "merge" or any(
            any(c.get("root_key") for c in schema.tables[name].get("columns", {}).values())
            for name in known
            if schema is not None and name in schema.tables
        )
        not_null = frozenset(
            naming.normalize_path(column["name"])
            for column in table.get("columns", {}).values()
            if column.get("nullable") is False
        )
        typed = tuple(
            naming.normalize_path(column["name"])
            for column in table.get("columns", {}).values()
            if column.get("data_type")
        )
        max_nesting = table.get("x-normalizer", {}).get("max_nesting")
        self._splitter = Splitter(root, naming, root_key, known, not_null, typed, max_nesting)
        return self._splitter


def nesting_needed(row: pa.DataType) -> int:
    """The least `max_table_nesting` under which dlt's normalizer keeps no value of rows of
    Arrow type `row` (a struct) as JSON.

    dlt counts a table's levels down from its `max_nesting`: a dict descends one level,
    a list's rows are a child table one level down (a list of lists two: dlt wraps each
    inner list in a row of its own), and a dict or list met where the count is 0 stays
    in its row as JSON. The count is the type's, so it costs nothing per row."""
    fields = [row.field(i) for i in range(row.num_fields)]
    return max((_field_nesting(field.type, 0) for field in fields), default=0)


def _field_nesting(kind: pa.DataType, depth: int) -> int:
    if pa.types.is_struct(kind):
        inner = (kind.field(i).type for i in range(kind.num_fields))
        return max([depth + 1, *(_field_nesting(field, depth + 1) for field in inner)])
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return max(depth + 1, _element_nesting(kind.value_type))
    return 0


def _element_nesting(kind: pa.DataType) -> int:
    """The levels a list's elements need, counted from the list's row."""
    if pa.types.is_struct(kind):
        return 1 + nesting_needed(kind)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return 2 + max(1, _element_nesting(kind.value_type))
    return 0


def arrow_tables_fit(table: dict[str, Any], schema: Any = None) -> bool:
    """Whether this module builds `table` exactly as dlt's normalizer does: a static name,
    no `json` columns (dlt would keep nested values in place), and a random root
    `_dlt_id` (append, replace, or merge by delete-insert; upsert and scd2 hash keys or
    rows instead). A nesting limit fits: rows nested deeper than it do not
    (`Splitter.max_nesting`), and go to dlt's normalizer."""
    if any(c.get("data_type") == "json" for c in table.get("columns", {}).values()):
        return False
    if table.get("write_disposition") not in RANDOM_ROW_ID_DISPOSITIONS:
        return False
    merge = table.get("write_disposition") == "merge"
    if merge and table.get("x-merge-strategy", "delete-insert") != "delete-insert":
        return False
    if schema is not None and table["name"] in schema.tables:
        stored = schema.tables[table["name"]]
        if any(c.get("data_type") == "json" for c in stored.get("columns", {}).values()):
            return False
    return True


def load_as_arrow_tables(
    resources: Iterable[DltResource], connector: str, large_pages: Collection[str] = ()
) -> None:
    """Make each selected resource of `resources` that is not a transformer, or is one
    named in `large_pages` (whose pages are large enough to pay for dlt's work per Arrow
    item), load its rows as Arrow tables split into dlt's tables (see the module's notes),
    in place."""
    if not arrow_tables_supported():
        return  # a dlt without what the Arrow path needs: its own normalizer (warned once)
    for resource in resources:
        if (
            not resource.selected
            or (resource.is_transformer and resource.name not in large_pages)
            or any(isinstance(step, RowsToTables) for step in pipe_steps(resource))
        ):
            continue
        resource.add_step(RowsToTables(resource, connector))
        skip_merge_on_first_sync(
            [resource]
        )  # its parquet files may append (shared.arrow.first_sync)


def rows_through_dlt_normalizer(source: Any) -> Any:
    """Load `source` (a dlt source or resource) through dlt's own row-by-row normalizer
    instead of Arrow tables: slower; the escape hatch if a table ever differs.

    Returns:
        `source`, changed in place.
    """
    return remove_steps_of(source, RowsToTables)


def _table_schema(resource: DltResource) -> dict[str, Any] | None:
    try:
        table = resource.compute_table_schema()
    except DataItemRequiredForDynamicTableHints:
        return None
    return dict(table)


def _current_schema() -> Any:
    try:
        return dlt.current.source_schema()
    except Exception:  # iterated outside a pipeline: no stored schema
        return None


def _load_id() -> str | None:
    try:
        return str(load_package_state()["load_id"])
    except Exception:  # iterated outside a pipeline: no load package
        return None
