"""shared.loading: parquet into DuckDB, one run of a pipeline at a time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dlt
import pytest

from shared.errors import ConfigurationError
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


def duckdb_settings(pipeline: dlt.Pipeline) -> tuple[str, int]:
    """The memory limit and threads DuckDB ran the pipeline's load with."""
    with pipeline.sql_client() as client:
        rows = client.execute_sql(
            "SELECT current_setting('memory_limit'), current_setting('threads')"
        )
    assert rows is not None
    limit, threads = rows[0]
    return str(limit), int(threads)


def test_duckdb_pipeline_caps_duckdb_at_128mb_and_one_thread_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", raising=False)
    pipeline = duckdb_pipeline(
        "demo", database=str(tmp_path / "d.duckdb"), pipelines_dir=str(tmp_path)
    )

    run_source(pipeline, demo_source())

    # DuckDB prints 128 MB (10^6) in MiB; its own default is 80% of the machine's memory
    assert duckdb_settings(pipeline) == ("122.0 MiB", 1)
    assert count(pipeline, "items") == 5


def test_duckdb_settings_configured_for_dlt_win_over_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "300MB"}'
    )
    pipeline = duckdb_pipeline(
        "demo", database=str(tmp_path / "d.duckdb"), pipelines_dir=str(tmp_path)
    )

    run_source(pipeline, demo_source())

    limit, _ = duckdb_settings(pipeline)
    assert limit == "286.1 MiB"  # the configured 300MB


def test_duckdb_settings_configured_under_the_pipelines_name_win_over_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", raising=False)
    monkeypatch.setenv(
        "DEMO__DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "300MB"}'
    )
    pipeline = duckdb_pipeline(
        "demo", database=str(tmp_path / "d.duckdb"), pipelines_dir=str(tmp_path)
    )

    run_source(pipeline, demo_source())

    assert duckdb_settings(pipeline)[0] == "286.1 MiB"


def test_duckdb_settings_passed_in_win_over_configured_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "300MB"}'
    )
    pipeline = duckdb_pipeline(
        "demo",
        database=str(tmp_path / "d.duckdb"),
        pipelines_dir=str(tmp_path),
        duckdb_settings={"memory_limit": "200MB", "threads": 2},
    )

    run_source(pipeline, demo_source())

    assert duckdb_settings(pipeline) == ("190.7 MiB", 2)


#: a password with the characters that escape differently in JSON, regexes and URLs
DB_PASSWORD = 'Pw/0f"the\\db(.*)-äß'


@pytest.mark.parametrize(
    "credentials",
    [
        f"loader:{DB_PASSWORD}@db.internal/warehouse",  # no scheme
        f"postgresql//loader:{DB_PASSWORD}@db.internal/warehouse",  # a colon lost
    ],
)
def test_unreadable_destination_credentials_fail_in_one_line_and_leave_no_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, credentials: str
) -> None:
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", credentials)
    pipeline = dlt.pipeline(
        "unparsed", destination="postgres", dataset_name="d", pipelines_dir=str(tmp_path)
    )

    with pytest.raises(ConfigurationError) as raised:
        run_source(pipeline, demo_source())

    (line,) = str(raised.value).splitlines()
    assert line.startswith(
        "destination postgres: `destination.postgres.credentials` cannot be read "
        "(the value is not shown): "
    )
    assert "Pw/0f" not in line and "db.internal" not in line
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    # dlt never ran: no trace (which would keep the value) and no state were written
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert not any(b"Pw/0f" in path.read_bytes() for path in written), written
    assert not (tmp_path / "unparsed" / "trace.pickle").exists()
