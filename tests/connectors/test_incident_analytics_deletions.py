"""incident_analytics learns deletions from users, teams, services and integrations,
listed in full every run (the API reports none); incidents and alerts only load changes.
Over loopback into DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.incident_analytics import incident_analytics_source
from connectors.sandbox.base import Fault
from connectors.sandbox.incident_analytics import TOKEN, IncidentAnalyticsFake
from shared.loading import run_source
from tests.dataset import count, query


@pytest.fixture
def fake() -> Iterator[IncidentAnalyticsFake]:
    with IncidentAnalyticsFake() as server:
        yield server


def sync(
    pipeline: dlt.Pipeline, fake: IncidentAnalyticsFake, *resources: str, **kwargs: Any
) -> None:
    source = incident_analytics_source(
        api_token=TOKEN, base_url=fake.base_url, requests_per_minute=60_000, **kwargs
    )
    run_source(pipeline, source.with_resources(*resources))


def test_a_team_missing_from_the_list_keeps_its_row_and_members(
    pipeline: dlt.Pipeline, fake: IncidentAnalyticsFake
) -> None:
    sync(pipeline, fake, "teams", "users")
    team = fake.data["teams"][2]
    members = count(pipeline, "teams__members")
    fake.delete("teams", team["id"])

    sync(pipeline, fake, "teams", "users")

    rows = query(
        pipeline, f"SELECT name, _deleted_at IS NOT NULL FROM teams WHERE id = '{team['id']}'"
    )
    assert rows == [("Team 2", True)]
    assert count(pipeline, "teams__members") == members
    assert count(pipeline, "teams", "WHERE _deleted_at IS NULL") == 6
    assert count(pipeline, "users", "WHERE _deleted_at IS NOT NULL") == 0


def test_hard_mode_removes_a_deleted_team_and_its_members(
    pipeline: dlt.Pipeline, fake: IncidentAnalyticsFake
) -> None:
    sync(pipeline, fake, "teams", deletions="hard")
    team = fake.data["teams"][2]
    members = count(pipeline, "teams__members")
    own = len(team["members"])
    fake.delete("teams", team["id"])

    sync(pipeline, fake, "teams", deletions="hard")

    assert count(pipeline, "teams", f"WHERE id = '{team['id']}'") == 0
    assert count(pipeline, "teams") == 6
    assert count(pipeline, "teams__members") == members - own


def test_a_failed_run_marks_nothing(pipeline: dlt.Pipeline, fake: IncidentAnalyticsFake) -> None:
    sync(pipeline, fake, "users", "services")
    user = fake.data["users"][4]
    fake.delete("users", user["id"])
    # the users list completes; services then fails for good
    fake.inject(Fault(500, {"message": "boom"}, path="/v1/services", times=100))

    with pytest.raises(PipelineStepFailed):
        sync(pipeline, fake, "users", "services", max_retries=0)

    assert count(pipeline, "users", "WHERE _deleted_at IS NOT NULL") == 0
    fake.faults.clear()
    sync(pipeline, fake, "users", "services")
    assert count(pipeline, "users", f"WHERE id = '{user['id']}' AND _deleted_at IS NOT NULL") == 1
