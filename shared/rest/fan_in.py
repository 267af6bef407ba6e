"""Children of several parents: one child list requested for every row that any of
several resources yields, each row once per sync.

dlt feeds a transformer from exactly one parent pipe, and a `rest_api` child names one
parent resource. Some APIs define a child list over the rows of several lists: a story's
comments, for every story listed under an epic, a group or an iteration (one story may
sit under all three). A spec states that with a list of parents::

    {"name": "stories_comments", "endpoint": {"path": "/v1/stories/{story_id}/comments"},
     "parent": {"resource": ["epics_stories", "groups_stories", "iterations_stories"],
                "field": "id", "column": "story_id"}}

dlt can join pipes only where they start, so `build_resources` reads every list those
parents hang from (the parents, their ancestors and everything else under the same
top-level lists) through one hidden resource, the *union* (`<a>__<b>__<c>__union`): it
extracts them inside itself with dlt's own iterator (child requests still run
concurrently) and yields their pages as they came, each row tagged with the list it came
from. Then:

- each of those lists' tables is a transformer over the union that keeps its own rows,
  with the spec's table hints and client-side cursor (`shared.rest.client_incremental`'s
  split, with the union as the listing); a list marked `large_pages` loads its pages as
  Arrow tables (`shared.arrow.tables`), as it would outside a union;
- the child of several parents is an ordinary child of a hidden filter over the union
  that passes each parent row once per sync, by the parent's `field`, each row a page of
  its own (each child request can start as soon as its row is seen).

Every list is requested once, and the children see exactly the rows the tables load.
Everything else goes through `shared.rest.client_incremental.build_resources` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dlt
from dlt.common.schema import Schema
from dlt.extract.exceptions import CurrentSourceNotAvailable
from dlt.extract.items import DataItemWithMeta
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from shared.arrow.tables import BATCH_ROWS
from shared.collector import fewer_collections
from shared.errors import ConfigurationError
from shared.incremental.deletions import ListingKeys
from shared.rest import builder, client_incremental
from shared.rest.builder import SourceHttp

UNION_SUFFIX = "__union"
FIRST_SEEN_SUFFIX = "__first_seen"
#: the tag on (a copy of) the last row of each page a list read by a union yields: the
#: list's name; the union yields the list's pages as they came, untouched
PAGE_END = "_fan_in_page_of"


def build_resources(
    http: SourceHttp,
    resources: Sequence[dict[str, Any]],
    defaults: dict[str, Any] | None = None,
    **options: Any,
) -> list[DltResource]:
    """`shared.rest.client_incremental.build_resources`, where a child's `parent.resource` may
    also be a list of resources.

    Args:
        http: how the source talks HTTP.
        resources: the connector's resource table (see `shared.rest.builder`).
        defaults: dlt `resource_defaults`.
        options: further `shared.rest.builder.build_resources` arguments
            (`parallel_children`, `file_format`, `session`).

    Returns:
        The resources in the order of `resources` (unions and filters stay hidden).
    """
    defaults = defaults or {}
    if options.get("reconcile"):
        resources = builder.reconciled(resources, defaults)
    specs = {spec["name"]: spec for spec in resources}
    fan_ins = [spec for spec in resources if _parents(spec) is not None]
    if not fan_ins:
        return client_incremental.build_resources(http, resources, defaults, **options)

    session = options.pop("session", None) or http.session()
    file_format = options.get("file_format", builder.DEFAULT_FILE_FORMAT)
    derived: dict[str, DltResource] = {}
    #: per union's first-seen filter: the filter, and the field it passes each value of once
    filters: dict[str, tuple[DltResource, str]] = {}
    rebound: dict[str, dict[str, Any]] = {}
    for spec in fan_ins:
        feeders = _parents(spec) or []
        key = spec["parent"]["field"]
        name = "__".join(feeders) + UNION_SUFFIX
        filter_name = name + FIRST_SEEN_SUFFIX
        if filter_name in filters and filters[filter_name][1] != key:
            raise ConfigurationError(
                f"{http.connector}: `{spec['name']}` takes `{key}` from its parents, another "
                f"child of the same parents `{filters[filter_name][1]}`; use one field"
            )
        if filter_name not in filters:
            members = _component(http.connector, spec["name"], feeders, specs)
            if taken := sorted(set(members) & set(derived)):
                raise ConfigurationError(
                    f"{http.connector}: `{spec['name']}` needs {', '.join(taken)}, already "
                    "read by another union; give children of several parents the same parents"
                )
            inner = builder.build_resources(
                http,
                [_listing_copy(http.connector, specs[member]) for member in members],
                defaults,
                session=session,
                parallel_children=options.get("parallel_children", True),
                file_format=None,
                arrow_tables=False,  # the union hands on rows
            )
            children = {s["name"] for s in fan_ins if _parents(s) == feeders}
            # the tables of lists that learn deletions from their full listing
            listed = {
                member: _key_names(specs[member], defaults)
                for member in members
                if specs[member].get("deletions")
            }
            union = _union(name, inner, feeders, key, http.connector, children, listed)
            for member in members:
                derived[member] = _table(specs[member], defaults, union, file_format)
            first_seen = dlt.transformer(
                _first_seen, data_from=union, name=filter_name, selected=False
            )
            filters[filter_name] = (first_seen, key)
        rebound[spec["name"]] = {**spec, "parent": {**spec["parent"], "resource": filter_name}}

    rest = [rebound.get(spec["name"], spec) for spec in resources if spec["name"] not in derived]
    built = client_incremental.build_resources(
        http,
        rest,
        defaults,
        session=session,
        parents={name: first_seen for name, (first_seen, _) in filters.items()},
        **options,
    )
    # the lists read through a union are tables too, finished like any other; those with
    # large pages load as Arrow tables, as outside a union (the others' rows, and their
    # first sync, go through dlt's normalizer and merge)
    builder.finish_resources(
        list(derived.values()),
        http,
        session,
        specs=specs,
        deletions=options.get("deletions", "soft"),
        file_format=file_format,
        arrow_tables=options.get("arrow_tables", True),
        large_pages={spec["name"] for spec in resources if spec.get("large_pages")},
        append_first_sync=False,
    )
    by_name = {resource.name: resource for resource in built} | derived
    return [by_name[spec["name"]] for spec in resources]


def _parents(spec: dict[str, Any]) -> list[str] | None:
    """The parents of a child of several parents, or None."""
    parent = spec.get("parent")
    if not parent or isinstance(parent["resource"], str):
        return None
    return list(parent["resource"])


def _component(
    connector: str, child: str, feeders: Sequence[str], specs: dict[str, dict[str, Any]]
) -> list[str]:
    """Every resource under the top-level lists the feeders hang from, parents first."""

    def root(name: str) -> str:
        if name not in specs:
            raise ConfigurationError(
                f"{connector}: `{child}` names unknown parent `{name}`; the parent must be "
                f"one of the resources: {', '.join(specs)}"
            )
        if _parents(specs[name]) is not None:
            raise ConfigurationError(
                f"{connector}: `{child}` is fed by `{name}`, which has several parents "
                "itself; a parent of a fan-in must have at most one parent"
            )
        parent = specs[name].get("parent")
        return root(parent["resource"]) if parent else name

    roots = {root(feeder) for feeder in feeders}
    members: list[str] = []
    for name, spec in specs.items():
        if _parents(spec) is None and _root_or_none(name, specs) in roots:
            members.append(name)
    return members


def _root_or_none(name: str, specs: dict[str, dict[str, Any]]) -> str | None:
    seen = set()
    while name in specs and name not in seen:
        seen.add(name)
        parent = specs[name].get("parent")
        if not parent:
            return name
        if not isinstance(parent["resource"], str):
            return None
        name = parent["resource"]
    return None


def _listing_copy(connector: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as a plain listing: no cursor (the union must see every row and keeps no
    state; the table applies the cursor), always selected."""
    spec = dict(spec)
    endpoint = spec.get("endpoint") or {}
    endpoint = {"path": endpoint} if isinstance(endpoint, str) else endpoint
    if any((endpoint.get("incremental") or {}).get(k) for k in client_incremental.REQUEST_BINDINGS):
        raise ConfigurationError(
            f"{connector}: `{spec['name']}` filters by its cursor on the server; a list read "
            "through a union can only filter client-side"
        )
    spec["endpoint"] = {**endpoint, "incremental": None}
    spec.pop("selected", None)
    spec.pop("deletions", None)  # learned by the table (`_union`, `build_resources`)
    return spec


def _union(
    name: str,
    inner: Sequence[DltResource],
    feeders: Sequence[str],
    key: str,
    section: str,
    children: set[str],
    listed: dict[str, list[str]] | None = None,
) -> DltResource:
    """The hidden resource that extracts `inner` and yields their pages as they came,
    each row tagged with its list, feeder rows also with whether their `key` is new.

    Only the lists the sync needs are read: the selected tables among them, and the
    feeders when a child of several parents (one of `children`) is selected. Once every
    list ran to its end, each list in `listed` (name -> primary key) gets the end of its
    listing, for its table's deletions (`shared.incremental.deletions`)."""
    for resource in inner:
        resource.add_step(_tagger(resource.name))
    feeding = set(feeders)
    listed = listed or {}

    def needed() -> tuple[list[DltResource], set[str]]:
        """The lists to read, and those among them whose rows feed a selected child."""
        try:
            selected = set(dlt.current.source().selected_resources)
        except CurrentSourceNotAvailable:  # iterated outside a pipeline: read everything
            return list(inner), feeding
        feeds = feeding if selected & children else set()
        wanted = selected | feeds
        # a list's parents are read as its parents, yielded only when wanted themselves
        return [resource for resource in inner if resource.name in wanted], feeds

    def pages() -> Iterator[DataItemWithMeta]:
        with fewer_collections():
            yield from _pages()

    def _pages() -> Iterator[DataItemWithMeta]:
        seen: set[Any] = set()  # per extraction: a new sync requests every child again
        page: list[dict[str, Any]] = []
        # a list's consecutive pages, gathered up to `BATCH_ROWS` rows: dlt's work per
        # item (and per Arrow table) is paid per batch, not per page
        gathered: dict[str, list[dict[str, Any]]] = {}
        # dlt's iterator hands on a page's rows one after another: a page ends at its
        # last row, which `_tagger` tagged with the page's list
        lists, feeds = needed()
        keys = {
            resource.name: ListingKeys(listed[resource.name])
            for resource in lists
            if resource.name in listed
        }
        for row in DltSource(Schema(section), section, lists):
            origin = row.pop(PAGE_END, None)
            page.append(row)
            if origin is None:
                continue
            if origin in keys:
                keys[origin].note(page)
            first_seen = []
            if origin in feeds:
                for item in page:
                    value = item.get(key)
                    if value is not None and value not in seen:
                        first_seen.append(item)
                    seen.add(value)
            rows = gathered.setdefault(origin, [])
            rows.extend(page)
            page = []
            # a feeder's new rows go on at once: their child requests can start
            if first_seen or len(rows) >= BATCH_ROWS:
                yield DataItemWithMeta(UnionPage(origin, first_seen), gathered.pop(origin))
        for origin, rows in gathered.items():
            yield DataItemWithMeta(UnionPage(origin, []), rows)
        for origin, listing in keys.items():
            yield DataItemWithMeta(UnionPage(origin, [], listing.end()), [])

    return dlt.resource(pages, name=name, selected=False)


class UnionPage:
    """The meta of a page a union yields: the list it came from, and its rows whose
    fan-in children are requested (those whose key the sync sees for the first time)."""

    def __init__(
        self, origin: str, first_seen: list[dict[str, Any]], end: DataItemWithMeta | None = None
    ) -> None:
        self.origin = origin
        self.first_seen = first_seen
        #: the end of the list's listing (`shared.incremental.deletions.ListingKeys.end`)
        self.end = end


def _tagger(origin: str) -> Callable[[Any, Any], Any]:
    """A pipe step: the last row of each page (a copy) tagged with the page's list."""

    def tag(page: Any, meta: Any = None) -> Any:
        if not isinstance(page, list):
            return {**page, PAGE_END: origin}
        if not page:
            return page
        return [*page[:-1], {**page[-1], PAGE_END: origin}]

    return tag


def _first_seen(page: list[dict[str, Any]], meta: Any = None) -> Iterator[DataItemWithMeta]:
    for row in meta.first_seen if isinstance(meta, UnionPage) else []:
        # a one-row page: each child request can start as soon as its row is seen; the
        # union's meta stays behind
        yield DataItemWithMeta(None, [row])


def _key_names(spec: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    key = spec.get("primary_key", defaults.get("primary_key")) or []
    return [key] if isinstance(key, str) else list(key)


def _table(
    spec: dict[str, Any], defaults: dict[str, Any], union: DltResource, file_format: Any
) -> DltResource:
    """The table of one list read through `union`: its rows, hints and client-side cursor."""
    name = spec["name"]

    def own_rows(page: list[dict[str, Any]], meta: Any = None) -> Iterator[DataItemWithMeta]:
        if isinstance(meta, UnionPage) and meta.origin == name:
            if meta.end is not None:
                yield meta.end
                return
            # the list's page as it came; the union's meta stays behind
            yield DataItemWithMeta(None, page)

    hints = {key: spec.get(key, defaults.get(key)) for key in client_incremental.TABLE_HINTS}
    table = dlt.transformer(
        own_rows,
        data_from=union,
        name=name,
        file_format=file_format,
        **{key: value for key, value in hints.items() if value is not None},
    )
    if cursor := client_incremental.client_side_cursor(spec, defaults):
        table.apply_hints(incremental=dlt.sources.incremental(**cursor))
    return table
