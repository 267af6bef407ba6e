"""`python -m connectors verify`: a real sync over loopback into a DuckDB file, then the
source changed at the fake, then verify, read-only, finds each difference."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from connectors.cli.commands import main
from connectors.sandbox.analytics import API_KEY as ANALYTICS_KEY
from connectors.sandbox.analytics import AnalyticsFake
from connectors.sandbox.crm import TOKEN, CrmFake, make_party, stamp
from connectors.sandbox.hubspot_contacts import TOKEN as HUBSPOT_TOKEN
from connectors.sandbox.hubspot_contacts import HubSpotContactsFake
from connectors.sandbox.incident_analytics import TOKEN as INCIDENT_TOKEN
from connectors.sandbox.incident_analytics import IncidentAnalyticsFake, make_alert
from connectors.sandbox.project_tracker import API_KEY as PROJECT_TRACKER_KEY
from connectors.sandbox.project_tracker import ProjectTrackerFake

pytestmark = [pytest.mark.loopback, pytest.mark.usefixtures("empty_folder")]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def report(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = cli(capsys, "verify", *argv, "--json")
    assert code in (0, 1), err
    return code, json.loads(out)


def row_counts(database: Path, dataset: str) -> dict[str, int]:
    with duckdb.connect(str(database), read_only=True) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [dataset]
        ).fetchall()
        return {
            name: connection.execute(f'SELECT COUNT(*) FROM {dataset}."{name}"').fetchall()[0][0]
            for (name,) in tables
        }


def pipeline_state(name: str) -> dict[str, Any]:
    pipeline = dlt.attach(name, pipelines_dir=os.path.join(os.environ["DLT_DATA_DIR"], "pipelines"))
    return json.loads(json.dumps(pipeline.state, default=str))


def pipeline_files(name: str) -> dict[str, bytes]:
    folder = Path(os.environ["DLT_DATA_DIR"]) / "pipelines" / name
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# -- crm ------------------------------------------------------------------------------


#: what most crm tests sync and verify (`parties` without its per-organisation children)
SOME = ("--resources", "users,parties,stages")


def crm_synced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *run_args: str
) -> Iterator[CrmFake]:
    with CrmFake() as fake:
        monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
        monkeypatch.setenv("SOURCES__CRM__BASE_URL", fake.base_url)
        monkeypatch.setenv("SOURCES__CRM__REQUESTS_PER_MINUTE", "60000")
        code, _, err = cli(capsys, "run", "crm", *run_args)
        assert code == 0, err
        yield fake


@pytest.fixture
def crm(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[CrmFake]:
    """The crm fake, its users, parties and stages synced into `crm.duckdb` by
    `connectors run crm --resources ...`."""
    yield from crm_synced(monkeypatch, capsys, *SOME)


@pytest.fixture
def crm_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[CrmFake]:
    """The crm fake, synced whole into `crm.duckdb` by `connectors run crm`."""
    yield from crm_synced(monkeypatch, capsys)


def test_after_a_sync_verify_agrees_and_changes_neither_state_nor_tables(
    crm_whole: CrmFake, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    crm = crm_whole
    database = tmp_path / "crm.duckdb"
    tables, state = row_counts(database, "crm_data"), pipeline_state("connectors_crm")
    files = pipeline_files("connectors_crm")
    requests_before = len(crm.requests)
    # even with verify reading everything, a stored cursor must not narrow its read
    assert state["sources"]["crm"]["resources"]["parties"]["incremental"]

    code, out, err = cli(capsys, "verify", "crm")

    assert code == 0, err
    assert "crm: the destination agrees with the source" in out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:] if line}
    assert lines["parties"] == ["260", "260", "0", "0", "0"]
    assert lines["users"] == ["120", "120", "0", "0", "0"]
    # read in full: no `since`, whatever the stored cursor
    parties = crm.requests_to("/api/v2/parties")[requests_before:]
    assert parties and not any("since" in r.args for r in parties)
    assert all(r.method == "GET" for r in crm.requests[requests_before:])
    assert row_counts(database, "crm_data") == tables
    assert pipeline_state("connectors_crm") == state
    assert pipeline_files("connectors_crm") == files


def test_a_record_deleted_at_the_source_is_listed_as_deleted_but_live(
    crm: CrmFake, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    gone = crm.record("parties", 1007)
    crm.data["parties"].remove(gone)
    tables, state = (
        row_counts(tmp_path / "crm.duckdb", "crm_data"),
        pipeline_state("connectors_crm"),
    )

    code, out, _ = cli(capsys, "verify", "crm", *SOME)

    assert code == 1
    assert "  parties: 1 deleted at the source but live in the destination: 1007" in out
    assert "crm: drift in 1 table" in out
    code, result = report(capsys, "crm", *SOME)
    assert code == 1 and result["agrees"] is False
    assert result["tables"]["parties"]["deleted"] == 1
    assert result["tables"]["parties"]["examples"]["deleted"] == ["1007"]
    assert result["tables"]["parties"]["source"] == 259
    assert result["tables"]["parties"]["destination"] == 260
    assert row_counts(tmp_path / "crm.duckdb", "crm_data") == tables
    assert pipeline_state("connectors_crm") == state


def test_a_record_edited_at_the_source_is_stale_and_a_new_one_missing(
    crm: CrmFake, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = crm.record("parties", 1010)
    edited["updatedAt"] = stamp(datetime.now(timezone.utc) - timedelta(minutes=1))
    edited["about"] = "edited"
    crm.data["parties"].append(make_party(900))  # id 1900
    crm.data["users"] = crm.data["users"][:-2]

    code, result = report(capsys, "crm", *SOME)

    assert code == 1
    parties = result["tables"]["parties"]
    assert (parties["missing"], parties["deleted"], parties["stale"]) == (1, 0, 1)
    assert parties["examples"] == {"missing": ["1900"], "deleted": [], "stale": ["1010"]}
    users = result["tables"]["users"]
    assert (users["source"], users["destination"], users["deleted"]) == (118, 120, 2)
    assert users["examples"]["deleted"] == ["119", "120"]
    agreeing = {
        name for name, table in result["tables"].items() if name not in ("parties", "users")
    }
    assert all(
        result["tables"][name]["missing"] + result["tables"][name]["deleted"] == 0
        for name in agreeing
    )


def test_the_json_report_has_counts_and_examples_per_table(
    crm: CrmFake, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, result = report(capsys, "crm", "--resources", "users,parties")

    assert code == 0
    assert set(result) == {
        "connector",
        "database",
        "dataset",
        "agrees",
        "tables",
        "not_compared",
        "seconds",
    }
    assert result["connector"] == "crm" and result["agrees"] is True
    assert result["database"] == str(tmp_path / "crm.duckdb")
    assert result["dataset"] == "crm_data"
    # only the resources asked for; nested tables (`parties__email_addresses`) never
    assert set(result["tables"]) == {"users", "parties"}
    assert result["tables"]["users"] == {
        "source": 120,
        "destination": 120,
        "missing": 0,
        "deleted": 0,
        "stale": 0,
        "examples": {"missing": [], "deleted": [], "stale": []},
    }


def test_a_row_marked_deleted_in_the_destination_is_not_live(
    crm: CrmFake, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # a row with `_deleted_at` set is no longer live (what a sync writes when it learns a
    # deletion; set by hand here, so the destination disagrees with the source for 4)
    with duckdb.connect(str(tmp_path / "crm.duckdb")) as connection:
        connection.execute("UPDATE crm_data.users SET _deleted_at = now() WHERE id IN (3, 4)")
    crm.data["users"] = [user for user in crm.data["users"] if user["id"] != 3]

    code, result = report(capsys, "crm", "--resources", "users")

    users = result["tables"]["users"]
    # 3: deleted at both ends, agrees; 4: at the source but marked deleted: missing
    assert code == 1
    assert (users["source"], users["destination"]) == (119, 118)
    assert users["examples"] == {"missing": ["4"], "deleted": [], "stale": []}


def test_a_database_given_with_database_is_the_one_compared(
    crm: CrmFake, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "crm.duckdb").rename(tmp_path / "elsewhere" / "copy.duckdb")

    code, result = report(
        capsys, "crm", "--resources", "stages", "--database", "elsewhere/copy.duckdb"
    )

    assert code == 0
    assert result["database"] == str(tmp_path / "elsewhere" / "copy.duckdb")
    assert result["tables"]["stages"]["destination"] == 5


# -- bad input ------------------------------------------------------------------------


def test_an_unknown_connector_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "verify", "nope")

    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert "nope" in err and "Traceback" not in err


def test_a_missing_database_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)

    code, out, err = cli(capsys, "verify", "crm")

    assert code == 2 and out == ""
    assert err == (
        f"error: no database at {tmp_path / 'crm.duckdb'}; run `python -m connectors run crm` "
        "first, or give --database\n"
    )
    code, _, err = cli(capsys, "verify", "crm", "--database", "other.duckdb")
    assert code == 2
    assert err.strip().endswith("other.duckdb; run `python -m connectors run crm` first")


def test_a_missing_dataset_names_the_ones_there(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
    with duckdb.connect(str(tmp_path / "crm.duckdb")) as connection:
        connection.execute("CREATE SCHEMA somewhere_else")

    code, _, err = cli(capsys, "verify", "crm")

    assert code == 2
    assert err == (
        f"error: {tmp_path / 'crm.duckdb'} has no dataset `crm_data`; it has: somewhere_else "
        "(choose one with --dataset)\n"
    )


def test_an_unknown_resource_is_one_line_naming_the_ones_there(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(capsys, "verify", "crm", "--resources", "users,nope")

    assert code == 2 and out == ""
    assert err.startswith("error: crm has no resource `nope`; it has: users, parties,")
    assert len(err.strip().splitlines()) == 1


# -- incident_analytics ------------------------------------------------------------------


def test_incident_analytics_verify_finds_deleted_stale_and_missing_alerts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with IncidentAnalyticsFake() as fake:
        monkeypatch.setenv("SOURCES__INCIDENT_ANALYTICS__API_TOKEN", INCIDENT_TOKEN)
        monkeypatch.setenv("SOURCES__INCIDENT_ANALYTICS__BASE_URL", fake.base_url)
        monkeypatch.setenv("SOURCES__INCIDENT_ANALYTICS__REQUESTS_PER_MINUTE", "6000000")
        code, _, err = cli(capsys, "run", "incident_analytics")
        assert code == 0, err
        database = tmp_path / "incident_analytics.duckdb"
        state = pipeline_state("connectors_incident_analytics")
        tables = row_counts(database, "incident_analytics_data")

        code, agreeing = report(capsys, "incident_analytics")
        assert code == 0, agreeing
        assert set(agreeing["tables"]) == {
            "users",
            "teams",
            "services",
            "integrations",
            "incidents",
            "alerts",
        }
        assert agreeing["tables"]["alerts"]["source"] == 230

        alerts = list(fake.data["alerts"])
        gone, edited = alerts[5]["id"], alerts[7]["id"]
        fake.data["alerts"] = [alert for alert in alerts if alert["id"] != gone]
        fake.update("alerts", edited, fake.newest_updated("alerts") + timedelta(seconds=5))
        added = make_alert(500, 230)
        fake.data["alerts"] = [*fake.data["alerts"], added]

        code, result = report(capsys, "incident_analytics")

    assert code == 1
    assert result["tables"]["alerts"]["examples"] == {
        "missing": [added["id"]],
        "deleted": [gone],
        "stale": [edited],
    }
    assert result["tables"]["incidents"]["missing"] == 0
    assert pipeline_state("connectors_incident_analytics") == state
    assert row_counts(database, "incident_analytics_data") == tables


# -- hubspot_contacts, project_tracker, analytics ----------------------------------------


def synced(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    base_url: str,
    *run_args: str,
    **config: str,
) -> tuple[dict[str, Any], dict[str, int]]:
    """`connectors run NAME` against a fake configured through the env; then verify
    agrees. Returns the pipeline's state and the row counts after the run."""
    for key, value in {"base_url": base_url, **config}.items():
        monkeypatch.setenv(f"SOURCES__{name.upper()}__{key.upper()}", value)
    code, _, err = cli(capsys, "run", name, *run_args)
    assert code == 0, err
    verify_args = run_args
    state, tables = (
        pipeline_state(f"connectors_{name}"),
        row_counts(Path(f"{name}.duckdb"), f"{name}_data"),
    )
    code, result = report(capsys, name, *verify_args)
    assert code == 0 and result["agrees"], json.dumps(result)
    return state, tables


def test_hubspot_contacts_verify_reads_the_whole_list_and_finds_a_deleted_contact(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with HubSpotContactsFake() as fake:
        state, tables = synced(
            capsys,
            monkeypatch,
            "hubspot_contacts",
            fake.base_url,
            api_key=HUBSPOT_TOKEN,
            requests_per_ten_seconds="100000",
            search_requests_per_second="100000",
        )
        fake.contacts = [c for c in fake.contacts if c["id"] != "17"]
        searches = len(fake.requests_to("/search"))

        code, result = report(capsys, "hubspot_contacts")

    assert code == 1
    contacts = result["tables"]["contacts"]
    assert (contacts["source"], contacts["destination"]) == (244, 245)
    assert contacts["examples"]["deleted"] == ["17"]
    # a fresh state reads the list, never the search a later sync would use
    assert len(fake.requests_to("/search")) == searches
    assert pipeline_state("connectors_hubspot_contacts") == state
    assert row_counts(Path("hubspot_contacts.duckdb"), "hubspot_contacts_data") == tables


@pytest.mark.slow
def test_project_tracker_verify_compares_a_composite_key_per_parent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with ProjectTrackerFake() as fake:
        state, tables = synced(
            capsys,
            monkeypatch,
            "project_tracker",
            fake.base_url,
            "--resources",
            "groups_stories",
            api_key=PROJECT_TRACKER_KEY,
            requests_per_minute="60000",
        )
        story = next(s for s in fake.stories if s["group_id"] == fake.groups[1]["id"])
        story["group_id"] = fake.groups[2]["id"]  # the story moved to another group

        code, result = report(capsys, "project_tracker", "--resources", "groups_stories")

    assert code == 1
    assert set(result["tables"]) == {"groups_stories"}
    moved = result["tables"]["groups_stories"]
    assert moved["examples"] == {
        "missing": [f"{fake.groups[2]['id']}/{story['id']}"],
        "deleted": [f"{fake.groups[1]['id']}/{story['id']}"],
        "stale": [],
    }
    assert pipeline_state("connectors_project_tracker") == state
    assert row_counts(Path("project_tracker.duckdb"), "project_tracker_data") == tables


def test_analytics_verify_compares_the_configured_resources(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    users = {
        "name": "users",
        "path": "/v1/users",
        "incremental": {"cursor_path": "updated_at", "param": "updated_since"},
    }
    with AnalyticsFake() as fake:
        state, _ = synced(
            capsys,
            monkeypatch,
            "analytics",
            fake.base_url,
            api_key=ANALYTICS_KEY,
            resources=json.dumps(["events", users]),
        )
        edited = fake.data["users"][3]
        edited["updated_at"] = "2030-01-01T00:00:00Z"
        fake.data["events"] = fake.data["events"][1:]

        code, result = report(capsys, "analytics")

    assert code == 1
    assert result["tables"]["users"]["examples"]["stale"] == [str(edited["id"])]
    assert result["tables"]["events"]["deleted"] == 1
    assert pipeline_state("connectors_analytics") == state


def test_a_table_the_runs_never_loaded_is_all_missing(
    crm: CrmFake, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = report(capsys, "crm", "--resources", "users,tasks")

    assert code == 1
    assert result["tables"]["users"]["missing"] == 0
    tasks = result["tables"]["tasks"]
    assert (tasks["source"], tasks["destination"], tasks["missing"]) == (150, 0, 150)
    assert tasks["examples"]["missing"] == ["3000", "3001", "3002", "3003", "3004"]


def test_missing_credentials_are_one_line_naming_the_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(capsys, "verify", "crm")

    assert code == 2 and out == ""
    assert err.startswith("error: crm: missing bearer_token; set `sources.crm.bearer_token`")
    assert len(err.strip().splitlines()) == 1


def test_a_relative_base_url_blames_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "verify", "crm", "--base-url", "api.example.com")

    assert code == 2
    assert err.startswith("error: --base-url `api.example.com` is not an absolute http(s) URL")


def test_a_failed_read_is_one_line_and_never_exit_1(
    crm: CrmFake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", "not-the-token")

    code, out, err = cli(capsys, "verify", "crm", *SOME)

    # 1 is drift only: a read that failed cannot tell
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "not-the-token" not in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_file_that_is_no_duckdb_database_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
    (tmp_path / "crm.duckdb").write_text("not a database")

    code, out, err = cli(capsys, "verify", "crm")

    assert code == 2 and out == ""
    assert err.startswith(f"error: cannot open {tmp_path / 'crm.duckdb'} read-only: ")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_verify_finds_the_drift_a_normal_run_cannot_heal_and_agrees_after_reconcile(
    crm: CrmFake, capsys: pytest.CaptureFixture[str]
) -> None:
    """A party restored with an old stamp (a normal run's `since` never asks for it) and
    a party deleted whose feed entry has aged out (a normal run never learns it): verify
    says so (exit 1), a normal run leaves it so, `run --reconcile` heals it (exit 0)."""
    restored = make_party(950)  # id 1950
    restored["updatedAt"] = "2020-01-01T00:00:00Z"
    crm.data["parties"].append(restored)
    crm.data["parties"].remove(crm.record("parties", 1007))  # and no feed entry

    code, result = report(capsys, "crm", *SOME)
    assert code == 1
    assert result["tables"]["parties"]["examples"]["missing"] == ["1950"]
    assert result["tables"]["parties"]["examples"]["deleted"] == ["1007"]

    assert cli(capsys, "run", "crm", *SOME)[0] == 0
    assert report(capsys, "crm", *SOME)[0] == 1  # a normal run cannot see either

    code, _, err = cli(capsys, "run", "crm", *SOME, "--reconcile")
    assert code == 0, err
    code, result = report(capsys, "crm", *SOME)
    assert code == 0 and result["agrees"], json.dumps(result)
    with duckdb.connect("crm.duckdb", read_only=True) as connection:
        marked = connection.execute(
            "SELECT _deleted_at IS NOT NULL FROM crm_data.parties WHERE id = 1007"
        ).fetchall()
    assert marked == [(True,)]
