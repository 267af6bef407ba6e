"""crm learns deletions (contract, "Deleted records"): from the deleted feeds of parties,
projects and opportunities, and from the lists read in full every run; soft by default
(`_deleted_at`), hard on request. Over loopback into DuckDB."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import dlt
import pytest
from dlt.common.configuration.container import Container
from dlt.common.pipeline import PipelineContext
from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.crm import crm_source
from connectors.sandbox.base import Fault
from connectors.sandbox.crm import TOKEN, CrmFake, stamp
from shared.loading import run_source
from tests.dataset import count, query

FAST = {"requests_per_minute": 60_000}
DELETED_AT = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def fake() -> Iterator[CrmFake]:
    with CrmFake() as server:
        yield server


def sync(pipeline: dlt.Pipeline, fake: CrmFake, *resources: str, **kwargs: object) -> None:
    source = crm_source(bearer_token=TOKEN, base_url=fake.base_url, **{**FAST, **kwargs})
    if resources:
        source = source.with_resources(*resources)
    run_source(pipeline, source)


def deleted_at(pipeline: dlt.Pipeline, table: str, record_id: int) -> list[tuple[object, ...]]:
    return query(pipeline, f"SELECT _deleted_at FROM {table} WHERE id = {record_id}")


def test_a_party_in_the_deleted_feed_keeps_its_row_and_children_with_the_feeds_deletion_time(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    sync(pipeline, fake, "parties")
    party = fake.data["parties"][1]
    before = query(pipeline, f"SELECT about, first_name FROM parties WHERE id = {party['id']}")
    emails = count(pipeline, "parties__email_addresses")
    assert count(pipeline, "parties", "WHERE _deleted_at IS NULL") == 260

    fake.delete("parties", party["id"], at=DELETED_AT)
    sync(pipeline, fake, "parties")

    assert deleted_at(pipeline, "parties", party["id"]) == [(DELETED_AT,)]
    # the whole row stays, its child rows too: only `_deleted_at` changed
    after = query(pipeline, f"SELECT about, first_name FROM parties WHERE id = {party['id']}")
    assert after == before == [("party 1", "First1")]
    assert count(pipeline, "parties__email_addresses") == emails
    assert count(pipeline, "parties", "WHERE _deleted_at IS NULL") == 259
    feed = fake.requests_to("/api/v2/parties/deleted")
    assert [r.args.get("since") for r in feed] == ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"]

    # the next run asks from just before the latest deletion it saw; the mark stays
    sync(pipeline, fake, "parties")
    feed = fake.requests_to("/api/v2/parties/deleted")
    assert feed[-1].args.get("since") == stamp(DELETED_AT - timedelta(seconds=1))
    assert deleted_at(pipeline, "parties", party["id"]) == [(DELETED_AT,)]


@pytest.mark.slow  # three feeds, two syncs (~5 s)
def test_deleting_a_party_marks_its_projects_and_opportunities_from_their_feeds(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    party_id = fake.data["parties"][2]["id"]
    project, opportunity = fake.data["kases"][3], fake.data["opportunities"][4]
    project["party"] = {"id": party_id}
    opportunity["party"] = {"id": party_id}
    sync(pipeline, fake, "parties", "projects", "opportunities")

    fake.delete("parties", party_id, at=DELETED_AT)
    sync(pipeline, fake, "parties", "projects", "opportunities")

    assert deleted_at(pipeline, "parties", party_id) == [(DELETED_AT,)]
    assert deleted_at(pipeline, "projects", project["id"]) == [(DELETED_AT,)]
    assert deleted_at(pipeline, "opportunities", opportunity["id"]) == [(DELETED_AT,)]
    assert count(pipeline, "projects", "WHERE _deleted_at IS NOT NULL") == 1
    assert query(pipeline, f"SELECT name FROM projects WHERE id = {project['id']}") == [
        ("Project 3",)
    ]
    assert fake.requests_to("/api/v2/kases/deleted")
    assert fake.requests_to("/api/v2/opportunities/deleted")


def test_a_user_missing_from_the_full_list_is_marked_deleted_at_the_syncs_start(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    sync(pipeline, fake, "users")
    user = fake.data["users"][5]
    fake.delete("users", user["id"])

    started = datetime.now(timezone.utc)
    sync(pipeline, fake, "users")
    finished = datetime.now(timezone.utc)

    ((marked,),) = deleted_at(pipeline, "users", user["id"])
    assert started - timedelta(seconds=1) <= marked <= finished
    assert count(pipeline, "users") == 120
    assert count(pipeline, "users", "WHERE _deleted_at IS NULL") == 119
    assert query(pipeline, f"SELECT username FROM users WHERE id = {user['id']}") == [("user5",)]


def test_hard_mode_removes_the_deleted_party_and_its_child_rows(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    sync(pipeline, fake, "parties", "users", deletions="hard")
    party, user = fake.data["parties"][1], fake.data["users"][0]
    emails = count(pipeline, "parties__email_addresses", "WHERE address LIKE 'p1.%'")
    assert emails == 2

    fake.delete("parties", party["id"], at=DELETED_AT)
    fake.delete("users", user["id"])
    sync(pipeline, fake, "parties", "users", deletions="hard")

    assert deleted_at(pipeline, "parties", party["id"]) == []
    assert count(pipeline, "parties") == 259
    assert count(pipeline, "parties__email_addresses", "WHERE address LIKE 'p1.%'") == 0
    assert deleted_at(pipeline, "users", user["id"]) == []
    assert count(pipeline, "users") == 119
    assert count(pipeline, "parties", "WHERE _deleted_at IS NOT NULL") == 0


def test_a_failed_run_marks_nothing_and_the_next_run_does(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    sync(pipeline, fake, "users", "parties")
    user, party = fake.data["users"][7], fake.data["parties"][9]
    fake.delete("users", user["id"])
    fake.delete("parties", party["id"], at=DELETED_AT)
    # the users list completes, then the parties list fails
    fake.inject(Fault(500, {"message": "boom"}, path="/api/v2/parties", times=100))

    with pytest.raises(PipelineStepFailed):
        sync(pipeline, fake, "users", "parties", max_retries=0)

    assert count(pipeline, "users", "WHERE _deleted_at IS NOT NULL") == 0
    assert count(pipeline, "parties", "WHERE _deleted_at IS NOT NULL") == 0

    fake.faults.clear()
    sync(pipeline, fake, "users", "parties")
    assert count(pipeline, "users", "WHERE _deleted_at IS NOT NULL") == 1
    assert deleted_at(pipeline, "parties", party["id"]) == [(DELETED_AT,)]


def test_a_listing_in_which_an_id_came_twice_marks_nothing(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    sync(pipeline, fake, "users")
    fake.delete("users", fake.data["users"][0]["id"])
    fake.serve_copy_on_page("/api/v2/users", 2, fake.data["users"][3])

    sync(pipeline, fake, "users")

    assert count(pipeline, "users", "WHERE _deleted_at IS NOT NULL") == 0


def test_a_limited_listing_marks_nothing(pipeline: dlt.Pipeline, fake: CrmFake) -> None:
    sync(pipeline, fake, "users")
    fake.delete("users", fake.data["users"][-1]["id"])

    source = crm_source(bearer_token=TOKEN, base_url=fake.base_url, **FAST).with_resources("users")
    source.resources["users"].add_limit(1)
    run_source(pipeline, source)

    assert count(pipeline, "users", "WHERE _deleted_at IS NOT NULL") == 0


def test_a_resource_left_out_marks_nothing(pipeline: dlt.Pipeline, fake: CrmFake) -> None:
    sync(pipeline, fake, "users", "stages")
    fake.delete("users", fake.data["users"][0]["id"])
    fake.delete("stages", fake.data["stages"][0]["id"])

    sync(pipeline, fake, "stages")

    assert count(pipeline, "users", "WHERE _deleted_at IS NOT NULL") == 0
    assert count(pipeline, "stages", "WHERE _deleted_at IS NOT NULL") == 1


def test_outside_a_pipeline_the_feed_yields_tombstones_and_full_lists_mark_nothing(
    fake: CrmFake,
) -> None:
    party_id = fake.data["parties"][0]["id"]
    fake.delete("parties", party_id, at=DELETED_AT)
    fake.delete("users", fake.data["users"][0]["id"])
    source = crm_source(bearer_token=TOKEN, base_url=fake.base_url, **FAST)
    # no pipeline active in this process (an earlier test's would lend its state and
    # destination to the iteration)
    context = Container()[PipelineContext]
    if context.is_active():
        context.deactivate()

    rows = list(source.with_resources("parties", "users"))

    marked = [row for row in rows if row.get("_deleted_at") is not None]
    assert marked == [{"id": party_id, "_deleted_at": DELETED_AT}]
    assert len(rows) == 259 + 119 + 1


@pytest.mark.slow  # three syncs (~6 s)
def test_reconcile_reads_incremental_lists_in_full_loads_what_is_stale_and_marks_the_rest(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    sync(pipeline, fake, "parties")
    # a deletion the feed never reported, and a change that kept its `updatedAt`
    gone = fake.data["parties"].pop(4)
    fake.data["parties"][0]["about"] = "changed quietly"

    sync(pipeline, fake, "parties")  # a normal run sees neither
    assert count(pipeline, "parties", "WHERE _deleted_at IS NOT NULL") == 0
    assert query(pipeline, "SELECT about FROM parties WHERE id = 1000") == [("party 0",)]
    stored = copy.deepcopy(pipeline.state["sources"]["crm"]["resources"]["parties"]["incremental"])

    sync(pipeline, fake, "parties", reconcile=True)

    assert count(pipeline, "parties", "WHERE _deleted_at IS NOT NULL") == 1
    assert count(pipeline, "parties", f"WHERE id = {gone['id']} AND _deleted_at IS NOT NULL") == 1
    assert query(pipeline, "SELECT about FROM parties WHERE id = 1000") == [("changed quietly",)]
    lists = [r for r in fake.requests_to("/api/v2/parties") if r.path == "/api/v2/parties"]
    # the reconciling run: three pages of 100 (259 parties), none filtered by `since`
    assert [r.args.get("page") for r in lists[-3:]] == [None, "2", "3"]
    assert [r.args.get("since") for r in lists[-3:]] == [None, None, None]
    # the deleted feed is still read; the cursors are as the last normal run left them
    assert len(fake.requests_to("/api/v2/parties/deleted")) == 3
    state = pipeline.state["sources"]["crm"]["resources"]["parties"]["incremental"]
    assert state == stored
