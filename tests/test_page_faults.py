"""Answers that are not data, and broken transfers, against every connector over loopback.

For each connector, one resource's page is damaged: its list `null`, missing or an object,
rows that are not objects, an HTML page, truncated JSON, a body cut off mid-transfer.

- once: the page is retried and every row loads;
- always: the run fails with one clear `InvalidResponseError` naming connector, resource,
  URL (no secret), status and content type; every table, every cursor in dlt state and
  dlt's own load history are exactly as before; no partial package is left to load; and
  the next clean run ends with the same tables as a pipeline that never saw the fault
  (and as the server's data).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import dlt
import pytest
import requests

import connectors.analytics as analytics
from connectors.analytics import analytics_source
from connectors.crm import crm_source
from connectors.declarative import declarative_source
from connectors.hubspot_contacts import hubspot_contacts_source
from connectors.incident_analytics import incident_analytics_source
from connectors.project_tracker import project_tracker_source
from connectors.sandbox import analytics as analytics_fake
from connectors.sandbox import crm as crm_fake
from connectors.sandbox import hubspot_contacts as hubspot_fake
from connectors.sandbox import incident_analytics as incident_fake
from connectors.sandbox import project_tracker as tracker_fake
from connectors.sandbox.base import HTML_ERROR_PAGE, FakeServer, Fault
from shared.errors import InvalidResponseError, RequestDeadlineExceeded
from shared.loading import duckdb_pipeline, run_source
from tests.dataset import query
from tests.failures import root_cause

pytestmark = pytest.mark.loopback

CRM_SPEC = Path(__file__).parent.parent / "connectors" / "crm" / "crm.yml"

#: dlt's bookkeeping columns, which differ between two pipelines by design
DLT_COLUMNS = "_dlt_load_id, _dlt_id"


@dataclass
class Scenario:
    """One connector, the resource whose page is damaged, and how its server changes."""

    name: str
    fake: Callable[[], FakeServer]
    source: Callable[[FakeServer], Any]
    #: the resource whose pages are damaged, the path they come from, the data key
    resource: str
    path: str
    selector: str
    #: matching requests let through before the damaged one (1: page 2 is damaged)
    after: int
    #: tables compared (top-level: child tables carry random parent keys)
    tables: tuple[str, ...]
    #: what the server changes between the first run and the next
    change: Callable[[Any], None]
    #: (id, column) of the damaged table, from the server's data, after the change
    server_rows: Callable[[Any], list[tuple[Any, Any]]]
    column: str
    #: content type of the server's JSON answers
    content_type: str = "application/json"
    #: the test id, when `name` (the connector named in messages) is not enough
    label: str = ""

    @property
    def id(self) -> str:
        return self.label or self.name


# -- the five connectors -------------------------------------------------------------------


def crm_settings(fake: crm_fake.CrmFake) -> dict[str, Any]:
    """crm's arguments here, the same for crm_source and the crm spec."""
    return {
        "bearer_token": crm_fake.TOKEN,
        "base_url": fake.base_url,
        "requests_per_minute": 60_000,
        "max_retries": 2,
        "backoff_factor": 0.01,
    }


def crm_parties_change(fake: crm_fake.CrmFake) -> None:
    for party in fake.data["parties"]:  # every party changes: the next run pages all three
        moment = crm_fake.parse_stamp(party["updatedAt"]) + timedelta(days=1)
        party.update(updatedAt=crm_fake.stamp(moment), about=f"changed {party['id']}")


def analytics_events_change(fake: analytics_fake.AnalyticsFake) -> None:
    events = fake.data["events"]
    del events[200:]  # a full refresh must drop these
    for event in events:
        event["name"] = f"renamed {event['id']}"


def incident_alerts_change(fake: incident_fake.IncidentAnalyticsFake) -> None:
    alerts = list(fake.data["alerts"])
    for alert in alerts:
        # past the previous maximum: the next run's `updatedAt>=` finds every alert
        moment = incident_fake.parse_stamp(alert["updatedAt"]) + timedelta(days=30)
        alert.update(updatedAt=moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
        alert["message"] = f"changed {alert['tinyId']}"
    fake.data["alerts"] = alerts


def tracker_epics_change(fake: tracker_fake.ProjectTrackerFake) -> None:
    for epic in fake.epics:
        epic["name"] = f"renamed {epic['id']}"
        epic["updated_at"] = "2025-01-01T00:00:00Z"  # after the data, before now


def hubspot_change(fake: hubspot_fake.HubSpotContactsFake) -> None:
    fake.change_for_second_run()


def hubspot_rows(fake: hubspot_fake.HubSpotContactsFake) -> list[tuple[Any, Any]]:
    # the list skips archived contacts; the first one, archived after the first run, is
    # marked deleted from the archived list (so not live)
    return sorted((c["id"], c["properties"]["company"]) for c in fake.contacts if not c["archived"])


SCENARIOS = [
    Scenario(
        name="crm",
        fake=crm_fake.CrmFake,
        source=lambda fake: crm_source(**crm_settings(fake)).with_resources("parties", "site"),
        resource="parties",
        path="/api/v2/parties",
        selector="parties",
        after=1,
        tables=("parties", "site"),
        change=crm_parties_change,
        server_rows=lambda fake: sorted((p["id"], p.get("about")) for p in fake.data["parties"]),
        column="about",
    ),
    Scenario(
        name="analytics",
        fake=analytics_fake.AnalyticsFake,
        source=lambda fake: analytics_source(
            base_url=fake.base_url,
            resources=["events", "users"],
            api_key=analytics_fake.API_KEY,
            max_retries=2,
        ),
        resource="events",
        path="/v1/events",
        selector="data",
        after=0,  # page 1 of a full-refresh table
        tables=("events", "users"),
        change=analytics_events_change,
        server_rows=lambda fake: sorted((e["id"], e["name"]) for e in fake.data["events"]),
        column="name",
    ),
    Scenario(
        name="incident_analytics",
        fake=incident_fake.IncidentAnalyticsFake,
        source=lambda fake: incident_analytics_source(
            api_token=incident_fake.TOKEN,
            base_url=fake.base_url,
            requests_per_minute=6_000_000,
            max_retries=1,
        ).with_resources("alerts", "teams"),
        resource="alerts",
        path="/v2/alerts",
        selector="data",
        after=1,
        tables=("alerts", "teams"),
        change=incident_alerts_change,
        server_rows=lambda fake: sorted((a["id"], a["message"]) for a in fake.data["alerts"]),
        column="message",
    ),
    Scenario(
        name="project_tracker",
        fake=tracker_fake.ProjectTrackerFake,
        source=lambda fake: project_tracker_source(
            api_key=tracker_fake.API_KEY,
            base_url=fake.base_url,
            requests_per_minute=60_000,
            max_retries=2,
            backoff_factor=0.01,
        ).with_resources("epics", "labels", "member", "epic_workflow"),
        resource="epics",
        path="/v1/epics",
        selector="data",
        after=0,
        tables=("epics", "labels", "member", "epic_workflow"),
        change=tracker_epics_change,
        server_rows=lambda fake: sorted((e["id"], e["name"]) for e in fake.epics),
        column="name",
    ),
    Scenario(
        name="hubspot_contacts",
        fake=hubspot_fake.HubSpotContactsFake,
        source=lambda fake: hubspot_contacts_source(
            api_key=hubspot_fake.TOKEN,
            base_url=fake.base_url,
            **{**hubspot_fake.FAST, "max_retries": 2, "max_retry_wait": 0.01},
        ),
        resource="contacts",
        path="/crm/v3/objects/contacts",
        selector="results",
        after=1,
        tables=("contacts",),
        change=hubspot_change,
        server_rows=hubspot_rows,
        column="company",
    ),
]

#: the crm spec (connectors/crm/crm.yml): the same scenario, every case in `make test-slow`
SPEC_SCENARIOS = [
    dataclasses.replace(
        SCENARIOS[0],
        label="crm_spec",
        source=lambda fake: declarative_source(CRM_SPEC, **crm_settings(fake)).with_resources(
            "parties", "site"
        ),
    )
]

#: bodies that are not a page, given the data key: (name, raw bytes, content type)
DAMAGED: list[tuple[str, Callable[[str], bytes], str | None]] = [
    ("list null", lambda key: f'{{"{key}": null}}'.encode(), None),
    ("list missing", lambda key: b'{"note": "no data today"}', None),
    ("list is an object", lambda key: f'{{"{key}": {{"id": 1}}}}'.encode(), None),
    ("rows not objects", lambda key: f'{{"{key}": [1, "two", null]}}'.encode(), None),
    ("html", lambda key: HTML_ERROR_PAGE, "text/html; charset=utf-8"),
    ("truncated json", lambda key: f'{{"{key}": [{{"id": 1, "na'.encode(), None),
]


def damage(scenario: Scenario, case: str, times: int) -> Fault:
    if case == "cut off":
        return Fault(transport="cut_off", path=scenario.path, after=scenario.after, times=times)
    (_, body, content_type) = next(entry for entry in DAMAGED if entry[0] == case)
    return Fault(
        200,
        raw=body(scenario.selector),
        content_type=content_type or scenario.content_type,
        path=scenario.path,
        after=scenario.after,
        times=times,
    )


CASES = [name for name, _, _ in DAMAGED] + ["cut off"]


@pytest.fixture(autouse=True)
def _fast_analytics_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # the seed's backoff factor (2 s, 4 s, ...) is not what these tests are about
    monkeypatch.setattr(analytics, "BACKOFF_FACTOR", 0.01)


@pytest.fixture(params=SCENARIOS, ids=lambda scenario: scenario.id)
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def fake(scenario: Scenario) -> Iterator[FakeServer]:
    with scenario.fake() as server:
        yield server


# -- what the tests read -------------------------------------------------------------------


def table_rows(pipeline: dlt.Pipeline, table: str) -> list[tuple[Any, ...]]:
    return query(pipeline, f"SELECT * EXCLUDE ({DLT_COLUMNS}) FROM {table} ORDER BY ALL")


def comparable_rows(pipeline: dlt.Pipeline, table: str) -> list[tuple[Any, ...]]:
    """`table_rows` of two pipelines' syncs: `_deleted_at` is the time each learned a
    deletion (its own start), so only whether it is set is compared."""
    if "_deleted_at" not in pipeline.default_schema.get_table_columns(table):
        return table_rows(pipeline, table)
    return query(
        pipeline,
        f"SELECT * EXCLUDE ({DLT_COLUMNS}, _deleted_at), _deleted_at IS NOT NULL "
        f"FROM {table} ORDER BY ALL",
    )


def snapshot(pipeline: dlt.Pipeline, scenario: Scenario) -> dict[str, Any]:
    """Every compared table, the sources' state (cursors) and dlt's load history."""
    return {
        "tables": {table: table_rows(pipeline, table) for table in scenario.tables},
        "state": copy.deepcopy(pipeline.state.get("sources")),
        "loads": query(pipeline, "SELECT load_id, status FROM _dlt_loads ORDER BY load_id"),
        "state_versions": query(
            pipeline, "SELECT version FROM _dlt_pipeline_state ORDER BY version"
        ),
    }


def id_and(pipeline: dlt.Pipeline, scenario: Scenario) -> list[tuple[Any, Any]]:
    """The live rows (a row marked deleted stays in the table, `_deleted_at` set)."""
    live = (
        " WHERE _deleted_at IS NULL"
        if "_deleted_at" in pipeline.default_schema.get_table_columns(scenario.resource)
        else ""
    )
    return sorted(query(pipeline, f"SELECT id, {scenario.column} FROM {scenario.resource}{live}"))


def requests_for(fake: FakeServer, scenario: Scenario) -> int:
    return len(fake.requests_to(scenario.path))


# -- the tests -----------------------------------------------------------------------------


def diagonal(
    scenarios: list[Scenario], cases: list[str], fast_scenarios: int | None = None
) -> list[Any]:
    """Every scenario with every case; `make test` runs one case for each of the first
    `fast_scenarios` scenarios (all by default), taking the cases in turn, and `make
    test-slow` the rest (each is a whole sync)."""
    fast = len(scenarios) if fast_scenarios is None else fast_scenarios
    return [
        pytest.param(
            scenario,
            case,
            id=f"{scenario.id}-{case}",
            marks=() if s < fast and c == s % len(cases) else pytest.mark.slow,
        )
        for s, scenario in enumerate(scenarios)
        for c, case in enumerate(cases)
    ]


@pytest.mark.parametrize(
    ("scenario", "case"), diagonal(SCENARIOS, CASES) + diagonal(SPEC_SCENARIOS, CASES, 0)
)
def test_a_damaged_page_once_is_retried_and_every_row_loads(
    pipeline: dlt.Pipeline, scenario: Scenario, fake: FakeServer, case: str
) -> None:
    fake.inject(damage(scenario, case, times=1))

    run_source(pipeline, scenario.source(fake))

    assert id_and(pipeline, scenario) == scenario.server_rows(fake)
    damaged = fake.requests_to(scenario.path)[scenario.after]
    retried = fake.requests_to(scenario.path)[scenario.after + 1]
    assert (damaged.path, damaged.args, damaged.body) == (retried.path, retried.args, retried.body)


# one damage on one connector in `make test`, every pair in `make test-slow` (each case
# syncs three times and checks every table, state and package)
@pytest.mark.parametrize(
    ("scenario", "case"),
    diagonal(SCENARIOS, ["list null", "html", "cut off"], fast_scenarios=1)
    + diagonal(SPEC_SCENARIOS, ["list null", "html", "cut off"], fast_scenarios=0),
)
def test_a_page_damaged_for_good_fails_the_run_and_changes_nothing_loaded(
    pipeline: dlt.Pipeline, scenario: Scenario, fake: FakeServer, case: str, tmp_path: Path
) -> None:
    control = duckdb_pipeline(
        "control",
        database=str(tmp_path / "control" / "control.duckdb"),
        pipelines_dir=str(tmp_path / "control"),
    )
    run_source(pipeline, scenario.source(fake))
    run_source(control, scenario.source(fake))
    before = snapshot(pipeline, scenario)
    scenario.change(fake)
    fake.inject(damage(scenario, case, times=1_000))

    with pytest.raises(Exception) as raised:
        run_source(pipeline, scenario.source(fake))

    # the error: one line naming what failed, where and why
    if case == "cut off":
        error: BaseException = root_cause(raised.value, requests.exceptions.ChunkedEncodingError)
        assert str(error).startswith(f"{scenario.name}: the answer from {fake.base_url}")
        assert "was cut off or garbled in transfer" in str(error)
    else:
        error = root_cause(raised.value, InvalidResponseError)
        message = str(error)
        content_type = "text/html; charset=utf-8" if case == "html" else scenario.content_type
        assert message.startswith(f"{scenario.name}: resource `{scenario.resource}`: ")
        assert f"{fake.base_url}{scenario.path}" in message
        assert f" answered 200 ({content_type}) with " in message
        assert "\n" not in message
        assert (error.connector, error.resource) == (scenario.name, scenario.resource)  # type: ignore[attr-defined]
    for secret in (crm_fake.TOKEN, analytics_fake.API_KEY, incident_fake.TOKEN):
        assert secret not in str(error)
    # nothing changed: tables, cursors, dlt's load history; nothing left to load later
    assert snapshot(pipeline, scenario) == before
    # the same pipeline opened afresh, as the next process would: state from disk
    attached = duckdb_pipeline(
        pipeline.pipeline_name,
        database=str(tmp_path / "test.duckdb"),
        pipelines_dir=str(tmp_path),
    )
    assert attached.state.get("sources") == before["state"]
    assert not attached.has_pending_data
    assert attached.list_extracted_load_packages() == []
    assert attached.list_normalized_load_packages() == []

    fake.faults.clear()
    info = run_source(attached, scenario.source(fake))
    run_source(control, scenario.source(fake))

    assert len(info.loads_ids) == 1  # this run's package only
    for table in scenario.tables:
        assert comparable_rows(attached, table) == comparable_rows(control, table), table
    assert attached.state.get("sources") == control.state.get("sources")
    assert id_and(attached, scenario) == scenario.server_rows(fake)


def sync_stages_until_it_fails(
    pipeline: dlt.Pipeline, fault: Fault, **kwargs: Any
) -> tuple[BaseException, float, str, int]:
    """Sync crm `stages` against a fake answering with `fault`, with a one-second request
    deadline; returns the error, the seconds taken, the URL and the requests sent."""
    with crm_fake.CrmFake() as fake:
        fake.inject(fault)
        source = crm_source(
            bearer_token=crm_fake.TOKEN,
            base_url=fake.base_url,
            requests_per_minute=60_000,
            request_deadline=1.0,
            **kwargs,
        ).with_resources("stages")
        started = time.monotonic()

        with pytest.raises(Exception) as raised:
            run_source(pipeline, source)

        elapsed = time.monotonic() - started
        url = f"{fake.base_url}/api/v2/stages?perPage=100"
        return raised.value, elapsed, url, len(fake.requests_to("/api/v2/stages"))


def test_the_deadline_fails_a_never_answering_server_quickly(pipeline: dlt.Pipeline) -> None:
    stall = Fault(transport="stall", path="/api/v2/stages", times=10, seconds=30)

    raised, elapsed, url, sent = sync_stages_until_it_fails(
        pipeline, stall, max_retries=1, backoff_factor=0.01
    )

    assert sent == 2
    error = root_cause(raised, RequestDeadlineExceeded)
    assert str(error) == (
        f"crm: {url} did not answer in full within the request deadline of 1 s "
        "(the server is stalling or sending very slowly)"
    )
    assert elapsed < 6.0  # two attempts of one second each, plus the pipeline's own work


def test_a_dripping_server_fails_the_run_at_the_deadline(pipeline: dlt.Pipeline) -> None:
    drip = Fault(transport="drip", path="/api/v2/stages", times=10, seconds=0.02)

    raised, elapsed, url, _ = sync_stages_until_it_fails(pipeline, drip, max_retries=0)

    error = root_cause(raised, requests.Timeout)
    assert str(error) == (
        f"crm: {url} did not answer in full within the request deadline of 1 s "
        "(the server is stalling or sending very slowly)"
    )
    assert elapsed < 4.0


# -- the Arrow fast path validates too -------------------------------------------------------


def crm_arrow(fake: crm_fake.CrmFake, **kwargs: Any) -> Any:
    return crm_source(
        bearer_token=crm_fake.TOKEN,
        base_url=fake.base_url,
        requests_per_minute=60_000,
        backoff_factor=0.01,
        arrow_pages=True,
        **kwargs,
    ).with_resources("parties", "site")


def test_arrow_pages_retry_a_damaged_page_and_load_every_row(pipeline: dlt.Pipeline) -> None:
    with crm_fake.CrmFake() as fake:
        fake.inject(Fault(200, {"parties": None}, path="/api/v2/parties", after=1))
        fake.inject(Fault(200, raw=HTML_ERROR_PAGE, content_type="text/html", path="/site"))

        run_source(pipeline, crm_arrow(fake))

        expected = sorted((p["id"], p["about"]) for p in fake.data["parties"])
    assert sorted(query(pipeline, "SELECT id, about FROM parties")) == expected
    assert query(pipeline, "SELECT name, subdomain FROM site") == [("Example Ltd", "example")]


def test_arrow_pages_fail_on_a_page_damaged_for_good(pipeline: dlt.Pipeline) -> None:
    with crm_fake.CrmFake() as fake:
        fake.inject(Fault(200, {"site": []}, path="/api/v2/site", times=10))

        with pytest.raises(Exception) as raised:
            run_source(pipeline, crm_arrow(fake, max_retries=1))

        url = f"{fake.base_url}/api/v2/site?perPage=100"
    error = root_cause(raised.value, InvalidResponseError)
    assert str(error) == (
        f"crm: resource `site`: GET {url} answered 200 (application/json) with `site` is a "
        "list, not the one object this resource is, after 2 attempt(s). That is not a page of "
        "data: the API (or a proxy in front of it) is failing or its format changed; nothing "
        "of this run was loaded. Body: '{\"site\": []}'"
    )
    # the run was the pipeline's first: nothing at all was stored, and nothing waits to load
    assert pipeline.default_schema_name is None
    assert not pipeline.has_pending_data


# -- crm's rate-limit window -----------------------------------------------------------------


def test_crm_waits_for_the_rate_limit_reset_up_to_its_own_maximum(
    pipeline: dlt.Pipeline,
) -> None:
    with crm_fake.CrmFake() as fake:
        headers = fake.rate_limit_fault_headers(reset_in=30)
        fake.inject(Fault(429, {"error": "rate limit reached"}, headers, path="/api/v2/stages"))

        # the reset is 30 s away; the source allows waiting 1.5 s at most, and its 30 s
        # backoff never applies to a 429 that names its reset
        run_source(
            pipeline,
            crm_source(
                bearer_token=crm_fake.TOKEN,
                base_url=fake.base_url,
                requests_per_minute=60_000,
                backoff_factor=30,
                max_rate_limit_wait=1.5,
            ).with_resources("stages"),
        )

        stages = fake.requests_to("/api/v2/stages")
    assert [r.status for r in stages] == [429, 200]
    assert 1.4 <= stages[1].at - stages[0].at <= 3.0
