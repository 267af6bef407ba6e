"""project_tracker against its fake server on loopback: the search cap, vanished parents,
pacing under a rolling window, retries and credentials
(../shared/api-contracts/project_tracker.md)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.project_tracker import project_tracker_source
from connectors.project_tracker.settings import REQUESTS_PER_MINUTE
from shared.errors import AuthenticationError, ConfigurationError, RequestFailedError
from shared.loading import run_source
from shared.rate_limit import RateLimit
from tests.dataset import count, query
from tests.failures import root_cause
from tests.fakes.base import Fault
from tests.fakes.project_tracker import API_KEY, SEARCH_CAP, ProjectTrackerFake, decode_token

#: pacing is not the point of most tests here
UNPACED = 60_000
#: the epics' children and grandchildren
EPIC_FAMILY = ("epics_comments", "epics_stories", "stories_comments", "story_history")


@pytest.fixture
def fake() -> Iterator[ProjectTrackerFake]:
    with ProjectTrackerFake() as server:
        yield server


def source(fake: ProjectTrackerFake, *resources: str, **kwargs: Any) -> Any:
    kwargs.setdefault("requests_per_minute", UNPACED)
    kwargs.setdefault("api_key", API_KEY)
    loaded = project_tracker_source(base_url=fake.base_url, **kwargs)
    return loaded.with_resources(*resources) if resources else loaded


def test_search_stops_at_the_1000_result_cap_with_a_warning_and_keeps_what_it_loaded(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        ProjectTrackerFake(epics=SEARCH_CAP + 150, stories_per_epic=0) as fake,
        caplog.at_level(logging.WARNING),
    ):
        run_source(pipeline, source(fake, "search_epics", search_query="state:any"))

    assert count(pipeline, "search_epics") == SEARCH_CAP
    assert query(pipeline, "SELECT MIN(id), MAX(id) FROM search_epics") == [(1000, 1999)]
    searches = fake.requests_to("/v1/search/epics")
    # four pages of 250, then the request past the cap, answered 400 and not retried
    assert [r.status for r in searches] == [200, 200, 200, 200, 400]
    assert all(r.args["query"] == "state:any" and r.args["page_size"] == "250" for r in searches)
    assert "next" not in searches[0].args
    assert [decode_token(r.args["next"]) for r in searches[1:]] == [250, 500, 750, 1000]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("maximum-results-exceeded" in w and "/v1/search/epics" in w for w in warnings)


def test_a_child_list_of_a_vanished_parent_is_skipped_with_a_warning(
    fake: ProjectTrackerFake, pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    gone_epic = fake.epics[2]["id"]
    gone_story = fake.stories[0]["id"]
    fake.vanished |= {gone_epic, gone_story}

    with caplog.at_level(logging.WARNING):
        run_source(pipeline, source(fake, "epics", *EPIC_FAMILY))

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for path in (
        f"/v1/epics/{gone_epic}/comments",
        f"/v1/epics/{gone_epic}/stories",
        f"/v1/stories/{gone_story}/comments",
        f"/v1/stories/{gone_story}/history",
    ):
        assert [r.status for r in fake.requests_to(path)] == [404], path
        assert any(path in w and "404" in w for w in warnings), path
    # the vanished epic's stories were never listed, so neither were their comments
    lost_stories = [s["id"] for s in fake.stories if s["epic_id"] == gone_epic]
    assert not fake.requests_to(f"/v1/stories/{lost_stories[0]}/")
    assert query(pipeline, f"SELECT COUNT(*) FROM epics_comments WHERE epic_id = {gone_epic}") == [
        (0,)
    ]
    # everything else loaded
    assert count(pipeline, "epics") == len(fake.epics)
    assert count(pipeline, "epics_stories") == len(fake.stories) - len(lost_stories)
    expected_history = 2 * (len(fake.stories) - len(lost_stories) - 1)
    assert count(pipeline, "story_history") == expected_history
    kept_comments = sum(len(c) for e, c in fake.comments_by_epic.items() if e != gone_epic)
    assert count(pipeline, "epics_comments") == kept_comments


def test_pacing_keeps_a_full_sync_under_a_rolling_window_with_no_429(
    pipeline: dlt.Pipeline,
) -> None:
    # The contract's concern is 200 per minute enforced over a shorter window, 20 per 6 s.
    # Run at that speed a full sync takes ~15 s, so this test scales time by six: 1,200
    # per minute against 20 per rolling 1 s. What decides whether a burst trips the
    # window is how many pacing intervals fit in it against its budget, and scaling
    # both the rate and the window by the same factor keeps that ratio: the pacer lets
    # 18 requests into any window (90% headroom) of the 20 it allows, in both cases.
    contract, scaled = RateLimit(REQUESTS_PER_MINUTE, 60), RateLimit(1_200, 60)
    assert REQUESTS_PER_MINUTE == 200
    assert 6.0 / contract.interval == pytest.approx(1.0 / scaled.interval) == pytest.approx(18)
    with ProjectTrackerFake(epics=3, stories_per_epic=1) as fake:
        fake.enforce_window(20, 1.0)
        started = time.monotonic()
        run_source(pipeline, source(fake, requests_per_minute=1_200))
        elapsed = time.monotonic() - started

    assert fake.limited_responses == 0
    assert {r.status for r in fake.requests} == {200}
    sent = len(fake.requests)
    assert sent == 45  # 14 lists and a search page, 30 child lists: no retries
    # evenly spaced at 90% of the rate: 18 a second
    assert elapsed >= (sent - 1) / 18
    assert count(pipeline, "epics_comments") == sum(len(c) for c in fake.comments_by_epic.values())
    assert count(pipeline, "stories_comments") == sum(
        len(c) for c in fake.comments_by_story.values()
    )
    assert count(pipeline, "story_history") == 2 * len(fake.stories)
    assert count(pipeline, "groups_stories") == len(fake.stories)
    assert count(pipeline, "search_epics") == len(fake.epics)


def test_without_pacing_the_same_sync_hits_the_window(pipeline: dlt.Pipeline) -> None:
    # the control for the test above: the window is tight enough that pacing matters
    with ProjectTrackerFake(epics=3, stories_per_epic=1) as fake:
        fake.enforce_window(20, 1.0)
        with pytest.raises(PipelineStepFailed) as failed:
            run_source(pipeline, source(fake, max_retries=0))

    assert fake.limited_responses > 0
    error = root_cause(failed.value, RequestFailedError)
    assert error.status_code == 429
    assert "Rate limit exceeded" in str(error)


def test_a_429_is_retried_after_the_seeds_backoff_of_two_seconds(
    fake: ProjectTrackerFake, pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    fake.inject(Fault(429, {"message": "Rate limit exceeded"}, path="/v1/labels"))

    with caplog.at_level(logging.WARNING):
        run_source(pipeline, source(fake, "labels"))

    assert [r.status for r in fake.requests_to("/v1/labels")] == [429, 200]
    assert count(pipeline, "labels") == len(fake.lists["labels"])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("429" in w and "retry 1 of 3 in 2.00s" in w for w in warnings)


def test_a_429_that_persists_fails_after_three_retries_with_a_clear_error(
    fake: ProjectTrackerFake, pipeline: dlt.Pipeline
) -> None:
    fake.inject(Fault(429, {"message": "Rate limit exceeded"}, path="/v1/labels", times=10))

    with pytest.raises(PipelineStepFailed) as failed:
        run_source(pipeline, source(fake, "labels", backoff_factor=0.01))

    assert len(fake.requests_to("/v1/labels")) == 4
    error = root_cause(failed.value, RequestFailedError)
    assert error.status_code == 429
    assert "project_tracker" in str(error) and "`labels`" in str(error)


def test_the_key_goes_in_the_configured_header_and_a_wrong_key_names_the_secret(
    pipeline: dlt.Pipeline,
) -> None:
    with ProjectTrackerFake(header="X-Tracker-Key") as fake:
        run_source(pipeline, source(fake, "labels", "member", api_key_header="X-Tracker-Key"))
        assert {r.headers.get("X-Tracker-Key") for r in fake.requests} == {API_KEY}
        assert count(pipeline, "member") == 1

        with pytest.raises(PipelineStepFailed) as failed:
            run_source(pipeline, source(fake, "labels", api_key="wrong-key-1234"))

    error = root_cause(failed.value, AuthenticationError)
    assert "sources.project_tracker.api_key" in str(error)
    assert "wrong-key-1234" not in str(error)


def test_a_missing_key_is_a_configuration_error_naming_where_to_set_it() -> None:
    with pytest.raises(ConfigurationError, match="sources.project_tracker.api_key"):
        project_tracker_source(api_key="", base_url="https://api.example.com")


def test_children_are_fetched_concurrently_by_default(pipeline: dlt.Pipeline) -> None:
    with ProjectTrackerFake(latency=0.05) as fake:
        run_source(pipeline, source(fake, "epics", "epics_stories"))

    assert fake.max_in_flight > 1
    assert count(pipeline, "epics_stories") == len(fake.stories)


def test_sequential_children_load_the_same_rows_one_request_at_a_time(
    pipeline: dlt.Pipeline,
) -> None:
    with ProjectTrackerFake(latency=0.02) as fake:
        run_source(
            pipeline,
            source(fake, "epics", "epics_stories", "story_history", concurrent_children=False),
        )

    assert fake.max_in_flight == 1
    assert len(fake.requests) == 1 + len(fake.epics) + len(fake.stories)
    assert count(pipeline, "epics_stories") == len(fake.stories)
    assert count(pipeline, "story_history") == 2 * len(fake.stories)
