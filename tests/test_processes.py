"""Real processes against a fake server in this one: a sync killed with SIGKILL in the
middle, then run again, leaves tables equal to the server's data; a second run of a
pipeline while the first is in progress fails at once naming the pipeline and the first
run's pid, and the first run and later runs are unharmed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connectors.sandbox.crm import TOKEN, CrmFake

ROOT = Path(__file__).resolve().parent.parent
PARTIES = "/api/v2/parties"
RESOURCES = "parties,employees,projects,users"
#: table -> the fake's list it must equal
LISTS = {"parties": "parties", "projects": "kases", "users": "users"}
#: generous: a cold interpreter importing dlt on a busy machine
STARTUP_SECONDS = 60

#: real processes and a kill -9: `make test-slow` (and CI), not `make test`
pytestmark = pytest.mark.slow


@pytest.fixture
def fake() -> Iterator[CrmFake]:
    with CrmFake() as server:
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project folder: the DuckDB file lands here, dlt's pipelines under it."""
    return tmp_path


def environment(project: Path, fake: CrmFake) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "DLT_DATA_DIR": str(project / "dlt-data"),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "SOURCES__CRM__BEARER_TOKEN": TOKEN,
        "SOURCES__CRM__BASE_URL": fake.base_url,
        "SOURCES__CRM__REQUESTS_PER_MINUTE": "60000",
    }


def start_cli_run(project: Path, fake: CrmFake) -> subprocess.Popen[str]:
    """`python -m connectors run crm` in its own process, as a user would start it."""
    return subprocess.Popen(
        [sys.executable, "-m", "connectors", "run", "crm", "--resources", RESOURCES],
        cwd=project,
        env=environment(project, fake),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=STARTUP_SECONDS * 3)
    return process.returncode, out, err


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def stored_rows(project: Path, table: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(project / "crm.duckdb"), read_only=True) as db:
        return db.execute(f"SELECT id, updated_at FROM crm_data.{table} ORDER BY id").fetchall()


def assert_tables_equal_the_server(project: Path, fake: CrmFake) -> None:
    for table, key in LISTS.items():
        rows = stored_rows(project, table)
        ids = [row[0] for row in rows]
        assert len(ids) == len(set(ids)), f"{table}: duplicated rows"
        expected = sorted((r["id"], r["updatedAt"]) for r in fake.data[key])
        assert [row[0] for row in expected] == sorted(ids)
        stored = [(i, stamp.strftime("%Y-%m-%dT%H:%M:%SZ")) for i, stamp in rows]
        assert stored == expected, f"{table}: differs from the server"
    employees = sum(len(people) for people in fake.employees.values())
    with duckdb.connect(str(project / "crm.duckdb"), read_only=True) as db:
        assert db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT (organisation_id, id)) FROM crm_data.employees"
        ).fetchall() == [(employees, employees)]


def test_a_sync_killed_mid_page_then_run_again_matches_the_server_exactly(
    project: Path, fake: CrmFake, processes: list[subprocess.Popen[str]]
) -> None:
    code, _, err = finish(start_cli_run(project, fake))
    assert code == 0, err
    fake.change_for_second_run()
    for n, party in enumerate(fake.data["parties"][:150]):  # two pages of changes
        party["updatedAt"] = f"2030-01-01T00:{n // 60:02d}:{n % 60:02d}Z"
        party["about"] = "changed for the killed sync"
    arrived, release = fake.pause_on_page(PARTIES, 2)

    killed = start_cli_run(project, fake)
    processes.append(killed)
    assert arrived.wait(STARTUP_SECONDS), "the second sync never asked for page 2"
    os.kill(killed.pid, signal.SIGKILL)
    assert killed.wait(timeout=30) == -signal.SIGKILL
    fake.pauses.clear()
    release.set()

    code, _, err = finish(start_cli_run(project, fake))

    assert code == 0, err
    assert_tables_equal_the_server(project, fake)


def test_a_second_run_of_a_running_pipeline_fails_at_once_naming_it_and_the_first_runs_pid(
    project: Path, fake: CrmFake, processes: list[subprocess.Popen[str]]
) -> None:
    arrived, release = fake.pause_on_page(PARTIES, 2)
    first = start_cli_run(project, fake)
    processes.append(first)
    assert arrived.wait(STARTUP_SECONDS), "the first sync never asked for page 2"
    requests_before = len(fake.requests)

    started = time.monotonic()
    second = start_cli_run(project, fake)
    processes.append(second)
    code, _, err = finish(second)
    elapsed = time.monotonic() - started

    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    lock = project / "dlt-data" / "pipelines" / "connectors_crm.lock"
    assert errors == [
        f"error: pipeline `connectors_crm` is already running in process {first.pid} "
        f"(lock {lock}); wait for that run to finish, or stop it, and run again"
    ]
    assert "Traceback" not in err
    assert len(fake.requests) == requests_before  # the second run sent nothing
    assert elapsed < STARTUP_SECONDS
    assert first.poll() is None  # still running, untouched

    fake.pauses.clear()
    release.set()
    code, _, err = finish(first)
    assert code == 0, err
    assert_tables_equal_the_server(project, fake)

    # the lock died with the first run: a later run works, and finds its cursor intact
    fake.change_for_second_run()
    code, _, err = finish(start_cli_run(project, fake))
    assert code == 0, err
    assert_tables_equal_the_server(project, fake)
    listings = [r for r in fake.requests if r.path == PARTIES]
    assert listings[-1].args.get("since")  # an incremental run: the first run's cursor stayed


def test_the_python_helper_refuses_a_second_run_while_the_cli_runs_the_pipeline(
    project: Path, fake: CrmFake, processes: list[subprocess.Popen[str]]
) -> None:
    arrived, release = fake.pause_on_page(PARTIES, 2)
    first = start_cli_run(project, fake)
    processes.append(first)
    assert arrived.wait(STARTUP_SECONDS), "the first sync never asked for page 2"
    script = (
        "from connectors.crm import crm_source\n"
        "from shared.loading import duckdb_pipeline, run_source, PipelineLockedError\n"
        # the CLI's pipeline for crm (connectors.cli.runner.pipeline_name)
        "pipeline = duckdb_pipeline('connectors_crm', database='crm.duckdb')\n"
        "try:\n"
        "    run_source(pipeline, crm_source().with_resources('users'))\n"
        "except PipelineLockedError as error:\n"
        "    print(error)\n"
    )
    requests_before = len(fake.requests)

    helper = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project,
        env=environment(project, fake),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS * 3,
    )

    assert helper.returncode == 0, helper.stderr
    assert helper.stdout.startswith(
        f"pipeline `connectors_crm` is already running in process {first.pid} (lock "
    )
    assert len(fake.requests) == requests_before  # the helper sent nothing
    fake.pauses.clear()
    release.set()
    code, _, err = finish(first)
    assert code == 0, err
    assert_tables_equal_the_server(project, fake)
