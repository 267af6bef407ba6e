"""Every connector in a real Dango project, as a Dango user runs it (`make test-dango`).

A throwaway virtualenv gets `getdango` and this checkout from one pip command (the
README's); `dango init --skip-wizard` makes a project; each connector gets the
`.dango/sources.yml` entry `python -m connectors show <name>` prints (its marked
`base_url` pointed at the connector's fake server, which runs in its own process), its
secrets in the project's `.dlt/secrets.toml`, and is synced twice with
`dango sync <name> -y`. Both runs must succeed, load the fake's rows into Dango's
`data/warehouse.duckdb` (dataset `raw_<name>`) and print no secret. Without the
`empty_sync_policy: allow` that `show analytics` prints, Dango refuses analytics' second
run, as `show` says.

Dango's dbt step needs the network for a DuckDB extension and reports that failure; it
is Dango's, after the sync, and not asserted on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from connectors.cli import dango, snippets
from connectors.declarative.entry import spec_entry
from connectors.sandbox import load_recording
from shared.tooling.catalog import ROOT, load_catalog
from shared.tooling.recordings import Recording
from tests.expected_rows import EXPECTED_ROWS, analytics_rows

pytestmark = pytest.mark.dango

CATALOG = load_catalog()
#: seconds one `dango sync` may take (about 30 s here, most of it Dango's dbt step)
SYNC_TIMEOUT = 600
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BASE_URL_LINE = re.compile(r"^(\s*base_url: )\S+(\s+" + re.escape(dango.BASE_URL_MARK) + ")$", re.M)


# -- Dango's environment and project -------------------------------------------------


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run `command`; its output (stdout and stderr, colours removed), or a failure
    showing the end of it."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    output = ANSI.sub("", done.stdout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{output[-4000:]}")
    return output


@pytest.fixture(scope="module")
def dango_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway virtualenv with getdango and this checkout, from the README's command."""
    venv = tmp_path_factory.mktemp("dango-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    pip, install, *packages = dango.install_command().split()
    assert (pip, install, packages) == ("pip", "install", [dango.DANGO_REQUIREMENT, str(ROOT)])
    command = [str(bin_dir / "python"), "-m", "pip", "install", "-q", *packages]
    run(command, cwd=ROOT, env=dict(os.environ), timeout=1800)
    return bin_dir


@pytest.fixture(scope="module")
def dango_env(dango_bin: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "VIRTUAL_ENV"))}
    env["PATH"] = f"{dango_bin}{os.pathsep}{env.get('PATH', '')}"
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    env["COLUMNS"] = "200"  # Dango's console wraps at the width; fewer wrapped lines
    return env


@pytest.fixture(scope="module")
def blank_project(tmp_path_factory: pytest.TempPathFactory, dango_env: dict[str, str]) -> Path:
    """A project from `dango init --skip-wizard`, copied for each connector."""
    project = tmp_path_factory.mktemp("dango-blank")
    run([*dango.INIT_COMMAND], cwd=project, env=dango_env, timeout=300)
    assert (project / ".dango" / "sources.yml").is_file()
    assert (project / ".dlt" / "secrets.toml").is_file()
    return project


class Served(str):
    """A fake server's base URL, with the means to delete a record at it."""

    process: subprocess.Popen[str]

    def delete(self, key: str, record_id: Any) -> None:
        """Delete record `record_id` of list `key` at the fake (see tests/dango/serve.py)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"delete {key} {record_id}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == f"deleted {key} {record_id}"


@pytest.fixture
def fake_server(request: pytest.FixtureRequest) -> Iterator[Served]:
    """The connector's fake vendor server in its own process; yields its base URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.dango.serve", request.param],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    base_url = Served(server.stdout.readline().strip())
    base_url.process = server
    try:
        assert base_url.startswith("http://127.0.0.1:"), base_url
        yield base_url
    finally:
        assert server.stdin is not None
        server.stdin.close()  # the server stops when its stdin closes
        server.wait(timeout=30)


def printed_entry(name: str) -> str:
    """The `.dango/sources.yml` entry exactly as `python -m connectors show` prints it."""
    shown = subprocess.run(
        [sys.executable, "-m", "connectors", "show", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    start = shown.index(dango.HEADER + "\n")
    return shown[start : shown.index("\n\n", start) + 1]


def first_credentials(rec: Recording) -> dict[str, str]:
    return rec.step_credentials(rec.steps[0])


def update_toml(path: Path, section: str, values: dict[str, Any]) -> None:
    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    sources = document.setdefault("sources", tomlkit.table())
    sources[section] = values
    path.write_text(tomlkit.dumps(document), encoding="utf-8")


def warehouse_rows(dango_bin: Path, project: Path, dataset: str) -> dict[str, int]:
    """Rows per table of `dataset` in Dango's warehouse, read with Dango's own duckdb."""
    script = (
        "import duckdb, json, sys\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "tables = [t for (t,) in con.execute('SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = ?', [sys.argv[2]]).fetchall()]\n"
        'print(json.dumps({t: con.execute(f\'SELECT COUNT(*) FROM "{sys.argv[2]}"."{t}"\')'
        ".fetchone()[0] for t in tables}))\n"
    )
    warehouse = project / "data" / "warehouse.duckdb"
    done = subprocess.run(
        [str(dango_bin / "python"), "-c", script, str(warehouse), dataset],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


def dango_project(
    name: str, entry_text: str, fake_server: str, blank_project: Path, tmp_path: Path
) -> tuple[Path, dict[str, str]]:
    """A copy of the blank project with `entry_text` (a printed entry) in its sources.yml,
    the marked `base_url` pointed at the fake, and the fake's credentials in its
    `.dlt/secrets.toml`; returns it and the secrets."""
    settings = snippets.source_settings(CATALOG.get(name))
    rec = load_recording(name)
    project = tmp_path / "project"
    shutil.copytree(blank_project, project)
    config: dict[str, Any] = dict(rec.offline_kwargs)  # no pacing against the fake
    if BASE_URL_LINE.search(entry_text):
        pasted = BASE_URL_LINE.sub(lambda m: m.group(1) + fake_server + m.group(2), entry_text)
    else:  # the source has a default base_url: point it at the fake in config instead
        assert "base_url" not in entry_text
        pasted, config["base_url"] = entry_text, fake_server
    (project / ".dango" / "sources.yml").write_text("version: '1.0'\n" + pasted)
    secrets = first_credentials(rec)
    assert secrets, f"{name}: its recording has no credentials to configure"
    update_toml(project / ".dlt" / "secrets.toml", settings.section, secrets)
    update_toml(project / ".dlt" / "config.toml", settings.section, config)
    return project, secrets


def isolated(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """`env` with a home of its own: dlt keeps pipeline state under its data dir (Dango
    backs it up from ~/.dlt), so a first sync is a first sync."""
    home = tmp_path / "home"
    return {**env, "HOME": str(home), "DLT_DATA_DIR": str(home / ".dlt")}


#: the crm connector as a declarative spec (connectors/crm/crm.yml): its name is crm, so
#: the same section, secrets, config and tables as the crm connector
CRM_SPEC = ROOT / "connectors" / "crm" / "crm.yml"


@pytest.mark.parametrize(
    ("name", "shown", "fake_server"),
    [
        *((name, name, name) for name in CATALOG.names),
        pytest.param("crm", str(CRM_SPEC), "crm", id="crm_spec"),
    ],
    indirect=["fake_server"],
)
def test_dango_syncs_the_connector_twice_with_the_entry_show_prints(
    name: str,
    shown: str,
    fake_server: str,
    dango_bin: Path,
    dango_env: dict[str, str],
    blank_project: Path,
    tmp_path: Path,
) -> None:
    """`shown`: what `show` is given, the connector's name or a spec's path."""
    entry = CATALOG.get(name) if shown == name else spec_entry(shown)
    project, secrets = dango_project(
        name, printed_entry(shown), fake_server, blank_project, tmp_path
    )
    env = isolated(dango_env, tmp_path)
    expected = EXPECTED_ROWS[name](load_recording(name).fake())

    for attempt in ("first", "second"):
        output = run(dango.sync_command(name), cwd=project, env=env, timeout=SYNC_TIMEOUT)

        assert "Overall: 1/1 sources succeeded" in output, f"{attempt} sync:\n{output[-4000:]}"
        assert "Sync would truncate" not in output
        assert f"Calling {entry.source_function}(**{{" in output  # Dango ran our source
        log_files = (project / ".dango" / "logs").rglob("*")
        logs = [path.read_bytes() for path in log_files if path.is_file()]
        assert logs, "Dango wrote no logs"
        for secret in secrets.values():
            # also across the lines Dango's console wraps
            assert secret not in "".join(output.split()), f"{attempt} sync printed a secret"
            assert not any(secret.encode() in log for log in logs), f"{attempt} sync logged it"
        loaded = warehouse_rows(dango_bin, project, f"raw_{name}")
        assert {table: loaded.get(table) for table in expected} == expected, attempt


def deleted_rows(dango_bin: Path, project: Path, dataset: str, table: str) -> dict[str, bool]:
    """id -> whether its row is marked deleted (`_deleted_at` set), in Dango's warehouse."""
    sql = f'SELECT id, _deleted_at IS NOT NULL FROM "{dataset}"."{table}"'
    script = (
        "import duckdb, json, sys\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "print(json.dumps({str(i): d for i, d in con.execute(sys.argv[2]).fetchall()}))\n"
    )
    warehouse = project / "data" / "warehouse.duckdb"
    done = subprocess.run(
        [str(dango_bin / "python"), "-c", script, str(warehouse), sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


#: a record each connector learns is deleted, and how: (connector, list at the fake,
#: table, id): crm from its deletion feed, incident_analytics from a full list
DELETED_BETWEEN_SYNCS = [
    ("crm", "parties", "parties", 1007),
    ("incident_analytics", "teams", "teams", None),
]


@pytest.mark.parametrize(
    ("name", "key", "table", "record_id", "fake_server"),
    [(n, k, t, i, n) for n, k, t, i in DELETED_BETWEEN_SYNCS],
    indirect=["fake_server"],
)
def test_a_deletion_at_the_source_between_two_dango_syncs_shows_in_dangos_raw_tables(
    name: str,
    key: str,
    table: str,
    record_id: Any,
    fake_server: Served,
    dango_bin: Path,
    dango_env: dict[str, str],
    blank_project: Path,
    tmp_path: Path,
) -> None:
    project, _ = dango_project(name, printed_entry(name), fake_server, blank_project, tmp_path)
    env = isolated(dango_env, tmp_path)
    first = run(dango.sync_command(name), cwd=project, env=env, timeout=SYNC_TIMEOUT)
    assert "Overall: 1/1 sources succeeded" in first, first[-4000:]
    before = deleted_rows(dango_bin, project, f"raw_{name}", table)
    if record_id is None:  # the first record the first sync loaded
        record_id = sorted(before)[0]
    assert before[str(record_id)] is False and not any(before.values())

    fake_server.delete(key, record_id)
    second = run(dango.sync_command(name), cwd=project, env=env, timeout=SYNC_TIMEOUT)

    assert "Overall: 1/1 sources succeeded" in second, second[-4000:]
    assert "Sync would truncate" not in second
    after = deleted_rows(dango_bin, project, f"raw_{name}", table)
    assert after == {**before, str(record_id): True}


@pytest.mark.parametrize("fake_server", ["analytics"], indirect=True)
def test_without_empty_sync_policy_dango_refuses_analytics_second_run_as_show_says(
    fake_server: str,
    dango_bin: Path,
    dango_env: dict[str, str],
    blank_project: Path,
    tmp_path: Path,
) -> None:
    """What `show analytics` tells a Dango user happens without the entry's
    `empty_sync_policy: allow`: the second run is refused and the tables keep their rows."""
    printed = printed_entry("analytics")
    assert "    empty_sync_policy: allow\n" in printed
    without = printed.replace("    empty_sync_policy: allow\n", "")
    project, _ = dango_project("analytics", without, fake_server, blank_project, tmp_path)
    env = isolated(dango_env, tmp_path)
    expected = analytics_rows(load_recording("analytics").fake())

    first = run(dango.sync_command("analytics"), cwd=project, env=env, timeout=SYNC_TIMEOUT)
    assert "Overall: 1/1 sources succeeded" in first
    second = subprocess.run(
        dango.sync_command("analytics"),
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SYNC_TIMEOUT,
    )
    output = " ".join(ANSI.sub("", second.stdout + second.stderr).split())

    assert "Sync would truncate 1 table(s) with existing data" in output
    assert "users:" in output  # the incremental table with nothing new
    assert "Overall: 1/1 sources succeeded" not in output
    loaded = warehouse_rows(dango_bin, project, "raw_analytics")
    assert {table: loaded.get(table) for table in expected} == expected
