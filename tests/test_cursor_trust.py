"""Cursors a sync can trust (shared/incremental/cursors.py), over real loopback HTTP into
DuckDB, for every connector with an incremental cursor: a record stamped in the future or
updated while paging loads and is loaded again next run (the stored cursor stays at the
sync's start on the server's clock); an unreadable cursor value loads with its record,
leaves the cursor where it was and logs one warning; a record without the cursor loads
and leaves the cursor where it was; one id on two pages keeps the copy with the newest
cursor."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import dlt
import pytest

from connectors.analytics import analytics_source
from connectors.crm import crm_source
from connectors.declarative import declarative_source
from connectors.hubspot_contacts import hubspot_contacts_source
from connectors.hubspot_contacts.settings import SEARCH_LOOKBACK_SECONDS
from connectors.incident_analytics import incident_analytics_source
from connectors.project_tracker import project_tracker_source
from connectors.sandbox.analytics import API_KEY, AnalyticsFake
from connectors.sandbox.crm import TOKEN, CrmFake, stamp
from connectors.sandbox.hubspot_contacts import TOKEN as HUBSPOT_TOKEN
from connectors.sandbox.hubspot_contacts import HubSpotContactsFake
from connectors.sandbox.incident_analytics import TOKEN as INCIDENT_TOKEN
from connectors.sandbox.incident_analytics import IncidentAnalyticsFake
from connectors.sandbox.project_tracker import API_KEY as TRACKER_KEY
from connectors.sandbox.project_tracker import ProjectTrackerFake
from shared.loading import run_source
from tests.dataset import count, loaded_file_formats, query

FAR_FUTURE = "9999-12-31T23:59:59Z"
PARTIES = "/api/v2/parties"


def parties_requests(crm: Any) -> list[Any]:
    """The requests for the parties list (not its deleted feed)."""
    return [request for request in crm.requests_to(PARTIES) if request.path == PARTIES]


FAST = {"requests_per_minute": 60_000}


#: the fake -> how its test builds the crm source: crm_source, or the crm spec
SOURCE_OF: WeakKeyDictionary[CrmFake, Callable[..., Any]] = WeakKeyDictionary()
CRM_SPEC = Path(__file__).parent.parent / "connectors" / "crm" / "crm.yml"


def crm_spec(**kwargs: Any) -> Any:
    return declarative_source(CRM_SPEC, **kwargs)


# every crm test runs against crm_source, and against the crm spec in `make test-slow`
@pytest.fixture(
    params=[crm_source, pytest.param(crm_spec, marks=pytest.mark.slow)], ids=["python", "spec"]
)
def crm(request: pytest.FixtureRequest) -> Iterator[CrmFake]:
    with CrmFake() as server:
        SOURCE_OF[server] = request.param
        yield server


def sync_crm(pipeline: dlt.Pipeline, fake: CrmFake, **kwargs: Any) -> Any:
    make = SOURCE_OF[fake]
    source = make(bearer_token=TOKEN, base_url=fake.base_url, **{**FAST, **kwargs})
    return run_source(pipeline, source.with_resources("parties"))


def cursor_state(pipeline: dlt.Pipeline, source: str, resource: str, cursor: str) -> Any:
    """The resource's incremental state for `cursor`, as the pipeline stored it."""
    resources = pipeline.state["sources"][source]["resources"]
    return resources[resource]["incremental"][cursor]


def stored_cursor(pipeline: dlt.Pipeline, source: str, resource: str, cursor: str) -> Any:
    return cursor_state(pipeline, source, resource, cursor)["last_value"]


def cursor_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings of shared.incremental.cursors."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "shared.incremental.cursors" and r.levelno == logging.WARNING
    ]


def epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def load_id_of(pipeline: dlt.Pipeline, table: str, record_id: Any) -> str:
    ((load_id,),) = query(pipeline, f"SELECT _dlt_load_id FROM {table} WHERE id = {record_id!r}")
    return str(load_id)


def last_load_id(info: Any) -> str:
    (load_id,) = info.loads_ids
    return str(load_id)


# -- crm: the cursor never outruns the clock --------------------------------------------------


def test_crm_a_record_stamped_in_the_future_loads_and_the_stored_cursor_stays_at_the_syncs_start(
    pipeline: dlt.Pipeline, crm: CrmFake
) -> None:
    crm.record("parties", 1003)["updatedAt"] = FAR_FUTURE
    started = time.time()

    sync_crm(pipeline, crm)

    assert count(pipeline, "parties") == 260
    assert query(pipeline, "SELECT updated_at FROM parties WHERE id = 1003") == [
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc),)
    ]
    stored = stored_cursor(pipeline, "crm", "parties", "updatedAt")
    first_request = parties_requests(crm)[0].at
    # the sync's start (no later than its first request) minus crm's 1 s lag, in the API's
    # own format, so the next `since` is formatted from it unchanged
    assert started - 3 <= epoch(stored) <= first_request - 1
    assert stored == stamp(datetime.fromtimestamp(epoch(stored), tz=timezone.utc))

    info = sync_crm(pipeline, crm)

    (second,) = parties_requests(crm)[-1:]
    assert second.args["since"] == stamp(datetime.fromtimestamp(epoch(stored) - 1, tz=timezone.utc))
    # the future record is loaded again by the next run; the cursor stays capped
    assert load_id_of(pipeline, "parties", 1003) == last_load_id(info)
    assert epoch(stored_cursor(pipeline, "crm", "parties", "updatedAt")) <= second.at - 1


def test_crm_cursor_is_capped_on_the_servers_clock_not_the_local_one(
    pipeline: dlt.Pipeline, crm: CrmFake
) -> None:
    crm.clock_offset = -3600.0  # the server's clock runs an hour behind ours
    newest = max(epoch(p["updatedAt"]) for p in crm.data["parties"])
    # stamped 10 minutes ago by our clock: 50 minutes in the server's future
    crm.record("parties", 1007)["updatedAt"] = stamp(
        datetime.fromtimestamp(time.time() - 600, tz=timezone.utc)
    )
    started = time.time()

    sync_crm(pipeline, crm)

    stored = epoch(stored_cursor(pipeline, "crm", "parties", "updatedAt"))
    first_request = parties_requests(crm)[0].at
    assert started - 3600 - 3 <= stored <= first_request - 3600 - 1
    assert stored > newest


def test_crm_a_record_updated_while_the_sync_pages_is_loaded_again_by_the_next_run(
    pipeline: dlt.Pipeline, crm: CrmFake
) -> None:
    moving = crm.record("parties", 1250)  # on page 3 of 3

    def update() -> None:
        moving["updatedAt"] = stamp(crm.server_now())
        moving["about"] = "updated while the sync paged"

    crm.after_page(PARTIES, 1, update)

    sync_crm(pipeline, crm)

    assert query(pipeline, "SELECT about FROM parties WHERE id = 1250") == [
        ("updated while the sync paged",)
    ]
    stored = stored_cursor(pipeline, "crm", "parties", "updatedAt")
    assert epoch(stored) < epoch(moving["updatedAt"])
    assert epoch(stored) <= parties_requests(crm)[0].at - 1

    info = sync_crm(pipeline, crm)

    assert load_id_of(pipeline, "parties", 1250) == last_load_id(info)


# -- crm: cursor values are checked -------------------------------------------------------------


def test_crm_an_unreadable_cursor_loads_its_record_leaves_the_cursor_and_warns_once(
    pipeline: dlt.Pipeline, crm: CrmFake, caplog: pytest.LogCaptureFixture
) -> None:
    sync_crm(pipeline, crm)
    state_before = copy.deepcopy(cursor_state(pipeline, "crm", "parties", "updatedAt"))
    party = crm.record("parties", 1001)
    party["updatedAt"] = "yesterday"
    party["about"] = "loads anyway"

    with caplog.at_level(logging.WARNING):
        sync_crm(pipeline, crm)

    assert cursor_warnings(caplog) == [
        "crm: resource `parties`: record 1001 has cursor field `updatedAt` = 'yesterday', "
        "which is not an ISO 8601 date-time or epoch seconds or milliseconds; the record "
        "loads and the stored cursor stays where it was"
    ]
    assert query(pipeline, "SELECT about FROM parties WHERE id = 1001") == [("loads anyway",)]
    assert stored_cursor(pipeline, "crm", "parties", "updatedAt") == state_before["last_value"]

    # the state holds a date: the next run sends it as `since` and goes on
    party["updatedAt"] = stamp(crm.server_now() - timedelta(minutes=1))
    party["about"] = "changed again"
    sync_crm(pipeline, crm)
    assert crm.requests_to(PARTIES)[-1].args["since"] < state_before["last_value"]
    assert query(pipeline, "SELECT about FROM parties WHERE id = 1001") == [("changed again",)]


def test_crm_an_unreadable_cursor_on_the_first_run_never_blocks_the_resource(
    pipeline: dlt.Pipeline, crm: CrmFake, caplog: pytest.LogCaptureFixture
) -> None:
    crm.record("parties", 1200)["updatedAt"] = "yesterday"  # page 3

    with caplog.at_level(logging.WARNING):
        sync_crm(pipeline, crm)

    assert count(pipeline, "parties") == 260
    newest = max(p["updatedAt"] for p in crm.data["parties"] if p["id"] != 1200)
    assert stored_cursor(pipeline, "crm", "parties", "updatedAt") == newest
    (warning,) = cursor_warnings(caplog)
    assert "record 1200 has cursor field `updatedAt` = 'yesterday'" in warning


# -- crm: a record without the cursor loads and leaves it where it was ---------------------------


def test_crm_records_without_the_cursor_load_and_leave_the_cursor_where_it_was(
    pipeline: dlt.Pipeline, crm: CrmFake
) -> None:
    del crm.record("parties", 1004)["updatedAt"]
    crm.record("parties", 1005)["updatedAt"] = None

    sync_crm(pipeline, crm)

    assert count(pipeline, "parties") == 260
    newest = max(p["updatedAt"] for p in crm.data["parties"] if p.get("updatedAt"))
    assert stored_cursor(pipeline, "crm", "parties", "updatedAt") == newest

    # a new record without the cursor, on a later run: loaded, and the cursor stays
    newcomer = copy.deepcopy(crm.record("parties", 1009))
    newcomer.update(id=9999, about="no cursor")
    del newcomer["updatedAt"]
    crm.data["parties"].append(newcomer)

    sync_crm(pipeline, crm)

    assert query(pipeline, "SELECT about FROM parties WHERE id = 9999") == [("no cursor",)]
    assert stored_cursor(pipeline, "crm", "parties", "updatedAt") == newest


# -- crm: the newest copy wins ------------------------------------------------------------


@pytest.mark.parametrize(
    ("newer_copy", "arrow_pages"),
    [
        pytest.param("later_page", False, id="later_page-rows"),
        pytest.param("earlier_page", True, id="earlier_page-arrow"),
        # the other two pairs in `make test-slow`
        pytest.param("earlier_page", False, id="earlier_page-rows", marks=pytest.mark.slow),
        pytest.param("later_page", True, id="later_page-arrow", marks=pytest.mark.slow),
    ],
)
def test_crm_one_id_on_two_pages_keeps_the_copy_with_the_newest_cursor(
    pipeline: dlt.Pipeline, crm: CrmFake, newer_copy: str, arrow_pages: bool
) -> None:
    original = crm.record("parties", 1010)  # page 1
    copy_on_page_3 = copy.deepcopy(original)
    shift = timedelta(days=1) if newer_copy == "later_page" else -timedelta(days=1)
    copy_on_page_3["updatedAt"] = stamp(
        datetime.fromtimestamp(epoch(original["updatedAt"]), tz=timezone.utc) + shift
    )
    copy_on_page_3["about"] = "the copy on page 3"
    copy_on_page_3["emailAddresses"] = [
        {"id": 1, "type": "home", "address": "page3.a@example.com"},
        {"id": 2, "type": "home", "address": "page3.b@example.com"},
    ]
    crm.serve_copy_on_page(PARTIES, 3, copy_on_page_3)
    newest = copy_on_page_3 if newer_copy == "later_page" else original

    info = sync_crm(pipeline, crm, arrow_pages=arrow_pages)

    assert loaded_file_formats(info) == {"parquet"}
    assert count(pipeline, "parties") == 260
    assert query(pipeline, "SELECT about FROM parties WHERE id = 1010") == [(newest["about"],)]
    addresses = sorted(e["address"] for e in newest["emailAddresses"])
    if arrow_pages:  # nested arrays stay in their row as JSON
        ((emails,),) = query(pipeline, "SELECT email_addresses FROM parties WHERE id = 1010")
        assert sorted(e["address"] for e in __import__("json").loads(emails)) == addresses
    else:
        rows = query(
            pipeline,
            "SELECT e.address FROM parties__email_addresses e JOIN parties p "
            "ON e._dlt_root_id = p._dlt_id WHERE p.id = 1010 ORDER BY e.address",
        )
        assert [address for (address,) in rows] == addresses
        orphans = "SELECT COUNT(*) FROM parties__email_addresses WHERE _dlt_root_id NOT IN "
        assert query(pipeline, orphans + "(SELECT _dlt_id FROM parties)") == [(0,)]


# -- analytics (a configured incremental resource) ----------------------------------------------

ANALYTICS_USERS = [
    {
        "name": "users",
        "incremental": {
            "cursor_path": "updated_at",
            "param": "updated_since",
            "initial_value": "2024-01-01T00:00:00Z",
        },
    }
]


@pytest.fixture
def analytics() -> Iterator[AnalyticsFake]:
    with AnalyticsFake() as server:
        yield server


def sync_analytics(pipeline: dlt.Pipeline, fake: AnalyticsFake) -> Any:
    source = analytics_source(base_url=fake.base_url, resources=ANALYTICS_USERS, api_key=API_KEY)
    return run_source(pipeline, source)


def analytics_user(fake: AnalyticsFake, user_id: int) -> dict[str, Any]:
    return next(user for user in fake.data["users"] if user["id"] == user_id)


def test_analytics_a_future_record_loads_and_is_loaded_again_with_the_cursor_capped(
    pipeline: dlt.Pipeline, analytics: AnalyticsFake
) -> None:
    analytics_user(analytics, 6)["updated_at"] = FAR_FUTURE
    started = time.time()

    sync_analytics(pipeline, analytics)

    stored = stored_cursor(pipeline, "analytics", "users", "updated_at")
    first_request = analytics.requests_to("/v1/users")[0].at
    assert started - 2 <= epoch(stored) <= first_request  # no lag on this cursor
    assert count(pipeline, "users") == 200

    info = sync_analytics(pipeline, analytics)

    assert analytics.requests_to("/v1/users")[-1].args["updated_since"] == stored
    assert load_id_of(pipeline, "users", 6) == last_load_id(info)


def test_analytics_an_unreadable_cursor_loads_and_the_state_is_unchanged(
    pipeline: dlt.Pipeline, analytics: AnalyticsFake, caplog: pytest.LogCaptureFixture
) -> None:
    sync_analytics(pipeline, analytics)
    state_before = copy.deepcopy(cursor_state(pipeline, "analytics", "users", "updated_at"))
    user = analytics_user(analytics, 3)
    user["updated_at"] = "yesterday"
    user["plan"] = "loads anyway"

    with caplog.at_level(logging.WARNING):
        sync_analytics(pipeline, analytics)

    assert query(pipeline, "SELECT plan FROM users WHERE id = 3") == [("loads anyway",)]
    after = cursor_state(pipeline, "analytics", "users", "updated_at")
    assert after["last_value"] == state_before["last_value"]
    (warning,) = cursor_warnings(caplog)
    assert warning.startswith(
        "analytics: resource `users`: record 3 has cursor field `updated_at` = 'yesterday'"
    )
    assert "user2@example.com" not in warning


def test_analytics_records_without_the_cursor_load_and_leave_it_where_it_was(
    pipeline: dlt.Pipeline, analytics: AnalyticsFake
) -> None:
    del analytics_user(analytics, 1)["updated_at"]
    analytics_user(analytics, 2)["updated_at"] = None

    sync_analytics(pipeline, analytics)

    assert count(pipeline, "users") == 200
    newest = max(u["updated_at"] for u in analytics.data["users"] if u.get("updated_at"))
    assert stored_cursor(pipeline, "analytics", "users", "updated_at") == newest


@pytest.mark.parametrize("newer_copy", ["later_page", "earlier_page"])
def test_analytics_one_id_on_two_pages_keeps_the_copy_with_the_newest_cursor(
    pipeline: dlt.Pipeline, analytics: AnalyticsFake, newer_copy: str
) -> None:
    original = analytics_user(analytics, 11)  # page 1
    moved = dict(original, plan="the copy on page 2")
    shift = timedelta(days=1) if newer_copy == "later_page" else -timedelta(days=1)
    moved["updated_at"] = stamp(
        datetime.fromtimestamp(epoch(original["updated_at"]), tz=timezone.utc) + shift
    )
    analytics.serve_copy_on_page("/v1/users", 2, moved)
    newest = moved if newer_copy == "later_page" else original

    sync_analytics(pipeline, analytics)

    assert count(pipeline, "users") == 200
    assert query(pipeline, "SELECT plan FROM users WHERE id = 11") == [(newest["plan"],)]


# -- incident_analytics (alerts) ------------------------------------------------------------------


def sync_alerts(pipeline: dlt.Pipeline, fake: IncidentAnalyticsFake) -> Any:
    source = incident_analytics_source(
        api_token=INCIDENT_TOKEN, base_url=fake.base_url, requests_per_minute=60_000
    )
    return run_source(pipeline, source.with_resources("alerts"))


def test_incident_analytics_a_future_alert_loads_and_is_loaded_again_with_the_cursor_capped(
    pipeline: dlt.Pipeline,
) -> None:
    with IncidentAnalyticsFake() as fake:
        alerts = list(fake.data["alerts"])
        future = alerts[5]
        future["updatedAt"] = "9999-12-31T23:59:59.000Z"
        started = time.time()

        sync_alerts(pipeline, fake)

        stored = stored_cursor(pipeline, "incident_analytics", "alerts", "updatedAt")
        assert started - 2 <= epoch(stored) <= fake.requests_to("/v2/alerts")[0].at
        assert stored[-5] == "." and stored.endswith("Z")  # 3 fractional digits, as sent
        assert count(pipeline, "alerts") == len(alerts)

        info = sync_alerts(pipeline, fake)

        assert load_id_of(pipeline, "alerts", future["id"]) == last_load_id(info)


def test_incident_analytics_one_alert_on_two_pages_keeps_the_newer_copy(
    pipeline: dlt.Pipeline,
) -> None:
    with IncidentAnalyticsFake() as fake:
        alerts = fake.data["alerts"]
        assert isinstance(alerts, list)
        original = alerts[3]  # page 1, oldest first
        newer = dict(original, message="updated while paging", updatedAt=alerts[-1]["updatedAt"])
        alerts.append(newer)  # sorts last: page 3

        sync_alerts(pipeline, fake)

        assert count(pipeline, "alerts") == len(alerts) - 1
        assert query(pipeline, f"SELECT message FROM alerts WHERE id = '{original['id']}'") == [
            ("updated while paging",)
        ]


# -- hubspot_contacts -----------------------------------------------------------------------------


def sync_contacts(pipeline: dlt.Pipeline, fake: HubSpotContactsFake) -> Any:
    return run_source(
        pipeline, hubspot_contacts_source(api_key=HUBSPOT_TOKEN, base_url=fake.base_url)
    )


def test_hubspot_a_future_contact_loads_and_is_searched_again_with_the_cursor_capped(
    pipeline: dlt.Pipeline,
) -> None:
    with HubSpotContactsFake() as fake:
        future = fake.contacts[6]
        future["updatedAt"] = future["properties"]["lastmodifieddate"] = "9999-12-31T23:59:59.000Z"
        started = time.time()

        sync_contacts(pipeline, fake)

        stored = stored_cursor(pipeline, "hubspot_contacts", "contacts", "updated_at")
        # capped at the sync's start less the connector's lag (the search lookback window)
        lag = SEARCH_LOOKBACK_SECONDS
        assert started - 2 - lag <= epoch(stored) <= fake.requests[0].at - lag

        info = sync_contacts(pipeline, fake)

        assert fake.search_bodies()  # the second run searched from the capped cursor
        assert load_id_of(pipeline, "contacts", future["id"]) == last_load_id(info)


def test_hubspot_an_unreadable_cursor_loads_and_the_others_move_the_cursor(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    with HubSpotContactsFake() as fake:
        bad = fake.contacts[120]
        bad["updatedAt"] = "yesterday"

        with caplog.at_level(logging.WARNING):
            sync_contacts(pipeline, fake)

        listed = [c for c in fake.contacts if not c["archived"]]
        newest = max(c["updatedAt"] for c in listed if c is not bad)
    assert count(pipeline, "contacts") == len(listed)
    assert stored_cursor(pipeline, "hubspot_contacts", "contacts", "updated_at") == newest
    (warning,) = cursor_warnings(caplog)
    assert warning.startswith(
        f"hubspot_contacts: resource `contacts`: record '{bad['id']}' has cursor field "
        "`updated_at` = 'yesterday'"
    )


def test_hubspot_contacts_without_the_cursor_load_and_leave_it_where_it_was(
    pipeline: dlt.Pipeline,
) -> None:
    with HubSpotContactsFake() as fake:
        fake.contacts[4]["updatedAt"] = None
        del fake.contacts[5]["updatedAt"]

        sync_contacts(pipeline, fake)

        listed = [c for c in fake.contacts if not c["archived"]]
        newest = max(c["updatedAt"] for c in listed if c.get("updatedAt"))
    assert count(pipeline, "contacts") == len(listed)
    assert stored_cursor(pipeline, "hubspot_contacts", "contacts", "updated_at") == newest


# -- project_tracker (a client-side cursor) -------------------------------------------------------


def sync_epics(pipeline: dlt.Pipeline, fake: ProjectTrackerFake) -> Any:
    source = project_tracker_source(
        api_key=TRACKER_KEY, base_url=fake.base_url, requests_per_minute=60_000
    )
    return run_source(pipeline, source.with_resources("epics"))


def test_project_tracker_a_future_epic_loads_and_is_loaded_again_with_the_cursor_capped(
    pipeline: dlt.Pipeline,
) -> None:
    with ProjectTrackerFake() as fake:
        fake.epics[0]["updated_at"] = FAR_FUTURE
        started = time.time()

        sync_epics(pipeline, fake)

        stored = stored_cursor(pipeline, "project_tracker", "epics", "updated_at")
        assert started - 2 <= epoch(stored) <= fake.requests_to("/v1/epics")[0].at
        assert count(pipeline, "epics") == len(fake.epics)

        info = sync_epics(pipeline, fake)

    assert load_id_of(pipeline, "epics", fake.epics[0]["id"]) == last_load_id(info)
    # the other epics did not change: the client-side cursor still skips them (the fake's
    # undated epics have no cursor value, so they load on every run)
    reloaded = 1 + len(fake.undated["epics"])
    assert (
        info.load_packages
        and pipeline.last_trace.last_normalize_info.row_counts["epics"] == reloaded
    )


def test_project_tracker_an_unreadable_cursor_loads_and_the_state_is_unchanged(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    with ProjectTrackerFake() as fake:
        sync_epics(pipeline, fake)
        state_before = copy.deepcopy(
            cursor_state(pipeline, "project_tracker", "epics", "updated_at")
        )
        epic = fake.epics[2]
        epic["updated_at"] = "yesterday"
        epic["name"] = "loads anyway"

        with caplog.at_level(logging.WARNING):
            sync_epics(pipeline, fake)

    assert query(pipeline, f"SELECT name FROM epics WHERE id = {epic['id']}") == [("loads anyway",)]
    after = cursor_state(pipeline, "project_tracker", "epics", "updated_at")
    assert after["last_value"] == state_before["last_value"]
    (warning,) = cursor_warnings(caplog)
    assert warning.startswith(
        f"project_tracker: resource `epics`: record {epic['id']} has cursor field "
        "`updated_at` = 'yesterday'"
    )


def test_project_tracker_records_without_the_cursor_load_and_leave_it_where_it_was(
    pipeline: dlt.Pipeline,
) -> None:
    with ProjectTrackerFake() as fake:
        del fake.epics[1]["updated_at"]
        fake.epics[3]["updated_at"] = None

        sync_epics(pipeline, fake)

        newest = max(e["updated_at"] for e in fake.epics if e.get("updated_at"))
        assert count(pipeline, "epics") == len(fake.epics)
    assert stored_cursor(pipeline, "project_tracker", "epics", "updated_at") == newest


@pytest.mark.parametrize("newer_copy", ["later", "earlier"])
def test_project_tracker_one_epic_listed_twice_keeps_the_copy_with_the_newest_cursor(
    pipeline: dlt.Pipeline, newer_copy: str
) -> None:
    with ProjectTrackerFake() as fake:
        original = fake.epics[4]
        shift = timedelta(days=1) if newer_copy == "later" else -timedelta(days=1)
        second = dict(original, name="the second copy")
        second["updated_at"] = stamp(
            datetime.fromtimestamp(epoch(original["updated_at"]), tz=timezone.utc) + shift
        )
        fake.lists["epics"].append(second)
        newest = second if newer_copy == "later" else original

        sync_epics(pipeline, fake)

    assert query(pipeline, f"SELECT name FROM epics WHERE id = {original['id']}") == [
        (newest["name"],)
    ]
