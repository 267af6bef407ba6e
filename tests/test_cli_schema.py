"""`python -m connectors schema`: every resource's tables, columns, types, keys, write
disposition, cursor and deletions, offline and without credentials (a cassette replay
through dlt's extract and normalize), as text and as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from connectors.cli.show import loaded_column
from shared.tooling.catalog import load_catalog
from tests.empty_folder import run_cli

pytestmark = pytest.mark.usefixtures("empty_folder")

CATALOG = load_catalog()


@pytest.fixture(scope="module")
def crm() -> Iterator[dict[str, Any]]:
    """`schema crm --json`, once for the module (no credentials are set in this suite)."""
    code, out, _ = run_cli("schema", "crm", "--json")
    assert code == 0
    yield json.loads(out)


def test_every_resource_has_the_catalogs_keys_disposition_cursor_parent_and_deletions(
    crm: dict[str, Any],
) -> None:
    entry = CATALOG.get("crm")

    described = [
        (
            r["name"],
            sorted(r["primary_key"]),
            r["write_disposition"],
            r["cursor"]["field"] if r["cursor"] else None,
            r["parent"],
            r["deletions"],
        )
        for r in crm["resources"]
    ]

    assert described == [
        (
            r.name,
            sorted(loaded_column(key) for key in r.primary_key),
            r.write_disposition,
            r.incremental,
            r.parent,
            r.deletions,
        )
        for r in entry.resources
    ]
    assert crm["columns_from"] == "cassettes/crm/full_sync.yaml"


def test_a_resource_lists_its_own_and_nested_tables_with_dlts_types(
    crm: dict[str, Any],
) -> None:
    (parties,) = [r for r in crm["resources"] if r["name"] == "parties"]
    tables = {table["name"]: table for table in parties["tables"]}
    columns = {c["name"]: c for c in tables["parties"]["columns"]}

    assert parties["cursor"] == {
        "field": "updatedAt",
        "column": "updated_at",
        "initial_value": None,
    }
    assert set(tables) == {
        "parties",
        "parties__email_addresses",
        "parties__phone_numbers",
        "parties__addresses",
        "parties__fields",
    }
    assert tables["parties__email_addresses"]["parent"] == "parties"
    assert tables["parties"]["parent"] is None
    assert columns["id"] == {
        "name": "id",
        "data_type": "bigint",
        "nullable": False,
        "primary_key": True,
        "merge_key": False,
    }
    assert columns["updated_at"]["data_type"] == "timestamp"
    assert columns["_deleted_at"]["data_type"] == "timestamp"


@pytest.mark.slow  # a whole replayed sync
def test_the_tables_and_columns_are_those_a_replayed_run_loads(crm: dict[str, Any]) -> None:
    code, _, _ = run_cli("run", "crm", "--replay")
    assert code == 0

    with duckdb.connect("crm_replay.duckdb", read_only=True) as connection:
        rows = connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'crm_replay_data' AND table_name NOT LIKE '_dlt%'"
        ).fetchall()
    loaded: dict[str, set[str]] = {}
    for table, column in rows:
        loaded.setdefault(table, set()).add(column)

    described = {
        table["name"]: {column["name"] for column in table["columns"]}
        for resource in crm["resources"]
        for table in resource["tables"]
    }
    assert described == loaded


def test_text_names_each_resources_disposition_cursor_deletions_and_columns() -> None:
    code, out, _ = run_cli("schema", "hubspot_contacts")

    lines = out.splitlines()
    assert code == 0
    assert lines[:7] == [
        "hubspot_contacts: 1 resource, 1 table (columns and types: dlt's schema after "
        "replaying cassettes/hubspot_contacts/full_sync.yaml)",
        "",
        "contacts",
        "  write:      merge on primary key id",
        "  cursor:     updated_at, the first sync from the beginning",
        "  deletions:  feed: from the API's feed of deleted records, read after the list every run",
        "  table contacts",
    ]
    columns = {line.split()[0]: line.split()[1:] for line in lines[7:]}
    assert columns["id"] == ["text", "primary", "key,", "not", "null"]
    assert columns["updated_at"] == ["timestamp"]
