"""A catalog connector as an Airflow DAG, through dlt's `PipelineTasksGroup`.

    # dags/crm.py
    from orchestration.airflow_dag import connector_dag

    dag = connector_dag("crm")

The default, `decompose="parallel-isolated"`, makes one task per group of connected
resources (a parent and its children stay together), all running at once after a first
task; each task keeps its incremental state under its own pipeline name, so tasks running
at once cannot overwrite each other's cursors. dlt's `"parallel"` shares one pipeline
state between tasks running at once (the last to finish wins, and cursors the others
advanced go back); `"serialize"` runs the tasks one after another, `"none"` as one task.

The source is built from dlt's configuration when Airflow parses the DAG (dlt reads
`.dlt/` under the DAGs folder, and the environment); secrets never go into Airflow
variables or task arguments. Airflow parses a DAG file twice: in its scheduler (or DAG
processor), which needs only the tasks, and in the worker, right before it runs one. So
the DAG loads where the connector's secrets are not set: its tasks then come from the
source built with stand-in credentials (`orchestration.outline_source`), and a task that
would run that one stops at once with the line naming what to set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Literal

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.helpers.airflow_helper import PipelineTasksGroup

from connectors.cli.explain import explain
from orchestration import build_source, catalog_entry, outline_source
from shared.errors import ConfigurationError
from shared.loading import DEFAULT_LOADER_FILE_FORMAT
from shared.tooling.catalog import Catalog, ConnectorEntry

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[no-redef,attr-defined,unused-ignore]

Decompose = Literal["none", "serialize", "parallel", "parallel-isolated"]


def _refuse(reason: str) -> None:
    raise ConfigurationError(
        f"{reason} (the DAG was parsed without it: set it where the worker runs)"
    )


def parsed_source(entry: ConnectorEntry) -> tuple[Any, Callable[[], None] | None]:
    """The source the DAG's tasks run, and the check each task runs first (None: none).

    The real source where its settings resolve now (in the worker, which parses the DAG
    file before it runs a task); where a secret or the `base_url` is missing (a scheduler
    without them), the outline source, whose tasks stop with the line naming the setting.
    """
    try:
        return build_source(entry), None
    except (ConfigFieldMissingException, ConfigurationError) as missing:
        return outline_source(entry), functools.partial(_refuse, explain(missing, entry))


def connector_dag(
    name: str,
    destination: Any = "duckdb",
    dataset_name: str | None = None,
    decompose: Decompose = "parallel-isolated",
    dag_id: str | None = None,
    schedule: Any = None,
    start_date: datetime | None = None,
    catalog: Catalog | None = None,
    **dag_arguments: Any,
) -> DAG:
    """An Airflow DAG that loads catalog connector `name`.

    Args:
        name: the connector's catalog name (`crm`, ...).
        destination: the dlt destination (a name or a destination object). With
            a parallel `decompose`, tasks load at the same time: use a destination that takes
            concurrent loads (a DuckDB file takes one writer at a time).
        dataset_name: the dataset to load into (default `<name>_data`).
        decompose: how to split the source into tasks (module docstring).
        dag_id: the DAG's id (default `dlt_<name>`).
        schedule: the DAG's schedule (default: none, triggered by hand).
        start_date: the DAG's start date (default 2024-01-01 UTC).
        catalog: the catalog to look the connector up in (default: `catalog.yml`).
        dag_arguments: further `DAG` arguments.
    """
    entry = catalog_entry(name, catalog)
    with DAG(
        dag_id=dag_id or f"dlt_{name}",
        schedule=schedule,
        start_date=start_date or datetime(2024, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        # two runs of one connector at once would interleave its incremental state
        max_active_runs=1,
        **dag_arguments,
    ) as dag:
        # before the source is built: the group points dlt's project dir at the DAGs folder
        tasks = PipelineTasksGroup(name, use_data_folder=False, wipe_local_data=True)
        pipeline = dlt.pipeline(
            pipeline_name=name,
            destination=destination,
            dataset_name=dataset_name or f"{name}_data",
        )
        source, check = parsed_source(entry)
        tasks.add_run(
            pipeline,
            source,
            on_before_run=check,
            decompose=decompose,
            loader_file_format=DEFAULT_LOADER_FILE_FORMAT,
            trigger_rule="all_done",
            retries=0,
        )
    return dag
