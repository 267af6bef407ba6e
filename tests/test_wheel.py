"""The built wheel, installed: `make test-wheel` builds it, installs it into a fresh
virtualenv and runs this module with that virtualenv's Python. Every command runs from
an empty folder with nothing of the checkout importable (no PYTHONPATH, another working
directory), so what passes here works after `pip install <wheel>`: `list`, `show`,
`demo`, `new`, `serve` + `run`, and the orchestration modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from connectors.sandbox import load_recording
from connectors.sandbox.crm import CrmFake
from tests.expected_rows import EXPECTED_ROWS
from tests.serving import SECONDS, row_counts, serving, stop

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parent.parent
#: the checkout's catalog: the wheel must carry the same one
CATALOG = yaml.safe_load((ROOT / "catalog.yml").read_text(encoding="utf-8"))["connectors"]
NAMES = [entry["name"] for entry in CATALOG]
#: the installed `connectors` script, beside this interpreter
CONNECTORS = Path(sys.executable).parent / "connectors"


@pytest.fixture(scope="module")
def empty_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("empty")


def environment(folder: Path) -> dict[str, str]:
    """Nothing of the checkout importable, no SOURCES__* setting, dlt's data in `folder`."""
    env = {
        k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("SOURCES__")
    }
    return {
        **env,
        "DLT_DATA_DIR": str(folder / ".dlt-data"),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }


def run(folder: Path, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=folder,
        env={**environment(folder), **env},
        capture_output=True,
        text=True,
        timeout=SECONDS,
    )


def connectors(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed `connectors` command, run from `folder`."""
    return run(folder, str(CONNECTORS), *args, **env)


@pytest.fixture(scope="module", autouse=True)
def installed_from_the_wheel(empty_folder: Path) -> None:
    """This interpreter has the wheel installed, not the checkout (an editable install)."""
    where = run(
        empty_folder,
        sys.executable,
        "-c",
        "import connectors, shared.tooling.package_data as data; "
        "print(connectors.__file__); print(data.checkout_root()); print(data.package_data(''))",
    )
    assert where.returncode == 0, where.stderr
    package, checkout, data = where.stdout.splitlines()
    if checkout != "None" or not Path(package).is_relative_to(sys.prefix):
        pytest.fail(f"not the installed wheel ({package}): run `make test-wheel`")
    assert Path(data).is_relative_to(Path(sys.prefix)), data


def test_list_shows_the_packaged_catalog(empty_folder: Path) -> None:
    listed = connectors(empty_folder, "list")

    assert listed.returncode == 0, listed.stderr
    rows = [line.split()[0] for line in listed.stdout.splitlines()[1 : len(NAMES) + 1]]
    assert rows == NAMES
    assert f"{len(NAMES)} connectors." in listed.stdout


def test_show_prints_the_connector_and_its_settings(empty_folder: Path) -> None:
    shown = connectors(empty_folder, "show", "crm")

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("crm: CRM (")
    assert "source:      from connectors.crm import crm_source" in shown.stdout
    assert "[sources.crm]" in shown.stdout
    assert "SOURCES__CRM__BEARER_TOKEN" in shown.stdout
    # Dango's install line installs the catalog from the wheel it was installed from
    wheel = os.environ.get("CATALOG_WHEEL")
    assert wheel, "run by `make test-wheel`, which names the wheel in CATALOG_WHEEL"
    assert f"pip install getdango==1.0.13 {Path(wheel).resolve()}\n" in shown.stdout
    # the connector's documentation it names is installed with it
    (readme,) = Path(sys.prefix).glob("lib/python*/site-packages/connectors/crm/README.md")
    assert readme.is_file()


def test_demo_loads_every_connector_from_the_packaged_cassettes(empty_folder: Path) -> None:
    demo = connectors(empty_folder, "demo", "--database", "demo.duckdb")

    assert demo.returncode == 0, demo.stderr[-3000:]
    database = (empty_folder / "demo.duckdb").resolve()
    assert demo.stdout.startswith(f"{database}: {len(NAMES)} connectors")
    loaded = dict(line.split() for line in demo.stdout.splitlines()[2:] if line.strip())
    assert {table.split(".")[0] for table in loaded} == set(NAMES)
    assert int(loaded["crm.parties"]) > 0


def test_new_writes_a_connector_into_the_current_folder(tmp_path: Path) -> None:
    created = connectors(tmp_path, "new", "petstore")

    assert created.returncode == 0, created.stderr
    written = {
        path.relative_to(tmp_path).as_posix()
        for path in tmp_path.rglob("*")
        if path.is_file() and ".dlt-data" not in path.parts
    }
    assert {
        "catalog.yml",
        "connectors/petstore/__init__.py",
        "connectors/sandbox/petstore.py",
        "tests/connectors/test_petstore.py",
        "cassettes/petstore/full_sync.yaml",
    } <= written
    entries = yaml.safe_load((tmp_path / "catalog.yml").read_text(encoding="utf-8"))
    assert [entry["name"] for entry in entries["connectors"]] == ["petstore"]
    sandbox = (tmp_path / "connectors/sandbox/petstore.py").read_text(encoding="utf-8")
    assert "class PetstoreFake(FakeServer)" in sandbox
    assert "from connectors.petstore import petstore_source" in sandbox


def test_new_refuses_the_name_of_an_installed_connector(tmp_path: Path) -> None:
    refused = connectors(tmp_path, "new", "crm")

    assert refused.returncode == 2
    assert refused.stderr.splitlines() == ["error: connector `crm` already exists in catalog.yml"]
    assert list(tmp_path.iterdir()) == []


def test_new_from_an_installed_connector_says_it_needs_a_checkout(tmp_path: Path) -> None:
    refused = connectors(tmp_path, "new", "my_crm", "--from", "crm")

    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"error: --from copies `crm`'s package, fake, tests and cassettes from a checkout of "
        f"the catalog, and {tmp_path} is not one: run it in a clone of the repository, or "
        f"`connectors new my_crm` here for the template"
    ]
    assert [path.name for path in tmp_path.iterdir() if path.name != ".dlt-data"] == []


def test_serve_then_run_loads_the_sandboxs_rows(tmp_path: Path) -> None:
    command = [str(CONNECTORS), "serve", "crm"]
    with serving(command, tmp_path, environment(tmp_path), settings=2) as (server, url, settings):
        assert settings == {
            "SOURCES__CRM__BASE_URL": url,
            "SOURCES__CRM__BEARER_TOKEN": load_recording("crm").credentials["bearer_token"],
        }

        synced = connectors(tmp_path, "run", "crm", "--database", "crm.duckdb", **settings)
        stopped = stop(server)

    assert synced.returncode == 0, synced.stderr[-3000:]
    expected = EXPECTED_ROWS["crm"](CrmFake())
    assert row_counts(tmp_path / "crm.duckdb", "crm_data", list(expected)) == expected
    assert server.returncode == 0
    assert stopped.splitlines()[-1] == "crm: sandbox stopped"


#: run in the wheel's Python: the orchestration helpers find the packaged catalog, and
#: each orchestrator module imports, or fails only for its orchestrator not installed
ORCHESTRATION = """
import importlib, json
from dlt.common.exceptions import MissingDependencyException
import orchestration
found = {"catalog_entry": orchestration.catalog_entry("crm").name}
for module, needs in (("dagster_assets", "dagster"), ("airflow_dag", "airflow")):
    try:
        importlib.import_module(f"orchestration.{module}")
        found[module] = "imported"
    except (ImportError, MissingDependencyException) as error:  # dlt's: Airflow missing
        assert needs in str(error).lower(), error
        found[module] = f"missing {needs}"
print(json.dumps(found))
"""


def test_the_orchestration_modules_import_or_name_their_missing_orchestrator(
    empty_folder: Path,
) -> None:
    imported = run(empty_folder, sys.executable, "-c", ORCHESTRATION)

    assert imported.returncode == 0, imported.stderr[-3000:]
    found = yaml.safe_load(imported.stdout)
    assert found["catalog_entry"] == "crm"
    assert found["dagster_assets"] in ("imported", "missing dagster")
    assert found["airflow_dag"] in ("imported", "missing airflow")
