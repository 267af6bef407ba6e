"""shared.loading: parquet into DuckDB."""

from __future__ import annotations

from pathlib import Path

import dlt

from shared.loading import duckdb_pipeline, row_counts, run_source
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
