"""The keys of a sync's records, held as Arrow text for the whole sync: about 12 bytes a
key, where a Python set takes about 60 for an integer and 140 for a tuple of strings (a
million-row sync: 12 MB, not 60 to 140 MB). Exact: each key is its text (several
columns' values joined, each prefixed with its length). Two uses, both checked once the
listing ran to its end: which keys a listing held (deletions from a full list,
`shared.incremental.deletions`) and whether a key came twice (a list that shifted while
it paged: deletions and the cursor guard, `shared.incremental.cursors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.libs import is_arrow_object


class PagesEnd:
    """Meta of the empty item that follows the last page of a resource that pages by
    itself, once its pages ran to their end: where what was noted of its keys is checked
    (a step that sends one says so with `SENDS_PAGES_END`, so that a resource gets one).
    It comes in the order and the thread dlt's steps run, after every page."""


#: the class attribute of a pipe step that makes its resource's pages end with a `PagesEnd`
SENDS_PAGES_END = "sends_pages_end"


class ListedKeys:
    """The keys of one listing's rows, in the order they came."""

    #: keys gathered in Python before they become one Arrow array
    CHUNK = 10_000
    #: Arrow arrays of keys (a table's each) joined into one once there are this many:
    #: each array costs about a kilobyte besides its keys
    JOINED = 64

    def __init__(self) -> None:
        self._chunks: list[pa.Array] = []
        self._joined = 0  # the chunks before this one are joined already
        #: keys not in an Arrow array yet: text, or single-column values as the API sent them
        self._pending: list[Any] = []

    def add(self, key: tuple[str, ...]) -> None:
        """One key: its columns' values as text."""
        self._pending.append(_key_text(key))
        if len(self._pending) >= self.CHUNK:
            self._flush()

    def add_rows(self, rows: Any, key_names: Sequence[str]) -> None:
        """The keys of a page: a list of dicts, one dict or an Arrow table; a row whose key
        (or any of its columns) is null or missing adds nothing."""
        if is_arrow_object(rows):
            self._add_table(rows, key_names)
            return
        rows = rows if isinstance(rows, list) else [rows]
        if len(key_names) == 1:
            name = key_names[0]
            values = [row.get(name) for row in rows if isinstance(row, dict)]
            self._add_values([value for value in values if value is not None])
            return
        for row in rows:
            if isinstance(row, dict):
                key = tuple(row.get(name) for name in key_names)
                if None not in key:
                    self.add(tuple(map(str, key)))

    def among(self, keys: Sequence[tuple[str, ...]]) -> list[bool]:
        """For each of `keys`, whether the listing held it."""
        if not keys:
            return []
        wanted = pa.array([_key_text(key) for key in keys], pa.string())
        return [bool(held) for held in pc.is_in(wanted, value_set=self._column()).to_pylist()]

    def repeated(self) -> bool:
        """Whether a key came twice."""
        return self.one_repeated() is not None

    def one_repeated(self) -> str | None:
        """The text of a key that came twice (the least, in text order), or None.

        Found by sorting, not hashing: Arrow's hash kernels (`unique`, `value_counts`) take
        about 180 bytes a text key at their peak (180 MB for a million-row sync), sorting
        about 20."""
        column = self._column()
        if len(column) < 2:
            return None
        ordered = column.take(pc.sort_indices(column))
        same = pc.equal(ordered[1:], ordered[:-1])
        if not pc.any(same).as_py():
            return None
        position = pc.index(same, pa.scalar(True)).as_py()
        return str(ordered[position].as_py())

    def texts(self) -> list[str]:
        """Every key's text, in the order they came."""
        return [str(text) for text in self._column().to_pylist()]

    def __len__(self) -> int:
        return sum(len(chunk) for chunk in self._chunks) + len(self._pending)

    def _add_values(self, values: list[Any]) -> None:
        """Single-column keys as the API sent them (numbers become text in Arrow)."""
        self._pending.extend(values)
        if len(self._pending) >= self.CHUNK:
            self._flush()

    def _add_table(self, table: Any, key_names: Sequence[str]) -> None:
        if not isinstance(table, (pa.Table, pa.RecordBatch)):
            return
        if any(name not in table.schema.names for name in key_names):
            return
        if len(key_names) == 1:
            column = table.column(key_names[0])
            column = pc.drop_null(column)
            try:
                text = pc.cast(column, pa.string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                text = _as_text(column.to_pylist())
            self._append(text)
            return
        columns = [table.column(name).to_pylist() for name in key_names]
        for key in zip(*columns, strict=True):
            if None not in key:
                self.add(tuple(map(str, key)))

    def _append(self, text: Any) -> None:
        self._flush()
        chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
        self._chunks.extend(chunk for chunk in chunks if len(chunk))
        if len(self._chunks) - self._joined >= self.JOINED:
            self._chunks[self._joined :] = [pa.concat_arrays(self._chunks[self._joined :])]
            self._joined = len(self._chunks)

    def _column(self) -> pa.Array:
        self._flush()
        if len(self._chunks) != 1:
            self._chunks = [pa.concat_arrays(self._chunks or [pa.array([], pa.string())])]
            self._joined = 1
        return self._chunks[0]

    def _flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            self._append(_as_text(pending))


def _as_text(values: list[Any]) -> pa.Array:
    """Values of one key column as Arrow text; numbers are cast in Arrow, in C."""
    if all(type(value) is str for value in values):
        return pa.array(values, pa.string())
    try:
        array = pa.array(values)
        if pa.types.is_integer(array.type):
            return pc.cast(array, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        pass  # mixed types, or numbers beyond 64 bits: as Python writes them
    return pa.array([str(value) for value in values], pa.string())


def _key_text(key: tuple[str, ...]) -> str:
    if len(key) == 1:
        return key[0]
    return "".join(f"{len(value)}:{value}" for value in key)


def key_values(text: str, width: int) -> tuple[str, ...]:
    """The columns' values of a key's text (`width` columns)."""
    if width == 1:
        return (text,)
    values = []
    while text:
        length, _, rest = text.partition(":")
        values.append(rest[: int(length)])
        text = rest[int(length) :]
    return tuple(values)
