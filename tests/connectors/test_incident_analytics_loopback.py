"""incident_analytics against its fake server over loopback: keyset paging (records
updated mid-sync, the 20,000 offset cap, no `sort=updatedAt` on incidents), 429 bursts,
server errors and rejected keys (../shared/api-contracts/incident_analytics.md)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dlt
import pytest
import requests
from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.incident_analytics import incident_analytics_source
from connectors.sandbox.base import Fault
from connectors.sandbox.incident_analytics import (
    EPOCH,
    OFFSET_CAP,
    TOKEN,
    IncidentAnalyticsFake,
    RecordStream,
    make_alert,
    millis,
    parse_stamp,
    record_id,
)
from shared.errors import AuthenticationError, ConfigurationError, RequestFailedError
from shared.loading import run_source
from shared.rest.keyset import KeysetPagingError
from tests.dataset import count, query
from tests.failures import root_cause

pytestmark = pytest.mark.loopback

NO_PACING = {"requests_per_minute": 6_000_000}
PATHS = {"incidents": "/v1/incidents", "alerts": "/v2/alerts"}
#: the sort each incremental list asks for (incidents cannot sort by `updatedAt`)
SORTS = {"incidents": "createdAt", "alerts": "updatedAt"}
RETRY_LOG = re.compile(r"retry (\d+) of \d+ in ([\d.]+)s")


@pytest.fixture
def fake() -> Iterator[IncidentAnalyticsFake]:
    with IncidentAnalyticsFake() as server:
        yield server  # type: ignore[misc]


def source(fake: IncidentAnalyticsFake, *resources: str, **kwargs: Any) -> Any:
    loaded = incident_analytics_source(
        api_token=kwargs.pop("api_token", TOKEN), base_url=fake.base_url, **{**NO_PACING, **kwargs}
    )
    return loaded.with_resources(*resources) if resources else loaded


def retry_waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [
        float(match.group(2))
        for record in caplog.records
        if record.name == "shared.http.session" and (match := RETRY_LOG.search(record.getMessage()))
    ]


def test_full_sync_against_the_fake_loads_all_six_resources_without_a_refused_request(
    fake: IncidentAnalyticsFake, pipeline: dlt.Pipeline
) -> None:
    run_source(pipeline, source(fake))

    assert {table: count(pipeline, table) for table in fake.data} == {
        table: len(rows) for table, rows in fake.data.items()
    }
    # the fake answers 422 to incidents without `query`, sorted by `updatedAt`, and to
    # pages past the cap
    assert {request.status for request in fake.requests} == {200}
    incidents = fake.requests_to("/v1/incidents")
    assert incidents[0].args["query"] == "updatedAt>=0"
    assert all(r.args["query"].startswith("updatedAt>=0 AND createdAt>=") for r in incidents[1:])
    assert {r.args["sort"] for r in incidents} == {"createdAt"}
    assert {r.headers["Authorization"] for r in fake.requests} == {f"GenieKey {TOKEN}"}


def test_incidents_never_ask_for_the_updated_at_sort_the_api_refuses(
    fake: IncidentAnalyticsFake, pipeline: dlt.Pipeline
) -> None:
    refused = requests.get(
        f"{fake.base_url}/v1/incidents",
        params={"query": "updatedAt>=0", "sort": "updatedAt", "order": "asc"},
        headers={"Authorization": f"GenieKey {TOKEN}"},
        timeout=5,
    )
    assert refused.status_code == 422
    assert refused.json()["message"].startswith("Invalid sort field: updatedAt.")

    run_source(pipeline, source(fake, "incidents"))

    sent = fake.requests_to("/v1/incidents")[1:]
    assert len(sent) == 2
    assert [(r.args["sort"], r.args["order"], r.status) for r in sent] == [
        ("createdAt", "asc", 200)
    ] * 2
    assert {row[0] for row in query(pipeline, "SELECT id FROM incidents")} == {
        row["id"] for row in fake.data["incidents"]
    }


def keyset_chain(stream: RecordStream, requests: list[Any], bound: str) -> list[int]:
    """The `bound>=` epoch ms of each request after the first, checking that each is the
    largest stamp of the page the server answered the request before with."""
    starts = []
    at = 0
    for request in requests[1:]:
        first = stream.first_at_or_after(at)
        previous_page = stream[first : first + 100]
        expected = millis(parse_stamp(previous_page[-1][bound]))
        start = int(request.args["query"].rsplit(f"{bound}>=", 1)[1])
        assert start == expected
        starts.append(start)
        at = start
    return starts


@pytest.mark.slow
@pytest.mark.parametrize("table", ["incidents", "alerts"])
def test_more_than_20000_records_load_completely_without_an_offset_near_the_cap(
    pipeline: dlt.Pipeline, table: str
) -> None:
    total = OFFSET_CAP + 550
    stream = RecordStream(total, per_milli=3, kind=f"stream-{table}")
    started = time.monotonic()
    with IncidentAnalyticsFake(**{table: stream}) as fake:  # type: ignore[arg-type]
        run_source(pipeline, source(fake, table))
    elapsed = time.monotonic() - started

    # all present, none duplicated
    assert count(pipeline, table) == total
    assert query(pipeline, f"SELECT COUNT(DISTINCT id) FROM {table}") == [(total,)]
    loaded = {row[0] for row in query(pipeline, f"SELECT id FROM {table}")}
    assert loaded == {record_id(f"stream-{table}", i) for i in range(total)}
    # never an offset: every page re-issued the query from the largest sort value of the
    # page before (keyset), so the cap was never near
    requests = fake.requests_to(PATHS[table])
    assert {r.status for r in requests} == {200}
    assert all("offset" not in r.args for r in requests)
    assert {(r.args["sort"], r.args["order"]) for r in requests} == {(SORTS[table], "asc")}
    assert requests[0].args["query"] == "updatedAt>=0"
    prefix = "updatedAt>=0 AND " if table == "incidents" else ""
    starts = keyset_chain(stream, requests, SORTS[table])
    assert [r.args["query"] for r in requests[1:]] == [
        f"{prefix}{SORTS[table]}>={start}" for start in starts
    ]
    assert starts == sorted(set(starts))  # each page moved on
    # 3 records a millisecond: each page re-reads at most 2 of the page before
    assert len(requests) <= total // 98 + 2
    state = pipeline.state["sources"]["incident_analytics"]["resources"][table]["incremental"]
    assert state["updatedAt"]["last_value"] == stream[total - 1]["updatedAt"]
    assert elapsed < 20


@pytest.mark.slow
@pytest.mark.parametrize("table", ["incidents", "alerts"])
def test_one_sort_value_holding_20000_records_fails_clearly_instead_of_looping(
    pipeline: dlt.Pipeline, table: str
) -> None:
    stream = RecordStream(OFFSET_CAP + 100, per_milli=10**9)  # every record the same instant
    assert stream[0]["updatedAt"] == stream[OFFSET_CAP + 99]["updatedAt"]
    with (
        IncidentAnalyticsFake(**{table: stream}) as fake,  # type: ignore[arg-type]
        pytest.raises(PipelineStepFailed) as info,
    ):
        run_source(pipeline, source(fake, table))

    error = root_cause(info.value, KeysetPagingError)
    assert str(error).startswith("incident_analytics: cannot page http://127.0.0.1:")
    assert str(error).endswith(
        f"more than {OFFSET_CAP} records share `{SORTS[table]}` {millis(EPOCH)}, and the "
        f"API's offset cap of {OFFSET_CAP} stops paging through them"
    )
    # paged through the one value by offset up to the cap, never past it, then stopped
    requests = fake.requests_to(PATHS[table])
    assert {r.status for r in requests} == {200}
    offsets = [int(r.args.get("offset", 0)) for r in requests]
    assert offsets[:3] == [0, 0, 99]
    assert offsets[2:] == list(range(99, OFFSET_CAP - 100 + 1, 99))
    assert offsets[-1] + 99 + 100 > OFFSET_CAP


@pytest.mark.parametrize("table", ["incidents", "alerts"])
def test_records_updated_mid_sync_skip_no_record_at_the_page_boundary(
    fake: IncidentAnalyticsFake, pipeline: dlt.Pipeline, table: str
) -> None:
    ordered = sorted(fake.data[table], key=lambda r: (parse_stamp(r[SORTS[table]]), r["id"]))
    moved = [ordered[5]["id"], ordered[6]["id"]]
    newest = fake.newest_updated(table)
    # after page 1, two of its records change: they move to the end of `updatedAt` order
    # and every later record two places towards the start (an offset, even one
    # overlapping the page before by a record, would skip one)
    fake.between_pages(
        PATHS[table],
        after=1,
        action=lambda: [
            fake.update(table, row_id, newest + timedelta(hours=1), status="moved")
            for row_id in moved
        ],
    )

    run_source(pipeline, source(fake, table))

    server = {r["id"]: (r["status"], parse_stamp(r["updatedAt"])) for r in fake.data[table]}
    assert {server[row_id][0] for row_id in moved} == {"moved"}
    loaded = query(pipeline, f"SELECT id, status, updated_at FROM {table}")
    assert len(loaded) == len(server)
    # 140 incidents, 230 alerts: 100 a page, one re-read at each boundary
    assert len(fake.requests_to(PATHS[table])) == {"incidents": 2, "alerts": 3}[table]
    if table == "alerts":
        # every alert loaded, each as the server holds it now: the moved ones at the end
        assert {row[0]: (row[1], row[2]) for row in loaded} == server
    else:
        # incidents page by `createdAt`, where a change does not move the incident: every
        # incident loaded, the changed ones as they were when read; the cursor stayed
        # below their new `updatedAt`, so the next run loads the changes
        assert {row[0] for row in loaded} == set(server)
        run_source(pipeline, source(fake, table))
        loaded = query(pipeline, f"SELECT id, status, updated_at FROM {table}")
        assert {row[0]: (row[1], row[2]) for row in loaded} == server


def test_records_moving_within_one_sort_value_are_read_again_and_none_is_lost(
    pipeline: dlt.Pipeline,
) -> None:
    shared_stamp = "2024-08-21T10:00:00.500Z"
    alerts = [{**make_alert(i, 1), "updatedAt": shared_stamp} for i in range(250)]
    with IncidentAnalyticsFake(alerts=alerts) as fake:
        ordered = sorted(alerts, key=lambda r: r["id"])
        # after the first page inside the shared value (offset 99), two alerts of the
        # part already read change: the rest shift two places and the one at the next
        # boundary would slip past unread
        later = parse_stamp(shared_stamp) + timedelta(minutes=5)
        fake.between_pages(
            "/v2/alerts",
            after=3,
            action=lambda: [
                fake.update("alerts", ordered[i]["id"], later, status="moved") for i in (10, 20)
            ],
        )
        run_source(pipeline, source(fake, "alerts"))

    server = {r["id"]: (r["status"], parse_stamp(r["updatedAt"])) for r in fake.data["alerts"]}
    loaded = query(pipeline, "SELECT id, status, updated_at FROM alerts")
    assert {row[0]: (row[1], row[2]) for row in loaded} == server
    assert len(loaded) == 250
    requests = fake.requests_to("/v2/alerts")
    shared_query = f"updatedAt>={millis(parse_stamp(shared_stamp))}"
    assert [(r.args["query"], r.args.get("offset")) for r in requests[:5]] == [
        ("updatedAt>=0", None),
        (shared_query, None),
        (shared_query, "99"),
        (shared_query, "198"),  # starts two records late: the value is read again
        (shared_query, None),
    ]


def test_429_waits_retry_after_when_present_rather_than_the_period(
    fake: IncidentAnalyticsFake, pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shared.http.session")
    fake.inject(
        Fault(
            429,
            body=fake.error_body("You are making too many requests!"),
            headers={"Retry-After": "0", "X-RateLimit-Period-In-Sec": "60"},
            path="/v2/users",
            times=3,
        )
    )
    started = time.monotonic()
    run_source(pipeline, source(fake, "users"))

    # the waits scheduled are the test; the wall clock only shows no 60 s period was slept
    # (a busy machine makes a sync slow, never 60 s slow)
    assert time.monotonic() - started < 60
    assert retry_waits(caplog) == [0.0, 0.0, 0.0]
    assert [r.status for r in fake.requests_to("/v2/users")] == [429, 429, 429, 200, 200]
    assert count(pipeline, "users") == len(fake.data["users"])


def test_429_with_only_the_period_header_waits_the_period_then_retries(
    fake: IncidentAnalyticsFake, pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shared.http.session")
    fake.inject(
        Fault(
            429,
            body=fake.error_body("You are making too many requests!"),
            headers={"X-RateLimit-Period-In-Sec": "1"},
            path="/v1/incidents",
            times=2,
        )
    )
    started = time.monotonic()
    run_source(pipeline, source(fake, "incidents"))

    assert time.monotonic() - started >= 2
    # the period each time, not the exponential backoff (1 s, then 2 s)
    assert retry_waits(caplog) == [1.0, 1.0]
    statuses = [r.status for r in fake.requests_to("/v1/incidents")]
    assert statuses == [429, 429, 200, 200]
    assert count(pipeline, "incidents") == len(fake.data["incidents"])


def test_429_period_wait_is_bounded_by_max_retry_wait(
    fake: IncidentAnalyticsFake, pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shared.http.session")
    fake.inject(
        Fault(
            429,
            body=fake.error_body("You are making too many requests!"),
            headers={"X-RateLimit-Period-In-Sec": "60"},
            path="/v2/teams",
        )
    )
    started = time.monotonic()
    run_source(pipeline, source(fake, "teams", max_retry_wait=0.2))

    # the wait scheduled is the test; the wall clock only shows the 60 s period was not slept
    assert time.monotonic() - started < 60
    assert retry_waits(caplog) == [0.2]
    assert count(pipeline, "teams") == len(fake.data["teams"])


def test_429_that_never_clears_fails_with_a_clear_error_after_the_retries(
    fake: IncidentAnalyticsFake, pipeline: dlt.Pipeline
) -> None:
    fake.inject(
        Fault(
            429,
            body=fake.error_body("You are making too many requests!"),
            headers={"Retry-After": "0"},
            path="/v2/teams",
            times=100,
        )
    )
    with pytest.raises(PipelineStepFailed) as info:
        run_source(pipeline, source(fake, "teams", max_retries=2))

    error = root_cause(info.value, RequestFailedError)
    assert error.status_code == 429
    assert "incident_analytics: resource `teams`" in str(error)
    assert "after 3 attempt(s)" in str(error)
    assert len(fake.requests_to("/v2/teams")) == 3


def test_server_errors_are_retried_and_a_persistent_one_fails_clearly(
    fake: IncidentAnalyticsFake, pipeline: dlt.Pipeline
) -> None:
    fake.inject(
        Fault(
            503,
            body=fake.error_body("unavailable"),
            headers={"Retry-After": "0"},
            path="/v2/integrations",
        )
    )
    run_source(pipeline, source(fake, "integrations"))
    assert [r.status for r in fake.requests_to("/v2/integrations")] == [503, 200]
    assert count(pipeline, "integrations") == len(fake.data["integrations"])

    fake.inject(
        Fault(
            500,
            body=fake.error_body("boom"),
            headers={"Retry-After": "0"},
            path="/v2/integrations",
            times=100,
        )
    )
    with pytest.raises(PipelineStepFailed) as info:
        run_source(pipeline, source(fake, "integrations", max_retries=1))
    error = root_cause(info.value, RequestFailedError)
    assert error.status_code == 500
    assert "resource `integrations`" in str(error) and "boom" in str(error)


def test_bad_key_fails_with_an_error_naming_the_config_key_and_not_the_key(
    fake: IncidentAnalyticsFake, pipeline: dlt.Pipeline
) -> None:
    wrong = "not-the-right-key-7d41c0"
    with pytest.raises(PipelineStepFailed) as info:
        run_source(pipeline, source(fake, api_token=wrong))

    error = root_cause(info.value, AuthenticationError)
    assert "sources.incident_analytics.api_token" in str(error)
    assert "401" in str(error)
    assert wrong not in str(error)
    assert wrong not in str(info.value)
    # sent as `GenieKey <key>`, refused once, not retried
    assert [r.headers["Authorization"] for r in fake.requests] == [f"GenieKey {wrong}"]
    assert [r.status for r in fake.requests] == [401]


def test_the_auth_scheme_word_is_configurable(pipeline: dlt.Pipeline) -> None:
    with IncidentAnalyticsFake(scheme="Key") as fake:
        run_source(pipeline, source(fake, "teams", auth_scheme="Key"))  # type: ignore[arg-type]

    assert [r.headers["Authorization"] for r in fake.requests] == [f"Key {TOKEN}"]
    assert count(pipeline, "teams") == len(fake.data["teams"])


def test_missing_key_is_a_configuration_error_naming_the_config_key() -> None:
    with pytest.raises(Exception) as info:
        incident_analytics_source(api_token="", base_url="https://api.example.com")

    error = root_cause(info.value, ConfigurationError)
    assert "sources.incident_analytics.api_token" in str(error)


def test_initial_updated_at_sets_the_first_query(
    fake: IncidentAnalyticsFake, pipeline: dlt.Pipeline
) -> None:
    start = "2024-08-21T20:00:00.123456Z"
    run_source(pipeline, source(fake, "incidents", initial_updated_at=start))

    sent = {r.args["query"] for r in fake.requests_to("/v1/incidents")}
    assert sent == {f"updatedAt>={millis(parse_stamp(start))}"}
    expected = [
        r for r in fake.data["incidents"] if parse_stamp(r["updatedAt"]) >= parse_stamp(start)
    ]
    assert 0 < len(expected) < len(fake.data["incidents"])
    assert count(pipeline, "incidents") == len(expected)


def test_an_empty_page_that_still_links_on_is_followed_and_every_later_row_loads(
    pipeline: dlt.Pipeline, fake: IncidentAnalyticsFake
) -> None:
    # the answer to the second page is empty, but its `paging.next` names that page again
    second_page = f"{fake.base_url}/v2/users?limit=100&offset=100"
    fake.inject(
        Fault(200, {"data": [], "paging": {"next": second_page}}, path="/v2/users", after=1)
    )

    run_source(pipeline, source(fake, "users"))

    offsets = [r.args.get("offset") for r in fake.requests_to("/v2/users")]
    assert offsets == [None, "100", "100"]
    assert query(pipeline, "SELECT COUNT(DISTINCT id) FROM users") == [(130,)]


def test_an_empty_keyset_page_that_still_links_on_is_followed_at_its_next_offset(
    pipeline: dlt.Pipeline, fake: IncidentAnalyticsFake
) -> None:
    alerts = list(fake.data["alerts"])
    # the restarted query's first page comes back empty (records the server filtered out)
    # yet says there is a next page: the sync goes on to it instead of ending there
    empty = {"data": [], "paging": {"next": f"{fake.base_url}/v2/alerts?offset=100"}}
    fake.inject(Fault(200, empty, path="/v2/alerts", after=1))

    run_source(pipeline, source(fake, "alerts"))

    requests_sent = fake.requests_to("/v2/alerts")
    assert len(requests_sent) == 3
    restarted, after_empty = requests_sent[1].args, requests_sent[2].args
    assert after_empty["query"] == restarted["query"] != "updatedAt>=0"
    assert "offset" not in restarted and after_empty["offset"] == "100"
    ordered = sorted(alerts, key=lambda row: (parse_stamp(row["updatedAt"]), row["id"]))
    skipped_by_the_server = {row["id"] for row in ordered[99:199]}
    loaded = {row[0] for row in query(pipeline, "SELECT id FROM alerts")}
    # every record after the empty page loaded (the first page's too)
    assert {row["id"] for row in ordered[199:]} <= loaded
    assert {row["id"] for row in ordered[:99]} <= loaded
    assert loaded.isdisjoint(skipped_by_the_server - {ordered[99]["id"]})
