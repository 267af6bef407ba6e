"""Client-side incremental loading that still feeds child resources every parent row.

An API with no server-side time filter still lets dlt skip rows whose cursor is not newer
than the stored maximum: an endpoint `incremental` with no `start_param`. But dlt applies
that filter on the resource's pipe before handing rows to its children, so an unchanged
parent would lose its child requests too, although comments or history can change
without the parent's cursor moving.

`build_resources` here splits every such parent in two:

- a hidden listing resource (`<name>__listing`) that does the HTTP and hands every row to
  the children;
- the table itself: a transformer over the listing that applies the cursor (guarded as
  every cursor is: `shared.incremental.cursors`), with the table hints (primary key, write
  disposition, ...) of the original row.

Everything else goes through `shared.rest.builder.build_resources` unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import dlt
from dlt.extract.resource import DltResource

from shared.incremental.deletions import note_listing
from shared.rest import builder
from shared.rest.builder import SourceHttp

LISTING_SUFFIX = "__listing"
#: resource keys that describe the table rather than the request
TABLE_HINTS = (
    "table_name",
    "primary_key",
    "merge_key",
    "write_disposition",
    "columns",
    "schema_contract",
    "table_format",
    "max_table_nesting",
)
#: incremental keys that bind the cursor to a request parameter (server-side filtering)
REQUEST_BINDINGS = ("start_param", "end_param", "convert", "transform")


def build_resources(
    http: SourceHttp,
    resources: Sequence[dict[str, Any]],
    defaults: dict[str, Any] | None = None,
    **options: Any,
) -> list[DltResource]:
    """`shared.rest.builder.build_resources`, with client-side incremental parents split so
    their children see every row.

    Args:
        http: how the source talks HTTP.
        resources: the connector's resource table (see `shared.rest.builder`).
        defaults: dlt `resource_defaults`.
        options: further `shared.rest.builder.build_resources` arguments
            (`parallel_children`, `file_format`, `session`).

    Returns:
        The resources in the order of `resources` (listings stay hidden and unlisted).
    """
    defaults = defaults or {}
    if options.get("reconcile"):
        resources = builder.reconciled(resources, defaults)
    specs = {spec["name"]: spec for spec in resources}
    parent_names = {spec["parent"]["resource"] for spec in resources if spec.get("parent")}
    cursors = {
        spec["name"]: cursor
        for spec in resources
        if spec["name"] in parent_names and (cursor := client_side_cursor(spec, defaults))
    }
    table = [_as_listing(spec, cursors) for spec in resources]
    # one session for the listings and the cursors: they read its server clock
    session = options.pop("session", None) or http.session()
    built = {
        resource.name: resource
        for resource in builder.build_resources(http, table, defaults, session=session, **options)
    }
    file_format = options.get("file_format", builder.DEFAULT_FILE_FORMAT)
    result: list[DltResource] = []
    for spec in resources:
        name = spec["name"]
        if name not in cursors:
            result.append(built[name])
            continue
        hints = {key: spec.get(key, defaults.get(key)) for key in TABLE_HINTS}
        table_rows = dlt.transformer(
            _pass_through,
            data_from=built[name + LISTING_SUFFIX],
            name=name,
            file_format=file_format,
            **{key: value for key, value in hints.items() if value is not None},
        )
        table_rows.apply_hints(incremental=dlt.sources.incremental(**cursors[name]))
        result.append(table_rows)
    # the listing sees the whole list; the table learns the deletions (after its cursor).
    # The table's rows come from the listing: dlt's normalizer writes them (no Arrow step),
    # and its first sync merges
    split = [resource for resource in result if resource.name in cursors]
    builder.finish_resources(
        split,
        http,
        session,
        specs=specs,
        deletions=options.get("deletions", "soft"),
        file_format=file_format,
        arrow_tables=False,
        append_first_sync=False,
    )
    for loader in split:
        if specs[loader.name].get("deletions"):
            note_listing(built[loader.name + LISTING_SUFFIX], loader)
    return result


def client_side_cursor(spec: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any] | None:
    """The `dlt.sources.incremental` arguments of a resource whose cursor filters only
    client-side (no request parameter), or None."""
    endpoint = spec.get("endpoint")
    incremental = (endpoint if isinstance(endpoint, dict) else {}).get("incremental")
    if incremental is None:
        incremental = (defaults.get("endpoint") or {}).get("incremental")
    if not incremental or any(incremental.get(key) for key in REQUEST_BINDINGS):
        return None
    return dict(incremental)


def _as_listing(spec: dict[str, Any], cursors: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The spec with split parents renamed to their hidden listing, and children pointed
    at it."""
    spec = dict(spec)
    if spec["name"] in cursors:
        spec["name"] += LISTING_SUFFIX
        spec["selected"] = False
        spec.pop("deletions", None)  # learned by the table (`build_resources`)
        endpoint = spec["endpoint"]
        endpoint = {"path": endpoint} if isinstance(endpoint, str) else endpoint
        spec["endpoint"] = {**endpoint, "incremental": None}
    parent = spec.get("parent")
    if parent and parent["resource"] in cursors:
        spec["parent"] = {**parent, "resource": parent["resource"] + LISTING_SUFFIX}
    return spec


def _pass_through(page: Any) -> Iterator[Any]:
    yield page
