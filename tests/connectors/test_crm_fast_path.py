"""crm with `arrow_pages=True` (the fast path, BENCHMARKS.md) loads what the default path
loads: the same tables, rows, keys, values and cursor state; only nested arrays and
objects land as JSON columns of their row instead of child tables."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import date, time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dlt
import pytest

from connectors.crm import crm_source
from connectors.crm.settings import (
    OPPORTUNITY_COLUMNS,
    PARTY_COLUMNS,
    PROJECT_COLUMNS,
    TASK_COLUMNS,
)
from connectors.sandbox.crm import RECORDING, CrmFake
from shared.errors import AuthenticationError
from shared.loading import duckdb_pipeline, run_source
from tests.dataset import count, query
from tests.failures import root_cause
from tests.recording import replay

FAST_PATH = dataclasses.replace(
    RECORDING, offline_kwargs={**RECORDING.offline_kwargs, "arrow_pages": True}
)
TABLES = [
    "users",
    "parties",
    "tasks",
    "employees",
    "projects",
    "opportunities",
    "pipelines",
    "milestones",
    "site",
    "tags",
    "custom_fields",
    "lost_reasons",
    "board",
    "categories",
    "activity_types",
    "stages",
]
#: the columns the resource table types (connectors/crm/settings.py)
DECLARED = {
    "parties": PARTY_COLUMNS,
    "employees": PARTY_COLUMNS,
    "tasks": TASK_COLUMNS,
    "projects": PROJECT_COLUMNS,
    "opportunities": OPPORTUNITY_COLUMNS,
}
NESTED = {"email_addresses": "parties__email_addresses", "phone_numbers": "parties__phone_numbers"}


# the opt-in Arrow pages path (`arrow_pages=True`), against the default path: `make test-slow`
pytestmark = pytest.mark.slow


@pytest.fixture
def default_path(tmp_path: Path) -> dlt.Pipeline:
    """A second pipeline, loaded the default way from the same cassette."""
    pipeline = duckdb_pipeline(
        "default_path",
        database=str(tmp_path / "default.duckdb"),
        pipelines_dir=str(tmp_path / "default"),
    )
    replay(RECORDING, pipeline, steps=["full_sync"])
    return pipeline


def key_of(table: str) -> str:
    return "entity, id" if table in ("tags", "custom_fields") else "id"


def test_both_paths_load_the_same_tables_and_keys(
    pipeline: dlt.Pipeline, default_path: dlt.Pipeline
) -> None:
    replay(FAST_PATH, pipeline, steps=["full_sync"])

    for table in TABLES:
        if table == "site":
            assert query(pipeline, "SELECT name FROM site") == [("Example Ltd",)]
            continue
        keys = f"SELECT {key_of(table)} FROM {table} ORDER BY ALL"
        expected = query(default_path, keys)
        assert expected, table
        assert query(pipeline, keys) == expected, table
    assert count(pipeline, "parties") == 260
    assert count(pipeline, "employees") == 130


def test_both_paths_load_the_same_scalar_values_and_types(
    pipeline: dlt.Pipeline, default_path: dlt.Pipeline
) -> None:
    replay(FAST_PATH, pipeline, steps=["full_sync"])

    for table in ("parties", "employees", "tasks", "users"):
        fast = pipeline.default_schema.get_table_columns(table)
        default = default_path.default_schema.get_table_columns(table)
        # every column of the default path but dlt's own and flattened objects (`a__b`)
        scalar = sorted(
            name for name in default if not name.startswith("_dlt") and "__" not in name
        )
        assert {name: fast.get(name, {}).get("data_type") for name in scalar} == {
            name: default[name]["data_type"] for name in scalar
        }, table
        select = f"SELECT {', '.join(scalar)} FROM {table} ORDER BY id"
        assert query(pipeline, select) == query(default_path, select), table
    # the timestamps are timestamps on both paths
    assert pipeline.default_schema.get_table_columns("parties")["updated_at"]["data_type"] == (
        "timestamp"
    )


def test_nested_arrays_are_json_columns_holding_what_the_child_tables_hold(
    pipeline: dlt.Pipeline, default_path: dlt.Pipeline
) -> None:
    replay(FAST_PATH, pipeline, steps=["full_sync"])

    tables = set(pipeline.default_schema.data_table_names())
    assert not [table for table in tables if "__" in table]
    parties = pipeline.default_schema.get_table_columns("parties")
    assert {parties[column]["data_type"] for column in (*NESTED, "fields")} == {"json"}

    for column, child in NESTED.items():
        fast = sorted(
            (party_id, item["id"])
            for party_id, items in query(pipeline, f"SELECT id, {column} FROM parties")
            for item in json.loads(items)
        )
        default = query(
            default_path,
            f"SELECT p.id, c.id FROM {child} c JOIN parties p ON c._dlt_parent_id = p._dlt_id "
            "ORDER BY ALL",
        )
        assert fast == default, column
    assert len(fast) == 260
    # an object lands as one JSON column instead of flattened columns
    (served,) = [o["value"] for o in CrmFake().data["opportunities"] if o["id"] == 5003]
    (value,) = query(pipeline, "SELECT value FROM opportunities WHERE id = 5003")[0]
    assert json.loads(value) == served
    assert query(
        default_path, "SELECT value__amount, value__currency FROM opportunities WHERE id = 5003"
    ) == [(served["amount"], served["currency"])]


def test_second_run_sends_the_same_since_and_keeps_the_same_cursor_state(
    pipeline: dlt.Pipeline,
) -> None:
    replay(FAST_PATH, pipeline, steps=["full_sync"])
    (cassette,) = replay(FAST_PATH, pipeline, steps=["incremental"])

    sent = {
        urlsplit(r.uri).path: parse_qs(urlsplit(r.uri).query).get("since")
        for r in cassette.requests
    }
    assert sent["/api/v2/parties"] == ["2024-03-01T14:18:59Z"]
    assert sent["/api/v2/kases"] == ["2024-03-01T13:08:59Z"]
    assert query(pipeline, "SELECT COUNT(*), COUNT(DISTINCT id) FROM parties") == [(261, 261)]
    assert query(pipeline, "SELECT about FROM parties WHERE id = 1003") == [
        ("changed in the same second",)
    ]
    state = pipeline.state["sources"]["crm"]["resources"]["parties"]["incremental"]
    (cursor_state,) = state.values()
    assert cursor_state["last_value"] == "2024-03-01T14:25:00Z"


@pytest.fixture
def big_fake() -> Iterator[CrmFake]:
    with CrmFake(scale=5) as server:  # 1,300 parties: 13 pages, two batches
        yield server


def test_loopback_sync_of_many_pages_loads_every_party_once(
    pipeline: dlt.Pipeline, big_fake: CrmFake
) -> None:
    source = crm_source(
        bearer_token=big_fake.token,
        base_url=big_fake.base_url,
        requests_per_minute=600_000,
        arrow_pages=True,
    ).with_resources("parties", "employees")

    run_source(pipeline, source)

    party_pages = big_fake.requests_to("/api/v2/parties", method="GET")
    assert len([r for r in party_pages if r.path == "/api/v2/parties"]) == 13
    assert query(pipeline, "SELECT COUNT(*), COUNT(DISTINCT id) FROM parties") == [(1300, 1300)]
    assert count(pipeline, "employees") == 650
    assert query(
        pipeline, "SELECT COUNT(*) FROM employees e JOIN parties p ON p.id = e.organisation_id"
    ) == [(650,)]


def test_plain_pipeline_run_against_the_faithful_fake_loads_the_default_paths_tables(
    pipeline: dlt.Pipeline, big_fake: CrmFake, tmp_path: Path
) -> None:
    # the fake's pages differ in shape (a list empty in one batch, objects in the next; a
    # field null on every record of a batch): dlt's writer fails on a table's batches
    # whose Arrow schemas differ, and a plain run has no setting to let it merge them
    def source(**kwargs: object) -> object:
        return crm_source(
            bearer_token=big_fake.token,
            base_url=big_fake.base_url,
            requests_per_minute=600_000,
            **kwargs,
        )

    pipeline.run(source(arrow_pages=True))
    default_path = duckdb_pipeline(
        "default_path", database=str(tmp_path / "default.duckdb"), pipelines_dir=str(tmp_path)
    )
    run_source(default_path, source())

    fast_tables = set(pipeline.default_schema.data_table_names())
    assert fast_tables == {
        t for t in default_path.default_schema.data_table_names() if "__" not in t
    }
    for table in sorted(fast_tables):
        fast = pipeline.default_schema.get_table_columns(table)
        default = default_path.default_schema.get_table_columns(table)
        scalar = sorted(n for n in default if not n.startswith("_dlt") and "__" not in n)
        assert {n: fast[n]["data_type"] for n in scalar} == {
            n: default[n]["data_type"] for n in scalar
        }, table
        select = f"SELECT {', '.join(scalar)} FROM {table} ORDER BY ALL"
        rows = query(default_path, select)
        assert rows, table
        assert query(pipeline, select) == rows, table
    assert count(pipeline, "parties") == 1300
    for column, child in NESTED.items():
        nested = sorted(
            (party_id, item["id"])
            for party_id, items in query(pipeline, f"SELECT id, {column} FROM parties")
            for item in json.loads(items)
        )
        assert nested == query(
            default_path,
            f"SELECT p.id, c.id FROM {child} c JOIN parties p ON c._dlt_parent_id = p._dlt_id "
            "ORDER BY ALL",
        ), column


def test_rejected_token_on_the_fast_path_names_the_secret(
    pipeline: dlt.Pipeline, big_fake: CrmFake
) -> None:
    source = crm_source(
        bearer_token="wrong-token", base_url=big_fake.base_url, arrow_pages=True
    ).with_resources("parties")

    with pytest.raises(Exception) as raised:
        run_source(pipeline, source)

    error = root_cause(raised.value, AuthenticationError)
    assert error is not None
    assert "bearer_token" in str(error)
    assert "wrong-token" not in str(error)


def test_declared_date_time_and_null_columns_load_with_the_same_types_on_both_paths(
    pipeline: dlt.Pipeline, default_path: dlt.Pipeline
) -> None:
    replay(FAST_PATH, pipeline, steps=["full_sync"])

    duckdb_types = {
        "date": "DATE",
        "time": "TIME",
        "text": "VARCHAR",
        "bigint": "BIGINT",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
    }
    for table, declared in DECLARED.items():
        names = ", ".join(f"'{name}'" for name in declared)
        types = (
            "SELECT column_name, data_type FROM information_schema.columns WHERE "
            f"table_schema = '{{}}' AND table_name = '{table}' AND column_name IN ({names})"
        )
        expected = {name: duckdb_types[hints["data_type"]] for name, hints in declared.items()}
        for loaded in (default_path, pipeline):
            found = dict(query(loaded, types.format(loaded.dataset_name)))
            assert found == expected, (table, loaded.pipeline_name)
        values = f"SELECT id, {', '.join(declared)} FROM {table} ORDER BY id"
        assert query(pipeline, values) == query(default_path, values), table
    # the date-only and time-of-day values as the API sent them
    assert query(pipeline, "SELECT due_on, due_time FROM tasks WHERE id = 3000") == [
        (date(2024, 3, 1), time(18, 30))
    ]
