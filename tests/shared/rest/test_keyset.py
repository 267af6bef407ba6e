"""shared.rest.keyset: paging a sorted, filtered list by re-issuing the query from the largest key
seen, by offset only within one key, with a check that such offsets did not shift."""

from __future__ import annotations

import json
from typing import Any

import pytest
from requests import Request, Response

from shared.rest.keyset import MAX_TIE_REREADS, KeysetPaginator, KeysetPagingError

BASE = "https://api.example.com/items"


def page(rows: list[dict[str, Any]], more: bool) -> Response:
    response = Response()
    response.status_code = 200
    response.url = f"{BASE}?query=t%3E%3D0&api_key=secret-key-123"
    body: dict[str, Any] = {"data": rows}
    if more:
        body["paging"] = {"next": f"{BASE}?offset=2"}
    response._content = json.dumps(body).encode()
    return response


def rows(*pairs: tuple[str, float]) -> list[dict[str, Any]]:
    return [{"id": row_id, "t": t} for row_id, t in pairs]


def paginator(**kwargs: Any) -> KeysetPaginator:
    return KeysetPaginator(
        key_path="t",
        key=int,  # e.g. truncating a timestamp to milliseconds
        restart=lambda first, key: {"query": f"{first['query']} AND t>={key}"},
        has_more_path="paging.next",
        connector="demo",
        **kwargs,
    )


def start(keyset: KeysetPaginator, **params: Any) -> Request:
    request = Request("GET", BASE, params={"query": "u>=0", "limit": 2, **params})
    keyset.init_request(request)
    return request


def follow(keyset: KeysetPaginator, request: Request, response: Response) -> dict[str, Any]:
    keyset.update_state(response, response.json()["data"])
    keyset.update_request(request)
    return dict(request.params)


def test_every_page_restarts_the_query_at_offset_0_from_the_largest_key_seen() -> None:
    keyset = paginator()
    request = start(keyset)

    params = follow(keyset, request, page(rows(("a", 1.5), ("b", 2.5)), more=True))
    assert params == {"query": "u>=0 AND t>=2", "limit": 2}
    assert keyset.has_next_page

    # the restart re-reads `b` (key 2) and moves on; the filter is built from the first query
    params = follow(keyset, request, page(rows(("b", 2.5), ("c", 3.9)), more=True))
    assert params == {"query": "u>=0 AND t>=3", "limit": 2}
    assert keyset.restarts == 2

    follow(keyset, request, page(rows(("c", 3.9)), more=False))
    assert not keyset.has_next_page


def test_a_page_of_one_key_is_paged_by_offset_with_one_record_of_overlap() -> None:
    keyset = paginator()
    request = start(keyset)
    follow(keyset, request, page(rows(("a", 1.0), ("b", 7.0)), more=True))

    params = follow(keyset, request, page(rows(("b", 7.0), ("c", 7.0)), more=True))
    assert params == {"query": "u>=0 AND t>=7", "limit": 2, "offset": "1"}
    params = follow(keyset, request, page(rows(("c", 7.0), ("d", 7.0)), more=True))
    assert params["offset"] == "2"
    # past the key: back to restarting from the largest key, offset left out
    params = follow(keyset, request, page(rows(("d", 7.0), ("e", 9.0)), more=True))
    assert params == {"query": "u>=0 AND t>=9", "limit": 2}


def test_records_that_moved_within_a_key_make_it_be_read_again_from_offset_0() -> None:
    keyset = paginator()
    request = start(keyset)
    follow(keyset, request, page(rows(("a", 7.0), ("b", 7.0)), more=True))
    follow(keyset, request, page(rows(("a", 7.0), ("b", 7.0)), more=True))
    assert request.params["offset"] == "1"

    # `b` expected first; `a` and `b` were updated meanwhile, so `c` may have been
    # skipped: read the key again, even though this page reaches past it
    params = follow(keyset, request, page(rows(("d", 7.0), ("e", 8.0)), more=True))
    assert params == {"query": "u>=0 AND t>=7", "limit": 2}
    assert keyset.has_next_page


def test_records_that_keep_moving_within_a_key_fail_after_bounded_rereads() -> None:
    keyset = paginator()
    request = start(keyset)
    follow(keyset, request, page(rows(("a", 7.0), ("b", 7.0)), more=True))
    for attempt in range(MAX_TIE_REREADS):
        follow(keyset, request, page(rows(("a", 7.0), ("b", 7.0)), more=True))
        follow(keyset, request, page(rows((f"x{attempt}", 7.0), ("y", 7.0)), more=True))
        assert "offset" not in request.params

    follow(keyset, request, page(rows(("a", 7.0), ("b", 7.0)), more=True))
    with pytest.raises(KeysetPagingError) as info:
        follow(keyset, request, page(rows(("z", 7.0), ("y", 7.0)), more=True))
    assert str(info.value) == (
        "demo: records sharing `t` 7 kept moving while they were paged (3 re-reads); "
        "run the sync again later"
    )


def test_one_key_holding_more_records_than_the_offset_cap_fails_instead_of_looping() -> None:
    keyset = paginator(max_offset=4)
    request = start(keyset)
    follow(keyset, request, page(rows(("a", 7.0), ("b", 7.0)), more=True))
    follow(keyset, request, page(rows(("a", 7.0), ("b", 7.0)), more=True))
    follow(keyset, request, page(rows(("b", 7.0), ("c", 7.0)), more=True))  # offset 1
    assert request.params["offset"] == "2"

    with pytest.raises(KeysetPagingError) as info:
        follow(keyset, request, page(rows(("c", 7.0), ("d", 7.0)), more=True))
    message = str(info.value)
    assert message.startswith("demo: cannot page https://api.example.com/items?")
    assert "api_key=***" in message and "secret-key-123" not in message
    assert message.endswith(
        "more than 4 records share `t` 7, and the API's offset cap of 4 stops paging through them"
    )


def test_a_page_without_the_key_fails_rather_than_guessing() -> None:
    keyset = paginator()
    request = start(keyset)
    with pytest.raises(KeysetPagingError, match=r"no record on the page carries `t`"):
        follow(keyset, request, page([{"id": "a"}], more=True))


def test_a_search_body_gets_the_restart_fields_and_a_string_offset() -> None:
    keyset = KeysetPaginator(
        key_path="properties.modified",
        restart=lambda _first, key: {"filters": [{"GTE": key}]},
        has_more_path="paging.next.after",
        offset_param="after",
    )
    request = Request("POST", BASE, json={"filters": [{"GTE": 0}], "limit": 2})
    keyset.init_request(request)

    def search_page(*pairs: tuple[str, int]) -> Response:
        response = Response()
        response.status_code = 200
        response.url = BASE
        results = [{"id": i, "properties": {"modified": m}} for i, m in pairs]
        response._content = json.dumps(
            {"results": results, "paging": {"next": {"after": "2"}}}
        ).encode()
        return response

    response = search_page(("1", 5), ("2", 6))
    keyset.update_state(response, response.json()["results"])
    keyset.update_request(request)
    assert request.json == {"filters": [{"GTE": 6}], "limit": 2}

    response = search_page(("2", 6), ("3", 6))
    keyset.update_state(response, response.json()["results"])
    keyset.update_request(request)
    assert request.json == {"filters": [{"GTE": 6}], "limit": 2, "after": "1"}


def test_without_a_has_more_path_a_short_page_is_the_last() -> None:
    keyset = KeysetPaginator(key_path="t", restart=lambda _first, key: {"since": key})
    request = Request("GET", BASE, params={"limit": 2})
    keyset.init_request(request)

    follow(keyset, request, page(rows(("a", 1), ("b", 2)), more=False))
    assert keyset.has_next_page and request.params == {"limit": 2, "since": 2}
    follow(keyset, request, page(rows(("b", 2)), more=False))
    assert not keyset.has_next_page


def test_an_empty_page_that_links_on_is_followed_at_the_next_offset_of_its_query() -> None:
    keyset = paginator()
    request = start(keyset)
    follow(keyset, request, page(rows(("a", 1.0), ("b", 2.0)), more=True))

    # the restarted query's first page is empty but still has `paging.next`
    params = follow(keyset, request, page([], more=True))
    assert keyset.has_next_page
    assert params == {"query": "u>=0 AND t>=2", "limit": 2, "offset": "2"}

    params = follow(keyset, request, page(rows(("c", 3.0), ("d", 4.0)), more=True))
    assert params == {"query": "u>=0 AND t>=4", "limit": 2}
    follow(keyset, request, page([], more=False))
    assert not keyset.has_next_page


def test_an_empty_page_within_one_key_is_skipped_without_rereading_the_key() -> None:
    keyset = paginator()
    request = start(keyset)
    follow(keyset, request, page(rows(("a", 1.0), ("b", 7.0)), more=True))
    follow(keyset, request, page(rows(("b", 7.0), ("c", 7.0)), more=True))  # offset 1 next

    params = follow(keyset, request, page([], more=True))
    assert params["offset"] == "3" and keyset.has_next_page
    params = follow(keyset, request, page(rows(("e", 7.0), ("f", 8.0)), more=True))
    assert params == {"query": "u>=0 AND t>=8", "limit": 2}


def test_empty_pages_linking_on_past_the_offset_cap_fail_instead_of_looping() -> None:
    keyset = paginator(max_offset=4)
    request = start(keyset)
    follow(keyset, request, page([], more=True))  # offset 2 next: 2 + 2 <= 4

    with pytest.raises(KeysetPagingError, match="offset cap of 4"):
        follow(keyset, request, page([], more=True))
