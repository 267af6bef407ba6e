"""Pipeline defaults for the catalog: parquet files into DuckDB.

Connectors already mark their tables as parquet, so a plain `pipeline.run(source)` loads
parquet; `run_source` also says so explicitly and shows progress.
"""

from __future__ import annotations

import os
from typing import Any

import dlt
from dlt.common.pipeline import LoadInfo

DEFAULT_LOADER_FILE_FORMAT = "parquet"

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")


def duckdb_pipeline(
    pipeline_name: str,
    database: str | None = None,
    dataset_name: str | None = None,
    pipelines_dir: str | None = None,
    progress: Any = None,
) -> dlt.Pipeline:
    """A pipeline loading into a DuckDB file (`<pipeline_name>.duckdb` unless `database`)."""
    destination = dlt.destinations.duckdb(database or f"{pipeline_name}.duckdb")
    return dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=destination,
        dataset_name=dataset_name or f"{pipeline_name}_data",
        pipelines_dir=pipelines_dir,
        progress=progress,
    )


def run_source(pipeline: dlt.Pipeline, source: Any, **kwargs: Any) -> LoadInfo:
    """Run `source` through `pipeline` with parquet as the loader file format."""
    kwargs.setdefault("loader_file_format", DEFAULT_LOADER_FILE_FORMAT)
    return pipeline.run(source, **kwargs)


def row_counts(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Rows per table (children included) in the pipeline's dataset, from the destination."""
    schema = pipeline.default_schema
    tables = sorted(schema.data_table_names())
    counts: dict[str, int] = {}
    with pipeline.sql_client() as client:
        for table in tables:
            qualified = client.make_qualified_table_name(table)
            try:
                rows = client.execute_sql(f"SELECT COUNT(*) FROM {qualified}")
            except Exception:  # a table in the schema that never received rows
                continue
            assert rows is not None  # a SELECT always returns a result set
            counts[table] = int(rows[0][0])
    return counts
