"""Shifted pages never lose a record for good (shared/incremental/cursors.py), over real
loopback HTTP into DuckDB.

A list paged by page number, `Link` header, offset or offset token, sorted by its update
time, shifts when a record is edited while the sync pages: the edited record moves to the
last page (the sync sees it twice) and the record at the first page boundary moves back
onto page 1, already read, so this sync never sees it. Its cursor value is older than the
one the sync would store, so no later sync would ask for it again. Each test edits a
record on page 1 right after page 1 is served, checks that the boundary record was indeed
skipped, that the sync held its cursor where it started (with one warning), and that the
next normal sync loads the skipped record with nothing duplicated.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import dlt
import pytest

from connectors.analytics import analytics_source
from connectors.crm import crm_source
from connectors.project_tracker import project_tracker_source
from connectors.sandbox.analytics import API_KEY, AnalyticsFake
from connectors.sandbox.base import FakeServer
from connectors.sandbox.crm import TOKEN, CrmFake, stamp
from connectors.sandbox.project_tracker import API_KEY as TRACKER_KEY
from connectors.sandbox.project_tracker import ProjectTrackerFake
from shared.loading import run_source
from tests.dataset import count, query

FAST = {"requests_per_minute": 60_000}

# two or three full syncs each, against fakes of hundreds of records: `make test-slow`
pytestmark = pytest.mark.slow


def shift_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "shared.incremental.cursors"
        and r.levelno == logging.WARNING
        and "came twice in one sync" in r.getMessage()
    ]


def stored_cursor(pipeline: dlt.Pipeline, source: str, resource: str, cursor: str) -> Any:
    resources = pipeline.state["sources"][source]["resources"]
    return resources[resource]["incremental"][cursor]["last_value"]


def served(fake: FakeServer, path: str) -> int:
    """Successful responses `fake` gave to `path` so far."""
    return sum(1 for r in fake.requests if r.path == path and r.status == 200)


def now_stamp() -> str:
    return stamp(datetime.now(timezone.utc))


def later(value: str, minutes: int) -> str:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) + timedelta(minutes=minutes)
    return stamp(moment)


# -- crm: parties, paged by page number and `Link` header, sorted by `updatedAt` with `since` ----

PARTIES = "/api/v2/parties"


@pytest.fixture
def crm() -> Iterator[CrmFake]:
    with CrmFake() as server:
        yield server


@pytest.mark.parametrize("arrow_pages", [False, True], ids=["rows", "arrow"])
def test_crm_a_party_shifted_past_a_page_boundary_loads_on_the_next_run(
    pipeline: dlt.Pipeline, crm: CrmFake, caplog: pytest.LogCaptureFixture, arrow_pages: bool
) -> None:
    def sync() -> Any:
        source = crm_source(
            bearer_token=TOKEN, base_url=crm.base_url, arrow_pages=arrow_pages, **FAST
        )
        return run_source(pipeline, source.with_resources("parties"))

    sync()
    held = stored_cursor(pipeline, "crm", "parties", "updatedAt")
    # 150 parties change before the next sync: with `since` (a second before the stored
    # cursor, so the newest party of the first sync comes first), two pages of 100
    for i, party in enumerate(crm.data["parties"][:150]):
        party["updatedAt"] = later(held, 1 + i)
        party["about"] = "changed before the sync"
    boundary = crm.record("parties", 1099)  # first on page 2
    edited = crm.record("parties", 1010)  # on page 1

    def edit() -> None:
        edited["updatedAt"] = now_stamp()  # moves to the end of the sorted list
        edited["about"] = "edited while the sync paged"

    crm.after_page(PARTIES, 1, edit)

    with caplog.at_level(logging.WARNING):
        sync()

    # the shift was real: the boundary party came on neither page
    assert query(pipeline, "SELECT about FROM parties WHERE id = 1099") == [("party 99",)]
    assert query(pipeline, "SELECT about FROM parties WHERE id = 1010") == [
        ("edited while the sync paged",)
    ]
    assert stored_cursor(pipeline, "crm", "parties", "updatedAt") == held
    (warning,) = shift_warnings(caplog)
    assert warning.startswith("crm: resource `parties`: record 1010 came twice in one sync")
    assert f"stores cursor `updatedAt` as it started ('{held}')" in warning

    sync()

    assert crm.requests_to(PARTIES)[-1].args["since"] < held
    assert query(pipeline, "SELECT about FROM parties WHERE id = 1099") == [
        ("changed before the sync",)
    ]
    assert count(pipeline, "parties") == 260
    # the cursor moves on (capped at the sync's start, which may be the edit's second)
    assert held < stored_cursor(pipeline, "crm", "parties", "updatedAt") <= edited["updatedAt"]
    assert boundary["about"] == "changed before the sync"


def test_crm_a_party_deleted_while_the_list_pages_holds_the_cursor_and_the_next_run_heals(
    pipeline: dlt.Pipeline, crm: CrmFake, caplog: pytest.LogCaptureFixture
) -> None:
    """A deletion shifts the list back one place and nothing is seen twice: the signal is
    the deletion feed, read after the list, naming a deletion during the sync."""

    def sync() -> Any:
        source = crm_source(bearer_token=TOKEN, base_url=crm.base_url, **FAST)
        return run_source(pipeline, source.with_resources("parties"))

    sync()
    held = stored_cursor(pipeline, "crm", "parties", "updatedAt")
    for i, party in enumerate(crm.data["parties"][:150]):
        party["updatedAt"] = later(held, 1 + i)
        party["about"] = "changed before the sync"
    boundary = crm.record("parties", 1099)  # first on page 2
    crm.after_page(PARTIES, 1, lambda: crm.delete("parties", 1010))  # on page 1

    with caplog.at_level(logging.WARNING):
        sync()

    # the shift was real: the boundary party came on neither page
    assert query(pipeline, "SELECT about FROM parties WHERE id = 1099") == [("party 99",)]
    assert stored_cursor(pipeline, "crm", "parties", "updatedAt") == held
    holds = [
        r.getMessage() for r in caplog.records if "deleted while the sync paged" in r.getMessage()
    ]
    assert len(holds) == 1 and holds[0].startswith("crm: resource `parties`: 1 record(s) deleted")

    sync()

    assert query(pipeline, "SELECT about FROM parties WHERE id = 1099") == [
        ("changed before the sync",)
    ]
    assert boundary["about"] == "changed before the sync"
    # listed on page 1 before it was deleted, the party is marked by the next sync's feed
    assert query(pipeline, "SELECT _deleted_at IS NOT NULL FROM parties WHERE id = 1010") == [
        (True,)
    ]
    live = query(pipeline, "SELECT COUNT(*) FROM parties WHERE _deleted_at IS NULL")
    assert live == [(len(crm.data["parties"]),)]


# -- analytics: users, offset paging ---------------------------------------------------------

USERS = "/v1/users"
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


def test_analytics_a_user_shifted_past_an_offset_boundary_loads_on_the_next_run(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    with AnalyticsFake() as fake:

        def sync() -> Any:
            source = analytics_source(
                base_url=fake.base_url, resources=ANALYTICS_USERS, api_key=API_KEY
            )
            return run_source(pipeline, source)

        sync()
        held = stored_cursor(pipeline, "analytics", "users", "updated_at")
        users = fake.data["users"]
        for i, user in enumerate(users[:150]):  # ids 1..150, in `updated_at` order
            user["updated_at"] = later(held, 1 + i)
            user["plan"] = "changed before the sync"
        edited = users[10]  # id 11, on the first page (offset 0)

        def edit() -> None:
            # the server sorts by `updated_at`: the edited user moves to the end
            edited["updated_at"] = now_stamp()
            edited["plan"] = "edited while the sync paged"
            users.remove(edited)
            users.append(edited)

        fake.between_pages(USERS, served(fake, USERS) + 1, edit)

        with caplog.at_level(logging.WARNING):
            sync()

        # id 101 moved back to offset 99, already read: skipped by this sync
        assert query(pipeline, "SELECT plan FROM users WHERE id = 101") == [("pro",)]
        assert stored_cursor(pipeline, "analytics", "users", "updated_at") == held
        (warning,) = shift_warnings(caplog)
        assert warning.startswith("analytics: resource `users`: record 11 came twice")

        sync()

        assert fake.requests_to(USERS)[-1].args["updated_since"] == held
    assert query(pipeline, "SELECT plan FROM users WHERE id IN (11, 101) ORDER BY id") == [
        ("edited while the sync paged",),
        ("changed before the sync",),
    ]
    assert count(pipeline, "users") == 200
    stored = stored_cursor(pipeline, "analytics", "users", "updated_at")
    assert held < stored <= edited["updated_at"]


# -- project_tracker: search_epics, paged by an offset token, client-side cursor ------------

SEARCH = "/v1/search/epics"


def test_project_tracker_an_epic_shifted_past_a_page_boundary_loads_on_the_next_run(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    with ProjectTrackerFake(epics=300) as fake:  # two pages of 250

        def sync() -> Any:
            source = project_tracker_source(
                api_key=TRACKER_KEY, base_url=fake.base_url, requests_per_minute=60_000
            )
            return run_source(pipeline, source.with_resources("search_epics"))

        sync()
        held = stored_cursor(pipeline, "project_tracker", "search_epics", "updated_at")
        boundary = fake.epics[250]  # first on page 2
        boundary["updated_at"] = later(held, 5)
        boundary["name"] = "changed before the sync"
        edited = fake.epics[10]

        def edit() -> None:
            # the list is in `updated_at` order here: the edited epic moves to the end
            edited["updated_at"] = now_stamp()
            edited["name"] = "edited while the sync paged"
            fake.epics.remove(edited)
            fake.epics.append(edited)

        fake.between_pages(SEARCH, served(fake, SEARCH) + 1, edit)

        with caplog.at_level(logging.WARNING):
            sync()

        epic = f"SELECT name FROM search_epics WHERE id = {boundary['id']}"
        assert query(pipeline, epic) == [("Epic 250",)]  # skipped by the shift
        assert stored_cursor(pipeline, "project_tracker", "search_epics", "updated_at") == held
        (warning,) = shift_warnings(caplog)
        assert warning.startswith(
            f"project_tracker: resource `search_epics`: record {edited['id']} came twice"
        )

        sync()  # the client-side cursor still lets the boundary epic through

        assert query(pipeline, epic) == [("changed before the sync",)]
        assert count(pipeline, "search_epics") == 300
        stored = stored_cursor(pipeline, "project_tracker", "search_epics", "updated_at")
        assert held < stored <= edited["updated_at"]
