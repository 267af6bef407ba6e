"""Every access this project makes to dlt's private API, in one place.

dlt's public API does not cover a few things the catalog needs: counting nested-table
rows written by the Arrow path, not computing a table's schema again for each of its
Arrow items while their Arrow schema stays the same, the hint variants a resource keeps
per table, the steps of a resource's pipe, the hook dlt's `rest_api` wraps each response
action in, the thread name that shares dlt's per-thread context, the parent-key column
name `rest_api` gives a child's parent field, iterating a source outside a pipeline
with a state of its own, knowing which resource (and table) each item comes from, and
the cursor state an `Incremental` is bound to for a sync (which the cursor guard caps,
holds and restores). Each is reached from here only, so a dlt upgrade that moves one
breaks this module, and its tests, not a connector.

Each is checked against the dlt it runs on (`TESTED_DLT`: the versions CI runs, dlt 1.28
and the newest 1.x): where what it needs is missing, one WARNING names the dlt version
and what falls back to dlt's own path (`arrow_tables_supported`: the Arrow path leaves
rows to dlt's normalizer; `after_extract_and_before_load`: first syncs merge as later
ones do; `make_parent_key_name`: rest_api's naming, kept here). The page check, which
has no fallback that keeps bad pages out, is checked when a source is built
(`require_page_check_reachable`): the build fails loudly rather than letting bad pages
through silently; so is the bound cursor state (`require_cursor_state_reachable`),
without which a cursor could not be held back.
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, TypeVar

import dlt

from shared.errors import ConnectorError

try:
    from dlt.sources.rest_api.config_setup import make_parent_key_name
except ImportError:  # a dlt that moved it: the name rest_api gives, `_<parent>_<field>`

    def make_parent_key_name(resource_name: str, field_name: str) -> str:
        return f"_{resource_name}_{field_name}"


T = TypeVar("T")
logger = logging.getLogger(__name__)

#: the dlt versions this module's private accesses are tested on (lowest and newest)
TESTED_DLT = ((1, 28), (1, 31))

__all__ = [
    "after_extract_and_before_load",
    "first_sync_hooks_problem",
    "arrow_tables_supported",
    "bound_cursor_state",
    "require_cursor_state_reachable",
    "set_cursor_resume_value",
    "store_cursor_value",
    "WRITES_NESTED_TABLES",
    "count_nested_tables_by_resource",
    "find_in_response_hooks",
    "hints_variants",
    "iterate_with_origin",
    "make_parent_key_name",
    "pipe_generator",
    "pipe_steps",
    "remove_pipe_step",
    "remove_steps_of",
    "require_page_check_reachable",
    "thread_name_sharing_dlt_context",
]


def dlt_version() -> tuple[int, int]:
    """dlt's (major, minor) version."""
    major, minor, *_ = (re.findall(r"\d+", dlt.__version__) + ["0", "0"])[:2]
    return int(major), int(minor)


def _untested() -> str:
    low, high = TESTED_DLT
    version = dlt_version()
    if low <= version <= high:
        return ""
    return f" (dlt {dlt.__version__}; tested on {low[0]}.{low[1]} to {high[0]}.{high[1]})"


@cache
def arrow_tables_supported() -> bool:
    """Whether the dlt running here has what the Arrow path (`shared.arrow.tables`) reaches
    into: a resource's `_hints_variants` and pipe steps, and the extract's metrics to
    count nested tables (`count_nested_tables_by_resource`). If not, one WARNING, and
    every resource's rows go to dlt's own normalizer (the same tables, slower)."""
    probe = dlt.resource([], name="probe")
    pipe = getattr(probe, "_pipe", None)
    missing = [
        name
        for name, present in (
            (
                "a resource's `_hints_variants`",
                isinstance(getattr(probe, "_hints_variants", None), dict),
            ),
            ("a pipe's `steps`", isinstance(getattr(pipe, "steps", None), list)),
            ("a pipe's `remove_step`", callable(getattr(pipe, "remove_step", None))),
        )
        if not present
    ]
    if not missing:
        problem = _extract_metrics_problem()
        if problem is None:
            count_nested_tables_by_resource()
            reuse = _table_schema_reuse_problem()
            if reuse is None:
                keep_table_schemas_of_nested_writers()
            else:  # dlt computes every item's table schema: the same tables, slower
                _warn_once(f"this dlt lacks {reuse}{_untested()}: the Arrow path runs slower")
            return True
        missing.append(problem)
    logger.warning(
        "this dlt lacks %s%s: rows load through dlt's own normalizer (the same tables, slower)",
        ", ".join(missing),
        _untested(),
    )
    return False


class PageCheckUnreachable(ConnectorError):
    """The dlt running here hides response actions where the page check cannot find them."""


@cache
def require_page_check_reachable(kind: type) -> None:
    """Fail loudly unless a response action of `kind` (the page check) can be found again
    among the hooks dlt's `rest_api` makes of it (`find_in_response_hooks`): without
    it, pages that are not pages would load (or fail obscurely) instead of being retried
    and then failing the sync with a clear error."""
    from dlt.sources.rest_api.config_setup import create_response_hooks

    probe: Any = object.__new__(kind)
    hooks = create_response_hooks([probe])
    if find_in_response_hooks(hooks, kind) is not probe:
        raise PageCheckUnreachable(
            f"dlt {dlt.__version__} wraps a resource's response actions in a way this "
            "catalog cannot see (the page check would be lost: bad pages would load); "
            f"use a dlt from {TESTED_DLT[0][0]}.{TESTED_DLT[0][1]} to "
            f"{TESTED_DLT[1][0]}.{TESTED_DLT[1][1]}, or update shared/_dlt_compat.py"
        )


class CursorStateUnreachable(ConnectorError):
    """The dlt running here keeps an `Incremental`'s bound state where the guard cannot."""


#: what dlt's `Incremental` keeps per sync and the cursor guard reads and writes: the state
#: dict it is bound to, and the value the sync resumes from
CURSOR_STATE_ATTRIBUTES = ("_cached_state", "_cached_state_start_value")


@cache
def require_cursor_state_reachable() -> None:
    """Fail loudly unless dlt's `Incremental` keeps its bound state in the attributes the
    cursor guard reads (`CURSOR_STATE_ATTRIBUTES`): without them a cursor could not be
    capped at the sync's start or held back after a failed page."""
    from dlt.extract.incremental import Incremental

    probe: Incremental[Any] = Incremental("updated_at")
    missing = [name for name in CURSOR_STATE_ATTRIBUTES if not hasattr(probe, name)]
    if missing:
        raise CursorStateUnreachable(
            f"dlt {dlt.__version__}'s Incremental keeps no {', '.join(missing)} (the cursor "
            "guard could not cap or hold cursors); use a dlt from "
            f"{TESTED_DLT[0][0]}.{TESTED_DLT[0][1]} to {TESTED_DLT[1][0]}.{TESTED_DLT[1][1]}, "
            "or update shared/_dlt_compat.py"
        )


def bound_cursor_state(incremental: Any) -> dict[str, Any] | None:
    """The state dict dlt bound `incremental` to for this sync (`last_value`,
    `unique_hashes`, `start_value`); None before it is bound."""
    state: dict[str, Any] | None = incremental._cached_state
    return state


def store_cursor_value(incremental: Any, value: Any, hashes: list[Any] | None = None) -> None:
    """Make `value` (and the boundary row `hashes`, default none) the cursor's last value
    for the rest of this sync: in its bound state and in the copy dlt 1.29+ keeps."""
    state = incremental._cached_state
    state["last_value"] = value
    state["unique_hashes"] = list(hashes or [])
    if getattr(incremental, "_current_last_value", None) is not None:  # dlt >= 1.29
        incremental._current_last_value = value


def set_cursor_resume_value(incremental: Any, value: Any) -> None:
    """The value dlt stores as where this sync started (the state's `start_value`)."""
    incremental._cached_state_start_value = value


def hints_variants(resource: Any) -> dict[str, Any]:
    """The per-table hint variants a resource keeps (dlt's `_hints_variants`), which the
    Arrow path fills for the child tables it writes."""
    variants: dict[str, Any] = resource._hints_variants
    return variants


def pipe_steps(resource: Any) -> list[Any]:
    """The steps of a resource's pipe, in order."""
    steps: list[Any] = resource._pipe.steps
    return steps


def pipe_generator(resource: Any) -> Any:
    """The generator (or generator function, before binding) a resource's pipe starts
    from, or None."""
    return getattr(getattr(resource, "_pipe", None), "gen", None)


def remove_pipe_step(resource: Any, index: int) -> None:
    """Remove the step at `index` from a resource's pipe."""
    resource._pipe.remove_step(index)


def remove_steps_of(source: Any, kind: type) -> Any:
    """Remove every step of type `kind` from the pipes of `source` (a dlt source or
    resource), in place; returns `source`."""
    resources = source.resources.values() if hasattr(source, "resources") else [source]
    for resource in resources:
        steps = pipe_steps(resource)
        for index in reversed(range(len(steps))):
            if isinstance(steps[index], kind):
                remove_pipe_step(resource, index)
    return source


def thread_name_sharing_dlt_context(purpose: str) -> str:
    """A name for a thread started from the current one that shares its dlt context.

    dlt's context (e.g. the source section incremental state is read under) is per
    thread; dlt's Container gives a thread named `dlt-pool-<id>-...` thread <id>'s,
    which dlt 1.28 needs to read the cursor from a reader thread."""
    pool = re.match(r"dlt-pool-(\d+)-", threading.current_thread().name)
    owner = pool.group(1) if pool else threading.get_ident()
    return f"dlt-pool-{owner}-{purpose}"


def find_in_response_hooks(hooks: Mapping[str, Any] | None, kind: type[T]) -> T | None:
    """The first response hook of `kind` among a request's hooks, if any.

    It is there either itself (a `RESTClient.paginate(hooks=...)` caller) or inside the
    hook dlt's `rest_api` makes of each `response_actions` entry (a closure holding the
    action, `dlt.sources.rest_api.config_setup._create_response_action_hook`, the same
    in dlt 1.28 to 1.31).
    """
    if not hooks:
        return None
    response_hooks = hooks.get("response") or []
    if callable(response_hooks):
        response_hooks = [response_hooks]
    for hook in response_hooks:
        if isinstance(hook, kind):
            return hook
        for cell in getattr(hook, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if isinstance(value, kind):
                return value
    return None


#: set (True) on a pipe step that writes nested tables at extract time (the Arrow path's
#: `RowsToTables`): dlt's extract counts those tables' rows by their root's resource
WRITES_NESTED_TABLES = "writes_nested_tables"


def _extract_metrics_problem() -> str | None:
    """What keeps `count_nested_tables_by_resource` from wrapping this dlt's extract
    metrics, or None: a dlt outside 1.x from the lowest tested version, or an extract
    without `_compute_metrics(load_id, source)`."""
    from dlt.extract.extract import Extract

    low, high = TESTED_DLT
    version = dlt_version()
    if version < low or version[0] != high[0]:
        return f"the extract metrics of dlt {low[0]}.{low[1]} to {high[0]}.x"
    original = getattr(Extract, "_compute_metrics", None)
    try:
        parameters = list(inspect.signature(original).parameters) if original else []
    except (TypeError, ValueError):  # not a function signature can describe
        parameters = []
    if parameters[:3] != ["self", "load_id", "source"]:
        return "the extract's `_compute_metrics(load_id, source)`"
    return None


def count_nested_tables_by_resource() -> None:
    """Let dlt's extract count the rows a pipe step wrote to nested tables (by their root's
    resource), for the sources whose resources have such a step (`WRITES_NESTED_TABLES`);
    every other source's metrics are dlt's own. Call only once `_extract_metrics_problem`
    is None (`arrow_tables_supported` does); calling it again changes nothing.

    dlt's extract sums the rows of every table it wrote by `schema.get_table(t)["resource"]`,
    which only root tables carry (dlt itself writes nested tables in its normalize step).
    While it sums, the nested tables of those resources get their root's resource; it is
    removed afterwards, so the schema is exactly dlt's.
    """
    from dlt.common.schema.utils import get_root_table
    from dlt.extract.extract import Extract

    original = Extract._compute_metrics
    if getattr(original, "_counts_nested_tables", False):
        return

    def compute_metrics(self: Any, load_id: str, source: Any) -> Any:
        writers = {
            name
            for name, resource in source.selected_resources.items()
            if any(getattr(step, WRITES_NESTED_TABLES, False) for step in pipe_steps(resource))
        }
        if not writers:
            return original(self, load_id, source)
        tables = source.schema.tables
        lent = []
        for table in tables.values():
            if table.get("parent") and "resource" not in table:
                root = get_root_table(tables, table["name"])
                if root.get("resource") in writers:
                    table["resource"] = root["resource"]
                    lent.append(table)
        try:
            return original(self, load_id, source)
        finally:
            for table in lent:
                table.pop("resource", None)

    compute_metrics._counts_nested_tables = True  # type: ignore[attr-defined]
    Extract._compute_metrics = compute_metrics  # type: ignore[method-assign]


def _table_schema_reuse_problem() -> str | None:
    """What keeps `keep_table_schemas_of_nested_writers` from wrapping this dlt's Arrow
    extractor, or None."""
    from dlt.extract.extractors import ArrowExtractor

    write = getattr(ArrowExtractor, "_write_to_static_table", None)
    if _parameters(write)[:5] != ["self", "resource", "table_name", "items", "meta"]:
        return "the Arrow extractor's `_write_to_static_table(resource, table_name, items, meta)`"
    if _parameters(getattr(ArrowExtractor, "write_items", None))[:4] != [
        "self",
        "resource",
        "items",
        "meta",
    ]:
        return "the Arrow extractor's `write_items(resource, items, meta)`"
    if not callable(getattr(ArrowExtractor, "_write_item", None)):
        return "the Arrow extractor's `_write_item`"
    return None


def keep_table_schemas_of_nested_writers() -> None:
    """Let dlt's Arrow extractor skip computing a table's schema again for an Arrow item
    of a resource with a `WRITES_NESTED_TABLES` step, when the item's Arrow schema is
    the one it computed that table's schema from last, and that computation left the
    table no filter (dlt's `_filtered_tables`, `_filtered_columns`); every other item,
    and every other resource's, goes through dlt's own path. Call only once
    `_table_schema_reuse_problem` is None; calling it again changes nothing.

    dlt computes the table schema from the resource's hints and the Arrow schema for
    every Arrow item (it drops what it cached for Arrow items, whose columns may change
    from one item to the next) and merges it into the pipeline's schema: about
    3 ms an item, four items a batch of `shared.arrow.tables`. With the same Arrow
    schema and the same hints the result is the one already merged. An item carrying
    hints (`HintsMeta`: dlt merges them into the resource) forgets every table. Wraps
    `ArrowExtractor._write_to_static_table` and `write_items`, the same in dlt 1.28 to
    1.31.
    """
    from dlt.extract.extractors import ArrowExtractor
    from dlt.extract.hints import HintsMeta
    from dlt.extract.items import TableNameMeta

    original = ArrowExtractor._write_to_static_table
    if getattr(original, "_keeps_table_schemas", False):
        return

    def write_to_static_table(
        self: Any, resource: Any, table_name: str, items: Any, meta: Any
    ) -> Any:
        if not any(getattr(step, WRITES_NESTED_TABLES, False) for step in pipe_steps(resource)):
            return original(self, resource, table_name, items, meta)
        computed: dict[tuple[int, str], list[Any]] = self.__dict__.setdefault(
            "_catalog_computed_from", {}
        )
        key = (id(resource), table_name)
        schemas = [getattr(item, "schema", None) for item in items]
        if (meta is None or isinstance(meta, TableNameMeta)) and _same_schemas(
            computed.get(key), schemas
        ):
            self._write_item(table_name, resource.name, items)
            return None
        result = original(self, resource, table_name, items, meta)
        filtered = table_name in self._filtered_tables or self._filtered_columns.get(table_name)
        if isinstance(meta, HintsMeta) or filtered or None in schemas:
            computed.pop(key, None)
        else:
            computed[key] = schemas
        return result

    def write_items(self: Any, resource: Any, items: Any, meta: Any) -> Any:
        if isinstance(meta, HintsMeta) and meta.hints:
            # dlt merges the item's hints into the resource (a table variant's too, when
            # it turns the meta into the variant's table name): every table computes again
            self.__dict__.pop("_catalog_computed_from", None)
        return write(self, resource, items, meta)

    write = ArrowExtractor.write_items
    write_to_static_table._keeps_table_schemas = True  # type: ignore[attr-defined]
    ArrowExtractor._write_to_static_table = write_to_static_table  # type: ignore[method-assign]
    ArrowExtractor.write_items = write_items  # type: ignore[method-assign]


def _same_schemas(known: list[Any] | None, schemas: list[Any]) -> bool:
    """Whether the Arrow schemas `schemas` are `known`, field by field, metadata too."""
    return (
        known is not None
        and len(known) == len(schemas)
        and all(
            a is not None and b is not None and a.equals(b, check_metadata=True)
            for a, b in zip(known, schemas, strict=True)
        )
    )


def _parameters(function: Any) -> list[str]:
    try:
        return list(inspect.signature(function).parameters) if callable(function) else []
    except (TypeError, ValueError):  # not a function signature can describe
        return []


@cache
def first_sync_hooks_problem() -> str | None:
    """What keeps `after_extract_and_before_load` from hooking this dlt, or None: a dlt
    outside 1.x from the lowest tested version, or an extract, load or schema without
    the methods it wraps."""
    from dlt.common.schema import Schema
    from dlt.extract.extract import Extract
    from dlt.load.load import Load

    low, high = TESTED_DLT
    version = dlt_version()
    if version < low or version[0] != high[0]:
        return f"the extract and load steps of dlt {low[0]}.{low[1]} to {high[0]}.x"
    extract = getattr(Extract, "_extract_single_source", None)
    if getattr(extract, "_hooked", False):
        return None
    if _parameters(extract)[:3] != ["self", "load_id", "source"]:
        return "the extract's `_extract_single_source(load_id, source)`"
    if _parameters(getattr(Load, "load_single_package", None))[:3] != ["self", "load_id", "schema"]:
        return "the load's `load_single_package(load_id, schema)`"
    if not callable(getattr(Schema, "_bump_version", None)):
        return "a schema's `_bump_version()`"
    return None


def after_extract_and_before_load(
    after_extract: Callable[[Any, list[str]], None],
    before_load: Callable[[Any, Mapping[str, Any]], bool],
) -> bool:
    """Call `after_extract(source, files)` once dlt's extract of a source has run to its end,
    inside it (its pipeline and load package are current; `files`: the full paths of the
    files in the package), and `before_load(schema, package_state)` when dlt's load step
    starts on a package, with the schema it loads (a change is kept when `before_load`
    returns True: the schema becomes a version of its own, which the destination stores;
    dlt refuses a schema changed after it was read). Installed once, the first hooks win:
    `dlt.extract.extract.Extract._extract_single_source` and
    `dlt.load.load.Load.load_single_package`, the same in dlt 1.28 to 1.31.

    Returns False, after one WARNING, on a dlt without them (`first_sync_hooks_problem`):
    nothing is hooked, and the caller keeps dlt's own path."""
    from dlt.extract.extract import Extract
    from dlt.load.load import Load

    problem = first_sync_hooks_problem()
    if problem is not None:
        _warn_once(
            f"this dlt lacks {problem}{_untested()}: first syncs load through dlt's merge "
            "(the same tables, slower)"
        )
        return False
    extract = Extract._extract_single_source
    if getattr(extract, "_hooked", False):
        return True
    load = Load.load_single_package

    def extract_single_source(self: Any, load_id: str, source: Any, **kwargs: Any) -> Any:
        result = extract(self, load_id, source, **kwargs)
        storage = self.extract_storage.new_packages
        files = [storage.storage.make_full_path(path) for path in storage.list_new_jobs(load_id)]
        after_extract(source, files)
        return result

    def load_single_package(self: Any, load_id: str, schema: Any) -> Any:
        state = self.load_storage.normalized_packages.get_load_package_state(load_id)
        if before_load(schema, state):
            schema._bump_version()
        return load(self, load_id, schema)

    extract_single_source._hooked = True  # type: ignore[attr-defined]
    Extract._extract_single_source = extract_single_source  # type: ignore[method-assign]
    Load.load_single_package = load_single_package  # type: ignore[method-assign]
    return True


@cache
def _warn_once(message: str) -> None:
    logger.warning(message)


def iterate_with_origin(source: Any, state: dict[str, Any]) -> Any:
    """Iterate the selected resources of a dlt `source` as `DltSource.__iter__` does, but
    with `state` as the pipeline state (not the active pipeline's: a fresh `{}` reads
    every incremental resource from its initial value), yielding `(resource name, item,
    meta)` so a caller knows where each item belongs (dlt's iterator drops both).

    `state` is changed in place by the resources' incremental steps; nothing is stored.
    """
    from dlt.common.configuration.container import Container
    from dlt.common.configuration.resolve import inject_section
    from dlt.common.pipeline import StateInjectableContext
    from dlt.extract.pipe_iterator import ManagedPipeIterator
    from dlt.extract.source import SourceInjectableContext, SourceSchemaInjectableContext

    section_context = source._get_config_section_context()
    state_context = StateInjectableContext(state=state)  # type: ignore[arg-type]
    source_context = SourceInjectableContext(source)
    schema_context = SourceSchemaInjectableContext(source.schema)

    with (
        inject_section(section_context),
        Container().injectable_context(state_context),
        Container().injectable_context(source_context),
        Container().injectable_context(schema_context),
    ):
        iterator: Any = ManagedPipeIterator.from_pipes(source.resources.selected_pipes)
    iterator.set_context([section_context, state_context, schema_context, source_context])
    with iterator:
        for pipe_item in iterator:
            yield pipe_item.pipe.name, pipe_item.item, pipe_item.meta
