"""Deletions at the source reach the destination.

Every table with a primary key has a `_deleted_at` column (timestamp, UTC): null while
the record exists at the source, set once a sync learns it was deleted: the time the API
reports, else the sync's start. A resource learns deletions in one of two ways
(`track_deletions`), both only once its listing has run to its end:

- **a feed** (`DeletionFeed`): an endpoint listing deleted records (crm's
  `/{entity}/deleted?since=`, HubSpot's `archived=true`), read after the list every run;
  a feed with a `since` parameter asks from the latest deletion it saw (state of the
  resource, saved with the load, so a failed run reads the same deletions again);
- **a full list** (`full_list=True`): the resource lists every record each run, so a live
  destination row whose key the listing lacks was deleted. Never after a listing that
  did not finish (a failure, `add_limit`), nor one in which a key came twice (the list
  shifted while it paged: a record may have moved past the pages read).

`deletions="soft"` (the default) re-emits each deleted row with `_deleted_at` set: the
merge (`delete-insert`) replaces a whole row, so the row is read back from the destination
(`dlt.current.pipeline()`'s SQL client), child-table rows included, and loaded again as it
was. `"hard"` emits a tombstone (key and `_deleted_at`) and puts dlt's `hard_delete` hint
on `_deleted_at`: the merge deletes the row and its child-table rows.

Outside a pipeline (the source iterated on its own, `list(source)`) there is no
destination to read: a feed's deletions come out as tombstones (key and `_deleted_at`,
in both modes) and a full list marks nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Literal

import dlt
from dlt.common.normalizers.naming.snake_case import NamingConvention as SnakeCase
from dlt.common.storages.load_package import load_package_state
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.extract.items import DataItemWithMeta
from dlt.extract.items_transform import ItemTransform, LimitItem
from dlt.extract.resource import DltResource
from dlt.sources.helpers.rest_client import RESTClient

from shared._dlt_compat import pipe_steps
from shared.errors import ConfigurationError
from shared.incremental.cursors import hold_cursor
from shared.incremental.keys import ListedKeys, PagesEnd
from shared.timestamps import iso_utc_seconds, to_datetime

logger = logging.getLogger(__name__)

DeletionMode = Literal["soft", "hard"]
DELETION_MODES: tuple[DeletionMode, ...] = ("soft", "hard")
#: the column; a destination row is live when it is null
DELETED_AT = "_deleted_at"
#: the first `since` of a feed that requires one, when the source gives none
EPOCH = "1970-01-01T00:00:00Z"
#: a feed's deletion this close before the sync's start (the feed's times are whole
#: seconds on the server's clock, the start is this machine's) counts as during the sync
CLOCK_SLACK = timedelta(seconds=60)
#: keys sent in one `IN (...)` query
QUERY_CHUNK = 500
DLT_COLUMNS_PREFIX = "_dlt_"


@dataclass(frozen=True)
class DeletionFeed:
    """An endpoint that lists deleted records.

    Args:
        path: the endpoint's path (relative to `base_url`).
        data_selector: where a page holds its entries.
        deleted_at: the entry's field with the deletion time; None: the sync's start.
        key: the entry's field with the record's primary key.
        params: further query parameters.
        paginator: how the feed pages (copied for each run); None: dlt's detection.
        since_param: the query parameter of a feed that lists deletions after an instant;
            None for a feed listed in full every run.
        initial_since: the first `since` (ISO 8601 UTC).
        since_lag_seconds: later runs ask from this many seconds before the latest
            deletion seen (the API's `since` is second-precise and strict).
    """

    path: str
    data_selector: str
    deleted_at: str | None = None
    key: str = "id"
    params: Mapping[str, Any] = field(default_factory=dict)
    paginator: Any = None
    since_param: str | None = None
    initial_since: str | None = None
    since_lag_seconds: float = 0.0


def deletion_mode(value: Any, connector: str) -> DeletionMode:
    """`value` checked as a source's `deletions` argument."""
    if value not in DELETION_MODES:
        raise ConfigurationError(
            f"{connector}: `deletions` must be one of {', '.join(DELETION_MODES)}, got {value!r}"
        )
    return value


def deletion_columns(mode: DeletionMode) -> dict[str, dict[str, Any]]:
    """The `_deleted_at` column hint of a table with a primary key."""
    column: dict[str, Any] = {"data_type": "timestamp", "nullable": True}
    if mode == "hard":
        column["hard_delete"] = True
    return {DELETED_AT: column}


@dataclass
class _ListingDone:
    """The end of a listing that ran to its end: the keys it held."""

    keys: ListedKeys

    @property
    def repeated(self) -> bool:
        """Whether a key came twice (the list shifted while it paged)."""
        return self.keys.repeated()


class _ListingEndMeta(PagesEnd):
    """Meta of the (empty) item that follows a finished listing."""

    def __init__(self, done: _ListingDone) -> None:
        self.done = done


class NoteListing(ItemTransform[Any, dict[str, Any]]):
    """Pipe step of a resource that lists records for another one to load (a hidden
    listing, `shared.rest.client_incremental`): binding it wraps the resource's pages so
    that the end of a finished listing follows them (an empty item with
    `_ListingEndMeta`), for the loading resource's `Deletions` step."""

    placement_affinity: ClassVar[float] = 1.2
    sends_pages_end: ClassVar[bool] = True

    def __init__(self, key_names: Sequence[str]) -> None:
        super().__init__(lambda item: item)
        self.key_names = list(key_names)

    def bind(self, pipe: Any) -> NoteListing:
        if isinstance(pipe.gen, Iterator):
            pipe.replace_gen(_noting_keys(pipe.gen, self.key_names))
        return self

    def __call__(self, item: Any, meta: Any = None) -> Any:
        return item


class Deletions(ItemTransform[Any, dict[str, Any]]):
    """Pipe step: after the resource's listing, the rows that mark its deletions.

    Binding it wraps the resource's pages: the keys of every row are noted and, once the
    pages run out, an empty item with `_ListingEndMeta` follows them; this step turns it
    into the deleted rows (see the module). It sits after the incremental step (which
    would filter rows read back from the destination) and before the Arrow step. On a
    transformer that loads the rows of a hidden listing, the listing's `NoteListing`
    sends the end of the listing.
    """

    placement_affinity: ClassVar[float] = 1.2
    sends_pages_end: ClassVar[bool] = True

    def __init__(
        self,
        resource: DltResource,
        connector: str,
        mode: DeletionMode,
        full_list: bool = False,
        feed: DeletionFeed | None = None,
        client: RESTClient | None = None,
        hooks: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(lambda item: item)
        self.resource = resource
        self.connector = connector
        self.mode = mode
        self.full_list = full_list
        self.feed = feed
        self.client = client
        self.hooks = dict(hooks or {})
        #: a feed's keys as the API sent them (the comparisons use text)
        self._raw_keys: dict[tuple[str, ...], tuple[Any, ...]] = {}

    def bind(self, pipe: Any) -> Deletions:
        if isinstance(pipe.gen, Iterator):
            pipe.replace_gen(_noting_keys(pipe.gen, self._key_names()))
        return self

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if not isinstance(meta, _ListingEndMeta):
            return item
        rows = self._deleted_rows(meta.done)
        return DataItemWithMeta(None, rows) if rows else None

    # -- what was deleted ------------------------------------------------------------
    def _deleted_rows(self, done: _ListingDone) -> list[dict[str, Any]]:
        started = _sync_started_at()
        deleted: dict[tuple[str, ...], datetime] = {}
        if self.feed is not None:
            deleted.update(self._from_feed(started, listed=done.keys))
        if not deleted and not self.full_list:
            return []  # nothing to look up in the destination
        replace = self.resource.compute_table_schema().get("write_disposition") == "replace"
        destination = _Destination.current(self._table_name(), self._key_names(), replace)
        if self.full_list and destination is not None and self._complete(done):
            live_keys = list(destination.live_keys())
            for key, listed in zip(live_keys, done.keys.among(live_keys), strict=True):
                if not listed:
                    deleted.setdefault(key, started)
        if not deleted:
            return []
        if destination is None:  # outside a pipeline: tombstones
            return [self._tombstone(key, when) for key, when in deleted.items()]
        live = destination.live_keys()
        deleted = {key: when for key, when in deleted.items() if key in live}
        if self.mode == "hard":
            # a replaced table drops what its listing lacks by itself
            return [] if replace else [self._tombstone(key, when) for key, when in deleted.items()]
        return destination.rows_marked(deleted)

    def _complete(self, done: _ListingDone) -> bool:
        """Whether a deletion may be inferred from this listing."""
        if done.repeated:
            logger.warning(
                "%s: resource `%s`: a key came twice in one listing (the list shifted while "
                "it paged); no deletion is inferred from it this run",
                self.connector,
                self.resource.name,
            )
            return False
        if self._limited():
            logger.info(
                "%s: resource `%s`: listing limited; no deletion is inferred from it",
                self.connector,
                self.resource.name,
            )
            return False
        return True

    def _from_feed(self, started: datetime, listed: ListedKeys) -> dict[tuple[str, ...], datetime]:
        feed = self.feed
        assert feed is not None and self.client is not None
        state = dlt.current.resource_state() if feed.since_param else {}
        params = dict(feed.params)
        stored = state.get("deleted_since") if feed.since_param else None
        if feed.since_param:
            since = stored or feed.initial_since or EPOCH
            if stored:
                since = iso_utc_seconds(
                    to_datetime(since) - timedelta(seconds=feed.since_lag_seconds)
                )
            params[feed.since_param] = since
        deleted: dict[tuple[str, ...], datetime] = {}
        latest: datetime | None = None
        for page in self.client.paginate(
            feed.path,
            params=params,
            paginator=deepcopy(feed.paginator),
            data_selector=feed.data_selector,
            hooks=self.hooks,
        ):
            for entry in page:
                if entry.get(feed.key) is None:
                    continue
                # an entry without its deletion time: deleted before this sync started
                reported = entry.get(feed.deleted_at) if feed.deleted_at else None
                when = to_datetime(reported) if reported else started
                key: tuple[str, ...] = (str(entry[feed.key]),)
                deleted[key] = when
                self._raw_keys[key] = (entry[feed.key],)
                latest = when if latest is None or when > latest else latest
        # a record deleted while this sync paged: the rest of the list shifted back one
        # place, and an unchanged record at a page boundary may never have been served.
        # The resource's cursor holds where the sync started, so the next sync reads the
        # same range again (the feed's times are whole seconds, on the server's clock)
        during = [when for when in deleted.values() if when >= started - CLOCK_SLACK]
        if during and self.resource.incremental is not None:
            hold_cursor(
                self.resource.name,
                f"{len(during)} record(s) deleted while the sync paged (the deletion feed)",
            )
        # a record listed and deleted in this same run: its listed copy would win the
        # merge; the next run reads the feed from just before its deletion again
        keys = list(deleted)
        twice = [key for key, held in zip(keys, listed.among(keys), strict=True) if held]
        again = [deleted[key] for key in twice]
        for key in twice:
            del deleted[key]
        if feed.since_param and latest is not None:
            keep = min(again) - timedelta(seconds=1) if again else latest
            if stored is None or keep > to_datetime(stored):
                state["deleted_since"] = iso_utc_seconds(keep)
        return deleted

    # -- helpers -----------------------------------------------------------------------
    def _key_names(self) -> list[str]:
        return key_names_of(self.resource)

    def _table_name(self) -> str:
        return str(self.resource.table_name)

    def _limited(self) -> bool:
        return any(isinstance(step, LimitItem) for step in pipe_steps(self.resource))

    def _tombstone(self, key: tuple[Any, ...], when: datetime) -> dict[str, Any]:
        raw = self._raw_keys.get(key, key)
        return {**dict(zip(self._key_names(), raw, strict=True)), DELETED_AT: when}


def track_deletions(
    resource: DltResource,
    connector: str,
    mode: DeletionMode,
    *,
    full_list: bool = False,
    feed: DeletionFeed | None = None,
    client: RESTClient | None = None,
    hooks: Mapping[str, Any] | None = None,
) -> DltResource:
    """Make `resource` learn deletions from its full listing and/or a feed (see the
    module), in place. `client` (with `hooks`) requests the feed.

    Returns:
        `resource`.
    """
    if feed is not None and client is None:
        raise ConfigurationError(f"{connector}: `{resource.name}`: a deletion feed needs a client")
    if full_list or feed is not None:
        resource.add_step(Deletions(resource, connector, mode, full_list, feed, client, hooks))
    return resource


def learns_deletions(resource: DltResource) -> str:
    """How `resource` learns deletions: `"feed"`, `"full_list"` or `"none"` (as the
    catalog says it, `shared.tooling.catalog`)."""
    for step in pipe_steps(resource):
        if isinstance(step, Deletions):
            return "feed" if step.feed is not None else "full_list"
    return "none"


def note_listing(listing: DltResource, loader: DltResource) -> DltResource:
    """Make `listing` (a hidden resource doing the HTTP for `loader`, which loads its
    rows) send the end of each finished listing on to `loader`'s `Deletions` step."""
    listing.add_step(NoteListing(key_names_of(loader)))
    return listing


class ListingKeys:
    """The keys of the rows of one listing, noted as its pages go by; `end()` is the item
    that follows the listing once it ran to its end, for the loading resource's
    `Deletions` step (for a listing read elsewhere, e.g. through `shared.rest.fan_in`'s
    union)."""

    def __init__(self, key_names: Sequence[str]) -> None:
        self.key_names = list(key_names)
        self.keys = ListedKeys()

    def note(self, page: Any) -> None:
        for row in page if isinstance(page, list) else [page]:
            if type(row) is dict:
                self.keys.add(tuple(str(row.get(name)) for name in self.key_names))

    def end(self) -> DataItemWithMeta:
        return DataItemWithMeta(_ListingEndMeta(_ListingDone(self.keys)), [])


def key_names_of(resource: DltResource) -> list[str]:
    """The primary key columns of `resource`'s table."""
    columns = resource.compute_table_schema().get("columns", {})
    return [name for name, column in columns.items() if column.get("primary_key")]


def _noting_keys(pages: Iterator[Any], key_names: Sequence[str]) -> Iterator[Any]:
    listing = ListingKeys(key_names)
    for page in pages:
        listing.note(page)
        yield page
    yield listing.end()


def _sync_started_at() -> datetime:
    """The sync's start (its load id is the moment the extract began); now outside one."""
    try:
        return datetime.fromtimestamp(float(load_package_state()["load_id"]), tz=timezone.utc)
    except Exception:  # outside a pipeline: no load package
        return datetime.now(timezone.utc)


class _Destination:
    """One table of the running pipeline's destination, read through its SQL client."""

    def __init__(
        self, pipeline: Any, table: str, key_names: Sequence[str], replace: bool = False
    ) -> None:
        self.pipeline = pipeline
        #: a table replaced every run: a row marked deleted is emitted again every run,
        #: with the `_deleted_at` it has, or the replace would drop it
        self.replace = replace
        self.schema = pipeline.default_schema if pipeline.default_schema_name else None
        naming = self.schema.naming if self.schema is not None else SnakeCase()
        self.table = naming.normalize_table_identifier(table)
        self.keys = [naming.normalize_identifier(name) for name in key_names]
        stored = self.schema.tables.get(self.table, {}) if self.schema is not None else {}
        self.exists = bool(stored.get("columns")) and bool(self.keys)
        self.has_column = DELETED_AT in stored.get("columns", {})
        self._live: set[tuple[str, ...]] | None = None

    @classmethod
    def current(
        cls, table: str, key_names: Sequence[str], replace: bool = False
    ) -> _Destination | None:
        """The running pipeline's destination table; None outside a pipeline. A table
        that cannot be read (no SQL client, nothing loaded yet) has no rows, nor has one
        this run drops before it loads (a full refresh: dlt's `refresh`)."""
        try:
            package = load_package_state()
        except Exception:
            return None  # iterated outside a pipeline
        pipeline = dlt.current.pipeline()
        destination = cls(pipeline, table, key_names, replace)
        dropped = package["state"].get("dropped_tables") or ()
        if destination.table in {str(dropped_table.get("name")) for dropped_table in dropped}:
            destination.exists = False
        if destination.exists:
            try:
                with pipeline.sql_client():  # raises when the destination has none
                    pass
            except Exception as why:
                logger.warning("deletions: the destination cannot be read (%s)", why)
                destination.exists = False
        return destination

    def _query(self, sql: Callable[[Any], str], *args: Any) -> list[dict[str, Any]]:
        """The rows `sql(client)` selects; none when the table is not there yet."""
        with self.pipeline.sql_client() as client:
            try:
                with client.execute_query(sql(client), *args) as cursor:
                    names = [column[0] for column in cursor.description]
                    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            except DatabaseUndefinedRelation:
                return []

    def _live_condition(self, client: Any) -> str:
        if not self.has_column or self.replace:
            return "1 = 1"
        return f"{client.escape_column_name(DELETED_AT)} IS NULL"

    def live_keys(self) -> set[tuple[str, ...]]:
        """The keys of the table's live rows (of a replaced table: all its rows)."""
        if self._live is not None:
            return self._live
        self._live = set()
        if not self.exists:
            return self._live

        def sql(client: Any) -> str:
            columns = ", ".join(client.escape_column_name(k) for k in self.keys)
            return (
                f"SELECT {columns} FROM {client.make_qualified_table_name(self.table)} "
                f"WHERE {self._live_condition(client)}"
            )

        self._live = {tuple(str(row[k]) for k in self.keys) for row in self._query(sql)}
        return self._live

    def rows_marked(self, deleted: Mapping[tuple[str, ...], datetime]) -> list[dict[str, Any]]:
        """The live rows with keys in `deleted`, as they were loaded (child-table rows
        nested back in), with `_deleted_at` set."""
        if not deleted:
            return []
        rows = self._rows(self.table, self.keys, list(deleted))
        self._nest(self.table, rows)
        result = []
        for row in rows:
            key = tuple(str(row[k]) for k in self.keys)
            data = {k: v for k, v in row.items() if not k.startswith(DLT_COLUMNS_PREFIX)}
            data[DELETED_AT] = data.get(DELETED_AT) or deleted[key]
            result.append(data)
        return result

    def _rows(
        self, table: str, columns: Sequence[str], values: Sequence[tuple[Any, ...]]
    ) -> list[dict[str, Any]]:
        """The rows of `table` whose `columns` hold one of `values` (compared as text);
        of the root table, only live ones."""
        rows: list[dict[str, Any]] = []
        for start in range(0, len(values), QUERY_CHUNK):
            chunk = values[start : start + QUERY_CHUNK]

            def sql(client: Any, chunk: Sequence[tuple[Any, ...]] = chunk) -> str:
                one = " AND ".join(
                    f"CAST({client.escape_column_name(c)} AS VARCHAR) = %s" for c in columns
                )
                match = " OR ".join(f"({one})" for _ in chunk)
                live = self._live_condition(client) if table == self.table else "1 = 1"
                return (
                    f"SELECT * FROM {client.make_qualified_table_name(table)} "
                    f"WHERE ({match}) AND {live}"
                )

            rows.extend(self._query(sql, *[str(v) for key in chunk for v in key]))
        return rows

    def _nest(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Put each child table's rows back into `rows` as the nested lists they came
        from (a child of only `value` was a list of values)."""
        assert self.schema is not None
        children = [
            name
            for name, schema in self.schema.tables.items()
            if schema.get("parent") == table and schema.get("columns")
        ]
        if not children or not rows:
            return
        ids = [(row["_dlt_id"],) for row in rows if row.get("_dlt_id") is not None]
        for child in children:
            child_rows = self._rows(child, ["_dlt_parent_id"], ids)
            self._nest(child, child_rows)
            by_parent: dict[Any, list[dict[str, Any]]] = defaultdict(list)
            for child_row in sorted(child_rows, key=lambda r: r.get("_dlt_list_idx") or 0):
                by_parent[child_row["_dlt_parent_id"]].append(child_row)
            data_columns = [
                c
                for c in self.schema.tables[child]["columns"]
                if not c.startswith(DLT_COLUMNS_PREFIX)
            ]
            values_only = data_columns == ["value"]
            key = child[len(table) + 2 :]
            for row in rows:
                nested = by_parent.get(row.get("_dlt_id"), [])
                if not nested:
                    continue
                row[key] = [
                    n["value"]
                    if values_only
                    else {k: v for k, v in n.items() if not k.startswith(DLT_COLUMNS_PREFIX)}
                    for n in nested
                ]


__all__ = [
    "DELETED_AT",
    "DELETION_MODES",
    "DeletionFeed",
    "DeletionMode",
    "Deletions",
    "ListingKeys",
    "NoteListing",
    "deletion_columns",
    "deletion_mode",
    "key_names_of",
    "learns_deletions",
    "note_listing",
    "track_deletions",
]
