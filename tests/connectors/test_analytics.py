"""analytics: offline replay of the recorded cassettes (../shared/api-contracts/analytics.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dlt
import yaml

from connectors.analytics import analytics_source
from connectors.sandbox.analytics import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    RECORDING,
    RESOURCES,
    TOKEN_PREFIX,
    AnalyticsFake,
)
from shared.loading import run_source
from shared.tooling.cassettes import cassette_path, replaying
from tests.dataset import columns, count, loaded_file_formats, query
from tests.recording import replay

CATALOG = Path(__file__).resolve().parents[2] / "catalog.yml"
#: the fake's data as it was recorded: counts come from the fake, not from constants
RECORDED = AnalyticsFake()
EXPECTED_ROWS = {table: len(rows) for table, rows in RECORDED.data.items()}


def query_of(uri: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(uri).query)


def test_full_sync_replay_loads_every_configured_resource_with_the_fakes_row_counts(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    pipeline, (cassette,) = full_sync

    assert {table: count(pipeline, table) for table in EXPECTED_ROWS} == EXPECTED_ROWS
    assert EXPECTED_ROWS == {"events": 250, "users": 200, "page_views": 42}
    for table in EXPECTED_ROWS:
        assert query(pipeline, f"SELECT COUNT(*) - COUNT(DISTINCT id) FROM {table}") == [(0,)]
    # 250 events: 100, 100, 50 (short page stops); 200 users: 100, 100 and an empty page;
    # 42 page views: one short page
    assert cassette.play_count == len(cassette.data) == 7


def test_pages_are_offset_limit_100_and_stop_after_a_short_or_empty_page(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    pipeline, (cassette,) = full_sync

    pages: dict[str, list[str]] = {}
    for request in cassette.requests:
        sent = query_of(request.uri)
        assert sent["limit"] == ["100"]
        pages.setdefault(urlsplit(request.uri).path, []).append(sent["offset"][0])
    assert {path: sorted(offsets, key=int) for path, offsets in pages.items()} == {
        "/v1/events": ["0", "100", "200"],
        "/v1/users": ["0", "100", "200"],
        "/v1/pageviews": ["0"],
    }


def test_api_key_goes_in_the_query_and_is_scrubbed_from_the_cassette(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    pipeline, (cassette,) = full_sync

    assert all(query_of(r.uri)["api_key"] == ["REDACTED"] for r in cassette.requests)
    assert all("Authorization" not in r.headers for r in cassette.requests)
    for name in ("full_sync", "incremental", "oauth_sync"):
        text = cassette_path("analytics", name).read_text()
        for secret in (API_KEY, CLIENT_ID, CLIENT_SECRET, TOKEN_PREFIX, "127.0.0.1"):
            assert secret not in text, (name, secret)


def test_columns_keep_nullable_and_extra_fields_and_load_as_parquet(
    pipeline: dlt.Pipeline,
) -> None:
    step = RECORDING.steps[0]
    source = RECORDING.source(
        base_url=RECORDING.canonical_base_url,
        **RECORDING.step_credentials(step),
        **step.source_kwargs,
    )
    with replaying(
        cassette_path("analytics", "full_sync"), RECORDING.scrubber(RECORDING.canonical_base_url)
    ):
        info = pipeline.run(source)  # no loader_file_format: the connector's hints choose parquet

    assert loaded_file_formats(info) == {"parquet"}
    assert {"id", "name", "created_at", "user_id", "campaign", "properties__source"} <= columns(
        pipeline, "events"
    )
    nulls = sum(1 for row in RECORDED.data["events"] if row["user_id"] is None)
    assert count(pipeline, "events", "WHERE user_id IS NULL") == nulls > 0
    extras = sum(1 for row in RECORDED.data["events"] if "campaign" in row)
    assert count(pipeline, "events", "WHERE campaign IS NOT NULL") == extras > 0
    # created_at with 0, 2, 3 and 6 fractional digits all parse to timestamps
    assert pipeline.default_schema.get_table_columns("events")["created_at"]["data_type"] == (
        "timestamp"
    )
    assert count(pipeline, "events", "WHERE created_at IS NULL") == 0


def test_plain_names_replace_and_incremental_mappings_merge_on_their_key(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    pipeline, _ = full_sync
    tables = pipeline.default_schema.tables
    assert tables["events"]["write_disposition"] == "replace"
    assert tables["page_views"]["write_disposition"] == "replace"
    assert tables["users"]["write_disposition"] == "merge"
    assert pipeline.default_schema.get_table_columns("users")["id"].get("primary_key") is True


def test_second_run_sends_the_stored_cursor_merges_users_and_replaces_events(
    pipeline: dlt.Pipeline,
) -> None:
    (first,) = replay(RECORDING, pipeline, steps=["full_sync"])
    first_users = [r for r in first.requests if urlsplit(r.uri).path == "/v1/users"]
    assert {query_of(r.uri)["updated_since"][0] for r in first_users} == {
        RESOURCES[1]["incremental"]["initial_value"]
    }
    max_before = max(row["updated_at"] for row in RECORDED.data["users"])

    (second,) = replay(RECORDING, pipeline, steps=["incremental"])

    users_requests = [r for r in second.requests if urlsplit(r.uri).path == "/v1/users"]
    assert [query_of(r.uri)["updated_since"] for r in users_requests] == [[max_before]]
    changed = AnalyticsFake()
    changes = changed.change_for_second_run()
    # merged: three users changed, one new, none duplicated
    assert count(pipeline, "users") == len(changed.data["users"]) == 201
    assert query(pipeline, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM users") == [(0,)]
    ids = ", ".join(str(i) for i in changes["changed_users"])
    assert query(pipeline, f"SELECT DISTINCT plan FROM users WHERE id IN ({ids})") == [
        ("enterprise",)
    ]
    # replaced: the new events are there; the deleted one stays, marked deleted (soft
    # deletions, the default), with the values it had
    live = "WHERE _deleted_at IS NULL"
    assert count(pipeline, "events", live) == len(changed.data["events"]) == 251
    assert count(pipeline, "events", "WHERE id = 10000 AND _deleted_at IS NOT NULL") == 1
    assert count(pipeline, "events") == 252
    state = pipeline.state["sources"]["analytics"]["resources"]["users"]["incremental"]
    (cursor_state,) = state.values()
    assert cursor_state["last_value"] == max(row["updated_at"] for row in changed.data["users"])


def test_oauth_sync_fetches_one_token_with_a_scrubbed_form_body_and_loads_data(
    pipeline: dlt.Pipeline,
) -> None:
    (cassette,) = replay(RECORDING, pipeline, steps=["oauth_sync"])

    token_requests = [r for r in cassette.requests if urlsplit(r.uri).path == "/oauth/token"]
    assert len(token_requests) == 1
    (token_request,) = token_requests
    assert token_request.method == "POST"
    body = token_request.body
    assert parse_qs(body.decode() if isinstance(body, bytes) else body) == {
        "grant_type": ["client_credentials"],
        "client_id": ["REDACTED"],
        "client_secret": ["REDACTED"],
    }
    data_requests = [r for r in cassette.requests if r is not token_request]
    assert data_requests and all("api_key" not in query_of(r.uri) for r in data_requests)
    assert set(pipeline.default_schema.data_table_names()) >= {"events", "page_views"}
    assert "users" not in pipeline.default_schema.tables  # not among OAUTH_RESOURCES
    # recorded after the incremental step's changes: one event deleted, two added
    assert count(pipeline, "events") == 251
    assert count(pipeline, "page_views") == EXPECTED_ROWS["page_views"]


def test_catalog_entry_replays_its_cassette_with_its_kwargs(pipeline: dlt.Pipeline) -> None:
    catalog = yaml.safe_load(CATALOG.read_text())
    (entry,) = [c for c in catalog["connectors"] if c["name"] == "analytics"]
    kwargs: dict[str, Any] = entry["replay"]["kwargs"]
    assert kwargs["resources"] == RESOURCES
    assert [r["name"] for r in entry["resources"]] == ["events", "users", "page_views"]

    # no default base_url (a generic API): the replay plays the origin it recorded under
    assert entry["base_url"] is None
    source = RECORDING.source(base_url=entry["replay"]["base_url"], **kwargs)
    with replaying(
        cassette_path("analytics", entry["replay"]["cassette"]),
        RECORDING.scrubber(RECORDING.canonical_base_url),
    ):
        run_source(pipeline, source)
    assert {table: count(pipeline, table) for table in EXPECTED_ROWS} == EXPECTED_ROWS


def test_a_replaced_table_keeps_a_deleted_row_marked_on_every_later_run_and_drops_it_in_hard_mode(
    pipeline: dlt.Pipeline, tmp_path: Any
) -> None:
    with AnalyticsFake() as fake:
        source_args = {"base_url": fake.base_url, "api_key": API_KEY, "resources": ["events"]}
        run_source(pipeline, analytics_source(**source_args))
        first = fake.data["events"][0]
        fake.data["events"] = fake.data["events"][1:]

        run_source(pipeline, analytics_source(**source_args))
        ((marked,),) = query(pipeline, f"SELECT _deleted_at FROM events WHERE id = {first['id']}")
        assert marked is not None
        # replaced again: the deleted row comes back with the same mark
        run_source(pipeline, analytics_source(**source_args))
        assert query(pipeline, f"SELECT _deleted_at FROM events WHERE id = {first['id']}") == [
            (marked,)
        ]
        assert count(pipeline, "events", "WHERE _deleted_at IS NOT NULL") == 1

        run_source(pipeline, analytics_source(**source_args, deletions="hard"))
        assert count(pipeline, "events", f"WHERE id = {first['id']}") == 0
        assert count(pipeline, "events") == len(fake.data["events"])
