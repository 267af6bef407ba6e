"""A catalog connector as an Airflow DAG (dlt's `PipelineTasksGroup`, `parallel-isolated`),
run with `dag.test()` in a temporary AIRFLOW_HOME (SQLite metadata) against the CRM fake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from shared.loading import duckdb_pipeline, run_source
from tests.orchestration.configured import environment, recording, source_settings

pytestmark = pytest.mark.orchestrators

DAG_FILE = """
import json
import os

import dlt

from orchestration.airflow_dag import connector_dag

dag = connector_dag("crm", destination=dlt.destinations.duckdb(os.environ["DAG_DUCKDB"]))

if __name__ == "__main__":
    tasks = {task.task_id: sorted(task.upstream_task_ids) for task in dag.tasks}
    print("TASKS " + json.dumps(tasks))
    print("DAG RUN STATE " + str(dag.test().state))
"""


def table_rows(database: Path, dataset: str) -> dict[str, int]:
    """Rows per data table (child tables included) of `dataset` in a DuckDB file."""
    with duckdb.connect(str(database), read_only=True) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name NOT LIKE '_dlt%'",
            [dataset],
        ).fetchall()
        return {
            name: connection.execute(f'SELECT COUNT(*) FROM "{dataset}"."{name}"').fetchone()[0]
            for (name,) in tables
        }


def airflow_home(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A migrated Airflow home under `tmp_path` (SQLite metadata) holding `DAG_FILE`; the
    DAG file and the environment to run it with (no `SOURCES__` setting)."""
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    dag_file = home / "dags" / "dlt_crm.py"
    dag_file.write_text(DAG_FILE)
    root = Path(__file__).resolve().parents[2]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PYTHONPATH": str(root),
        "DAG_DUCKDB": str(tmp_path / "airflow.duckdb"),
    }
    airflow = Path(sys.executable).parent / "airflow"
    migrated = subprocess.run(
        [str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    return dag_file, env


def test_parallel_dag_loads_every_table_of_the_connector(tmp_path: Path) -> None:
    rec = recording("crm")
    with rec.fake() as fake:
        reference = duckdb_pipeline(
            "crm", database=str(tmp_path / "reference.duckdb"), pipelines_dir=str(tmp_path)
        )
        run_source(reference, rec.source(**source_settings("crm", fake.base_url)))
    expected = table_rows(tmp_path / "reference.duckdb", "crm_data")

    dag_file, env = airflow_home(tmp_path)

    with rec.fake() as fake:
        # credentials and settings reach the DAG only through dlt's configuration
        env.update(environment("crm", source_settings("crm", fake.base_url)))
        ran = subprocess.run(
            [sys.executable, str(dag_file)], env=env, capture_output=True, text=True, timeout=600
        )
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert "DAG RUN STATE success" in ran.stdout
        first_run = len(fake.requests)
        again = subprocess.run(
            [sys.executable, str(dag_file)], env=env, capture_output=True, text=True, timeout=600
        )
        assert again.returncode == 0, again.stderr[-3000:]
        assert "DAG RUN STATE success" in again.stdout
        second_run = fake.requests[first_run:]
    # every incremental table's task kept its own cursor: the second run asks from it
    for path in ("/api/v2/parties", "/api/v2/kases", "/api/v2/opportunities"):
        asked = [r for r in second_run if r.path == path]
        assert asked and all("since" in r.args for r in asked), (path, asked)

    tasks = json.loads(ran.stdout.split("TASKS ", 1)[1].splitlines()[0])
    (end,) = [task for task in tasks if task.endswith("_end")]
    parallel = tasks[end]
    # one task per group of connected resources, all started by the same task at once
    # (parallel-isolated names each task's own pipeline: `crm.crm_parties_employees-2`)
    assert [t for t in parallel if "parties" in t and "employees" in t], parallel
    assert len(parallel) >= 10
    assert len({tuple(tasks[task]) for task in parallel}) == 1
    assert table_rows(tmp_path / "airflow.duckdb", "crm_data") == expected
    assert expected["employees"] == sum(len(people) for people in fake.employees.values())


def test_the_dag_loads_without_the_secret_and_its_tasks_name_it_sending_nothing(
    tmp_path: Path,
) -> None:
    """The scheduler parses the DAG file without the connector's secrets: the DAG and its
    tasks load (from the outline source); a task run there stops with the line naming the
    secret, before any request."""
    dag_file, env = airflow_home(tmp_path)
    rec = recording("crm")

    with rec.fake() as fake:
        settings = source_settings("crm", fake.base_url)
        del settings["bearer_token"]
        env.update(environment("crm", settings))
        ran = subprocess.run(
            [sys.executable, str(dag_file)], env=env, capture_output=True, text=True, timeout=600
        )
        sent = list(fake.requests)

    assert ran.returncode == 0, ran.stderr[-3000:]
    tasks = json.loads(ran.stdout.split("TASKS ", 1)[1].splitlines()[0])
    assert len([task for task in tasks if "parties" in task]) >= 1
    assert len(tasks) >= 12
    assert "DAG RUN STATE failed" in ran.stdout
    assert (
        "crm: missing bearer_token; set `sources.crm.bearer_token` in .dlt/secrets.toml "
        "(or env SOURCES__CRM__BEARER_TOKEN) (the DAG was parsed without it: set it where "
        "the worker runs)"
    ) in ran.stdout + ran.stderr
    assert sent == []
