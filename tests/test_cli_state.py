"""`python -m connectors state`: the cursors `run` stored, and dlt's command to reset one;
`run --full-refresh`: tables dropped and reloaded, cursors rebuilt. Real syncs over
loopback into DuckDB files, state read back from dlt's pipelines folder."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connectors.sandbox.crm import TOKEN, CrmFake
from tests.empty_folder import run_cli as cli
from tests.empty_folder import use_empty_folder

pytestmark = pytest.mark.loopback

RESOURCES = ("--resources", "users,parties,stages")


def configure(monkeypatch: pytest.MonkeyPatch, folder: Path, fake: CrmFake) -> None:
    """An empty folder, dlt's state in it, and the crm pointed at `fake`."""
    use_empty_folder(monkeypatch, folder)
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
    monkeypatch.setenv("SOURCES__CRM__BASE_URL", fake.base_url)
    monkeypatch.setenv("SOURCES__CRM__REQUESTS_PER_MINUTE", "60000")


def query(database: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cursor_lines(out: str) -> dict[str, list[str]]:
    """The state table's rows: resource -> cursor, last value, initial value."""
    lines = out.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("RESOURCE")))
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip() or line.startswith("no cursor"):
            break
        resource, *rest = re.split(r"\s{2,}", line.strip())
        rows[resource] = rest
    return rows


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CrmFake, Path, str]]:
    """One crm sync of users, parties and stages, and `state crm` after it."""
    folder = tmp_path_factory.mktemp("state")
    with CrmFake() as fake, pytest.MonkeyPatch.context() as monkeypatch:
        configure(monkeypatch, folder, fake)
        code, _, err = cli("run", "crm", *RESOURCES)
        assert code == 0, err
        code, out, err = cli("state", "crm")
        assert code == 0, err
        yield fake, folder, out


def test_the_printed_cursor_is_the_newest_value_loaded(
    synced: tuple[CrmFake, Path, str],
) -> None:
    _, folder, out = synced
    ((newest,),) = query(folder / "crm.duckdb", "SELECT MAX(updated_at) FROM crm_data.parties")

    assert out.splitlines()[0] == (
        "crm: cursors stored by dlt pipeline connectors_crm "
        f"({folder / 'dlt-data' / 'pipelines' / 'connectors_crm'})"
    )
    assert cursor_lines(out)["parties"] == ["updatedAt", iso(newest), "the beginning"]
    # not synced: a cursor of the catalog with nothing stored yet
    assert cursor_lines(out)["projects"] == ["updatedAt", "not stored yet", "the beginning"]


def test_it_prints_dlts_own_drop_command_naming_the_duckdb_file(
    synced: tuple[CrmFake, Path, str],
) -> None:
    _, folder, out = synced
    command = (
        f"DESTINATION__DUCKDB__CREDENTIALS={shlex.quote(str(folder / 'crm.duckdb'))} "
        "dlt pipeline connectors_crm drop parties"
    )

    assert out.splitlines()[-4:] == [
        "reset one: drop its tables and cursor (the next run reloads it in full):",
        f"  {command}",
        "or only its cursor, keeping its rows (the next run reads from the initial value):",
        f"  {command} --state-only",
    ]


def test_a_connector_that_never_ran_here_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path))

    code, out, err = cli("state", "incident_analytics")

    folder = tmp_path / "pipelines" / "connectors_incident_analytics"
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "error: incident_analytics: no stored state: dlt pipeline "
        f"connectors_incident_analytics has not run here ({folder}); run "
        "`python -m connectors run incident_analytics` first"
    ]


@pytest.mark.slow  # dlt's own command line, in a process of its own
def test_the_printed_drop_command_resets_the_cursor_and_drops_the_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with CrmFake() as fake:
        configure(monkeypatch, tmp_path, fake)
        assert cli("run", "crm", *RESOURCES)[0] == 0
    out = cli("state", "crm")[1]
    command = out.splitlines()[-3].strip()
    # as a user runs it in a shell; `-y`: dlt asks before it drops, a user answers `y`
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bin_folder = str(Path(sys.executable).parent)
    environment = {
        **os.environ,
        "PATH": f"{bin_folder}{os.pathsep}{os.environ.get('PATH', '')}",
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }

    done = subprocess.run(
        command.replace(" dlt pipeline ", " dlt -y pipeline "),
        shell=True,
        cwd=elsewhere,  # the command names the file: it works from any folder
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert cursor_lines(cli("state", "crm")[1])["parties"][1] == "not stored yet"
    tables = {
        name
        for (name,) in query(
            tmp_path / "crm.duckdb",
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'crm_data'",
        )
    }
    assert "parties" not in tables
    assert {"users", "stages"} <= tables


def test_full_refresh_drops_deleted_records_and_rebuilds_the_cursor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "crm.duckdb"
    with CrmFake() as fake:
        configure(monkeypatch, tmp_path, fake)
        assert cli("run", "crm", *RESOURCES)[0] == 0
        before = cursor_lines(cli("state", "crm")[1])["parties"][1]
        # the newest party and a user disappear at the source (an hour ago: long before
        # the refresh, so no deletion counts as during the sync)
        newest = max(fake.data["parties"], key=lambda party: party["updatedAt"])
        long_ago = fake.server_now() - timedelta(hours=1)
        fake.delete("parties", newest["id"], at=long_ago)
        fake.delete("users", fake.data["users"][0]["id"])

        code, out, err = cli("run", "crm", *RESOURCES, "--full-refresh")

        assert code == 0, err
        assert "full refresh: dropping its tables and state first" in err
        for table, key in (("parties", "parties"), ("users", "users")):
            rows = query(database, f"SELECT id, _deleted_at FROM crm_data.{table}")
            assert sorted(rows) == sorted((row["id"], None) for row in fake.data[key])
        after = cursor_lines(cli("state", "crm")[1])["parties"][1]
        remaining = max(party["updatedAt"] for party in fake.data["parties"])

    # rebuilt from the source as it is now: the deleted newest party's value is gone
    assert after == remaining < before == newest["updatedAt"]
