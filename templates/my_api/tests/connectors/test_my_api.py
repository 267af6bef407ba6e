"""my_api: offline replay of the recorded cassettes, and the fake over loopback HTTP.

Every expectation is read from the fake (connectors/sandbox/my_api.py): its rows, its
page size, its change between two syncs, the credentials it accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.cli.runner import sync
from connectors.my_api import my_api_source
from connectors.my_api.settings import INITIAL_UPDATED_AFTER
from connectors.sandbox.my_api import PAGE_SIZE, RECORDING, MyApiFake
from shared.errors import AuthenticationError
from shared.loading import run_source
from shared.tooling.catalog import load_catalog
from tests.dataset import count, query
from tests.recording import replay

RECORDED = MyApiFake()  # the data the cassettes were recorded from (not started)


@pytest.fixture
def fake() -> Iterator[MyApiFake]:
    with MyApiFake() as server:
        yield server


def orders_requests(cassette: Any) -> list[dict[str, str]]:
    """The query of every `/orders` request the connector sent."""
    return [
        dict(parse_qsl(urlsplit(request.uri).query))
        for request in cassette.requests
        if urlsplit(request.uri).path == "/orders"
    ]


def stored_orders(pipeline: dlt.Pipeline) -> list[tuple[Any, ...]]:
    return query(pipeline, "SELECT id, status FROM orders ORDER BY id")


def fake_orders(fake: MyApiFake) -> list[tuple[Any, ...]]:
    return sorted((order["id"], order["status"]) for order in fake.orders)


def test_full_sync_replay_loads_every_row_of_the_fake(pipeline: dlt.Pipeline) -> None:
    (cassette,) = replay(RECORDING, pipeline, steps=["full_sync"])

    expected = RECORDED.expected_rows()
    assert {table: count(pipeline, table) for table in expected} == expected
    assert stored_orders(pipeline) == fake_orders(RECORDED)
    assert cassette.play_count == len(cassette.data)


def test_the_catalog_entry_replays_as_connectors_run_and_make_demo_do(
    pipeline: dlt.Pipeline,
) -> None:
    """`connectors run my_api --replay` and `make demo`: the entry's cassette, played
    with stand-in credentials."""
    result = sync(load_catalog().get("my_api"), pipeline, replay=True)

    expected = RECORDED.expected_rows()
    assert {table: result.rows.get(table) for table in expected} == expected


def test_orders_are_read_page_by_page_each_page_once(pipeline: dlt.Pipeline) -> None:
    (cassette,) = replay(RECORDING, pipeline, steps=["full_sync"])

    pages = orders_requests(cassette)
    last_page = -(-len(RECORDED.orders) // PAGE_SIZE)
    assert sorted(RECORDED.page_number(page) for page in pages) == list(range(1, last_page + 1))
    # the first sync starts at the configured initial value, on every page
    assert {page["updated_after"] for page in pages} == {INITIAL_UPDATED_AFTER}


def test_second_run_asks_for_orders_after_the_stored_maximum_and_merges(
    pipeline: dlt.Pipeline,
) -> None:
    replay(RECORDING, pipeline, steps=["full_sync"])
    newest = max(order["updated_at"] for order in RECORDED.orders)
    changed = MyApiFake()  # the data of the second recorded sync
    changed.change_for_second_run()

    (cassette,) = replay(RECORDING, pipeline, steps=["incremental"])

    assert {page["updated_after"] for page in orders_requests(cassette)} == {newest}
    # the changed orders merged in place, the new one added; users replaced, not doubled
    assert stored_orders(pipeline) == fake_orders(changed) != fake_orders(RECORDED)
    assert count(pipeline, "users") == len(changed.users)


def test_a_sync_against_the_fake_is_authorized_on_every_request(
    pipeline: dlt.Pipeline, fake: MyApiFake
) -> None:
    source = my_api_source(**fake.credentials, base_url=fake.base_url, requests_per_minute=60_000)

    run_source(pipeline, source)

    assert fake.requests and {request.status for request in fake.requests} == {200}
    expected = fake.expected_rows()
    assert {table: count(pipeline, table) for table in expected} == expected


def test_a_rejected_credential_fails_naming_the_secret_to_set(
    pipeline: dlt.Pipeline, fake: MyApiFake
) -> None:
    secret = list(fake.credentials)[-1]  # the key, the password or the client secret
    spoiled = {**fake.credentials, secret: "wrong"}
    source = my_api_source(**spoiled, base_url=fake.base_url, max_retries=0)

    with pytest.raises(PipelineStepFailed) as failure:
        run_source(pipeline, source.with_resources("users"))

    cause: BaseException | None = failure.value
    while cause is not None and not isinstance(cause, AuthenticationError):
        cause = cause.__cause__ or cause.__context__
    assert cause is not None, "no AuthenticationError in the failure's causes"
    assert "sources.my_api." in str(cause) and secret in str(cause)
    assert "wrong" not in str(cause)
