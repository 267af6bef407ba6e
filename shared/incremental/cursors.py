"""Incremental cursors a sync can trust.

dlt's incremental stores the largest cursor value a sync saw, and the next sync asks only
for what changed after it. Against real servers that promise breaks in four ways, each
closed here for every incremental resource of a source (`guard_cursors`):

- **The cursor never outruns the clock.** A record stamped in the future (server clock
  skew, `9999-12-31T23:59:59Z`) or updated while the sync was paging would move the
  stored cursor past "now", and every change until then would be skipped for good. The
  stored value is capped at the moment the sync started, on the server's clock
  (`shared.http.server_clock`), minus the cursor's lag. Only what is stored is capped: this
  sync still loads every row, and the next one loads those rows again.
- **Cursor values are checked.** A value that is not of the cursor's type (`"yesterday"`
  for a date-time cursor) fails the sync with one line naming connector, resource, field
  and value, before it can reach the stored state (where it would fail every later run
  before its first request).
- **A record without the cursor loads.** A missing or null cursor field no longer stops
  the sync (dlt's `on_cursor_value_missing="include"`); such a record leaves the cursor
  where it is.
- **The newest copy wins.** When one primary key arrives twice in a sync (a record that
  moved between pages while paging), the merge keeps the copy with the newest cursor
  value, whatever the arrival order (dlt's `dedup_sort` hint on the cursor column).

The cursor's type is that of its `initial_value`, else of the stored value, else a number
if the first value seen is one and otherwise an ISO 8601 date-time (every cursor of the
catalog's contracts is a timestamp). A cursor configured with a non-date text value is
neither checked nor capped.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.exceptions import SourceSectionNotAvailable
from dlt.common.jsonpath import compile_path, extract_simple_field_name, find_values
from dlt.common.libs import is_arrow_object
from dlt.extract.exceptions import DataItemRequiredForDynamicTableHints
from dlt.extract.incremental import Incremental, IncrementalResourceWrapper
from dlt.extract.resource import DltResource

from shared._dlt_compat import pipe_generator
from shared.errors import ConnectorError
from shared.http.server_clock import ServerClock
from shared.redaction import Redactor
from shared.timestamps import ISO_8601, format_like, to_datetime

logger = logging.getLogger(__name__)

CursorKind = Literal["datetime", "number", "text"]
#: how a message names what a cursor's values must be
EXPECTED = {"datetime": "an ISO 8601 date-time", "number": "a number"}
#: characters of a bad value quoted in a message
QUOTED_CHARACTERS = 80


class CursorValueError(ConnectorError):
    """A cursor value is not of the cursor's type; nothing was stored."""


def kind_of(value: Any) -> CursorKind | None:
    """What kind of cursor `value` belongs to; None for None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "text"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, (datetime, date)):
        return "datetime"
    if isinstance(value, str) and ISO_8601.match(value):
        return "datetime"
    return "text"


class GuardedIncremental(Incremental[Any]):
    """dlt's `Incremental`, with values checked and the stored value capped at the sync's
    start (see the module's notes). Rows are filtered exactly as dlt filters them.

    Args:
        args, kwargs: as for `dlt.sources.incremental`; `on_cursor_value_missing`
            defaults to `"include"`.
        connector: the connector's name, for messages.
        clock: the server's clock (the session's), read when capping.
        redactor: masks secrets in the values quoted by messages.
    """

    def __init__(
        self,
        *args: Any,
        connector: str = "connector",
        clock: ServerClock | None = None,
        redactor: Redactor | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("on_cursor_value_missing", "include")
        super().__init__(*args, **kwargs)
        self.connector = connector
        self.clock = clock or ServerClock()
        self.redactor = redactor or Redactor()
        self.sync_started_at: float | None = None  # local epoch seconds, set on bind
        self._kind: CursorKind | None = None
        self._warned_cap = False  # warned about this sync's cap already
        self._column_path = compile_path(self.cursor_path) if self.cursor_path else None
        self._column = extract_simple_field_name(self.cursor_path) if self.cursor_path else None

    @classmethod
    def guarding(
        cls,
        incremental: Incremental[Any],
        connector: str,
        clock: ServerClock | None = None,
        redactor: Redactor | None = None,
    ) -> GuardedIncremental:
        """A guarded copy of `incremental`: the same cursor, range, lag, key and functions."""
        settings = dict(incremental)  # the configured fields, as dlt's own `merge` reads them
        if settings.get("on_cursor_value_missing") == "raise":  # dlt's default
            settings["on_cursor_value_missing"] = "include"
        guarded = cls(
            **settings,
            last_value_func=incremental.last_value_func,
            primary_key=incremental.primary_key,
            connector=connector,
            clock=clock,
            redactor=redactor,
        )
        guarded.resource_name = incremental.resource_name
        return guarded

    def merge(self, other: Incremental[Any]) -> Incremental[Any]:
        # dlt copies incrementals with `merge`; the copy must stay guarded, with our context
        merged = super().merge(other)
        context = other if isinstance(other, GuardedIncremental) else self
        if not isinstance(merged, GuardedIncremental):
            merged = GuardedIncremental.guarding(merged, context.connector)
        merged.connector, merged.clock, merged.redactor = (
            context.connector,
            context.clock,
            context.redactor,
        )
        return merged

    def __deepcopy__(self, memo: dict[int, Any]) -> GuardedIncremental:
        # the session's clock and redactor are shared by every copy, never copied
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        shared = {"clock", "redactor"}
        for name, value in self.__dict__.items():
            setattr(clone, name, value if name in shared else copy.deepcopy(value, memo))
        return clone

    # -- dlt's protocol ----------------------------------------------------------------
    def bind(self, pipe: Any) -> GuardedIncremental:
        super().bind(pipe)
        self.sync_started_at = self.clock.local_clock()
        self._warned_cap = False
        stored = self._cached_state.get("last_value")
        self._kind = kind_of(self.initial_value) or kind_of(stored)
        if stored is not None and self._kind == "datetime":
            self._repair_stored_future_value(stored)
        return self

    def get_state(self) -> Any:
        try:
            return super().get_state()
        except SourceSectionNotAvailable:
            # dlt < 1.29 reads `last_value` from the pipeline's context, which a thread the
            # resource runs in (the Arrow fast path's read-ahead) lacks: the state bound for
            # this run is the same dict
            if self._cached_state is None:
                raise
            return self._cached_state

    def __call__(self, rows: Any, meta: Any = None) -> Any:
        if rows is None or (isinstance(rows, list) and not rows):
            return super().__call__(rows, meta)
        rows = self._checked(rows)
        rows = super().__call__(rows, meta)
        self._cap_stored_value()
        return rows

    # -- the sync's start ----------------------------------------------------------------
    def cap(self) -> datetime:
        """The latest value the state may hold: the sync's start on the server's clock,
        minus the cursor's lag."""
        started = self.sync_started_at
        moment = self.clock.to_server_time(
            started if started is not None else self.clock.local_clock()
        )
        return moment - timedelta(seconds=float(self.lag or 0))

    def _cap_stored_value(self) -> None:
        state = self._cached_state
        stored = state.get("last_value") if state is not None else None
        if stored is None or self._kind != "datetime":
            return
        try:
            capped = self._capped(stored)
        except (ValueError, TypeError, OverflowError):
            raise self._error(stored) from None
        if capped is None:
            return
        self._store(capped)
        if self._warned_cap:
            return
        self._warned_cap = True
        logger.warning(
            "%s: resource `%s`: cursor `%s` reached %s, later than the sync's start; storing "
            "%s instead, so the next sync loads the later records again",
            self.connector,
            self.resource_name,
            self.cursor_path,
            self._quoted(stored),
            capped,
        )

    def _repair_stored_future_value(self, stored: Any) -> None:
        """A stored value past the clock (left by an older version) would skip every change
        until then: resume from where the run that stored it started (dlt keeps that as
        `start_value`), or from the initial value when that is unknown or also later."""
        try:
            too_late = self._capped(stored) is not None
        except (ValueError, TypeError, OverflowError):
            raise CursorValueError(
                f"{self.connector}: resource `{self.resource_name}`: the stored cursor "
                f"`{self.cursor_path}` holds {self._quoted(stored)}, which is not "
                f"{EXPECTED['datetime']}; reset it with `dlt pipeline <pipeline_name> drop "
                f"{self.resource_name} --state-only` and sync again"
            ) from None
        if not too_late:
            return
        resume = self._cached_state.get("start_value")
        try:
            if resume is None or self._capped(resume) is not None:
                resume = self.initial_value
        except (ValueError, TypeError, OverflowError):
            resume = self.initial_value
        logger.warning(
            "%s: resource `%s`: the stored cursor `%s` (%s) is later than now; resuming "
            "from %s, where the run that stored it started",
            self.connector,
            self.resource_name,
            self.cursor_path,
            self._quoted(stored),
            "the beginning" if resume is None else self._quoted(resume),
        )
        self._store(resume)
        self.start_value = self.last_value  # dlt's start of this sync, lag applied
        self._cached_state_start_value = resume

    def _capped(self, stored: Any) -> Any:
        """`stored` capped at `cap()`, in its own format; None when it is not later (or the
        cursor keeps the smallest value, which the clock does not bound)."""
        cap = self.cap()
        if to_datetime(stored) <= cap:
            return None
        capped = format_like(cap, stored)
        keep: Any = self.last_value_func  # max, or a custom "latest" (incident_analytics)
        return capped if keep((capped, stored)) == stored else None

    def _store(self, value: Any) -> None:
        self._cached_state["last_value"] = value
        # boundary hashes belong to rows at the old value; no row sits at the capped one
        self._cached_state["unique_hashes"] = []
        if getattr(self, "_current_last_value", None) is not None:  # dlt >= 1.29
            self._current_last_value = value

    # -- checking values -----------------------------------------------------------------
    def _checked(self, rows: Any) -> Any:
        if is_arrow_object(rows):
            return self._checked_table(rows)
        # the common case inline (a date-time cursor's ISO text in a row's own field),
        # anything else through `_check`: it runs once per row of every sync
        column = self._column
        iso = ISO_8601.match if self._kind == "datetime" else None
        for row in rows if isinstance(rows, list) else [rows]:
            if column is not None and type(row) is dict:
                value = row.get(column)
                if value is not None and not (iso and type(value) is str and iso(value)):
                    self._check(value)
                continue
            if is_arrow_object(row):
                continue  # dlt hands tables one by one; a list of them is not ours to check
            value = self._value_of(row)
            if value is not None:
                self._check(value)
        return rows

    def _value_of(self, row: Any) -> Any:
        if self._column is not None:
            return row.get(self._column) if isinstance(row, dict) else None
        values = find_values(self._column_path, row) if self._column_path else []
        return values[0] if values else None

    def _check(self, value: Any) -> None:
        kind = kind_of(value)
        if self._kind is None:
            self._kind = "number" if kind == "number" else "datetime"
        if self._kind in EXPECTED and kind != self._kind:
            raise self._error(value)

    def _checked_table(self, table: Any) -> Any:
        if self._column is None or not isinstance(table, (pa.Table, pa.RecordBatch)):
            return table
        if self._column not in table.schema.names:
            # a batch where no record has the cursor: it loads, as rows without it do
            nulls = pa.nulls(len(table), pa.string())
            if isinstance(table, pa.RecordBatch):
                table = pa.Table.from_batches([table])
            return table.append_column(self._column, nulls)
        column: Any = table.column(self._column)
        if self._kind is None:
            values = column.drop_null()[:1].to_pylist()
            if not values:
                return table
            first = values[0]
            self._kind = "number" if kind_of(first) == "number" else "datetime"
        data_type = column.type
        if self._kind == "datetime":
            if pa.types.is_timestamp(data_type) or pa.types.is_date(data_type):
                return table
            if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
                dates: Any = pc.fill_null(pc.match_substring_regex(column, ISO_8601.pattern), True)
                bad = column.filter(pc.invert(dates))
                if len(bad):
                    raise self._error(bad[0].as_py())
                return table
        elif self._kind == "number" and (
            pa.types.is_integer(data_type)
            or pa.types.is_floating(data_type)
            or pa.types.is_decimal(data_type)
        ):
            return table
        # an unexpected column type: name the first value that is not of the cursor's kind
        values = column.drop_null().to_pylist()
        first_bad = next((v for v in values if kind_of(v) != self._kind), None)
        if first_bad is None:
            return table  # every value is null
        raise self._error(first_bad)

    def _error(self, value: Any) -> CursorValueError:
        expected = EXPECTED.get(self._kind or "datetime", "a cursor value")
        return CursorValueError(
            f"{self.connector}: resource `{self.resource_name}`: cursor field "
            f"`{self.cursor_path}` holds {self._quoted(value)}, which is not {expected}; "
            "the sync stopped before storing it, and the stored cursor is unchanged"
        )

    def _quoted(self, value: Any) -> str:
        text = repr(value)
        if len(text) > QUOTED_CHARACTERS:
            text = text[: QUOTED_CHARACTERS - 3] + "..."
        return self.redactor.redact(text)


def guard_cursors(
    resources: Sequence[DltResource],
    connector: str,
    clock: ServerClock | None = None,
    redactor: Redactor | None = None,
) -> list[DltResource]:
    """Guard the cursor of every incremental resource in `resources` (see the module's
    notes), in place; resources without a cursor are left alone.

    Args:
        resources: the source's resources.
        connector: the connector's name, for messages.
        clock: the clock of the session the resources request through.
        redactor: the source's redactor.

    Returns:
        `resources`, as a list.
    """
    for resource in resources:
        incremental = declared_incremental(resource)
        if incremental is None:
            continue
        if not isinstance(incremental, GuardedIncremental):
            guarded = GuardedIncremental.guarding(incremental, connector, clock, redactor)
            resource.apply_hints(incremental=guarded)
        newest_copy_wins(resource, incremental.cursor_path)
    return list(resources)


def declared_incremental(resource: DltResource) -> Incremental[Any] | None:
    """The incremental a resource will run with: a transform step, an incremental set on
    its wrapper, one passed as an argument (dlt's `rest_api`), or its parameter's default."""
    step = resource.incremental
    if step is None or isinstance(step, Incremental):
        return step
    assert isinstance(step, IncrementalResourceWrapper)
    if step.incremental is not None:
        return step.incremental
    explicit = resource.explicit_args if resource.args_bound else {}
    for value in explicit.values():
        if isinstance(value, Incremental):
            return value
    # a default argument of the resource function (`updated_at=dlt.sources.incremental(...)`)
    function = pipe_generator(resource)
    if callable(function):
        parameter = IncrementalResourceWrapper.get_incremental_arg(inspect.signature(function))
        if parameter is not None and isinstance(parameter.default, Incremental):
            return parameter.default
    return None


def newest_copy_wins(resource: DltResource, cursor_path: str) -> None:
    """On a merge table with a primary key, keep the copy with the newest cursor value when
    one key arrives more than once in a load (dlt's `dedup_sort` hint)."""
    column = extract_simple_field_name(cursor_path)
    if column is None:
        return  # a nested cursor is no column dlt can sort on
    try:
        table = resource.compute_table_schema()
    except DataItemRequiredForDynamicTableHints:  # hints that depend on the data: unknown
        return
    disposition = table.get("write_disposition")
    keyed = any(hint.get("primary_key") for hint in table.get("columns", {}).values())
    if disposition == "merge" and keyed:
        resource.apply_hints(columns={column: {"name": column, "dedup_sort": "desc"}})
