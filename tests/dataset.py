"""Reading what a pipeline loaded, for assertions."""

from __future__ import annotations

from typing import Any

import dlt


def query(pipeline: dlt.Pipeline, sql: str) -> list[tuple[Any, ...]]:
    """Run SQL in the pipeline's dataset (unqualified table names resolve to it)."""
    with pipeline.sql_client() as client, client.execute_query(sql) as cursor:
        return cursor.fetchall()


def count(pipeline: dlt.Pipeline, table: str, where: str = "") -> int:
    return int(query(pipeline, f"SELECT COUNT(*) FROM {table} {where}")[0][0])


def columns(pipeline: dlt.Pipeline, table: str) -> set[str]:
    return set(pipeline.default_schema.get_table_columns(table))


def loaded_file_formats(load_info: Any) -> set[str]:
    """File formats of the data jobs a load completed (dlt's own tables and its merge
    SQL jobs excluded)."""
    return {
        job.job_file_info.file_format
        for package in load_info.load_packages
        for job in package.jobs["completed_jobs"]
        if not job.job_file_info.table_name.startswith("_dlt")
        and job.job_file_info.file_format != "sql"
    }
