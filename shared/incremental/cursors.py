"""Incremental cursors a sync can trust.

dlt's incremental stores the largest cursor value a sync saw, and the next sync asks only
for what changed after it. Against real servers that promise breaks in several ways, each
closed here for every incremental resource of a source (`guard_cursors`):

- **Values compare as instants, never as text.** dlt compares cursor values with `max`,
  which orders strings by their characters: `2026-12-05T05:30:00+05:00` (00:30 UTC) beats
  `2026-12-05T03:00:00Z`, is stored, and every record between them is dropped for good
  by the next sync; `…:25.5Z` sorts before `…:25Z`. Each value dlt sees is read as an
  instant (ISO 8601 with any zone and fraction, a datetime, or epoch seconds or
  milliseconds: `shared.timestamps`) and compared as one. What is stored keeps the form
  the API takes back as its filter: the stored (or initial, or first) value's form
  (`format_like`), never later than the instant it stands for. Rows keep their values as
  the API sent them. (An Arrow table's text column is shown to dlt rewritten in that
  form when its values differ in form, and put back after; on a table without a key
  dlt would hash the row numbers this needs, so such a table compares as text.)
- **The cursor never outruns the clock.** A record stamped in the future (server clock
  skew, `9999-12-31T23:59:59Z`) or updated while the sync was paging would move the
  stored cursor past "now", and every change until then would be skipped for good. The
  stored value is capped at the moment the sync started, on the server's clock
  (`shared.http.server_clock`), minus the cursor's lag. Only what is stored is capped: this
  sync still loads every row, and the next one loads those rows again.
- **An unreadable value never blocks.** A value that is no instant (`"yesterday"` for a
  date-time cursor) loads with its row and leaves the cursor where it was, with one
  warning naming connector, resource, field and the record's id: failing the sync would
  block the resource on one bad record, and storing the value would break every later
  run before its first request.
- **A record without the cursor loads.** A missing or null cursor field no longer stops
  the sync (dlt's `on_cursor_value_missing="include"`); such a record leaves the cursor
  where it is.
- **The newest copy wins.** When one primary key arrives twice in a sync (a record that
  moved between pages while paging), the merge keeps the copy with the newest cursor
  value, whatever the arrival order (dlt's `dedup_sort` hint on the cursor column).
- **Shifted pages lose nothing for good.** A list paged by page number, offset or link
  shifts when a record changes while the sync pages: the changed record moves to a later
  page (it arrives twice) and a record at a page boundary moves back onto a page already
  read, so this sync never sees it; its cursor value is older than what the sync stores,
  so no later sync asks for it again. For resources named in `guard_cursors(shifting=...)`
  (every resource the builder makes that is not keyset-paged: keyset paging re-reads ties
  on purpose and cannot skip), a primary key seen twice in one sync **holds the cursor**:
  the sync stores the value it started from, so the next sync reads the same range again
  (the merge on the primary key keeps one copy of each row). The keys are held as Arrow
  text (`shared.incremental.keys`: 12 MB for a million rows, where a Python set took 60)
  and checked once, at the end of the resource's pages; a transformer's keys, which come
  per parent row, are checked as they come. Any other part of the sync
  can hold a resource's cursor for its own reason (`hold_cursor`, e.g. a deletion seen
  while the sync paged, which shifts the list the same way).

The cursor's type is that of its `initial_value`, else of the stored value, else a number
if the first value seen is one and otherwise an ISO 8601 date-time (every cursor of the
catalog's connectors is a timestamp). A cursor configured with a non-date text value is
neither checked nor capped, and compares as dlt compares it.
"""

from __future__ import annotations

import copy
import inspect
import logging
import re
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.exceptions import SourceSectionNotAvailable
from dlt.common.jsonpath import compile_path, extract_simple_field_name, find_values
from dlt.common.libs import is_arrow_object
from dlt.extract.exceptions import DataItemRequiredForDynamicTableHints
from dlt.extract.incremental import Incremental, IncrementalResourceWrapper
from dlt.extract.items import DataItemWithMeta
from dlt.extract.resource import DltResource

from shared._dlt_compat import (
    bound_cursor_state,
    pipe_generator,
    require_cursor_state_reachable,
    set_cursor_resume_value,
    store_cursor_value,
)
from shared.errors import ConnectorError
from shared.http.server_clock import ServerClock
from shared.incremental.keys import SENDS_PAGES_END, ListedKeys, PagesEnd, key_values
from shared.redaction import Redactor
from shared.timestamps import (
    ARROW_ISO_8601,
    ISO_8601,
    epoch_micros,
    format_like,
    is_epoch_millis,
    iso_kind,
    to_datetime,
)

logger = logging.getLogger(__name__)

CursorKind = Literal["datetime", "number", "text"]
#: how a message names what a cursor's values must be
EXPECTED = {
    "datetime": "an ISO 8601 date-time or epoch seconds or milliseconds",
    "number": "a number or an ISO 8601 date-time",
}
#: characters of a bad value quoted in a message
QUOTED_CHARACTERS = 80
#: unreadable values a sync warns about one by one, per resource; then once for the rest
WARNINGS_PER_SYNC = 10
#: zones that write UTC, by style
UTC_ZONES = {"Z": "Z", "+00:00": "+00:00", "-00:00": "+00:00", "+0000": "+0000", "-0000": "+0000"}


class CursorValueError(ConnectorError):
    """A stored cursor value is not of the cursor's type; nothing was stored."""


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
    if iso_kind(value) is not None:
        return "datetime"
    return "text"


def instant_key(value: Any) -> int:
    """Microseconds since the epoch of a cursor value: an ISO 8601 string, a date or
    datetime, or epoch seconds or milliseconds. ValueError, TypeError or OverflowError when
    it is no instant."""
    if isinstance(value, Instant):
        return value.micros
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and iso_kind(value) is None:
        raise ValueError(f"{value!r} is no ISO 8601 date-time")  # dlt's parser takes more
    return epoch_micros(value)


def utc_form(value: Any) -> tuple[Any, ...] | None:
    """The written form of an ISO 8601 UTC value (separator, fractional digits, zone style),
    or None for any other value: two values of one UTC form order as text as in time."""
    match = ISO_8601.match(value) if type(value) is str else None
    if match is None or match.group("sep") is None:
        return None
    zone = match.group("zone")
    if zone is not None and zone not in UTC_ZONES:
        return None
    return (
        match.group("sep"),
        len(match.group("fraction") or ""),
        None if zone is None else UTC_ZONES[zone],
        len(value),
    )


class Instant(str):
    """A cursor value as dlt's incremental sees it: the value's own text (dlt may hash it
    with the row), compared with any other cursor value as the instant it stands for.

    A `str` subclass, so that Python asks it first even when the other side is a plain
    string (a stored `start_value`): `max`, `==` and `<` all order instants."""

    raw: Any
    micros: int

    def __new__(cls, raw: Any, micros: int) -> Instant:
        instant = super().__new__(cls, raw if isinstance(raw, str) else str(raw))
        instant.raw = raw
        instant.micros = micros
        return instant

    def __reduce__(self) -> Any:  # copies and pickles are of the value the API sent
        return (Instant, (self.raw, self.micros))

    def __hash__(self) -> int:
        return hash(self.micros)

    def __eq__(self, other: object) -> bool:
        try:
            return self.micros == instant_key(other)
        except (ValueError, TypeError, OverflowError):
            return False

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __lt__(self, other: object) -> bool:
        return self.micros < instant_key(other)

    def __le__(self, other: object) -> bool:
        return self.micros <= instant_key(other)

    def __gt__(self, other: object) -> bool:
        return self.micros > instant_key(other)

    def __ge__(self, other: object) -> bool:
        return self.micros >= instant_key(other)


#: the guarded incrementals bound to a sync, by the identity of their state (which each
#: keeps alive, so no other state takes its id); the latest `BOUND_KEPT`, so a resource
#: that finished paging can still be held until its sync ends
_BOUND: dict[int, GuardedIncremental] = {}
BOUND_KEPT = 1024
_REGISTRY_LOCK = threading.Lock()
#: holds asked for resources not bound yet: id of the resource's state -> (state, reason)
_PENDING_HOLDS: dict[int, tuple[dict[str, Any], str]] = {}


def hold_cursor(resource_name: str, reason: str) -> bool:
    """Hold the cursor of `resource_name` in the sync running now: the sync stores the
    cursor value it started from, so the next sync reads the same range again.

    Call it from inside the sync (a resource or step of the same pipeline run), whenever
    something seen during the sync means the resource's list may have shifted between
    pages: a record deleted while the resource paged, say (a deletion feed). It works
    before, while and after the resource pages; rows already loaded stay loaded.

    Args:
        resource_name: the resource (as the pipeline names it, e.g. `parties`).
        reason: why, for the one warning the hold logs.

    Returns:
        True when a bound cursor was held now; False when the resource has not started
        in this sync yet (it is held when it starts).
    """
    state = dlt.current.resource_state(resource_name)
    held = False
    for cursor_state in (state.get("incremental") or {}).values():
        with _REGISTRY_LOCK:
            guarded = _BOUND.get(id(cursor_state))
        if guarded is not None and bound_cursor_state(guarded) is cursor_state:
            guarded.hold(reason)
            held = True
    if not held:
        with _REGISTRY_LOCK:
            _PENDING_HOLDS[id(state)] = (state, reason)
    return held


class GuardedIncremental(Incremental[Any]):
    """dlt's `Incremental`, with values compared as instants, unreadable values let
    through, the stored value capped at the sync's start, and held when the list shifted
    (see the module's notes). Rows are otherwise filtered exactly as dlt filters them.

    Args:
        args, kwargs: as for `dlt.sources.incremental`; `on_cursor_value_missing`
            defaults to `"include"`.
        connector: the connector's name, for messages.
        clock: the server's clock (the session's), read when capping.
        redactor: masks secrets in the values quoted by messages.
        shift_key: the columns that identify a record (the table's primary key): one seen
            twice in a sync holds the cursor (`hold`). None watches nothing: a keyset-paged
            list reads the records at a page's boundary twice on purpose.
    """

    def __init__(
        self,
        *args: Any,
        connector: str = "connector",
        clock: ServerClock | None = None,
        redactor: Redactor | None = None,
        shift_key: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        require_cursor_state_reachable()  # once per process: the guard needs dlt's state
        kwargs.setdefault("on_cursor_value_missing", "include")
        super().__init__(*args, **kwargs)
        self.connector = connector
        self.clock = clock or ServerClock()
        self.redactor = redactor or Redactor()
        self.shift_key: tuple[str, ...] | None = tuple(shift_key) if shift_key else None
        self.sync_started_at: float | None = None  # local epoch seconds, set on bind
        self._kind: CursorKind | None = None
        self._warned_cap = False  # warned about this sync's cap already
        self._column_path = compile_path(self.cursor_path) if self.cursor_path else None
        self._column = extract_simple_field_name(self.cursor_path) if self.cursor_path else None
        self._at_end = False  # the keys are checked at the end of the pages (`bind`)
        self._wrapped_pipe: Any = None  # the pipe whose pages `bind` wrapped (not copied)
        self._reset_sync()

    def _reset_sync(self) -> None:
        """What one sync learns; set again on every bind."""
        self._template: Any = None  # the form stored values take
        self._plain_form: tuple[Any, ...] | None = None  # rows of this form need no Instant
        self._plain_match: Callable[[str], Any] | None = None  # a valid value of that form
        self._forms_checked = False
        self._unreadable = 0  # values warned about this sync
        #: keys seen this sync (shift_key), checked once the pages ran out (`PagesEnd`)
        self._keys = ListedKeys()
        self._seen: set[Any] = set()  # the same, checked as they come (a transformer's)
        self._held: str | None = None  # why this sync holds its cursor
        self._hold_value: Any = None  # the cursor value this sync started from
        self._hold_hashes: list[Any] = []

    @classmethod
    def guarding(
        cls,
        incremental: Incremental[Any],
        connector: str,
        clock: ServerClock | None = None,
        redactor: Redactor | None = None,
        shift_key: Sequence[str] | None = None,
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
            shift_key=shift_key,
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
        merged.shift_key = context.shift_key or self.shift_key
        return merged

    def __deepcopy__(self, memo: dict[int, Any]) -> GuardedIncremental:
        # the session's clock and redactor are shared by every copy, never copied; a copy
        # wraps the pages of its own pipe
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        shared = {"clock", "redactor"}
        for name, value in {**self.__dict__, "_wrapped_pipe": None}.items():
            setattr(clone, name, value if name in shared else copy.deepcopy(value, memo))
        return clone

    # -- dlt's protocol ----------------------------------------------------------------
    def bind(self, pipe: Any) -> GuardedIncremental:
        super().bind(pipe)
        self.sync_started_at = self.clock.local_clock()
        self._warned_cap = False
        self._reset_sync()
        bound = bound_cursor_state(self)
        assert bound is not None  # dlt binds it in `bind`
        stored = bound.get("last_value")
        self._kind = kind_of(self.initial_value) or kind_of(stored)
        if stored is not None and self._kind == "datetime":
            self._repair_stored_future_value(stored)
        self._hold_value = bound.get("last_value")
        self._hold_hashes = list(bound.get("unique_hashes") or [])
        self._template = self._hold_value if self._hold_value is not None else self.initial_value
        with _REGISTRY_LOCK:
            _BOUND[id(bound)] = self
            while len(_BOUND) > BOUND_KEPT:
                del _BOUND[next(iter(_BOUND))]
        self._take_pending_hold()
        # a resource that pages by itself: the end of its pages follows them (a deletion
        # step's, or the guard's own), so the keys are checked once, there; a
        # transformer's come per parent row: checked as they come
        if self._wrapped_pipe is pipe:
            # dlt binds a parent's steps again when it forks it to a child: wrapped once,
            # or `add_limit` would stop the outer generator while dlt pages the inner one
            return self
        self._at_end = self.shift_key is not None and isinstance(
            getattr(pipe, "gen", None), Iterator
        )
        sent = any(getattr(step, SENDS_PAGES_END, False) for step in getattr(pipe, "steps", ()))
        if self._at_end and not sent:
            # an item of its own costs the resource a turn in dlt's round robin: only
            # where no other step ends the pages
            pipe.replace_gen(_then_pages_end(pipe.gen))
            self._wrapped_pipe = pipe
        return self

    def get_state(self) -> Any:
        try:
            return super().get_state()
        except SourceSectionNotAvailable:
            # dlt < 1.29 reads `last_value` from the pipeline's context, which a thread the
            # resource runs in (the Arrow fast path's read-ahead) lacks: the state bound for
            # this run is the same dict
            bound = bound_cursor_state(self)
            if bound is None:
                raise
            return bound

    def __call__(self, rows: Any, meta: Any = None) -> Any:
        if isinstance(meta, PagesEnd):
            self._check_shifts()
            if isinstance(meta, _PagesEnd):
                return None  # ours: nothing after this step reads it
        if rows is None or (isinstance(rows, list) and not rows):
            return super().__call__(rows, meta)
        if self._kind == "text":  # a text cursor: dlt's own comparison
            return super().__call__(rows, meta)
        self._watch_shifts(rows)
        if is_arrow_object(rows):
            table, unreadable = self._split_table(rows)
            result = self._call_on_table(table, meta) if len(table) else None
            if unreadable is not None:
                result = unreadable if result is None else _concat(result, unreadable)
        else:
            readable, unreadable_rows, restore = self._prepared(rows)
            try:
                result = super().__call__(readable, meta) if readable is not None else None
            finally:
                for row, value in restore:
                    row[self._column] = value
            if unreadable_rows:
                if isinstance(rows, list):
                    result = [*(result or []), *unreadable_rows]
                else:
                    result = unreadable_rows[0]
        self._settle_stored_value()
        if self._held is not None:
            self._restore_held_value()
        else:
            self._cap_stored_value()
        return result

    # -- holding the cursor --------------------------------------------------------------
    def hold(self, reason: str) -> None:
        """Store the cursor value this sync started from, whatever it reads from now on,
        so the next sync reads the same range again (the rows of this one still load; the
        merge on the primary key keeps one copy of each). Logs one warning with `reason`
        (the first, when held more than once). To hold another resource's cursor by its
        name, from anywhere in the same sync: `hold_cursor`."""
        if self._held is None:
            self._held = reason
            logger.warning(
                "%s: resource `%s`: %s; the sync stores cursor `%s` as it started (%s), so "
                "the next sync reads the same range again",
                self.connector,
                self.resource_name,
                reason,
                self.cursor_path,
                "the beginning" if self._hold_value is None else self._quoted(self._hold_value),
            )
        if bound_cursor_state(self) is not None:
            self._restore_held_value()

    @property
    def held(self) -> str | None:
        """Why this sync holds the cursor, or None."""
        return self._held

    def _restore_held_value(self) -> None:
        store_cursor_value(self, self._hold_value, self._hold_hashes)

    def _take_pending_hold(self) -> None:
        if not _PENDING_HOLDS:
            return
        try:
            state = dlt.current.resource_state(self.resource_name)
        except Exception:  # no pipeline context here: nobody could have asked
            return
        with _REGISTRY_LOCK:
            pending = _PENDING_HOLDS.pop(id(state), None)
        if pending is not None and pending[0] is state:
            self.hold(pending[1])

    def _watch_shifts(self, rows: Any) -> None:
        """Note the keys of `rows`; hold the cursor when one comes a second time in this
        sync (checked at the end of the pages, or at once on a transformer)."""
        key = self.shift_key
        if key is None or self._held is not None:
            return
        if self._at_end:
            self._keys.add_rows(rows, key)
            return
        keys = ListedKeys()
        keys.add_rows(rows, key)
        seen = self._seen
        for text in keys.texts():
            if text in seen:
                self._hold_for_shift(text)
                self._seen = set()  # held for this sync: nothing more to watch
                return
            seen.add(text)

    def _check_shifts(self) -> None:
        """At the end of the pages: hold the cursor if a key came twice."""
        repeated = self._keys.one_repeated() if self._held is None else None
        self._keys = ListedKeys()
        if repeated is not None:
            self._hold_for_shift(repeated)

    def _hold_for_shift(self, text: str) -> None:
        values: list[Any] = [
            int(value) if value.isdigit() else value
            for value in key_values(text, len(self.shift_key or ()))
        ]
        self.hold(
            f"record {self._quoted(values[0] if len(values) == 1 else tuple(values))} came "
            "twice in one sync, so the list shifted between pages while the sync paged and a "
            "record may have been skipped"
        )

    # -- comparing values as instants ----------------------------------------------------
    def _prepared(self, rows: Any) -> tuple[Any, list[Any], list[tuple[Any, Any]]]:
        """The rows for dlt (readable cursor values as `Instant`s where text order could
        differ from time order), the rows whose cursor value is unreadable (they load past
        dlt), and the (row, original value) pairs to put back once dlt is done."""
        items = rows if isinstance(rows, list) else [rows]
        column = self._column
        wraps = self.last_value_func in (max, min)
        self._check_forms()
        plain = self._plain_form
        strict = self._plain_match
        readable: list[Any] = []
        unreadable: list[Any] = []
        restore: list[tuple[Any, Any]] = []
        for row in items:
            if column is not None and isinstance(row, dict):
                value = row.get(column)
            elif is_arrow_object(row) or column is not None:
                readable.append(row)  # tables one by one; other objects as dlt reads them
                continue
            else:
                value = self._value_of(row)
            if value is None or (strict is not None and type(value) is str and strict(value)):
                readable.append(row)  # the common case: a valid value of the stored form
                continue
            try:
                micros = instant_key(value)
            except (ValueError, TypeError, OverflowError):
                self._warn_unreadable(row, value)
                unreadable.append(row)
                continue
            if self._kind is None:
                self._kind = "number" if kind_of(value) == "number" else "datetime"
            if self._template is None:
                self._template = value
                self._forms_checked = False
                self._check_forms()
                plain, strict = self._plain_form, self._plain_match
            if wraps and column is not None and not (plain and utc_form(value) == plain):
                restore.append((row, value))
                row[column] = Instant(value, micros)
            readable.append(row)
        if not isinstance(rows, list):
            return (readable[0] if readable else None), unreadable, restore
        return readable, unreadable, restore

    def _call_on_table(self, table: Any, meta: Any) -> Any:
        """dlt's incremental on an Arrow table; a text cursor column whose values are not
        all of the template's UTC form goes to dlt rewritten in that form (so text order is
        time order), and comes back with the values as the API sent them."""
        column_name = self._column
        if (
            column_name is None
            or self.last_value_func not in (max, min)
            or not isinstance(table, pa.Table)
            or column_name not in table.schema.names
        ):
            return super().__call__(table, meta)
        column: Any = table.column(column_name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            return super().__call__(table, meta)
        if self._template is None:
            first = column.drop_null()[:1].to_pylist()
            self._template = first[0] if first else None
            self._forms_checked = False
        self._check_forms()
        form = self._plain_form
        # dlt hashes every column of a row when it knows no key: a row number would change
        # the hashes it stores for the boundary
        keyed = self.primary_key is not None or bool(self.lag)
        if form is None or not keyed:
            return super().__call__(table, meta)
        if pc.all(
            pc.fill_null(pc.match_substring_regex(column, _form_pattern(form)), True)
        ).as_py():
            return super().__call__(table, meta)
        template = self._template
        rewritten = pa.array(
            [
                None if v is None else format_like(to_datetime(v), template)
                for v in column.to_pylist()
            ],
            column.type,
        )
        index = table.schema.get_field_index(column_name)
        numbered = table.set_column(index, table.schema.field(index), rewritten).append_column(
            ROW_NUMBER, pa.array(range(len(table)), pa.int64())
        )
        result: Any = super().__call__(numbered, meta)
        if result is None or not len(result):
            return result
        if isinstance(result, pa.RecordBatch):
            result = pa.Table.from_batches([result])
        originals = column.take(result.column(ROW_NUMBER))
        result = result.drop_columns([ROW_NUMBER])
        return result.set_column(index, result.schema.field(index), originals)

    def _check_forms(self) -> None:
        """Values of the template's UTC form order as text as in time: when dlt's own start
        and end values are of that form too, such values go to dlt as they are."""
        if self._forms_checked:
            return
        self._forms_checked = True
        form = utc_form(self._template)
        bounds = [v for v in (self.start_value, self.end_value) if v is not None]
        self._plain_form = form if all(utc_form(v) == form for v in bounds) else None
        pattern = None if self._plain_form is None else _form_pattern(self._plain_form, strict=True)
        self._plain_match = None if pattern is None else re.compile(pattern).match

    def _settle_stored_value(self) -> None:
        """Store what dlt stored in the template's form (an `Instant` is dlt's view)."""
        state = bound_cursor_state(self)
        value = state.get("last_value") if state is not None else None
        if state is None or not isinstance(value, Instant):
            return
        store_cursor_value(self, self._stored_form(value), state.get("unique_hashes"))

    def _stored_form(self, value: Instant) -> Any:
        """`value` in the form the API takes back: the template's; never later than it."""
        raw, template = value.raw, self._template
        if template is None or isinstance(template, bool):
            return raw
        if isinstance(template, (int, float, Decimal)):
            millis = is_epoch_millis(template)
            if isinstance(raw, (int, float, Decimal)) and is_epoch_millis(raw) == millis:
                return raw
            return value.micros // (1000 if millis else 1_000_000)
        form = utc_form(template)
        if form is not None and utc_form(raw) == form:
            return raw
        try:
            return format_like(to_datetime(raw if not isinstance(raw, date) else value), template)
        except (ValueError, TypeError, OverflowError):
            return raw

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
        state = bound_cursor_state(self)
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
        bound = bound_cursor_state(self)
        resume = bound.get("start_value") if bound is not None else None
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
        set_cursor_resume_value(self, resume)

    def _capped(self, stored: Any) -> Any:
        """`stored` capped at `cap()`, in its own format; None when it is not later (or the
        cursor keeps the smallest value, which the clock does not bound)."""
        cap = self.cap()
        if to_datetime(stored) <= cap:
            return None
        if isinstance(stored, (int, float, Decimal)):
            micros = instant_key(cap)
            capped: Any = micros // (1000 if is_epoch_millis(stored) else 1_000_000)
        else:
            capped = format_like(cap, stored)
        keep: Any = self.last_value_func  # max, or a custom "latest" (incident_analytics)
        return capped if keep((capped, stored)) == stored else None

    def _store(self, value: Any) -> None:
        # boundary hashes belong to rows at the old value; no row sits at the capped one
        store_cursor_value(self, value)

    # -- unreadable values ---------------------------------------------------------------
    def _value_of(self, row: Any) -> Any:
        if self._column is not None:
            return row.get(self._column) if isinstance(row, dict) else None
        values = find_values(self._column_path, row) if self._column_path else []
        return values[0] if values else None

    def _record_id(self, row: Any) -> str:
        key = self.shift_key or ("id",)
        if not isinstance(row, dict) or all(row.get(name) is None for name in key):
            return "without an id"
        values = [row.get(name) for name in key]
        return self._quoted(values[0] if len(values) == 1 else tuple(values))

    def _warn_unreadable(self, row: Any, value: Any) -> None:
        """One warning per record (naming its id, never its other values), up to
        `WARNINGS_PER_SYNC` a sync; then one for the rest."""
        self._unreadable += 1
        if self._unreadable > WARNINGS_PER_SYNC + 1:
            return
        if self._unreadable == WARNINGS_PER_SYNC + 1:
            logger.warning(
                "%s: resource `%s`: more records have an unreadable cursor `%s`; they load "
                "too, without further warnings this sync",
                self.connector,
                self.resource_name,
                self.cursor_path,
            )
            return
        logger.warning(
            "%s: resource `%s`: record %s has cursor field `%s` = %s, which is not %s; the "
            "record loads and the stored cursor stays where it was",
            self.connector,
            self.resource_name,
            self._record_id(row),
            self.cursor_path,
            self._quoted(value),
            EXPECTED.get(self._kind or "datetime", EXPECTED["datetime"]),
        )

    def _split_table(self, table: Any) -> tuple[Any, Any]:
        """An Arrow table's rows with a readable (or no) cursor value, and those with an
        unreadable one (None when there are none): these load past dlt's incremental."""
        if self._column is None or not isinstance(table, (pa.Table, pa.RecordBatch)):
            return table, None
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if self._column not in table.schema.names:
            # a batch where no record has the cursor: it loads, as rows without it do
            return table.append_column(self._column, pa.nulls(len(table), pa.string())), None
        column: Any = table.column(self._column)
        data_type = column.type
        if self._kind is None:
            values = column.drop_null()[:1].to_pylist()
            if not values:
                return table, None
            self._kind = "number" if kind_of(values[0]) == "number" else "datetime"
        if pa.types.is_timestamp(data_type) or pa.types.is_date(data_type):
            return table, None
        if (
            pa.types.is_integer(data_type)
            or pa.types.is_floating(data_type)
            or pa.types.is_decimal(data_type)
        ):
            return table, None
        if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
            # the ISO shape, checked on the whole column (a Python parse per value would
            # cost the fast path its speed); shaped but impossible values fail later, loudly
            mask: Any = pc.fill_null(pc.match_substring_regex(column, ARROW_ISO_8601), True)
        else:
            flags = []
            for value in column.to_pylist():
                try:
                    flags.append(value is None or instant_key(value) is not None)
                except (ValueError, TypeError, OverflowError):
                    flags.append(False)
            mask = pa.array(flags, pa.bool_())
        if pc.all(mask).as_py():
            return table, None
        bad = table.filter(pc.invert(mask))
        for row in bad.to_pylist():
            self._warn_unreadable(row, row.get(self._column))
        return table.filter(mask), bad

    def _error(self, value: Any) -> CursorValueError:
        expected = EXPECTED.get(self._kind or "datetime", "a cursor value")
        return CursorValueError(
            f"{self.connector}: resource `{self.resource_name}`: cursor field "
            f"`{self.cursor_path}` holds {self._quoted(value)}, which is not {expected}; "
            "the sync stopped before storing it, and the stored cursor is unchanged"
        )

    def _quoted(self, value: Any) -> str:
        text = repr(value.raw if isinstance(value, Instant) else value)
        if len(text) > QUOTED_CHARACTERS:
            text = text[: QUOTED_CHARACTERS - 3] + "..."
        return self.redactor.redact(text)


#: a column the guard numbers an Arrow table's rows in while dlt filters it
ROW_NUMBER = "_cursor_guard_row_number"


def _form_pattern(form: tuple[Any, ...], strict: bool = False) -> str:
    """A regular expression matching exactly the ISO 8601 values of `form` (`utc_form`);
    `strict` also bounds each field (month 01-12, hour 00-23, ...), so that checking a
    value costs one match instead of a parse."""
    sep, digits, zone, _ = form
    fraction = rf"\.\d{{{digits}}}" if digits else ""
    written = {None: "", "Z": "Z", "+00:00": r"[+-]00:00", "+0000": r"[+-]0000"}[zone]
    if not strict:
        return rf"^\d{{4}}-\d{{2}}-\d{{2}}{sep}\d{{2}}:\d{{2}}:\d{{2}}{fraction}{written}$"
    day = r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    time = r"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    return rf"^{day}{sep}{time}{fraction}{written}\Z"


def _concat(result: Any, unreadable: pa.Table) -> Any:
    """dlt's filtered table followed by the rows it never saw."""
    if isinstance(result, pa.RecordBatch):
        result = pa.Table.from_batches([result])
    if isinstance(result, pa.Table) and result.schema.equals(unreadable.schema):
        return pa.concat_tables([result, unreadable])
    return [result, unreadable]


class _PagesEnd(PagesEnd):
    """The guard's own end of the pages, for a resource no other step sends one for."""


def _then_pages_end(pages: Iterator[Any]) -> Iterator[Any]:
    yield from pages
    yield DataItemWithMeta(_PagesEnd(), [])


def guard_cursors(
    resources: Sequence[DltResource],
    connector: str,
    clock: ServerClock | None = None,
    redactor: Redactor | None = None,
    shifting: Collection[str] = (),
) -> list[DltResource]:
    """Guard the cursor of every incremental resource in `resources` (see the module's
    notes), in place; resources without a cursor are left alone.

    Args:
        resources: the source's resources.
        connector: the connector's name, for messages.
        clock: the clock of the session the resources request through.
        redactor: the source's redactor.
        shifting: names of resources whose lists can shift between pages (paged by page
            number, `Link` header, offset or an opaque token, not by keyset): a primary key
            seen twice in one sync holds their cursor. The builder names every resource it
            makes that is not keyset-paged; a caller that pages by itself knows best.

    Returns:
        `resources`, as a list.
    """
    for resource in resources:
        incremental = declared_incremental(resource)
        if incremental is None:
            continue
        key = primary_key_of(resource) if resource.name in shifting else None
        if not isinstance(incremental, GuardedIncremental):
            guarded = GuardedIncremental.guarding(
                incremental, connector, clock, redactor, shift_key=key
            )
            resource.apply_hints(incremental=guarded)
        elif key:
            incremental.shift_key = tuple(key)
        newest_copy_wins(resource, incremental.cursor_path)
    return list(resources)


def primary_key_of(resource: DltResource) -> list[str] | None:
    """The columns of the resource's primary key hint, or None (none, or it depends on the
    data)."""
    try:
        table = resource.compute_table_schema()
    except DataItemRequiredForDynamicTableHints:
        return None
    key = [name for name, column in table.get("columns", {}).items() if column.get("primary_key")]
    return key or None


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
