"""project_tracker learns deletions from its lists, read in full every run (the API
reports none): soft by default (`_deleted_at`), hard on request. Over loopback into
DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import dlt
import pytest

from connectors.project_tracker import project_tracker_source
from connectors.sandbox.project_tracker import API_KEY, ProjectTrackerFake
from shared.loading import run_source
from tests.dataset import count, query


@pytest.fixture
def fake() -> Iterator[ProjectTrackerFake]:
    with ProjectTrackerFake() as server:
        yield server


def sync(pipeline: dlt.Pipeline, fake: ProjectTrackerFake, *resources: str, **kwargs: Any) -> None:
    source = project_tracker_source(
        api_key=API_KEY, base_url=fake.base_url, requests_per_minute=60_000, **kwargs
    )
    run_source(pipeline, source.with_resources(*resources))


def test_a_label_missing_from_the_list_keeps_its_row_marked_at_the_syncs_start(
    pipeline: dlt.Pipeline, fake: ProjectTrackerFake
) -> None:
    sync(pipeline, fake, "labels")
    fake.delete("labels", 701)

    started = datetime.now(timezone.utc)
    sync(pipeline, fake, "labels")

    ((name, color, marked),) = query(
        pipeline, "SELECT name, color, _deleted_at FROM labels WHERE id = 701"
    )
    assert (name, color) == ("Label 1", "#00ff00")
    assert started - timedelta(seconds=1) <= marked <= datetime.now(timezone.utc)
    assert count(pipeline, "labels", "WHERE _deleted_at IS NULL") == 3


def test_an_epic_missing_from_the_list_keeps_its_nested_rows(
    pipeline: dlt.Pipeline, fake: ProjectTrackerFake
) -> None:
    # epics load through a hidden listing and a client-side cursor: the unchanged epics
    # are filtered out of the second run, the deleted one still gets its mark
    sync(pipeline, fake, "epics")
    labels = query(pipeline, "SELECT COUNT(*) FROM epics__labels")
    objective_ids = query(
        pipeline,
        "SELECT o.value FROM epics__objective_ids o JOIN epics e ON o._dlt_parent_id = e._dlt_id "
        "WHERE e.id = 1001",
    )
    assert objective_ids == [(501,)]
    fake.delete("epics", 1001)

    sync(pipeline, fake, "epics")

    assert query(pipeline, "SELECT name, state FROM epics WHERE id = 1001") == [
        ("Epic 1", "in progress")
    ]
    assert count(pipeline, "epics", "WHERE _deleted_at IS NOT NULL") == 1
    assert count(pipeline, "epics", "WHERE id = 1001 AND _deleted_at IS NOT NULL") == 1
    assert query(pipeline, "SELECT COUNT(*) FROM epics__labels") == labels
    assert (
        query(
            pipeline,
            "SELECT o.value FROM epics__objective_ids o "
            "JOIN epics e ON o._dlt_parent_id = e._dlt_id WHERE e.id = 1001",
        )
        == objective_ids
    )


def test_hard_mode_removes_a_deleted_epic_and_its_nested_rows(
    pipeline: dlt.Pipeline, fake: ProjectTrackerFake
) -> None:
    sync(pipeline, fake, "epics", "labels", deletions="hard")
    epics = count(pipeline, "epics")
    labels = count(pipeline, "epics__labels")
    fake.delete("epics", 1001)
    fake.delete("labels", 701)

    sync(pipeline, fake, "epics", "labels", deletions="hard")

    assert count(pipeline, "epics") == epics - 1
    assert count(pipeline, "epics", "WHERE id = 1001") == 0
    assert count(pipeline, "epics__labels") == labels - 1
    assert count(pipeline, "labels", "WHERE id = 701") == 0
    assert count(pipeline, "labels") == 3
