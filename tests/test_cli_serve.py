"""`connectors serve NAME`: the connector's sandbox API on 127.0.0.1 until Ctrl-C, and the
settings a user exports to sync against it. End to end, in real processes: `serve` in
one, `connectors run` (and, in `make test-slow`, the README's plain-dlt example) with the
printed lines exported in another, into DuckDB files whose tables hold the fake's rows;
SIGINT stops `serve` with exit status 0."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from connectors.cli import main
from connectors.cli.serve import sandbox_environment
from connectors.sandbox import load_recording
from connectors.sandbox.crm import CrmFake
from shared.tooling.catalog import load_catalog
from tests.expected_rows import EXPECTED_ROWS, expected_rows
from tests.serving import SECONDS, row_counts, serving, stop

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog()


def clean_environment(tmp_path: Path) -> dict[str, str]:
    """This process's environment without any SOURCES__* setting, dlt's data in `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "DLT_DATA_DIR": str(tmp_path / "dlt-data"),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }


def crm_environment(base_url: str) -> dict[str, str]:
    """The `SOURCES__...` settings `serve crm` prints for its fake at `base_url`."""
    return sandbox_environment(CATALOG.get("crm"), load_recording("crm"), base_url)


def test_serve_prints_the_settings_a_run_needs_and_the_run_loads_the_fakes_rows(
    tmp_path: Path,
) -> None:
    env = clean_environment(tmp_path)
    command = [sys.executable, "-m", "connectors", "serve", "crm"]
    expected_settings = len(crm_environment("http://127.0.0.1:1"))
    with serving(command, tmp_path, env, expected_settings) as (server, base_url, exported):
        assert base_url.startswith("http://127.0.0.1:"), base_url
        assert exported == crm_environment(base_url)
        token = load_recording("crm").credentials["bearer_token"]
        assert exported["SOURCES__CRM__BEARER_TOKEN"] == token
        database = tmp_path / "crm.duckdb"

        run = subprocess.run(
            [sys.executable, "-m", "connectors", "run", "crm", "--database", str(database)],
            cwd=tmp_path,
            env={**env, **exported},
            capture_output=True,
            text=True,
            timeout=SECONDS,
        )
        stopped = stop(server)

    assert run.returncode == 0, run.stderr[-3000:]
    expected = EXPECTED_ROWS["crm"](CrmFake())
    assert row_counts(database, "crm_data", list(expected)) == expected
    assert server.returncode == 0
    assert stopped.splitlines()[-1] == "crm: sandbox stopped"
    assert "Traceback" not in stopped


def test_serve_on_a_port_in_use_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with CrmFake() as taken:
        port = taken.base_url.rsplit(":", 1)[1]

        code = main(["serve", "crm", "--port", port])

    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err.splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use; choose another with --port "
        "(or leave it out for any free port)"
    ]


def test_serve_an_unknown_connector_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["serve", "nope"])

    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err.splitlines() == [
        f"error: unknown connector `nope`; the catalog has: {', '.join(CATALOG.names)}"
    ]


def test_serve_a_catalog_connector_without_a_sandbox_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A connector listed in the catalog whose sandbox module was never written."""
    raw = yaml.safe_load((ROOT / "catalog.yml").read_text(encoding="utf-8"))
    (crm,) = [entry for entry in raw["connectors"] if entry["name"] == "crm"]
    name = "crm_without_sandbox"
    raw["connectors"].append({**crm, "name": name, "module": f"connectors.{name}"})
    catalog = tmp_path / "catalog.yml"
    catalog.write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setattr("shared.tooling.catalog.CATALOG_PATH", catalog)

    code = main(["serve", "crm_without_sandbox"])

    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err.splitlines() == [
        "error: connector `crm_without_sandbox` has no sandbox "
        "(connectors/sandbox/crm_without_sandbox.py)"
    ]


@pytest.mark.slow  # a second whole sync in a process of its own (~10 s)
def test_the_readmes_plain_dlt_example_as_written_loads_the_sandboxs_rows(tmp_path: Path) -> None:
    env = clean_environment(tmp_path)
    command = [sys.executable, "-m", "connectors", "serve", "crm"]
    expected_settings = len(crm_environment("http://127.0.0.1:1"))
    with serving(command, tmp_path, env, expected_settings) as (server, _, exported):
        snippet = subprocess.run(
            [sys.executable, "-c", readme_python_example()],
            cwd=tmp_path,
            env={**env, **exported},
            capture_output=True,
            text=True,
            timeout=SECONDS,
        )
        stop(server)

    assert snippet.returncode == 0, snippet.stderr[-3000:]
    expected = EXPECTED_ROWS["crm"](CrmFake())
    assert row_counts(tmp_path / "crm.duckdb", "crm_data", list(expected)) == expected


def readme_python_example() -> str:
    """The Python block of the README's "Using a connector from plain dlt" section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Using a connector from plain dlt\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    return block


def test_every_catalog_connector_has_a_sandbox_and_its_expected_rows() -> None:
    assert set(EXPECTED_ROWS) <= set(CATALOG.names)
    for entry in CATALOG:
        recording = load_recording(entry.name)
        assert recording.connector == entry.name
        rows = expected_rows(entry.name, recording.fake())
        assert rows and all(count > 0 for count in rows.values()), entry.name


def test_the_readmes_serve_example_is_what_serve_prints_for_crm() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Try it without an account\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```text\n(.*?)```", section, flags=re.DOTALL)
    base_url = "http://127.0.0.1:8765"

    assert "connectors serve <name> [--port P]" in section
    assert block.splitlines() == [
        f"base_url={base_url}",
        *(f"{name}={shlex.quote(value)}" for name, value in crm_environment(base_url).items()),
    ]
