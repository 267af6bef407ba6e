"""Specs on the command line: every command that takes a connector name takes a spec
path (connectors/declarative/entry.py), and `list` shows the specs catalog.yml lists."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from connectors.cli import main
from connectors.declarative import load_spec
from connectors.sandbox.crm import TOKEN, CrmFake
from shared.tooling.catalog import ROOT, load_catalog

pytestmark = pytest.mark.usefixtures("empty_folder")

CRM_SPEC = Path(__file__).parents[2] / "connectors" / "crm" / "crm.yml"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rows_per_table(out: str) -> dict[str, int]:
    """The `TABLE ROWS` table `run` prints last."""
    lines = out.split("TABLE", 1)[1].splitlines()[1:]
    return {name: int(rows) for name, rows in (line.split() for line in lines if line.strip())}


def test_show_a_spec_prints_its_tables_secrets_and_dango_entry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(capsys, "show", str(CRM_SPEC))

    assert code == 0, err
    resources = [
        line.split()[0]
        for line in out.split("resources:\n", 1)[1].split("\n\n")[0].splitlines()[1:]
    ]
    assert resources == [r["name"] for r in load_spec(CRM_SPEC).data["resources"]]
    assert '[sources.crm]\nbearer_token = "..."' in out
    dango = yaml.safe_load(out.split("# .dango/sources.yml\n", 1)[1].split("\n\n", 1)[0])
    (entry,) = dango["sources"]
    assert entry["dlt_native"] == {
        "source_module": "connectors.declarative",
        "source_function": "declarative_source",
        "function_kwargs": {"spec": str(CRM_SPEC)},
    }
    assert f'pipeline.run(declarative_source("{CRM_SPEC}"))' in out


# a sync and a verify of two tables: `make test-slow`
@pytest.mark.slow
def test_run_a_spec_takes_its_values_from_dlt_config_and_verify_finds_every_row(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, empty_folder: Path
) -> None:
    with CrmFake() as fake:
        monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
        monkeypatch.setenv("SOURCES__CRM__BASE_URL", fake.base_url)
        monkeypatch.setenv("SOURCES__CRM__REQUESTS_PER_MINUTE", "60000")

        code, out, err = cli(capsys, "run", str(CRM_SPEC), "--resources", "pipelines,stages")
        verified = cli(capsys, "verify", str(CRM_SPEC), "--resources", "pipelines,stages")
        served = {"pipelines": len(fake.data["pipelines"]), "stages": len(fake.data["stages"])}
        fake.data["stages"].pop()
        drifted = cli(capsys, "verify", str(CRM_SPEC), "--resources", "pipelines,stages")

    # verify: 0 when the source and the tables agree, 1 on drift
    assert verified[0] == 0, verified
    assert drifted[0] == 1 and "stages" in drifted[1], drifted

    assert code == 0, err
    assert rows_per_table(out) == served
    assert {r.headers["Authorization"] for r in fake.requests} == {f"Bearer {TOKEN}"}
    with duckdb.connect(str(empty_folder / "crm.duckdb")) as db:
        assert db.execute("SELECT COUNT(*) FROM crm_data.stages").fetchone() == (5,)


def test_a_spec_with_a_wrong_key_fails_in_one_line_naming_file_line_and_key(
    capsys: pytest.CaptureFixture[str], empty_folder: Path
) -> None:
    spec = empty_folder / "shop.yml"
    spec.write_text(
        "name: shop\nclient: {base_url: 'http://127.0.0.1:9'}\n"
        "resources:\n  - name: orders\n    endpoint: {pat: /orders}\n",
        encoding="utf-8",
    )

    code, out, err = cli(capsys, "run", str(spec))

    assert code == 1
    assert err.splitlines() == [
        "error: shop.yml:5: resources[0].endpoint: unknown key `pat`; allowed: data_selector, "
        "incremental, json, method, paginator, params, path"
    ]


@pytest.mark.slow
def test_run_the_crm_spec_replays_crms_cassette(
    capsys: pytest.CaptureFixture[str], empty_folder: Path
) -> None:
    recorded = CrmFake()  # the data the crm cassettes were recorded from

    code, out, err = cli(capsys, "run", str(CRM_SPEC), "--replay")

    assert code == 0, err
    rows = rows_per_table(out)
    assert rows["parties"] == len(recorded.data["parties"])
    assert rows["employees"] == sum(len(people) for people in recorded.employees.values())
    assert rows["tags"] == sum(len(tags) for tags in recorded.tags.values())


def test_list_shows_every_spec_the_catalog_lists_and_each_is_valid(
    capsys: pytest.CaptureFixture[str],
) -> None:
    catalog = load_catalog()

    code, out, err = cli(capsys, "list")

    assert code == 0, err
    assert "connectors/crm/crm.yml" in catalog.specs
    listed = out.split("PATH ", 1)[1].splitlines()[1:]
    assert [line.split()[:2] for line in listed] == [
        [path, load_spec(ROOT / path).name] for path in catalog.specs
    ]


def test_a_listed_spec_runs_by_its_catalog_path_from_any_folder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the empty folder has no connectors/crm/crm.yml: the catalog's is found
    code, out, err = cli(capsys, "check", "connectors/crm/crm.yml", "--replay")

    assert code == 0, err
    assert out.startswith("crm: ok — GET https://api.example.com/api/v2/users?perPage=100 200")
    assert "(replayed from cassettes/crm/full_sync.yaml)" in out
