"""Every connector's default path (Arrow tables, `shared.arrow.tables`) loads exactly the
tables dlt's own row normalizer loads: the same tables (child tables included), columns,
types and rows, with the same links between parent and child rows; and again after a
second, incremental run in which records changed (a nested list shrank, too). The cursors
in dlt's state are the same on both paths. A child resource with large pages
(project_tracker's `groups_stories`, with nested `labels` and `owner_ids`) is compared
too, and shown to load through the Arrow split.

Each connector syncs from its fake over loopback HTTP twice into two DuckDB files: once
through `rows_through_dlt_normalizer` (dlt's path), once as it ships.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dlt
import pytest

from connectors.analytics import analytics_source
from connectors.crm import crm_source
from connectors.hubspot_contacts import hubspot_contacts_source
from connectors.incident_analytics import incident_analytics_source
from connectors.project_tracker import project_tracker_source
from connectors.sandbox.analytics import API_KEY_AUTH, AnalyticsFake
from connectors.sandbox.crm import TOKEN as CRM_TOKEN
from connectors.sandbox.crm import CrmFake
from connectors.sandbox.hubspot_contacts import FAST as HUBSPOT_FAST
from connectors.sandbox.hubspot_contacts import TOKEN as HUBSPOT_TOKEN
from connectors.sandbox.hubspot_contacts import HubSpotContactsFake
from connectors.sandbox.incident_analytics import TOKEN as INCIDENT_TOKEN
from connectors.sandbox.incident_analytics import IncidentAnalyticsFake
from connectors.sandbox.project_tracker import API_KEY as TRACKER_KEY
from connectors.sandbox.project_tracker import ProjectTrackerFake
from shared.arrow.tables import RowsToTables, rows_through_dlt_normalizer
from shared.loading import duckdb_pipeline, run_source
from tests.dataset import query

pytestmark = pytest.mark.loopback

PAGE_VIEWS = {"name": "page_views", "path": "/v1/pageviews"}

LINKS = ("_dlt_id", "_dlt_parent_id", "_dlt_root_id")


def shrink_a_nested_list(fake: Any) -> None:
    """crm: a party changed in the second run drops from two email addresses to one."""
    party = fake.data["parties"][5]
    assert len(party["emailAddresses"]) == 2
    party["emailAddresses"].pop()


def shrink_a_group_story(fake: Any) -> None:
    """project_tracker: a story listed under a group drops from two labels to one and
    gains an owner in the second run (`groups_stories` loads in full every run)."""
    story = next(s for s in fake.stories if s["group_id"] and len(s["labels"]) == 2)
    story["labels"].pop()
    story["owner_ids"].append(799_999)
    story["name"] += " (relabelled)"


#: per connector, the resources that must load as Arrow tables (a child with large pages)
ARROW_CHILDREN = {"project_tracker": {"groups_stories"}}


CONNECTORS: dict[str, tuple[Callable[[], Any], Callable[[Any], Any], Callable[[Any], None]]] = {
    "crm": (
        CrmFake,
        lambda fake: crm_source(
            bearer_token=CRM_TOKEN, base_url=fake.base_url, requests_per_minute=60_000
        ),
        shrink_a_nested_list,
    ),
    "incident_analytics": (
        IncidentAnalyticsFake,
        lambda fake: incident_analytics_source(
            api_token=INCIDENT_TOKEN, base_url=fake.base_url, requests_per_minute=6_000_000
        ),
        lambda fake: None,
    ),
    "project_tracker": (
        ProjectTrackerFake,
        lambda fake: project_tracker_source(
            base_url=fake.base_url, api_key=TRACKER_KEY, requests_per_minute=6_000_000
        ),
        shrink_a_group_story,
    ),
    "hubspot_contacts": (
        HubSpotContactsFake,
        lambda fake: hubspot_contacts_source(
            api_key=HUBSPOT_TOKEN, base_url=fake.base_url, **HUBSPOT_FAST
        ),
        lambda fake: None,
    ),
    "analytics": (
        AnalyticsFake,
        lambda fake: analytics_source(
            base_url=fake.base_url, resources=["events", "users", PAGE_VIEWS], **API_KEY_AUTH
        ),
        lambda fake: None,
    ),
}


def extracted_tables(pipeline: dlt.Pipeline) -> set[str]:
    """The tables the last run's extract step wrote."""
    info = pipeline.last_trace.last_extract_info
    return {
        table
        for metrics in info.metrics.values()
        for step in metrics
        for table in step["table_metrics"]
    }


def data_tables(pipeline: dlt.Pipeline) -> dict[str, dict[str, Any]]:
    return {
        table["name"]: table
        for table in pipeline.default_schema.data_tables()
        if not table["name"].startswith("_dlt")
    }


def linked_rows(pipeline: dlt.Pipeline) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every table's rows, `_dlt_load_id` left out and the random ids replaced by what they
    link: a root row by its data, a child row by its parent's identity and position. Every
    `_dlt_id` is unique in the dataset, as dlt makes it."""
    tables = data_tables(pipeline)
    identity: dict[str, Any] = {}
    result: dict[str, Counter[tuple[Any, ...]]] = {}
    # parents before children: a child's table name extends its parent's
    for name in sorted(tables, key=lambda n: n.count("__")):
        names = [c for c in tables[name]["columns"] if tables[name]["columns"][c].get("data_type")]
        listed = ", ".join(f'"{c}"' for c in names)
        rows = [
            dict(zip(names, row, strict=True))
            for row in query(pipeline, f"SELECT {listed} FROM {name}")
        ]
        counted: Counter[tuple[Any, ...]] = Counter()
        for row in rows:
            # a deletion's time is each pipeline's own sync start: whether a row is marked
            # deleted is what both paths must agree on
            if row.get("_deleted_at") is not None:
                row["_deleted_at"] = "marked"
            data = tuple(
                (c, repr(v)) for c, v in sorted(row.items()) if c not in (*LINKS, "_dlt_load_id")
            )
            parent = identity.get(row.get("_dlt_parent_id")) if "_dlt_parent_id" in row else None
            root = identity.get(row.get("_dlt_root_id")) if "_dlt_root_id" in row else None
            if "_dlt_parent_id" in row:
                assert parent is not None, f"{name}: a row whose parent is not loaded"
            if "_dlt_root_id" in row:
                assert root is not None, f"{name}: a row whose root is not loaded"
            assert row["_dlt_id"] not in identity, f"{name}: a `_dlt_id` used twice"
            identity[row["_dlt_id"]] = (name, data, parent)
            counted[(data, parent, root)] += 1
        result[name] = counted
    return result


def column_types(pipeline: dlt.Pipeline) -> dict[str, list[tuple[Any, ...]]]:
    """Each table's columns in order, with their type, nullability and keys."""
    return {
        name: [
            (column, hints.get("data_type"), hints.get("nullable", True), hints.get("primary_key"))
            for column, hints in table["columns"].items()
            if hints.get("data_type")
        ]
        for name, table in data_tables(pipeline).items()
    }


def duckdb_types(pipeline: dlt.Pipeline) -> set[tuple[Any, ...]]:
    return set(
        query(
            pipeline,
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = '{pipeline.dataset_name}'",
        )
    )


def cursors(pipeline: dlt.Pipeline) -> dict[str, Any]:
    sources = pipeline.state.get("sources", {})
    resources = sources.get(pipeline.default_schema_name, {}).get("resources", {})
    return {
        name: {path: value.get("last_value") for path, value in state["incremental"].items()}
        for name, state in resources.items()
        if "incremental" in state
    }


def assert_same(
    dlt_path: dlt.Pipeline, arrow_path: dlt.Pipeline, ordered: tuple[str, ...] = ()
) -> None:
    """Both pipelines hold the same tables, columns, types, rows and cursors; the tables
    of the resources in `ordered` also have their columns in the same order (elsewhere
    the order follows which rows arrive first, which concurrent child requests change)."""
    assert set(data_tables(arrow_path)) == set(data_tables(dlt_path))
    arrow_columns, dlt_columns = column_types(arrow_path), column_types(dlt_path)
    for table in dlt_columns:
        if table.split("__")[0] in ordered:
            assert arrow_columns[table] == dlt_columns[table], table
        else:
            assert sorted(arrow_columns[table]) == sorted(dlt_columns[table]), table
    assert duckdb_types(arrow_path) == duckdb_types(dlt_path)
    expected = linked_rows(dlt_path)
    loaded = linked_rows(arrow_path)
    for table in expected:
        assert loaded[table] == expected[table], table
    assert cursors(arrow_path) == cursors(dlt_path)


# the connectors with child tables and many resources (project_tracker: 24 tables,
# synced four times, half a minute of CPU; crm; incident_analytics; hubspot_contacts) run
# in `make test-slow`, which CI runs too (newest and lowest dlt); analytics in `make test`
SLOW_EQUIVALENCE = ("project_tracker", "crm", "incident_analytics", "hubspot_contacts")


@pytest.mark.parametrize(
    "connector",
    [
        pytest.param(name, marks=pytest.mark.slow) if name in SLOW_EQUIVALENCE else name
        for name in sorted(CONNECTORS)
    ],
)
def test_default_path_loads_the_tables_dlt_normalizer_loads(connector: str, tmp_path: Path) -> None:
    make_fake, make_source, shrink = CONNECTORS[connector]
    pipelines = {
        path: duckdb_pipeline(
            f"{connector}_{path}",
            database=str(tmp_path / f"{path}.duckdb"),
            pipelines_dir=str(tmp_path / path),
        )
        for path in ("dlt", "arrow")
    }

    arrow: set[str] = set()

    def sync_both(fake: Any) -> None:
        dlt_source = rows_through_dlt_normalizer(make_source(fake))
        assert not any(
            isinstance(step, RowsToTables)
            for resource in dlt_source.resources.values()
            for step in resource._pipe.steps
        )
        run_source(pipelines["dlt"], dlt_source)
        arrow_source = make_source(fake)
        arrow.update(
            resource.name
            for resource in arrow_source.resources.values()
            if any(isinstance(step, RowsToTables) for step in resource._pipe.steps)
        )
        assert arrow  # the connector has resources on the Arrow path
        assert ARROW_CHILDREN.get(connector, set()) <= arrow
        run_source(pipelines["arrow"], arrow_source)
        # a child with large pages was split in Arrow: its nested tables were written at
        # extract (dlt's normalizer makes them after extract, on the dlt path)
        for name in ARROW_CHILDREN.get(connector, ()):
            assert {f"{name}__labels", f"{name}__owner_ids"} <= extracted_tables(pipelines["arrow"])
            assert not extracted_tables(pipelines["dlt"]) & {f"{name}__labels"}

    with make_fake() as fake:
        sync_both(fake)
        assert_same(pipelines["dlt"], pipelines["arrow"], tuple(arrow))
        # child tables are part of the comparison (hubspot's contacts are flat by contract)
        children = [table for table in data_tables(pipelines["dlt"]) if "__" in table]
        assert children or connector == "hubspot_contacts"
        for name in ARROW_CHILDREN.get(connector, ()):
            assert {f"{name}__labels", f"{name}__owner_ids"} <= set(children)

        fake.change_for_second_run()
        shrink(fake)
        sync_both(fake)
        assert_same(pipelines["dlt"], pipelines["arrow"], tuple(arrow))
