"""incident_analytics against its fake server over loopback: the 20,000 offset cap, 429
bursts, server errors and rejected keys (../shared/api-contracts/incident_analytics.md)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.incident_analytics import incident_analytics_source
from shared.errors import AuthenticationError, ConfigurationError, RequestFailedError
from shared.loading import run_source
from shared.offset_cap import OffsetCapError
from tests.dataset import count, query
from tests.failures import root_cause
from tests.fakes.base import Fault
from tests.fakes.incident_analytics import (
    EPOCH,
    OFFSET_CAP,
    TOKEN,
    AlertStream,
    IncidentAnalyticsFake,
    millis,
    parse_stamp,
    record_id,
)

pytestmark = pytest.mark.loopback

NO_PACING = {"requests_per_minute": 6_000_000}
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
        if record.name == "shared.session" and (match := RETRY_LOG.search(record.getMessage()))
    ]


def test_full_sync_against_the_fake_loads_all_six_resources_without_a_refused_request(
    fake: IncidentAnalyticsFake, pipeline: dlt.Pipeline
) -> None:
    run_source(pipeline, source(fake))

    assert {table: count(pipeline, table) for table in fake.data} == {
        table: len(rows) for table, rows in fake.data.items()
    }
    # the fake answers 422 to incidents without `query` and to pages past the cap
    assert {request.status for request in fake.requests} == {200}
    assert all(r.args.get("query") == "updatedAt>=0" for r in fake.requests_to("/v1/incidents"))
    assert {r.headers["Authorization"] for r in fake.requests} == {f"GenieKey {TOKEN}"}


def test_more_than_20000_alerts_load_completely_by_restarting_before_the_offset_cap(
    pipeline: dlt.Pipeline,
) -> None:
    total = OFFSET_CAP + 550
    stream = AlertStream(total, per_milli=3)
    started = time.monotonic()
    with IncidentAnalyticsFake(alerts=stream) as fake:
        run_source(pipeline, source(fake, "alerts"))  # type: ignore[arg-type]
    elapsed = time.monotonic() - started

    # all present, none duplicated
    assert count(pipeline, "alerts") == total
    assert query(pipeline, "SELECT COUNT(DISTINCT id) FROM alerts") == [(total,)]
    loaded = {row[0] for row in query(pipeline, "SELECT id FROM alerts")}
    assert loaded == {record_id("stream-alert", i) for i in range(total)}
    # never asked past the cap: one restart at offset 0 from the last record's millisecond
    requests = fake.requests_to("/v2/alerts")
    assert {r.status for r in requests} == {200}
    assert max(int(r.args.get("offset", 0)) + int(r.args["limit"]) for r in requests) == OFFSET_CAP
    restarts = [r for r in requests if r.args["query"] != "updatedAt>=0"]
    last_before_cap = parse_stamp(stream[OFFSET_CAP - 1]["updatedAt"])
    assert [(r.args["query"], r.args["offset"]) for r in restarts[:1]] == [
        (f"updatedAt>={millis(last_before_cap)}", "0")
    ]
    assert all(r.args["query"] == restarts[0].args["query"] for r in restarts)
    # the restart re-read the alerts of that millisecond already loaded: 200 pages, then
    # the 552 alerts from index 19,998 on (the merge dropped the two read twice)
    assert stream.first_at_or_after(millis(last_before_cap)) == OFFSET_CAP - 2
    assert len(requests) == 200 + 6
    assert {r.args["sort"] for r in requests} == {"updatedAt"}
    state = pipeline.state["sources"]["incident_analytics"]["resources"]["alerts"]["incremental"]
    assert state["updatedAt"]["last_value"] == stream[total - 1]["updatedAt"]
    assert elapsed < 15


def test_one_updated_at_holding_20000_alerts_fails_clearly_instead_of_looping(
    pipeline: dlt.Pipeline,
) -> None:
    stream = AlertStream(OFFSET_CAP + 100, per_milli=10**9)  # every alert the same instant
    assert stream[0]["updatedAt"] == stream[OFFSET_CAP + 99]["updatedAt"]
    with IncidentAnalyticsFake(alerts=stream) as fake, pytest.raises(PipelineStepFailed) as info:
        run_source(pipeline, source(fake, "alerts"))  # type: ignore[arg-type]

    error = root_cause(info.value, OffsetCapError)
    assert "incident_analytics" in str(error)
    assert "offset cap of 20000" in str(error)
    assert f"{millis(EPOCH)}" in str(error)
    # it stopped at the cap: 200 pages, no page past it, no second pass
    requests = fake.requests_to("/v2/alerts")
    assert len(requests) == OFFSET_CAP // 100
    assert {r.args["query"] for r in requests} == {"updatedAt>=0"}
    assert {r.status for r in requests} == {200}


def test_429_waits_retry_after_when_present_rather_than_the_period(
    fake: IncidentAnalyticsFake, pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shared.session")
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

    assert time.monotonic() - started < 5
    assert retry_waits(caplog) == [0.0, 0.0, 0.0]
    assert [r.status for r in fake.requests_to("/v2/users")] == [429, 429, 429, 200, 200]
    assert count(pipeline, "users") == len(fake.data["users"])


def test_429_with_only_the_period_header_waits_the_period_then_retries(
    fake: IncidentAnalyticsFake, pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shared.session")
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
    caplog.set_level(logging.WARNING, logger="shared.session")
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

    assert time.monotonic() - started < 5
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
