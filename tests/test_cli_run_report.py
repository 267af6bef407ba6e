"""`python -m connectors run NAME --json`: one JSON object on stdout with the rows per
table (0 for a table that got nothing new), requests, retries, 429s, seconds and
status, counted against what the loopback fake received; messages stay on stderr."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connectors.sandbox.base import Fault
from connectors.sandbox.crm import TOKEN, CrmFake
from tests.empty_folder import run_cli, use_empty_folder

pytestmark = pytest.mark.loopback

#: what the runs load: a list read in full, an incremental list with nested tables, a lookup
RESOURCES = ("--resources", "users,parties,stages")


@dataclass
class FirstSync:
    fake: CrmFake
    folder: Path
    code: int
    report: dict[str, Any]
    err: list[str]
    #: how many requests the fake received during the sync
    received: int


def run_json(*argv: str) -> tuple[int, dict[str, Any], list[str]]:
    code, out, err = run_cli("run", "crm", *RESOURCES, "--json", *argv)
    (line,) = out.splitlines()  # one JSON object, on one line
    return code, json.loads(line), err.splitlines()


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstSync]:
    """The crm fake, and `run crm --json` once into an empty folder."""
    folder = tmp_path_factory.mktemp("run-json")
    with CrmFake() as fake, pytest.MonkeyPatch.context() as monkeypatch:
        use_empty_folder(monkeypatch, folder)
        monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
        monkeypatch.setenv("SOURCES__CRM__BASE_URL", fake.base_url)
        monkeypatch.setenv("SOURCES__CRM__REQUESTS_PER_MINUTE", "60000")
        monkeypatch.setenv("SOURCES__CRM__BACKOFF_FACTOR", "0.01")
        # the newest party is read again by every later sync (the cursor's one-second
        # lag): without nested lists, it gives its nested tables no new row
        newest = max(fake.data["parties"], key=lambda party: party["updatedAt"])
        newest.update(emailAddresses=[], phoneNumbers=[], fields=[])
        code, report, err = run_json()
        yield FirstSync(fake, folder, code, report, err, len(fake.requests))


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
    first: FirstSync,
) -> None:
    report = first.report

    assert first.code == 0
    assert report["tables"] == loaded(first.folder / "crm.duckdb")
    assert report["tables"]["users"] == len(first.fake.data["users"])
    assert {key: report[key] for key in ("connector", "status", "error", "requests")} == {
        "connector": "crm",
        "status": "ok",
        "error": None,
        "requests": first.received,
    }
    assert (report["retries"], report["rate_limited"]) == (0, 0)
    assert report["pipeline"] == "connectors_crm"
    assert (report["destination"], report["dataset"]) == ("duckdb", "crm_data")
    assert report["database"] == str(first.folder / "crm.duckdb")
    assert (report["replay"], report["full_refresh"]) == (False, False)
    assert report["seconds"] > 0
    assert first.err[0].startswith("crm: loading into ")  # messages stay on stderr


def test_a_second_sync_counts_retries_and_429s_and_lists_tables_with_no_new_rows(
    first: FirstSync,
) -> None:
    fake = first.fake
    sent = len(fake.requests)
    fake.budget_headers = False  # a 429 without a reset to wait for: the backoff applies
    fake.inject(Fault(status=429, path="/stages"))
    fake.inject(Fault(status=503, path="/users", body={"message": "try again"}))

    code, report, _ = run_json()

    fake.budget_headers = True
    assert code == 0
    assert report["requests"] == len(fake.requests) - sent
    assert (report["retries"], report["rate_limited"]) == (2, 1)
    assert report["tables"] == {
        "parties": 1,
        "parties__addresses": 0,
        "parties__email_addresses": 0,
        "parties__fields": 0,
        "parties__phone_numbers": 0,
        "stages": len(fake.data["stages"]),
        "users": len(fake.data["users"]),
    }


def test_a_failed_run_reports_status_failed_and_the_error_line_it_prints(
    first: FirstSync, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", "not-the-token")
    sent = len(first.fake.requests)

    code, report, err = run_json()

    assert code == 1
    assert (report["status"], report["tables"]) == ("failed", {})
    assert f"error: {report['error']}" == err[-1]
    assert "SOURCES__CRM__BEARER_TOKEN" in report["error"]
    assert report["requests"] == len(first.fake.requests) - sent == 1
