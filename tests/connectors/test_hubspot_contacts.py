"""hubspot_contacts: offline replay of the recorded cassettes
(../shared/api-contracts/hubspot_contacts.md)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dlt

from connectors.sandbox.hubspot_contacts import (
    LIST_PATH,
    RECORDING,
    SEARCH_PATH,
    HubSpotContactsFake,
    epoch_ms,
    from_cursor,
    parse_stamp,
)
from shared.tooling.cassettes import cassette_path, replaying
from tests.connectors.pinned_columns import column_types, pinned
from tests.dataset import columns, count, loaded_file_formats, query
from tests.recording import replay

CONTRACT_COLUMNS = {
    "id",
    "email",
    "first_name",
    "last_name",
    "company",
    "phone",
    "created_at",
    "updated_at",
    "archived",
}
DEFAULT_PROPERTIES = [
    "email",
    "firstname",
    "lastname",
    "company",
    "phone",
    "createdate",
    "lastmodifieddate",
]


def recorded_data() -> tuple[HubSpotContactsFake, HubSpotContactsFake, dict[str, list[str]]]:
    """The fake's data as recorded: before the first run, and after the second run's changes."""
    before, after = HubSpotContactsFake(), HubSpotContactsFake()
    changes = after.change_for_second_run()
    return before, after, changes


def unarchived(fake: HubSpotContactsFake) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in fake.contacts if not c["archived"]}


def as_datetime(value: str) -> datetime:
    return parse_stamp(value)


def test_first_run_lists_every_contact_into_the_contract_columns(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    before, _, _ = recorded_data()
    expected = unarchived(before)

    pipeline, (cassette,) = full_sync

    assert count(pipeline, "contacts") == len(expected) == 245
    rows = query(
        pipeline,
        "SELECT id, email, first_name, last_name, company, phone, created_at, updated_at, "
        "archived FROM contacts",
    )
    assert {row[0] for row in rows} == set(expected)
    for row in rows:
        contact = expected[row[0]]
        properties = contact["properties"]
        assert row[1:6] == (
            properties["email"],
            properties["firstname"],
            properties["lastname"],
            properties["company"],
            properties["phone"],
        )
        assert row[6] == as_datetime(contact["createdAt"])
        assert row[7] == as_datetime(contact["updatedAt"])
        assert row[8] is False
    assert columns(pipeline, "contacts") - {"_dlt_id", "_dlt_load_id"} == {
        *CONTRACT_COLUMNS,
        "_deleted_at",
    }
    assert count(pipeline, "contacts", "WHERE _deleted_at IS NOT NULL") == 0
    table = pipeline.default_schema.get_table_columns("contacts")
    assert table["id"]["primary_key"] is True
    assert pipeline.default_schema.get_table("contacts")["write_disposition"] == "merge"
    assert {table[c]["data_type"] for c in ("created_at", "updated_at")} == {"timestamp"}
    assert table["archived"]["data_type"] == "bool"
    # three pages of the list, one of the archived list (the deletions)
    assert cassette.play_count == len(cassette.data) == 4


def test_first_run_pages_the_list_endpoint_by_paging_next_after(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    pipeline, (cassette,) = full_sync

    sent = [
        (r.method, urlsplit(r.uri).path, parse_qs(urlsplit(r.uri).query))
        for r in cassette.requests
        if "archived=true" not in r.uri
    ]
    assert {(method, path) for method, path, _ in sent} == {("GET", LIST_PATH)}
    assert all(q["limit"] == ["100"] for _, _, q in sent)
    assert all(q["properties"] == [",".join(DEFAULT_PROPERTIES)] for _, _, q in sent)
    # each `after` is the cursor the previous page named in paging.next.after
    named = sorted(
        json.loads(response["body"]["string"]).get("paging", {}).get("next", {}).get("after", "")
        for request, response in zip(cassette.requests, cassette.responses, strict=True)
        if "archived=true" not in request.uri
    )
    assert sorted(q.get("after", [""])[0] for _, _, q in sent) == named
    # HubSpot's list cursor is opaque (not a number), and names the next page's first id
    tokens = [token for token in named if token]
    assert len(tokens) == len(named) - 1 and not any(token.isdigit() for token in tokens)
    first_ids = sorted(from_cursor(token) for token in tokens)
    listed = sorted(int(c["id"]) for c in HubSpotContactsFake().contacts if not c["archived"])
    assert first_ids == [listed[100], listed[200]]


def test_first_run_loads_parquet(pipeline: dlt.Pipeline) -> None:
    source = RECORDING.source(
        base_url=RECORDING.canonical_base_url, **RECORDING.credentials, **RECORDING.offline_kwargs
    )
    with replaying(
        cassette_path("hubspot_contacts", "full_sync"),
        RECORDING.scrubber(RECORDING.canonical_base_url),
    ):
        # a plain pipeline.run: the connector's hint chooses parquet
        info = pipeline.run(source)
    assert loaded_file_formats(info) == {"parquet"}


def test_later_run_posts_a_search_from_the_stored_cursor_and_merges_changes(
    pipeline: dlt.Pipeline,
) -> None:
    before, after, changes = recorded_data()
    replay(RECORDING, pipeline, steps=["full_sync"])
    stored = pipeline.state["sources"]["hubspot_contacts"]["resources"]["contacts"]
    first_cursor = stored["incremental"]["updated_at"]["last_value"]
    assert first_cursor == max(c["updatedAt"] for c in unarchived(before).values())

    (cassette,) = replay(RECORDING, pipeline, steps=["incremental"])

    searches = [r for r in cassette.requests if "archived=true" not in r.uri]
    assert {(r.method, urlsplit(r.uri).path) for r in searches} == {("POST", SEARCH_PATH)}
    bodies = [json.loads(r.body) for r in searches]

    def window(start_ms: int) -> dict[str, Any]:
        return {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "lastmodifieddate",
                            "operator": "GTE",
                            "value": str(start_ms),
                        }
                    ]
                }
            ],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": DEFAULT_PROPERTIES,
            "limit": 200,
        }

    # the first search looks back 60 s before the stored cursor (the index lags writes);
    # the next starts at the largest lastmodifieddate of the first page, `after` unset
    first_page = json.loads(cassette.responses[0]["body"]["string"])["results"]
    largest = max(epoch_ms(parse_stamp(c["properties"]["lastmodifieddate"])) for c in first_page)
    assert bodies == [
        window(epoch_ms(parse_stamp(first_cursor)) - 60_000),
        window(largest),
    ]
    assert len(first_page) == 200

    # merged: the three new contacts added, the 205 changed ones updated, none duplicated
    expected = unarchived(before) | {
        i: c for i, c in unarchived(after).items() if i in changes["created"]
    }
    assert count(pipeline, "contacts") == len(expected) == 248
    assert query(pipeline, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM contacts") == [(0,)]
    changed = query(
        pipeline, "SELECT id, company, updated_at FROM contacts WHERE company LIKE 'Changed Co %'"
    )
    latest = unarchived(after)
    assert {row[0] for row in changed} == set(changes["changed"])
    assert all(
        (company, updated)
        == (latest[i]["properties"]["company"], as_datetime(latest[i]["updatedAt"]))
        for i, company, updated in changed
    )
    # the search never returns archived contacts: the one archived since keeps its last row
    (archived_id,) = changes["archived"]
    assert query(pipeline, f"SELECT archived FROM contacts WHERE id = '{archived_id}'") == [
        (False,)
    ]
    state = pipeline.state["sources"]["hubspot_contacts"]["resources"]["contacts"]
    assert state["incremental"]["updated_at"]["last_value"] == max(
        c["updatedAt"] for c in latest.values()
    )


def test_full_sync_column_types_are_the_pinned_ones(
    full_sync: tuple[dlt.Pipeline, list[Any]],
) -> None:
    # a change in what the fake serves or in dlt's inference shows in this diff; if it is
    # intended, rewrite the pin: python -m tests.connectors.pinned_columns hubspot_contacts
    pipeline, _ = full_sync
    assert column_types(pipeline) == pinned("hubspot_contacts")
