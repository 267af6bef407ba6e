"""shared.offset_cap: restarting a sorted, filtered list before the API's offset cap."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from requests import Request, Response

from shared.offset_cap import OffsetCapError, OffsetCapRestartPaginator

BASE = "https://api.example.com/items"


def page(rows: list[dict[str, Any]], next_offset: int | None, query: str = "t>=0") -> Response:
    response = Response()
    response.status_code = 200
    response.url = f"{BASE}?{urlencode({'query': query, 'limit': 2})}"
    body: dict[str, Any] = {"data": rows}
    if next_offset is not None:
        args = {"query": query, "limit": 2, "offset": next_offset}
        body["paging"] = {"next": f"{BASE}?{urlencode(args)}"}
    response._content = json.dumps(body).encode()
    return response


def paginator() -> OffsetCapRestartPaginator:
    return OffsetCapRestartPaginator(
        max_offset=4,
        cursor_path="t",
        cursor_key=lambda value: int(value),  # e.g. truncating a timestamp to milliseconds
        restart_params=lambda key: {"query": f"t>={key}"},
        next_url_path="paging.next",
        connector="demo",
    )


def follow(paginator: OffsetCapRestartPaginator, response: Response) -> dict[str, list[str]]:
    rows = response.json()["data"]
    paginator.update_state(response, rows)
    request = Request("GET", BASE)
    paginator.update_request(request)
    return parse_qs(urlsplit(request.url).query)


def test_follows_next_links_while_they_stay_within_the_cap() -> None:
    cap = paginator()
    cap.init_request(Request("GET", BASE))

    assert follow(cap, page([{"t": 1.5}, {"t": 2.5}], 2)) == {
        "query": ["t>=0"],
        "limit": ["2"],
        "offset": ["2"],
    }
    assert cap.has_next_page and cap.restarts == 0
    follow(cap, page([{"t": 3.0}], None))
    assert not cap.has_next_page


def test_restarts_at_offset_0_from_the_largest_cursor_key_before_passing_the_cap() -> None:
    cap = paginator()
    cap.init_request(Request("GET", BASE))
    follow(cap, page([{"t": 1.5}, {"t": 2.5}], 2))

    # offset 4 + limit 2 would pass the cap of 4
    params = follow(cap, page([{"t": 3.9}, {"t": 3.2}], 4))

    assert params == {"query": ["t>=3"], "limit": ["2"], "offset": ["0"]}
    assert cap.restarts == 1 and cap.has_next_page
    # the next window is judged on its own records
    params = follow(cap, page([{"t": 3.9}, {"t": 4.1}], 2, query="t>=3"))
    assert params["offset"] == ["2"]
    params = follow(cap, page([{"t": 5.0}, {"t": 6.0}], 4, query="t>=3"))
    assert params == {"query": ["t>=6"], "limit": ["2"], "offset": ["0"]}
    assert cap.restarts == 2


def test_a_window_that_shares_one_cursor_key_fails_instead_of_restarting_in_place() -> None:
    cap = paginator()
    cap.init_request(Request("GET", BASE))
    follow(cap, page([{"t": 7.1}, {"t": 7.2}], 2))

    with pytest.raises(OffsetCapError, match=r"demo: cannot page past the API's offset cap of 4"):
        follow(cap, page([{"t": 7.3}, {"t": 7.9}], 4))
