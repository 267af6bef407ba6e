"""The recorded error answers of crm, incident_analytics and hubspot_contacts, replayed:
a 429 and a 5xx on the way are retried and the sync loads everything (`retried_sync`);
a 4xx fails the sync with one line naming the request, the status and the API's message,
and loads nothing (`validation_error`). Expectations come from the fake prepared as the
recording prepared it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dlt
import pytest

from connectors.cli.explain import explain
from connectors.sandbox import load_recording
from shared.loading import duckdb_pipeline, row_counts
from shared.tooling.catalog import load_catalog
from shared.tooling.recordings import Recording
from tests.expected_rows import expected_rows
from tests.recording import replay

CONNECTORS = ("crm", "incident_analytics", "hubspot_contacts")
#: connector -> (the retried statuses, the 4xx, what its message must name)
RECORDED = {
    "crm": ({429, 503}, 422, "since is required"),
    "incident_analytics": ({429, 503}, 422, "Query field cannot be empty."),
    "hubspot_contacts": ({429, 502}, 400, "VALIDATION_ERROR"),
}


@pytest.fixture
def pipeline(tmp_path: Path) -> dlt.Pipeline:
    """A new pipeline: each recorded error step is a first sync."""
    return duckdb_pipeline("test", database=str(tmp_path / "t.duckdb"), pipelines_dir=str(tmp_path))


def prepared_fake(rec: Recording, upto: str) -> Any:
    """The fake as the recording left it when it ran step `upto`: every `prepare` up to
    and including that step's applied in order."""
    fake = rec.fake()
    for step in rec.steps:
        if step.prepare:
            step.prepare(fake)
        if step.cassette == upto:
            return fake
    raise AssertionError(f"no step {upto}")


@pytest.mark.slow  # the retries wait as the API asks: seconds per connector
@pytest.mark.parametrize("connector", CONNECTORS)
def test_a_recorded_429_and_5xx_are_retried_and_the_sync_loads_everything(
    connector: str, pipeline: dlt.Pipeline
) -> None:
    rec = load_recording(connector)
    (cassette,) = replay(rec, pipeline, steps=["retried_sync"])

    retried, _, _ = RECORDED[connector]
    statuses = [response["status"]["code"] for response in cassette.responses]
    assert retried <= set(statuses) and set(statuses) - retried == {200}
    # each refused request was sent again, and answered
    for index, status in enumerate(statuses):
        if status != 200:
            again = [r.uri for r in cassette.requests[index + 1 :]]
            assert cassette.requests[index].uri in again
    assert cassette.play_count == len(cassette.data)
    expected = expected_rows(connector, prepared_fake(rec, "retried_sync"))
    loaded = row_counts(pipeline)
    assert {table: loaded.get(table) for table in expected} == expected


@pytest.mark.parametrize("connector", CONNECTORS)
def test_a_recorded_4xx_fails_the_sync_with_one_line_naming_the_apis_message(
    connector: str, pipeline: dlt.Pipeline
) -> None:
    _, refused, named = RECORDED[connector]
    with pytest.raises(Exception) as failure:
        replay(load_recording(connector), pipeline, steps=["validation_error"])

    line = explain(failure.value, load_catalog().get(connector))
    assert "\n" not in line
    assert line.startswith(f"{connector}: resource `")
    assert f"failed with {refused} " in line and named in line
    # the body the API sent is what the line quotes
    assert json.dumps(named)[1:-1] in line
    # nothing was loaded and no cursor was kept: the pipeline is as it was (new)
    assert pipeline.default_schema_name is None
    assert not pipeline.state.get("sources")
