"""incident_analytics: offline replay of the recorded cassettes
(../shared/api-contracts/incident_analytics.md)."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dlt

from connectors.sandbox.incident_analytics import (
    RECORDING,
    STAMP,
    IncidentAnalyticsFake,
    millis,
    parse_stamp,
)
from shared.tooling.cassettes import cassette_path, replaying
from tests.connectors.pinned_columns import column_types, pinned
from tests.dataset import columns, count, loaded_file_formats, query
from tests.recording import replay

TABLES = ("users", "teams", "services", "integrations", "incidents", "alerts")
PATHS = {
    "users": "/v2/users",
    "teams": "/v2/teams",
    "services": "/v1/services",
    "integrations": "/v2/integrations",
    "incidents": "/v1/incidents",
    "alerts": "/v2/alerts",
}


def recorded_data() -> dict[str, list[dict[str, Any]]]:
    """The fake's data as the cassettes recorded it (the fake is deterministic)."""
    return {kind: list(rows) for kind, rows in IncidentAnalyticsFake().data.items()}


def sent(cassette: Any, path: str) -> list[dict[str, list[str]]]:
    """The query parameters of every request the connector sent to `path`, in order."""
    return [
        parse_qs(urlsplit(request.uri).query)
        for request in cassette.requests
        if urlsplit(request.uri).path == path
    ]


def test_full_sync_replay_loads_every_table_with_the_fakes_row_counts(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    data = recorded_data()

    pipeline, (cassette,) = full_sync

    assert {table: count(pipeline, table) for table in TABLES} == {
        table: len(data[table]) for table in TABLES
    }
    assert {table: count(pipeline, table) for table in TABLES} == {
        "users": 130,
        "teams": 7,
        "services": 110,
        "integrations": 9,
        "incidents": 140,
        "alerts": 230,
    }
    # users 2 pages, teams 1, services 2, integrations 1, incidents 2, alerts 3
    assert cassette.play_count == len(cassette.data) == 11


def test_ids_are_unique_uuid_strings_and_nested_lists_become_child_tables(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    pipeline, _ = full_sync

    for table in TABLES:
        ids = [row[0] for row in query(pipeline, f"SELECT id FROM {table}")]
        assert len(ids) == len(set(ids)), table
        assert all(str(uuid.UUID(value)) == value for value in ids), table
    data = recorded_data()
    assert count(pipeline, "teams__members") == sum(len(t["members"]) for t in data["teams"])
    assert count(pipeline, "incidents__impacted_services") == 2 * len(data["incidents"])
    assert {"integration__id", "is_seen", "updated_at"} <= columns(pipeline, "alerts")


def test_plain_lists_ask_for_100_and_follow_the_absolute_paging_next_url(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    pipeline, (cassette,) = full_sync

    offsets = {
        table: [params.get("offset") for params in sent(cassette, PATHS[table])]
        for table in ("users", "services")
    }
    assert offsets == {"users": [None, ["100"]], "services": [None, ["100"]]}
    for table in ("users", "services", "incidents", "alerts"):
        assert all(params["limit"] == ["100"] for params in sent(cassette, PATHS[table])), table
    # one page, no paging, no parameters
    assert sent(cassette, "/v2/teams") == [{}]
    assert sent(cassette, "/v2/integrations") == [{}]


def test_incidents_sort_by_created_at_and_alerts_by_updated_at_each_page_a_keyset_restart(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    data = recorded_data()

    pipeline, (cassette,) = full_sync

    for table, sort in (("incidents", "createdAt"), ("alerts", "updatedAt")):
        requests = sent(cassette, PATHS[table])
        assert all(params["sort"] == [sort] and params["order"] == ["asc"] for params in requests)
        # never an offset: each page after the first asks again from the largest `sort`
        # value (epoch ms, truncated) of the page before, which the server sorted ascending
        assert all("offset" not in params for params in requests), table
        ordered = sorted(data[table], key=lambda row, s=sort: (parse_stamp(row[s]), row["id"]))
        expected, start = ["updatedAt>=0"], 0
        while True:
            page = [row for row in ordered if millis(parse_stamp(row[sort])) >= start][:100]
            if len(page) < 100:
                break
            start = millis(parse_stamp(page[-1][sort]))
            prefix = "updatedAt>=0 AND " if table == "incidents" else ""
            expected.append(f"{prefix}{sort}>={start}")
        assert [params["query"] for params in requests] == [[q] for q in expected], table
        assert len(expected) == {"incidents": 2, "alerts": 3}[table]
    # the plain lists are not filtered
    for table in ("users", "services"):
        assert all("query" not in params for params in sent(cassette, PATHS[table]))


def test_timestamps_with_0_2_3_or_6_fractional_digits_load_as_exact_timestamps(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    data = recorded_data()
    forms = {
        len(STAMP.match(row[field]).group(2) or "")  # type: ignore[union-attr]
        for kind in ("incidents", "alerts")
        for row in data[kind]
        for field in ("createdAt", "updatedAt")
    }
    assert forms == {0, 2, 3, 6}

    pipeline, _ = full_sync

    for table in ("incidents", "alerts"):
        schema = pipeline.default_schema.get_table_columns(table)
        assert schema["updated_at"]["data_type"] == "timestamp", table
        assert schema["created_at"]["data_type"] == "timestamp", table
        loaded = {
            row_id: (updated.isoformat(), created.isoformat())
            for row_id, updated, created in query(
                pipeline, f"SELECT id, updated_at, created_at FROM {table}"
            )
        }
        expected = {
            row["id"]: (
                parse_stamp(row["updatedAt"]).isoformat(),
                parse_stamp(row["createdAt"]).isoformat(),
            )
            for row in data[table]
        }
        assert loaded == expected, table
    assert pipeline.default_schema.get_table_columns("users")["created_at"]["data_type"] == (
        "timestamp"
    )


def test_second_run_starts_from_the_stored_maximum_truncated_to_millis_and_merges(
    pipeline: dlt.Pipeline,
) -> None:
    before = recorded_data()
    changed = IncidentAnalyticsFake()
    changed_ids = changed.change_for_second_run()
    after = {kind: list(rows) for kind, rows in changed.data.items()}
    replay(RECORDING, pipeline, steps=["full_sync"])

    (cassette,) = replay(RECORDING, pipeline, steps=["incremental"])

    for table in ("incidents", "alerts"):
        newest = max(parse_stamp(row["updatedAt"]) for row in before[table])
        assert sent(cassette, PATHS[table]) == [
            {
                "limit": ["100"],
                "sort": ["createdAt" if table == "incidents" else "updatedAt"],
                "order": ["asc"],
                "query": [f"updatedAt>={millis(newest)}"],
            }
        ], table
        # merged: the new records added, none duplicated, the changes applied
        assert (
            count(pipeline, table)
            == len(after[table])
            == len(before[table]) + (1 if table == "incidents" else 2)
        )
        assert query(pipeline, f"SELECT COUNT(*) - COUNT(DISTINCT id) FROM {table}") == [(0,)]
        for row_id in changed_ids[table]:
            row = next(r for r in after[table] if r["id"] == row_id)
            (loaded,) = query(pipeline, f"SELECT updated_at FROM {table} WHERE id = '{row_id}'")
            assert loaded[0] == parse_stamp(row["updatedAt"]), (table, row_id)
        state = pipeline.state["sources"]["incident_analytics"]["resources"][table]["incremental"]
        assert state["updatedAt"]["last_value"] == max(
            (row["updatedAt"] for row in after[table]), key=parse_stamp
        )
    # the alert changed within the millisecond of the previous maximum was not lost
    # (the query's epoch milliseconds were truncated, not rounded up)
    same_milli = changed_ids["alerts"][0]
    assert re.search(
        r"\.\d{3}999Z$", next(r for r in after["alerts"] if r["id"] == same_milli)["updatedAt"]
    )
    assert query(pipeline, f"SELECT status FROM alerts WHERE id = '{same_milli}'") == [("closed",)]
    assert query(pipeline, "SELECT COUNT(*) FROM alerts WHERE acknowledged") == [
        (sum(1 for row in after["alerts"] if row["acknowledged"]),)
    ]
    assert query(
        pipeline, f"SELECT status FROM incidents WHERE id = '{changed_ids['incidents'][0]}'"
    ) == [("resolved",)]
    # the plain lists were read again in full and merged
    assert count(pipeline, "users") == len(before["users"])


def test_full_sync_loads_parquet_not_insert_values(pipeline: dlt.Pipeline) -> None:
    source = RECORDING.source(
        base_url=RECORDING.canonical_base_url, **RECORDING.credentials, **RECORDING.offline_kwargs
    )
    with replaying(
        cassette_path("incident_analytics", "full_sync"),
        RECORDING.scrubber(RECORDING.canonical_base_url),
    ):
        # a plain pipeline.run: the connector's hints choose parquet
        info = pipeline.run(source)
    assert loaded_file_formats(info) == {"parquet"}


def test_full_sync_column_types_are_the_pinned_ones(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    # a change in what the fake serves or in dlt's inference shows in this diff; if it is
    # intended, rewrite the pin: python -m tests.connectors.pinned_columns incident_analytics
    pipeline, _ = full_sync
    assert column_types(pipeline) == pinned("incident_analytics")
