"""Children of several parents: one child list requested for every row that any of
several resources yields, each row once.

dlt feeds a transformer from exactly one parent pipe, and a `rest_api` child names one
parent resource. Some APIs define a child list over the rows of several lists: a story's
comments, for every story listed under an epic, a group or an iteration (one story may
sit under all three). A spec states that with a list of parents::

    {"name": "stories_comments", "endpoint": {"path": "/v1/stories/{story_id}/comments"},
     "parent": {"resource": ["epics_stories", "groups_stories", "iterations_stories"],
                "field": "id", "column": "story_id"}}

`build_resources` turns each such list into one hidden resource (`<a>__<b>__<c>__seen`)
that reads the parents' lists itself (hidden copies of the parents and their ancestors,
without cursors, extracted inside it by dlt's own iterator so child requests still run
concurrently) and yields each row once per sync, by `field`. The child is then an
ordinary child of that resource. The cost is the parents' listing requests a second
time (a few per parent row, against one per child row); the tables keep their own
resources, cursors and parents unchanged.

Everything else goes through `shared.client_incremental.build_resources` unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import dlt
from dlt.common.schema import Schema
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from shared import builder, client_incremental
from shared.builder import SourceHttp
from shared.errors import ConfigurationError

UNION_SUFFIX = "__seen"


def build_resources(
    http: SourceHttp,
    resources: Sequence[dict[str, Any]],
    defaults: dict[str, Any] | None = None,
    **options: Any,
) -> list[DltResource]:
    """`shared.client_incremental.build_resources`, where a child's `parent.resource` may
    also be a list of resources.

    Args:
        http: how the source talks HTTP.
        resources: the connector's resource table (see `shared.builder`).
        defaults: dlt `resource_defaults`.
        options: further `shared.builder.build_resources` arguments
            (`parallel_children`, `file_format`, `session`).

    Returns:
        The resources in the order of `resources` (the unions stay hidden and unlisted).
    """
    session = options.pop("session", None) or http.session()
    by_name = {spec["name"]: spec for spec in resources}
    unions: dict[str, DltResource] = {}
    table = []
    for spec in resources:
        parent = spec.get("parent")
        if not parent or isinstance(parent["resource"], str):
            table.append(spec)
            continue
        feeders = list(parent["resource"])
        name = "__".join(feeders) + UNION_SUFFIX
        if name not in unions:
            copies = _listing_copies(http.connector, spec["name"], feeders, by_name)
            built = builder.build_resources(
                http,
                copies,
                defaults,
                session=session,
                parallel_children=options.get("parallel_children", True),
                file_format=None,
            )
            unions[name] = union_of(
                name,
                [resource for resource in built if resource.name in feeders],
                parent["field"],
                http.connector,
            )
        table.append({**spec, "parent": {**parent, "resource": name}})
    return client_incremental.build_resources(
        http, table, defaults, session=session, parents=unions, **options
    )


def union_of(name: str, feeders: Sequence[DltResource], key: str, section: str) -> DltResource:
    """A hidden resource yielding every row of `feeders`, each value of `key` once per
    extraction (rows without `key` are skipped: a child cannot be requested for them).

    Args:
        name: the resource's name.
        feeders: the resources to read; they are extracted inside this one, with their
            parents.
        key: the field that identifies a row (the child's parent field).
        section: the config section (the connector's name) the feeders are extracted in.
    """

    def rows() -> Iterator[list[dict[str, Any]]]:
        seen: set[Any] = set()
        for row in DltSource(Schema(section), section, list(feeders)):
            value = row.get(key) if isinstance(row, dict) else None
            if value is None or value in seen:
                continue
            seen.add(value)
            # a one-row page: children take pages, and each starts as soon as it is seen
            yield [row]

    return dlt.resource(rows, name=name, selected=False)


def _listing_copies(
    connector: str, child: str, feeders: Sequence[str], specs: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The specs of `feeders` and their ancestors, without cursors (the copies must see
    every row and keep no state), parents before children."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name not in specs:
            raise ConfigurationError(
                f"{connector}: `{child}` names unknown parent `{name}`; the parent must be "
                f"one of the resources: {', '.join(specs)}"
            )
        parent = specs[name].get("parent")
        if parent:
            if not isinstance(parent["resource"], str):
                raise ConfigurationError(
                    f"{connector}: `{child}` is fed by `{name}`, which has several parents "
                    "itself; a parent of a fan-in must have at most one parent"
                )
            visit(parent["resource"])
        if name not in ordered:
            ordered.append(name)

    for feeder in feeders:
        visit(feeder)
    copies = []
    for name in ordered:
        spec = dict(specs[name])
        endpoint = spec.get("endpoint") or {}
        endpoint = {"path": endpoint} if isinstance(endpoint, str) else endpoint
        spec["endpoint"] = {**endpoint, "incremental": None}
        spec.pop("selected", None)
        copies.append(spec)
    return copies
