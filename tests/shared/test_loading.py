"""shared.loading: parquet into DuckDB, one run of a pipeline at a time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dlt
import pytest

from shared.loading import (
    PipelineLockedError,
    duckdb_pipeline,
    lock_path,
    pipeline_lock,
    row_counts,
    run_source,
)
from tests.dataset import count, loaded_file_formats


@dlt.source(name="demo")
def demo_source() -> list:
    @dlt.resource(primary_key="id")
    def items() -> list[dict]:
        return [{"id": i, "tags": [f"t{i}", "x"]} for i in range(5)]

    @dlt.resource
    def empty() -> list[dict]:
        return []

    return [items, empty]


def test_run_source_loads_parquet_not_insert_values(pipeline: dlt.Pipeline) -> None:
    # no file format hints on these resources: run_source alone chooses parquet
    info = run_source(pipeline, demo_source())

    assert loaded_file_formats(info) == {"parquet"}
    assert count(pipeline, "items") == 5


def test_a_plain_run_of_the_same_source_would_use_insert_values(pipeline: dlt.Pipeline) -> None:
    info = pipeline.run(demo_source())

    assert loaded_file_formats(info) == {"insert_values"}


def test_row_counts_counts_every_loaded_table_children_included(pipeline: dlt.Pipeline) -> None:
    run_source(pipeline, demo_source())

    assert row_counts(pipeline) == {"items": 5, "items__tags": 10}


def test_duckdb_pipeline_names_its_database_and_dataset_after_the_pipeline(
    tmp_path: Path,
) -> None:
    database = tmp_path / "demo.duckdb"
    pipeline = duckdb_pipeline("demo", database=str(database), pipelines_dir=str(tmp_path))

    run_source(pipeline, demo_source())

    assert pipeline.destination.destination_name == "duckdb"
    assert pipeline.dataset_name == "demo_data"
    assert database.exists()


def test_a_run_while_the_pipeline_is_locked_fails_at_once_naming_it_and_the_holder(
    pipeline: dlt.Pipeline,
) -> None:
    with pipeline_lock(pipeline):
        with pytest.raises(PipelineLockedError) as raised:
            run_source(pipeline, demo_source())

        assert str(raised.value) == (
            f"pipeline `test` is already running in process {os.getpid()} "
            f"(lock {lock_path(pipeline)}); wait for that run to finish, or stop it, and "
            "run again"
        )
        assert pipeline.first_run  # nothing ran: no state, no load
    assert lock_path(pipeline).parent == Path(pipeline.working_dir).parent

    run_source(pipeline, demo_source())  # released: the next run goes ahead
    assert count(pipeline, "items") == 5


def test_the_lock_is_released_when_a_run_fails(pipeline: dlt.Pipeline) -> None:
    @dlt.resource(name="broken")
    def broken() -> Iterator[dict[str, int]]:
        yield {"id": 1}
        raise RuntimeError("the API went away")

    with pytest.raises(Exception, match="the API went away"):
        run_source(pipeline, broken())

    with pipeline_lock(pipeline):  # free again
        pass
    assert not lock_path(pipeline).with_name("test.lock.pid").exists()


def test_another_pipeline_is_not_locked_out(tmp_path: Path, pipeline: dlt.Pipeline) -> None:
    other = duckdb_pipeline(
        "other", database=str(tmp_path / "o.duckdb"), pipelines_dir=str(tmp_path)
    )

    with pipeline_lock(pipeline):
        run_source(other, demo_source())

    assert count(other, "items") == 5
