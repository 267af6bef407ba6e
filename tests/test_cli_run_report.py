"""`python -m connectors run NAME --json`: one JSON object on stdout with the rows per
table (0 for a table that got nothing new), requests, retries, 429s, seconds and
status, counted against what the loopback fake received; messages stay on stderr."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connectors.cli import main
from tests.fakes.base import Fault
from tests.fakes.crm import TOKEN, CrmFake

pytestmark = [pytest.mark.loopback, pytest.mark.usefixtures("empty_folder")]

#: what the runs load: a list read in full, an incremental list with nested tables, a lookup
RESOURCES = ("--resources", "users,parties,stages")


@pytest.fixture
def crm(monkeypatch: pytest.MonkeyPatch) -> Iterator[CrmFake]:
    with CrmFake() as fake:
        monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
        monkeypatch.setenv("SOURCES__CRM__BASE_URL", fake.base_url)
        monkeypatch.setenv("SOURCES__CRM__REQUESTS_PER_MINUTE", "60000")
        monkeypatch.setenv("SOURCES__CRM__BACKOFF_FACTOR", "0.01")
        yield fake


def run_json(
    capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, dict[str, Any], list[str]]:
    code = main(["run", "crm", *RESOURCES, "--json", *argv])
    captured = capsys.readouterr()
    (line,) = captured.out.splitlines()  # one JSON object, on one line
    return code, json.loads(line), captured.err.splitlines()


def loaded(database: Path) -> dict[str, int]:
    with duckdb.connect(str(database), read_only=True) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'crm_data' AND table_name NOT LIKE '_dlt%'"
        ).fetchall()
        return {
            name: connection.execute(f'SELECT COUNT(*) FROM crm_data."{name}"').fetchall()[0][0]
            for (name,) in tables
        }


def test_a_first_sync_reports_every_table_its_rows_and_the_requests_the_api_received(
    crm: CrmFake, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, report, err = run_json(capsys)

    assert code == 0
    assert report["tables"] == loaded(tmp_path / "crm.duckdb")
    assert report["tables"]["users"] == len(crm.data["users"])
    assert {key: report[key] for key in ("connector", "status", "error", "requests")} == {
        "connector": "crm",
        "status": "ok",
        "error": None,
        "requests": len(crm.requests),
    }
    assert (report["retries"], report["rate_limited"]) == (0, 0)
    assert report["pipeline"] == "connectors_crm"
    assert (report["destination"], report["dataset"]) == ("duckdb", "crm_data")
    assert report["database"] == str(tmp_path / "crm.duckdb")
    assert (report["replay"], report["full_refresh"]) == (False, False)
    assert report["seconds"] > 0
    assert err[0].startswith("crm: loading into ")  # messages stay on stderr


def test_a_second_sync_counts_retries_and_429s_and_lists_tables_with_no_new_rows(
    crm: CrmFake, capsys: pytest.CaptureFixture[str]
) -> None:
    # the newest party is read again (the cursor's one-second lag): without nested lists,
    # it gives its nested tables no new row
    newest = max(crm.data["parties"], key=lambda party: party["updatedAt"])
    newest.update(emailAddresses=[], phoneNumbers=[], fields=[])
    assert run_json(capsys)[0] == 0
    sent = len(crm.requests)
    crm.inject(Fault(status=429, path="/stages", headers=crm.rate_limit_fault_headers(0.0)))
    crm.inject(Fault(status=503, path="/users", body={"message": "try again"}))

    code, report, _ = run_json(capsys)

    assert code == 0
    assert report["requests"] == len(crm.requests) - sent
    assert (report["retries"], report["rate_limited"]) == (2, 1)
    assert report["tables"] == {
        "parties": 1,
        "parties__email_addresses": 0,
        "parties__fields": 0,
        "parties__phone_numbers": 0,
        "stages": len(crm.data["stages"]),
        "users": len(crm.data["users"]),
    }


def test_a_failed_run_reports_status_failed_and_the_error_line_it_prints(
    crm: CrmFake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", "not-the-token")

    code, report, err = run_json(capsys)

    assert code == 1
    assert (report["status"], report["tables"]) == ("failed", {})
    assert f"error: {report['error']}" == err[-1]
    assert "SOURCES__CRM__BEARER_TOKEN" in report["error"]
    assert report["requests"] == len(crm.requests) == 1
