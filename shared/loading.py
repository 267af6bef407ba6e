"""Pipeline defaults for the catalog: parquet files into DuckDB, one run at a time.

Connectors already mark their tables as parquet, so a plain `pipeline.run(source)` loads
parquet; `run_source` also says so explicitly and shows progress.

`duckdb_pipeline` keeps a sync's memory flat whatever its size (at most 388 MB at a million
rows, `make bench`): DuckDB's own default lets it take 80% of the machine's memory
during the load's merge, so its pipelines give DuckDB a `memory_limit` of 128MB and one
thread (`DUCKDB_SETTINGS`; DuckDB spills the rest to disk, beside the database), unless
the DuckDB settings are configured (`DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG`, or
`global_config` under `[destination.duckdb.credentials]` in `.dlt/config.toml` or
`secrets.toml`, also under the pipeline's name), or the caller passes `duckdb_settings`.
Two threads at 128MB ran out of memory in a merge of child tables; one thread never did.

`run_source` holds the pipeline's lock while it runs (`pipeline_lock`): two processes
running one pipeline at once would interleave their state and load packages, and could
leave the pipeline broken for every later run. The second one fails at once instead,
naming the process that holds the lock, and touches nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
from dlt.common.pipeline import LoadInfo
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from filelock import FileLock, Timeout

from shared.errors import ConfigurationError, ConnectorError, exception_chain
from shared.redaction import Redactor

DEFAULT_LOADER_FILE_FORMAT = "parquet"


#: DuckDB's settings for `duckdb_pipeline`'s loads, unless configured (see the module)
DUCKDB_SETTINGS: dict[str, Any] = {"memory_limit": "128MB", "threads": 1}
#: where dlt reads DuckDB's settings from (environment, config.toml, secrets.toml)
DUCKDB_SETTINGS_KEY = "destination.duckdb.credentials.global_config"


def duckdb_pipeline(
    pipeline_name: str,
    database: str | None = None,
    dataset_name: str | None = None,
    pipelines_dir: str | None = None,
    progress: Any = None,
    duckdb_settings: dict[str, Any] | None = None,
) -> dlt.Pipeline:
    """A pipeline loading into a DuckDB file (`<pipeline_name>.duckdb` unless `database`).

    DuckDB runs with `duckdb_settings`, else with what is configured, else with
    `DUCKDB_SETTINGS` (see the module)."""
    credentials = DuckDbCredentials(database or f"{pipeline_name}.duckdb")
    if duckdb_settings is not None:
        credentials.global_config = dict(duckdb_settings)
    elif not _configured(DUCKDB_SETTINGS_KEY, f"{pipeline_name}.{DUCKDB_SETTINGS_KEY}"):
        credentials.global_config = dict(DUCKDB_SETTINGS)
    destination = dlt.destinations.duckdb(credentials=credentials)
    return dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=destination,
        dataset_name=dataset_name or f"{pipeline_name}_data",
        pipelines_dir=pipelines_dir,
        progress=progress,
    )


def _configured(*keys: str) -> bool:
    """Whether dlt's configuration (environment, config.toml or secrets.toml) sets any of
    `keys` (dlt also reads a pipeline's settings under its name: `<pipeline>.destination...`)."""
    return any(dlt.config.get(key) is not None or dlt.secrets.get(key) is not None for key in keys)


class PipelineLockedError(ConnectorError):
    """Another run of the same pipeline is in progress."""


def lock_path(pipeline: dlt.Pipeline) -> Path:
    """The pipeline's lock file: `<pipelines_dir>/<pipeline_name>.lock`, beside its working
    dir (inside it, dropping the pipeline's local state would delete a held lock)."""
    working_dir = Path(pipeline.working_dir)
    return working_dir.with_name(f"{working_dir.name}.lock")


@contextmanager
def pipeline_lock(pipeline: dlt.Pipeline) -> Iterator[None]:
    """Hold the pipeline's lock, or fail at once with `PipelineLockedError` naming the
    process that holds it. The operating system releases the lock of a process that dies,
    so a killed run never blocks the next one."""
    path = lock_path(pipeline)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = path.with_name(path.name + ".pid")
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise PipelineLockedError(
            f"pipeline `{pipeline.pipeline_name}` is already running in "
            f"{_holder_of(holder)} (lock {path}); wait for that run to finish, or stop it, "
            "and run again"
        ) from None
    try:
        holder.write_text(str(os.getpid()))
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def _holder_of(pid_file: Path, patience: float = 1.0) -> str:
    """`process <pid>` of the lock's holder; it writes its pid right after locking, so a
    run that lost the race waits a moment for it."""
    deadline = time.monotonic() + patience
    while True:
        try:
            pid = pid_file.read_text().strip()
        except OSError:
            pid = ""
        if pid.isdigit():
            return f"process {pid}"
        if time.monotonic() >= deadline:
            return "another process"
        time.sleep(0.05)


def run_source(pipeline: dlt.Pipeline, source: Any, **kwargs: Any) -> LoadInfo:
    """Run `source` through `pipeline` with parquet as the loader file format, holding the
    pipeline's lock (`PipelineLockedError` if another run holds it)."""
    kwargs.setdefault("loader_file_format", DEFAULT_LOADER_FILE_FORMAT)
    if "destination" not in kwargs and "credentials" not in kwargs:
        check_destination_credentials(pipeline)
    with pipeline_lock(pipeline):
        return pipeline.run(source, **kwargs)


def check_destination_credentials(pipeline: dlt.Pipeline) -> None:
    """Fail with one line, before dlt runs, when the destination's credentials cannot be
    parsed (`postgresql://loader:pw@host:notaport/db`, a URL without its scheme).

    Inside `pipeline.run` dlt would fail at its `sync` step, and its trace (`trace.pickle`)
    keeps the exception's attributes, the unparsed value, password included; its message
    would quote the value too. Resolving the destination's configuration first (no
    connection is opened) raises `ConfigurationError` without the value instead. Other
    problems (a missing setting) are left to `pipeline.run`, which reports them as before.
    """
    from dlt.common.configuration.specs.exceptions import NativeValueError

    if pipeline.destination is None:
        return
    try:
        pipeline.destination_client()
    except Exception as why:  # dlt wraps the parse error (`InvalidNativeValue`)
        causes: list[object] = list(exception_chain(why))
        causes += [getattr(cause, "inner_exception", None) for cause in causes]
        unparsed = next((c for c in causes if isinstance(c, NativeValueError)), None)
        if unparsed is None:
            return  # anything else: pipeline.run raises it again, in dlt's words
        value = getattr(unparsed, "native_value", None)
        redactor = Redactor([str(value)] if value else [])
        kind = pipeline.destination.destination_name
        expected = redactor.redact(str(unparsed).strip().splitlines()[0])
        raise ConfigurationError(
            f"destination {kind}: `destination.{kind}.credentials` cannot be read "
            f"(the value is not shown): {expected}"
        ) from None


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
