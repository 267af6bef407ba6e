"""my_api: offline replay of the recorded cassettes, and the fake over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.my_api import my_api_source
from connectors.sandbox.my_api import PAGE_SIZE, RECORDING, MyApiFake
from shared.errors import AuthenticationError
from shared.loading import run_source
from tests.dataset import count, query
from tests.recording import replay

RECORDED = MyApiFake()  # the data the cassettes were recorded from (not started)


@pytest.fixture
def fake() -> Iterator[MyApiFake]:
    with MyApiFake() as server:
        yield server


def orders_requests(cassette: Any) -> list[dict[str, list[str]]]:
    """The query of every `/orders` request the connector sent."""
    return [
        parse_qs(urlsplit(request.uri).query)
        for request in cassette.requests
        if urlsplit(request.uri).path == "/orders"
    ]


def test_full_sync_replay_loads_every_user_and_order(pipeline: dlt.Pipeline) -> None:
    (cassette,) = replay(RECORDING, pipeline, steps=["full_sync"])

    assert count(pipeline, "users") == len(RECORDED.users)
    assert count(pipeline, "orders") == len(RECORDED.orders)
    assert query(pipeline, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM orders") == [(0,)]
    assert cassette.play_count == len(cassette.data)


def test_orders_follow_next_page_url_until_it_is_null(pipeline: dlt.Pipeline) -> None:
    (cassette,) = replay(RECORDING, pipeline, steps=["full_sync"])

    pages = orders_requests(cassette)
    assert len(pages) == -(-len(RECORDED.orders) // PAGE_SIZE)
    assert sorted(int(page.get("page", ["1"])[0]) for page in pages) == list(
        range(1, len(pages) + 1)
    )
    # the first sync starts at the configured initial value
    assert {page["updated_after"][0] for page in pages} == {"2024-01-01T00:00:00Z"}


def test_second_run_asks_for_orders_after_the_stored_maximum_and_merges(
    pipeline: dlt.Pipeline,
) -> None:
    replay(RECORDING, pipeline, steps=["full_sync"])
    newest = max(order["updated_at"] for order in RECORDED.orders)

    (cassette,) = replay(RECORDING, pipeline, steps=["incremental"])

    assert {page["updated_after"][0] for page in orders_requests(cassette)} == {newest}
    # one new order, two changed ones merged in place; users replaced, not duplicated
    assert count(pipeline, "orders") == len(RECORDED.orders) + 1
    assert query(pipeline, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM orders") == [(0,)]
    assert query(pipeline, "SELECT id FROM orders WHERE status = 'refunded' ORDER BY id") == [
        (1000,),
        (1001,),
    ]
    assert count(pipeline, "users") == len(RECORDED.users)


def test_sync_against_the_fake_sends_the_api_key_as_a_bearer_token(
    pipeline: dlt.Pipeline, fake: MyApiFake
) -> None:
    source = my_api_source(api_key=fake.api_key, base_url=fake.base_url, requests_per_minute=60_000)

    run_source(pipeline, source)

    assert {r.headers.get("Authorization") for r in fake.requests} == {f"Bearer {fake.api_key}"}
    assert count(pipeline, "orders") == len(fake.orders)


def test_a_rejected_api_key_fails_naming_the_secret_to_set(
    pipeline: dlt.Pipeline, fake: MyApiFake
) -> None:
    source = my_api_source(api_key="wrong", base_url=fake.base_url, max_retries=0)

    with pytest.raises(PipelineStepFailed) as failure:
        run_source(pipeline, source.with_resources("users"))

    cause: BaseException | None = failure.value
    while cause is not None and not isinstance(cause, AuthenticationError):
        cause = cause.__cause__ or cause.__context__
    assert cause is not None, "no AuthenticationError in the failure's causes"
    assert "sources.my_api.api_key" in str(cause)
    assert "wrong" not in str(cause)
