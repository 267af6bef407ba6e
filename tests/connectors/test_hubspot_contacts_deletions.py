"""hubspot_contacts learns deletions from the archived list (contract, "Archived (deleted)
contacts"): soft by default (`_deleted_at` = `archivedAt`), hard on request. Over
loopback into DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.hubspot_contacts import hubspot_contacts_source
from connectors.sandbox.base import Fault
from connectors.sandbox.hubspot_contacts import FAST, LIST_PATH, TOKEN, HubSpotContactsFake
from shared.loading import run_source
from tests.dataset import count, query

ARCHIVED_AT = datetime(2024, 7, 1, 8, 30, 0, tzinfo=timezone.utc)


@pytest.fixture
def fake() -> Iterator[HubSpotContactsFake]:
    with HubSpotContactsFake() as server:
        yield server


def sync(pipeline: dlt.Pipeline, fake: HubSpotContactsFake, **kwargs: Any) -> None:
    source = hubspot_contacts_source(api_key=TOKEN, base_url=fake.base_url, **{**FAST, **kwargs})
    run_source(pipeline, source)


def contact_row(pipeline: dlt.Pipeline, contact_id: str) -> list[tuple[Any, ...]]:
    return query(
        pipeline, f"SELECT email, first_name, _deleted_at FROM contacts WHERE id = '{contact_id}'"
    )


def archived_requests(fake: HubSpotContactsFake) -> list[Any]:
    return [r for r in fake.requests if r.path == LIST_PATH and r.args.get("archived") == "true"]


def test_an_archived_contact_keeps_its_row_with_archived_at_as_deleted_at(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake
) -> None:
    sync(pipeline, fake)
    assert count(pipeline, "contacts") == 245
    assert count(pipeline, "contacts", "WHERE _deleted_at IS NOT NULL") == 0
    contact = fake.contacts[6]

    fake.archive(contact, ARCHIVED_AT)
    sync(pipeline, fake)

    assert contact_row(pipeline, "7") == [("contact7@example.com", "First7", ARCHIVED_AT)]
    assert count(pipeline, "contacts") == 245
    assert count(pipeline, "contacts", "WHERE _deleted_at IS NULL") == 244
    # every run reads the archived list in full (it has no filter by `archivedAt`)
    assert len(archived_requests(fake)) == 2
    assert all(r.args.get("limit") == "100" for r in archived_requests(fake))


def test_hard_mode_deletes_an_archived_contacts_row(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake
) -> None:
    sync(pipeline, fake, deletions="hard")
    fake.archive(fake.contacts[6], ARCHIVED_AT)

    sync(pipeline, fake, deletions="hard")

    assert contact_row(pipeline, "7") == []
    assert count(pipeline, "contacts") == 244
    assert count(pipeline, "contacts", "WHERE _deleted_at IS NOT NULL") == 0


def test_a_failed_run_marks_nothing(pipeline: dlt.Pipeline, fake: HubSpotContactsFake) -> None:
    sync(pipeline, fake)
    fake.archive(fake.contacts[6], ARCHIVED_AT)
    fake.inject(Fault(500, {"message": "boom"}, path="/crm/v3/objects/contacts/search", times=50))

    with pytest.raises(PipelineStepFailed):
        sync(pipeline, fake, max_retries=0)

    assert contact_row(pipeline, "7") == [("contact7@example.com", "First7", None)]
    fake.faults.clear()
    sync(pipeline, fake)
    assert contact_row(pipeline, "7") == [("contact7@example.com", "First7", ARCHIVED_AT)]


def test_a_restored_contact_is_live_again(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake
) -> None:
    sync(pipeline, fake)
    contact = fake.contacts[6]
    fake.archive(contact, ARCHIVED_AT)
    sync(pipeline, fake)
    assert contact_row(pipeline, "7")[0][2] == ARCHIVED_AT

    contact["archived"] = False
    del contact["archivedAt"]
    fake.modify(contact, fake.newest_modified().replace(year=2030), firstname="Back")
    sync(pipeline, fake)

    assert contact_row(pipeline, "7") == [("contact7@example.com", "Back", None)]


def test_reconcile_lists_every_contact_and_marks_one_gone_without_an_archive_entry(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake
) -> None:
    sync(pipeline, fake)
    stored = pipeline.state["sources"]["hubspot_contacts"]["resources"]["contacts"]
    stored = dict(stored["incremental"]["updated_at"])
    # merged away or GDPR-deleted: gone from the list, and never archived
    fake.contacts = [c for c in fake.contacts if c["id"] != "8"]
    searches = len(fake.requests_to("/search"))

    sync(pipeline, fake, reconcile=True)

    ((marked,),) = query(pipeline, "SELECT _deleted_at FROM contacts WHERE id = '8'")
    assert marked is not None
    assert count(pipeline, "contacts", "WHERE _deleted_at IS NOT NULL") == 1
    assert len(fake.requests_to("/search")) == searches  # listed, not searched
    state = pipeline.state["sources"]["hubspot_contacts"]["resources"]["contacts"]
    assert dict(state["incremental"]["updated_at"]) == stored
