"""The crm spec (connectors/crm/crm.yml) against the crm fake over loopback: the same
tables, rows, columns, cursors and requests as crm_source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest

from connectors.crm import crm_source
from connectors.declarative import declarative_source
from connectors.sandbox.crm import TOKEN, CrmFake, parse_stamp
from shared.loading import duckdb_pipeline, run_source
from tests.dataset import query

pytestmark = pytest.mark.loopback

CRM_SPEC = Path(__file__).parents[2] / "connectors" / "crm" / "crm.yml"
FAST = {"requests_per_minute": 60_000}
#: a parent with a filtered child, a for_each, a single object and a full list
SOME = ("parties", "employees", "tags", "site")


def spec_source(fake: CrmFake, **kwargs: Any) -> Any:
    return declarative_source(CRM_SPEC, bearer_token=TOKEN, base_url=fake.base_url, **kwargs)


def python_source(fake: CrmFake, **kwargs: Any) -> Any:
    return crm_source(bearer_token=TOKEN, base_url=fake.base_url, **kwargs)


def loaded(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """Every table's columns and rows (without dlt's per-load ids), and the cursors."""
    tables = {}
    for table in pipeline.default_schema.data_tables():
        name = table["name"]
        columns = sorted(c for c in table["columns"] if c not in ("_dlt_load_id", "_dlt_id"))
        columns = [c for c in columns if not c.startswith("_dlt_")]
        rows = query(pipeline, f"SELECT {', '.join(columns)} FROM {name} ORDER BY ALL")
        tables[name] = (columns, rows)
    return {"tables": tables, "state": pipeline.state["sources"]}


def sync(tmp_path: Path, label: str, source: Any) -> dict[str, Any]:
    pipeline = duckdb_pipeline(
        label, database=str(tmp_path / f"{label}.duckdb"), pipelines_dir=str(tmp_path / label)
    )
    run_source(pipeline, source)
    return loaded(pipeline)


def requests_made(fake: CrmFake) -> list[tuple[str, list[tuple[str, str]]]]:
    return sorted((r.path, sorted(r.args.items())) for r in fake.requests)


def test_the_crm_spec_loads_the_fakes_records_through_parents_for_each_and_cursors(
    pipeline: dlt.Pipeline,
) -> None:
    with CrmFake() as fake:
        run_source(pipeline, spec_source(fake, **FAST).with_resources(*SOME))
        people_calls = fake.requests_to("/people")

    parties = fake.data["parties"]
    assert query(pipeline, "SELECT id, updated_at FROM parties ORDER BY id") == [
        (p["id"], parse_stamp(p["updatedAt"])) for p in parties
    ]
    # employees only of organisations (`parent.where`), in the named column
    assert query(pipeline, "SELECT organisation_id, id FROM employees ORDER BY ALL") == sorted(
        (organisation, person["id"])
        for organisation, people in fake.employees.items()
        for person in people
    )
    assert len(people_calls) == sum(p["type"] == "organisation" for p in parties)
    assert query(pipeline, "SELECT entity, id FROM tags ORDER BY ALL") == sorted(
        (entity, tag["id"]) for entity, tags in fake.tags.items() for tag in tags
    )
    assert query(pipeline, "SELECT subdomain FROM site") == [("example",)]
    cursor = pipeline.state["sources"]["crm"]["resources"]["parties"]["incremental"]["updatedAt"]
    assert cursor["last_value"] == max(p["updatedAt"] for p in parties)


# the same syncs by crm_source and the spec, compared: two syncs each, `make test-slow`
@pytest.mark.slow
@pytest.mark.parametrize("resources", [pytest.param(SOME, id="some"), pytest.param((), id="all")])
def test_the_crm_spec_loads_what_crm_source_loads(
    tmp_path: Path, resources: tuple[str, ...]
) -> None:
    results = {}
    for label, make in (("python", python_source), ("spec", spec_source)):
        with CrmFake() as fake:
            source = make(fake, **FAST)
            results[label] = sync(
                tmp_path, label, source.with_resources(*resources) if resources else source
            )
            results[f"{label} requests"] = requests_made(fake)

    spec, python = results["spec"], results["python"]
    assert spec["tables"].keys() == python["tables"].keys()
    for table, (columns, rows) in python["tables"].items():
        assert spec["tables"][table] == (columns, rows), table
    assert "employees" in spec["tables"] and "parties__email_addresses" in spec["tables"]
    assert spec["state"] == python["state"] and spec["state"]["crm"]["resources"]["parties"]
    assert results["spec requests"] == results["python requests"]
