"""crm: offline replay of the recorded cassettes."""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dlt
import pytest
import yaml

from connectors.sandbox.crm import RECORDING, parse_stamp, stamp
from shared.loading import run_source
from shared.tooling.cassettes import cassette_path, replaying
from tests.connectors.pinned_columns import column_types, pinned
from tests.dataset import columns, count, loaded_file_formats, query
from tests.recording import replay

#: the fake's data as it was recorded: counts come from the fake, not from constants
RECORDED = RECORDING.fake()
EXPECTED_ROWS = RECORDED.expected_rows()


def test_full_sync_replay_loads_every_table_with_contract_row_counts(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    pipeline, (cassette,) = full_sync

    assert {table: count(pipeline, table) for table in EXPECTED_ROWS} == EXPECTED_ROWS
    assert cassette.play_count == len(cassette.data) == 93
    # run_source loads parquet (the plain run's case is below)
    assert loaded_file_formats(pipeline.last_trace.last_load_info) == {"parquet"}


def test_full_sync_keys_are_unique_and_children_carry_their_parent(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    pipeline, _ = full_sync

    for table in EXPECTED_ROWS:
        if table in ("site", "tags", "custom_fields"):
            continue
        assert query(pipeline, f"SELECT COUNT(*) - COUNT(DISTINCT id) FROM {table}") == [(0,)], (
            table
        )
    assert query(pipeline, "SELECT COUNT(*) - COUNT(DISTINCT (entity, id)) FROM tags") == [(0,)]
    # employees only for organisations, each row carrying the organisation's id
    assert "organisation_id" in columns(pipeline, "employees")
    orphans = query(
        pipeline,
        "SELECT COUNT(*) FROM employees e LEFT JOIN parties p ON p.id = e.organisation_id "
        "WHERE p.type IS DISTINCT FROM 'organisation'",
    )
    assert orphans == [(0,)]
    employers = [org for org, people in RECORDED.employees.items() if people]
    assert query(pipeline, "SELECT COUNT(DISTINCT organisation_id) FROM employees") == [
        (len(employers),)
    ]
    # tags and custom fields: one chain per entity, rows say which
    assert query(pipeline, "SELECT entity, COUNT(*) FROM tags GROUP BY 1 ORDER BY 1") == sorted(
        (entity, len(tags)) for entity, tags in RECORDED.tags.items()
    )
    assert query(pipeline, "SELECT entity, COUNT(*) FROM custom_fields GROUP BY 1 ORDER BY 1") == (
        sorted((entity, len(fields)) for entity, fields in RECORDED.definitions.items())
    )
    # all three task statuses, nested arrays as child tables
    # (Capsule's statuses are upper case in the records, lower case in the query)
    statuses = Counter(task["status"] for task in RECORDED.data["tasks"])
    assert set(statuses) == {"OPEN", "COMPLETED", "PENDING"}
    assert query(pipeline, "SELECT status, COUNT(*) FROM tasks GROUP BY 1 ORDER BY 1") == sorted(
        statuses.items()
    )
    for child, key in (("email_addresses", "emailAddresses"), ("phone_numbers", "phoneNumbers")):
        in_the_fake = sum(len(party.get(key) or ()) for party in RECORDED.data["parties"])
        assert count(pipeline, f"parties__{child}") == in_the_fake > 0, child
    assert {"updated_at", "created_at", "type"} <= columns(pipeline, "parties")
    assert pipeline.default_schema.get_table_columns("parties")["updated_at"]["data_type"] == (
        "timestamp"
    )


def test_a_plain_pipeline_run_loads_parquet_not_insert_values(pipeline: dlt.Pipeline) -> None:
    # no loader_file_format: the connector's hints choose parquet
    source = RECORDING.source(
        base_url=RECORDING.canonical_base_url, **RECORDING.credentials, **RECORDING.offline_kwargs
    )
    scrubber = RECORDING.scrubber(RECORDING.canonical_base_url)
    with replaying(cassette_path("crm", "full_sync"), scrubber):
        info = pipeline.run(source)
    assert loaded_file_formats(info) == {"parquet"}


def test_tasks_request_all_three_statuses_and_pages_follow_link_headers(
    pipeline: dlt.Pipeline,
) -> None:
    (cassette,) = replay(RECORDING, pipeline, steps=["full_sync"])
    uris = [request.uri for request in cassette.requests]

    task_queries = [
        parse_qs(urlsplit(u).query) for u in uris if urlsplit(u).path == "/api/v2/tasks"
    ]
    assert len(task_queries) == 2
    assert all(q["status"] == ["open,completed,pending"] for q in task_queries)
    assert all(q["perPage"] == ["100"] for q in task_queries)
    assert any(q.get("page") == ["2"] for q in task_queries)
    # the first sync sends no `since`
    assert not [u for u in uris if "since=" in u and "/deleted" not in u]


def test_second_run_sends_since_one_second_before_the_stored_maximum_and_merges(
    pipeline: dlt.Pipeline,
) -> None:
    replay(RECORDING, pipeline, steps=["full_sync"])
    max_before = query(pipeline, "SELECT MAX(updated_at) FROM parties")[0][0]

    (cassette,) = replay(RECORDING, pipeline, steps=["incremental"])

    sent = {
        urlsplit(r.uri).path: parse_qs(urlsplit(r.uri).query).get("since")
        for r in cassette.requests
    }
    for path, key in (
        ("parties", "parties"),
        ("kases", "kases"),
        ("opportunities", "opportunities"),
    ):
        newest = max(parse_stamp(row["updatedAt"]) for row in RECORDED.data[key])
        assert sent[f"/api/v2/{path}"] == [stamp(newest - timedelta(seconds=1))], path
    assert max_before == max(parse_stamp(p["updatedAt"]) for p in RECORDED.data["parties"])
    # merged: one new party, none duplicated; the change made in the same second as the
    # previous maximum was not lost
    after = RECORDING.fake()
    changed = after.change_for_second_run()
    assert (
        count(pipeline, "parties")
        == len(after.data["parties"])
        == len(RECORDED.data["parties"]) + 1
    )
    assert query(pipeline, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM parties") == [(0,)]
    same_second, *later, new_party = changed["parties"]
    assert query(pipeline, f"SELECT about FROM parties WHERE id = {same_second}") == [
        ("changed in the same second",)
    ]
    assert query(pipeline, "SELECT id FROM parties WHERE about = 'changed later' ORDER BY 1") == [
        (party,) for party in sorted(later)
    ]
    assert query(pipeline, f"SELECT COUNT(*) FROM parties WHERE id = {new_party}") == [(1,)]
    assert count(pipeline, "projects") == len(after.data["kases"])
    assert count(pipeline, "opportunities") == len(after.data["opportunities"])
    state = pipeline.state["sources"]["crm"]["resources"]["parties"]["incremental"]
    (cursor_state,) = state.values()
    assert cursor_state["last_value"] == max(p["updatedAt"] for p in after.data["parties"])


def test_full_sync_column_types_are_the_pinned_ones(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    # a change in what the fake serves or in dlt's inference shows in this diff; if it is
    # intended, rewrite the pin: python -m tests.connectors.pinned_columns crm
    pipeline, _ = full_sync
    assert column_types(pipeline) == pinned("crm")


# -- the budget every response reports (contract, "Rate limit") --------------------------

BUDGET = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def recorded_responses(cassette: str) -> list[tuple[str, dict[str, Any]]]:
    """(uri, response) of every interaction in the file, as recorded (not moved to now)."""
    text = cassette_path("crm", cassette).read_text()
    return [
        (i["request"]["uri"], i["response"])
        for i in yaml.load(text, Loader=yaml.CSafeLoader)["interactions"]
    ]


def recorded_header(response: dict[str, Any], name: str) -> str:
    (value,) = response["headers"][name]
    return value


def test_every_recorded_response_reports_the_budget_with_a_date_it_is_read_against() -> None:
    for cassette in ("full_sync", "incremental", "retried_sync", "validation_error"):
        for uri, response in recorded_responses(cassette):
            limit, remaining, reset = (int(recorded_header(response, h)) for h in BUDGET)
            date = parsedate_to_datetime(recorded_header(response, "Date")).timestamp()
            assert limit == 4000 and 0 <= remaining < limit, (cassette, uri)
            assert 0 < reset - date <= 3600, (cassette, uri)
            if response["status"]["code"] == 429:
                # the window spent: nothing left, reset a second later
                assert (remaining, reset - date) == (0, 1), uri


def test_a_replayed_sync_reads_the_budget_as_it_was_recorded(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    (_, first), *_ = [
        r for r in recorded_responses("full_sync") if r[0].endswith("/users?perPage=100")
    ]
    remaining = int(recorded_header(first, "X-RateLimit-Remaining"))
    window = int(recorded_header(first, "X-RateLimit-Reset")) - int(
        parsedate_to_datetime(recorded_header(first, "Date")).timestamp()
    )
    # paced by the budget the API reports: no `requests_per_minute`
    source = RECORDING.source(
        base_url=RECORDING.canonical_base_url, **RECORDING.credentials
    ).with_resources("users")
    caplog.set_level(logging.INFO, logger="shared.http.session")
    before = time.time()
    with replaying(
        cassette_path("crm", "full_sync"),
        RECORDING.scrubber(RECORDING.canonical_base_url),
        require_all_played=False,
    ):
        run_source(pipeline, source)
    took = time.time() - before

    notices = [r.getMessage() for r in caplog.records if "the API reports" in r.getMessage()]
    assert len(notices) == 1, notices
    notice = notices[0]
    assert notice.startswith(f"crm: the API reports {remaining:,} of 4,000 requests left until ")
    assert "full speed while more than 800 remain" in notice
    # the reset as far ahead as recorded (a second's granularity added), read against the
    # recorded `Date`: against the local clock, a reset in 2024 is disbelieved as past
    until = datetime.strptime(notice.split("until ")[1][:8], "%H:%M:%S").time()
    expected = [
        datetime.fromtimestamp(moment + window + 1, timezone.utc).time().replace(microsecond=0)
        for moment in (before, before + took)
    ]
    assert expected[0] <= until <= expected[1] or expected[0] > expected[1]  # midnight
    assert "ignoring the rate-limit headers" not in caplog.text
    assert count(pipeline, "users") == 120
