"""Every access this project makes to dlt's private API, in one place.

dlt's public API does not cover a few things the catalog needs: counting nested-table
rows written by the Arrow path, the hint variants a resource keeps per table, the steps
of a resource's pipe, the hook dlt's `rest_api` wraps each response action in, the
thread name that shares dlt's per-thread context, the parent-key column name
`rest_api` gives a child's parent field, and iterating a source outside a pipeline with
a state of its own, knowing which resource (and table) each item comes from. Each is
reached from here only, so a dlt upgrade that moves one breaks this module, and its
tests, not a connector.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any, TypeVar

from dlt.sources.rest_api.config_setup import make_parent_key_name

T = TypeVar("T")

__all__ = [
    "count_nested_tables_by_resource",
    "find_in_response_hooks",
    "hints_variants",
    "iterate_with_origin",
    "make_parent_key_name",
    "pipe_generator",
    "pipe_steps",
    "remove_pipe_step",
    "thread_name_sharing_dlt_context",
]


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


def count_nested_tables_by_resource() -> bool:
    """Let dlt's extract count rows written to nested tables (by their root's resource).

    dlt's extract sums the rows of every table it wrote by `schema.get_table(t)["resource"]`,
    which only root tables carry (dlt itself writes nested tables in its normalize step).
    While it sums, nested tables get their root's resource; it is removed afterwards, so
    the schema is exactly dlt's. Returns whether dlt's extract is the one expected.
    """
    from dlt.common.schema.utils import get_root_table
    from dlt.extract.extract import Extract

    original = getattr(Extract, "_compute_metrics", None)
    if original is None:
        return False
    if getattr(original, "_counts_nested_tables", False):
        return True

    def compute_metrics(self: Any, load_id: str, source: Any) -> Any:
        tables = source.schema.tables
        lent = []
        for table in tables.values():
            if table.get("parent") and "resource" not in table:
                root = get_root_table(tables, table["name"])
                if root.get("resource"):
                    table["resource"] = root["resource"]
                    lent.append(table)
        try:
            return original(self, load_id, source)
        finally:
            for table in lent:
                table.pop("resource", None)

    compute_metrics._counts_nested_tables = True  # type: ignore[attr-defined]
    Extract._compute_metrics = compute_metrics  # type: ignore[method-assign]
    return True


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
