"""Every catalog connector as Dagster assets (dagster-dlt), materialised in process
against its fake server: one asset per table, the same rows as a plain dlt run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from dagster_dlt import DagsterDltResource

from orchestration.dagster_assets import catalog_definitions, connector_assets
from shared.loading import duckdb_pipeline, row_counts, run_source
from shared.tooling.catalog import load_catalog
from tests.orchestration.configured import CONNECTORS, configure, recording, source_settings

pytestmark = pytest.mark.orchestrators

ROOT = Path(__file__).resolve().parents[2]


def loaded(name: str, tmp_path: Path) -> dict[str, int]:
    """Rows per table in `tmp_path/<name>.duckdb`, through a fresh pipeline object: the
    asset run drops the local state of the one it was given and loads with a new one."""
    return row_counts(
        duckdb_pipeline(
            name, database=str(tmp_path / f"{name}.duckdb"), pipelines_dir=str(tmp_path)
        )
    )


@pytest.mark.parametrize("name", CONNECTORS)
def test_materialising_a_connectors_assets_loads_every_table(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = recording(name)
    # the reference: a plain dlt run of the same source against the same data
    with rec.fake() as fake:
        settings = source_settings(name, fake.base_url)
        reference = duckdb_pipeline(
            "reference", database=str(tmp_path / "reference.duckdb"), pipelines_dir=str(tmp_path)
        )
        source = rec.source(**settings)
        run_source(reference, source)
        expected = row_counts(reference)
        tables = list(source.selected_resources)

    with rec.fake() as fake:
        # credentials and settings reach the assets only through dlt's configuration
        configure(monkeypatch, name, source_settings(name, fake.base_url))
        pipeline = duckdb_pipeline(
            "dagster", database=str(tmp_path / "dagster.duckdb"), pipelines_dir=str(tmp_path)
        )
        assets = connector_assets(name, pipeline=pipeline)
        result = materialize(
            [assets],
            resources={"dlt": DagsterDltResource()},
            instance=DagsterInstance.ephemeral(),
        )

    assert result.success
    assert set(assets.keys) == {AssetKey(f"dlt_{name}_{table}") for table in tables}
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert materialized == set(assets.keys)
    assert loaded("dagster", tmp_path) == expected
    assert sum(expected.values()) > 0
    # the credentials were never part of what Dagster shows or stores
    secrets = [str(v) for v in rec.step_credentials(rec.steps[0]).values()]
    run_config = str(result.dagster_run.run_config)
    assert not any(secret in run_config for secret in secrets)


def test_subset_materialises_only_the_selected_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = recording("crm")
    with rec.fake() as fake:
        configure(monkeypatch, "crm", source_settings("crm", fake.base_url))
        pipeline = duckdb_pipeline(
            "dagster", database=str(tmp_path / "dagster.duckdb"), pipelines_dir=str(tmp_path)
        )
        assets = connector_assets("crm", pipeline=pipeline)
        result = materialize(
            [assets],
            selection=[AssetKey("dlt_crm_users"), AssetKey("dlt_crm_stages")],
            resources={"dlt": DagsterDltResource()},
            instance=DagsterInstance.ephemeral(),
        )
        paths = {request.path for request in fake.requests}

    assert result.success
    assert loaded("dagster", tmp_path) == {
        "users": len(fake.data["users"]),
        "stages": len(fake.data["stages"]),
    }
    assert paths == {"/api/v2/users", "/api/v2/stages"}


def test_catalog_definitions_hold_every_connector_and_the_dlt_resource(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in CONNECTORS:
        configure(monkeypatch, name, source_settings(name, "https://api.example.com"))

    definitions = catalog_definitions()

    keys = {key.to_user_string() for key in definitions.resolve_all_asset_keys()}
    assert {"dlt_crm_users", "dlt_hubspot_contacts_contacts", "dlt_analytics_events"} <= keys
    assert {"dlt_incident_analytics_alerts", "dlt_project_tracker_story_history"} <= keys
    assert isinstance(definitions.resources["dlt"], DagsterDltResource)


def test_the_definitions_load_with_no_secret_set(tmp_path: Path) -> None:
    """`dagster dev -f definitions.py` in a fresh process: no `SOURCES__...` variable and
    no `.dlt/` folder, so dlt finds no secret and no config at all."""
    script = (
        "import json\n"
        "from orchestration.dagster_assets import catalog_definitions\n"
        "definitions = catalog_definitions()\n"
        "keys = [key for assets in definitions.assets for key in assets.keys]\n"
        "print(json.dumps(sorted(key.to_user_string() for key in keys)))\n"
    )
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "DAGSTER_HOME": str(tmp_path),
    }

    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    keys = json.loads(done.stdout.strip().splitlines()[-1])
    # analytics' resources are configuration: unconfigured, its replay configuration's
    assert keys == sorted(
        f"dlt_{entry.name}_{resource.name}"
        for entry in load_catalog()
        for resource in entry.resources
    )
