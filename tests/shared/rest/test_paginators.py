"""shared.rest.paginators: ShortPageOffsetPaginator, driven by dlt's RESTClient."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from dlt.sources.helpers.rest_client import RESTClient

from shared.rest.paginators import OffsetPaginator, ShortPageOffsetPaginator

BASE_URL = "https://api.example.com"


def serve_items(mocked: responses.RequestsMock, total: int) -> list[tuple[int, int]]:
    """An offset-paged `/items` with `total` rows and no total in the answer; returns the
    (offset, limit) of every request."""
    asked: list[tuple[int, int]] = []

    def page(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        query = parse_qs(urlsplit(request.url).query)
        offset, limit = int(query["offset"][0]), int(query["limit"][0])
        asked.append((offset, limit))
        rows = [{"id": i} for i in range(offset, min(offset + limit, total))]
        return 200, {}, json.dumps(rows)

    mocked.add_callback("GET", f"{BASE_URL}/items", callback=page)
    return asked


def fetch(paginator: OffsetPaginator) -> list[int]:
    client = RESTClient(base_url=BASE_URL, paginator=paginator)
    return [row["id"] for page in client.paginate("/items") for row in page]


def test_stops_after_a_short_page_without_asking_for_an_empty_one(
    mocked: responses.RequestsMock,
) -> None:
    asked = serve_items(mocked, total=7)

    assert fetch(ShortPageOffsetPaginator(limit=3)) == list(range(7))
    assert asked == [(0, 3), (3, 3), (6, 3)]


def test_stops_after_an_empty_page_when_the_last_page_was_full(
    mocked: responses.RequestsMock,
) -> None:
    asked = serve_items(mocked, total=6)

    assert fetch(ShortPageOffsetPaginator(limit=3)) == list(range(6))
    assert asked == [(0, 3), (3, 3), (6, 3)]


@pytest.mark.parametrize("total", [0, 2])
def test_a_first_page_shorter_than_the_limit_is_the_only_request(
    total: int, mocked: responses.RequestsMock
) -> None:
    asked = serve_items(mocked, total=total)

    assert fetch(ShortPageOffsetPaginator(limit=3)) == list(range(total))
    assert asked == [(0, 3)]


def test_saves_the_empty_page_request_dlt_offset_paging_needs(
    mocked: responses.RequestsMock,
) -> None:
    dlt_asked = serve_items(mocked, total=7)
    fetch(OffsetPaginator(limit=3, total_path=None))
    mocked.reset()
    ours_asked = serve_items(mocked, total=7)
    fetch(ShortPageOffsetPaginator(limit=3))

    assert dlt_asked == [(0, 3), (3, 3), (6, 3), (9, 3)]
    assert ours_asked == [(0, 3), (3, 3), (6, 3)]
