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

import connectors.project_tracker as connector
from connectors.project_tracker import project_tracker_source
from connectors.project_tracker.settings import REQUESTS_PER_MINUTE
from connectors.sandbox.base import Fault
from connectors.sandbox.project_tracker import (
    API_KEY,
    SEARCH_CAP,
    ProjectTrackerFake,
    decode_token,
    encode_token,
)
from shared.errors import AuthenticationError, ConfigurationError, RequestFailedError
from shared.http.rate_limit import RateLimit
from shared.loading import run_source
from tests.dataset import count, query
from tests.failures import root_cause

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
    for path, reads in (
        (f"/v1/epics/{gone_epic}/comments", 1),
        (f"/v1/epics/{gone_epic}/stories", 1),
        (f"/v1/stories/{gone_story}/comments", 1),
        (f"/v1/stories/{gone_story}/history", 1),
    ):
        assert [r.status for r in fake.requests_to(path)] == [404] * reads, path
        assert any(path in w and "404" in w for w in warnings), path
    assert query(pipeline, f"SELECT COUNT(*) FROM epics_comments WHERE epic_id = {gone_epic}") == [
        (0,)
    ]
    # the vanished epic's stories are not in its list, but the sync still sees them under
    # their group and iteration: their comments and history load
    lost_stories = [s["id"] for s in fake.stories if s["epic_id"] == gone_epic]
    for story in lost_stories:
        assert query(pipeline, f"SELECT COUNT(*) FROM story_history WHERE story_id = {story}") == [
            (2,)
        ]
    # everything else loaded
    assert count(pipeline, "epics") == len(fake.epics)
    epic_stories = [s for s in fake.stories if s["epic_id"] is not None]
    assert count(pipeline, "epics_stories") == len(epic_stories) - len(lost_stories)
    assert count(pipeline, "story_history") == 2 * (len(fake.stories) - 1)
    kept_comments = sum(len(c) for e, c in fake.comments_by_epic.items() if e != gone_epic)
    assert count(pipeline, "epics_comments") == kept_comments


@pytest.mark.slow  # a rolling window, waited out (~12 s)
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
    # no retries: 13 lists and a search page; 25 child lists under categories, epics, groups,
    # iterations, milestones and objectives; comments and history of the 5 stories (3 under
    # epics, 1 only in a group, 1 only in an iteration)
    assert len(fake.stories) == 5
    assert sent == 14 + 25 + 2 * 5
    # evenly spaced at 90% of the rate: 18 a second
    assert elapsed >= (sent - 1) / 18
    assert count(pipeline, "epics_comments") == sum(len(c) for c in fake.comments_by_epic.values())
    assert count(pipeline, "stories_comments") == sum(
        len(c) for c in fake.comments_by_story.values()
    )
    assert count(pipeline, "story_history") == 2 * len(fake.stories)
    assert count(pipeline, "groups_stories") == sum(1 for s in fake.stories if s["group_id"])
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
    assert count(pipeline, "epics_stories") == sum(1 for s in fake.stories if s["epic_id"])


def test_sequential_children_load_the_same_rows_one_request_at_a_time(
    pipeline: dlt.Pipeline,
) -> None:
    with ProjectTrackerFake(latency=0.02) as fake:
        run_source(
            pipeline,
            source(fake, "epics", "epics_stories", "story_history", concurrent_children=False),
        )

    assert fake.max_in_flight == 1
    # every story seen needs the epics', groups' and iterations' story lists, once each;
    # then one history request per story
    story_lists = len(fake.epics) + len(fake.groups) + len(fake.iterations)
    assert len(fake.requests) == 3 + story_lists + len(fake.stories)
    assert count(pipeline, "epics_stories") == sum(1 for s in fake.stories if s["epic_id"])
    assert count(pipeline, "story_history") == 2 * len(fake.stories)


@pytest.mark.parametrize(
    ("stories", "offsets"),
    [(25, [0, 10, 20]), (20, [0, 10, 20])],
    ids=["short-last-page", "full-last-page-then-empty"],
)
def test_a_group_with_more_stories_than_one_request_returns_is_paged_by_offset(
    pipeline: dlt.Pipeline, monkeypatch: pytest.MonkeyPatch, stories: int, offsets: list[int]
) -> None:
    # the real cap is 1,000 stories a request; 10 keeps the test fast and the logic the same
    monkeypatch.setattr(connector, "GROUP_STORIES_LIMIT", 10)
    with ProjectTrackerFake(
        epics=0,
        stories_per_epic=0,
        group_only_stories=stories,
        iteration_only_stories=0,
        group_stories_cap=10,
    ) as fake:
        run_source(pipeline, source(fake, "groups", "groups_stories"))

    big, *others = [group["id"] for group in fake.groups]
    expected = {(s["group_id"], s["id"]) for s in fake.stories}
    assert len(expected) == stories
    assert set(query(pipeline, "SELECT group_id, id FROM groups_stories")) == expected
    pages = fake.requests_to(f"/v1/groups/{big}/stories")
    assert [int(r.args["offset"]) for r in pages] == offsets
    assert {r.args["limit"] for r in pages} == {"10"}
    assert {r.status for r in pages} == {200}
    # a group with no stories: one short (empty) page
    for group in others:
        assert [r.args["offset"] for r in fake.requests_to(f"/v1/groups/{group}/stories")] == ["0"]


def test_a_group_asked_for_more_than_its_cap_fails_loudly_rather_than_loading_a_part(
    pipeline: dlt.Pipeline,
) -> None:
    # the control for the test above: the fake holds the connector to the cap it documents
    with (
        ProjectTrackerFake(epics=0, group_only_stories=25, group_stories_cap=10) as fake,
        pytest.raises(PipelineStepFailed) as failed,
    ):
        run_source(pipeline, source(fake, "groups", "groups_stories"))

    error = root_cause(failed.value, RequestFailedError)
    assert error.status_code == 400
    assert "`groups_stories`" in str(error)
    assert {r.args["limit"] for r in fake.requests_to("/v1/groups/")} == {"1000"}


def test_stories_only_in_a_group_or_an_iteration_get_comments_and_history_once_each(
    fake: ProjectTrackerFake, pipeline: dlt.Pipeline
) -> None:
    group_only = next(s["id"] for s in fake.stories if s["epic_id"] is None and s["group_id"])
    iteration_only = next(
        s["id"] for s in fake.stories if s["epic_id"] is None and s["iteration_id"]
    )

    run_source(pipeline, source(fake))

    for story in (group_only, iteration_only):
        comments = query(pipeline, f"SELECT id FROM stories_comments WHERE story_id = {story}")
        assert sorted(comments) == sorted((c["id"],) for c in fake.comments_by_story[story])
        history = query(pipeline, f"SELECT id FROM story_history WHERE story_id = {story}")
        assert sorted(history) == sorted((h["id"],) for h in fake.history_by_story[story])
    assert query(pipeline, f"SELECT group_id FROM groups_stories WHERE id = {group_only}") == [
        (fake.groups[0]["id"],)
    ]
    assert query(
        pipeline, f"SELECT iteration_id FROM iterations_stories WHERE id = {iteration_only}"
    ) == [(300,)]
    assert query(
        pipeline, f"SELECT COUNT(*) FROM epics_stories WHERE id IN ({group_only}, {iteration_only})"
    ) == [(0,)]
    # every story sits under up to three parents, yet its lists are requested once
    for story in fake.stories:
        for child in ("comments", "history"):
            assert len(fake.requests_to(f"/v1/stories/{story['id']}/{child}")) == 1
    assert count(pipeline, "story_history") == sum(map(len, fake.history_by_story.values()))
    assert count(pipeline, "stories_comments") == sum(map(len, fake.comments_by_story.values()))


def cursor(pipeline: dlt.Pipeline, resource: str) -> Any:
    resources = pipeline.state["sources"]["project_tracker"]["resources"]
    return resources[resource]["incremental"]["updated_at"]["last_value"]


@pytest.mark.slow
def test_records_without_updated_at_load_every_run_and_leave_the_cursor_where_it_is(
    fake: ProjectTrackerFake, pipeline: dlt.Pipeline
) -> None:
    undated = fake.undated
    assert set(undated) == {"epics", "stories", "members", "labels", "files", "epic_workflow"}
    tables = {"epics": "epics", "members": "members", "labels": "labels", "files": "files"}
    lists = {"epics": fake.epics, **{t: fake.lists[t] for t in ("members", "labels", "files")}}

    run_source(pipeline, source(fake))

    for kind, table in tables.items():
        for record_id in undated[kind]:
            rows = query(pipeline, f"SELECT updated_at FROM {table} WHERE id = '{record_id}'")
            assert rows == [(None,)], (table, record_id)
        newest = max(r["updated_at"] for r in lists[kind] if r.get("updated_at"))
        assert cursor(pipeline, table) == newest, table
    assert query(pipeline, "SELECT id, updated_at FROM epic_workflow") == [(1, None)]
    assert cursor(pipeline, "epic_workflow") is None
    for story in undated["stories"]:
        # one story only in a group, one only in an iteration (updated_at null, missing)
        rows = query(
            pipeline,
            f"SELECT updated_at FROM groups_stories WHERE id = {story} "
            f"UNION ALL SELECT updated_at FROM iterations_stories WHERE id = {story}",
        )
        assert rows == [(None,)], story
        history = query(pipeline, f"SELECT COUNT(*) FROM story_history WHERE story_id = {story}")
        assert history == [(2,)], story
    # the undated epic is still a parent: its children are requested
    undated_epic = undated["epics"][0]
    assert [r.status for r in fake.requests_to(f"/v1/epics/{undated_epic}/comments")] == [200]
    assert query(pipeline, f"SELECT updated_at FROM search_epics WHERE id = {undated_epic}") == [
        (None,)
    ]
    cursors = {table: cursor(pipeline, table) for table in tables.values()}

    run_source(pipeline, source(fake))

    # nothing changed: only the records without a cursor value load again
    loaded = pipeline.last_trace.last_normalize_info.row_counts
    for kind, table in tables.items():
        assert loaded.get(table) == len(undated[kind]), table
    assert loaded.get("epic_workflow") == 1
    assert {table: cursor(pipeline, table) for table in tables.values()} == cursors
    for kind, table in tables.items():
        assert count(pipeline, table) == len(lists[kind]), table


def test_an_empty_search_page_that_still_links_on_is_followed_and_every_later_row_loads(
    pipeline: dlt.Pipeline,
) -> None:
    with ProjectTrackerFake(epics=600, stories_per_epic=0) as fake:
        # the answer to the second page is empty, but its `next` token names that page again
        empty = {"data": [], "next": encode_token(250), "total": 600}
        fake.inject(Fault(200, empty, path="/v1/search/epics", after=1))

        run_source(pipeline, source(fake, "search_epics"))

    searches = fake.requests_to("/v1/search/epics")
    assert [decode_token(r.args["next"]) for r in searches[1:]] == [250, 250, 500]
    assert query(pipeline, "SELECT COUNT(DISTINCT id) FROM search_epics") == [(600,)]
