"""shared.http.pages: a 2xx answer must be a page of data, or it is retried and then fails with
one clear `InvalidResponseError`."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses
from dlt.sources.helpers.rest_client import RESTClient

from connectors.sandbox.base import HTML_ERROR_PAGE, INVALID_UTF8, TOO_DEEP
from shared.errors import InvalidResponseError
from shared.http.auth import api_key_query
from shared.http.pages import PageCheck, find_page_check
from shared.http.retries import RetryPolicy
from shared.http.session import ConnectorSession
from shared.redaction import Redactor
from shared.rest.builder import SourceHttp, build_resources
from shared.rest.paginators import SinglePagePaginator
from tests.failures import root_cause

BASE_URL = "https://api.example.com"
KEY = "key-7a6b5c4d3e2f"
ITEMS = f"{BASE_URL}/items"
ROWS = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]


def items_resource(http: SourceHttp, selector: str = "items", **extra: Any) -> Any:
    (resource,) = build_resources(
        http,
        [
            {
                "name": "items",
                "endpoint": {
                    "path": "/items",
                    "data_selector": selector,
                    "paginator": SinglePagePaginator(),
                },
                **extra,
            }
        ],
        file_format=None,
    )
    return resource


def http(max_retries: int = 2) -> SourceHttp:
    return SourceHttp(
        "demo",
        BASE_URL,
        auth=api_key_query(KEY, param="api_key"),
        retry_policy=RetryPolicy(max_retries=max_retries, backoff_factor=0),
    )


#: (body bytes, content type, what the error says is wrong)
NOT_A_PAGE = {
    "key missing": (b'{"total": 0}', "application/json", "no `items` in the body"),
    "empty object": (b"{}", "application/json", "no `items` in the body"),
    "null body": (b"null", "application/json", "no `items` in the body"),
    "list is null": (b'{"items": null}', "application/json", "`items` is null"),
    "list is an object": (
        b'{"items": {"id": 1}}',
        "application/json",
        "`items` is an object, not a list of objects",
    ),
    "list is a string": (b'{"items": "none"}', "application/json", "`items` is a string"),
    "rows are not objects": (
        b'{"items": [{"id": 1}, 7]}',
        "application/json",
        "`items` holding a number at position 1, not an object",
    ),
    "html": (HTML_ERROR_PAGE, "text/html", "a body that is not JSON (Expecting value)"),
    "truncated json": (
        b'{"items": [{"id": 1, "name": "a"}, {"id": 2',
        "application/json",
        "JSON cut short",
    ),
    "invalid utf-8": (INVALID_UTF8.replace(b"data", b"items"), "application/json", "not valid"),
    "too deep": (TOO_DEEP, "application/json", "JSON nested too deeply to parse"),
    "empty body": (b"", "application/json", "an empty body, not JSON"),
}


@pytest.mark.parametrize("case", sorted(NOT_A_PAGE))
def test_an_answer_that_is_not_a_page_is_retried_then_fails_with_one_clear_error(
    mocked: responses.RequestsMock, case: str
) -> None:
    body, content_type, reason = NOT_A_PAGE[case]
    mocked.get(ITEMS, body=body, content_type=content_type)

    with pytest.raises(Exception) as raised:
        list(items_resource(http(max_retries=2)))

    error = root_cause(raised.value, InvalidResponseError)
    message = str(error)
    assert len(mocked.calls) == 3  # the first attempt and two retries
    assert message.startswith(
        f"demo: resource `items`: GET {BASE_URL}/items?api_key=*** answered 200 ({content_type}"
    )
    assert reason in message
    assert "after 3 attempt(s)" in message
    assert "\n" not in message and KEY not in message
    assert (error.connector, error.resource, error.status_code) == ("demo", "items", 200)


def test_the_body_excerpt_is_short_one_line_and_masks_secrets_by_value(
    mocked: responses.RequestsMock,
) -> None:
    echoed = json.dumps({"items": None, "note": f"you sent\nkey {KEY}", "pad": "x" * 500})
    mocked.get(ITEMS, body=echoed, content_type="application/json")

    with pytest.raises(Exception) as raised:
        list(items_resource(http(max_retries=0)))

    message = str(root_cause(raised.value, InvalidResponseError))
    assert KEY not in message and "key ***" in message
    body = message.split("Body: ", 1)[1]
    assert body.startswith('\'{"items": null, "note": "you sent\\\\nkey ***"')
    assert body.endswith("…'") and len(body) <= 205


def test_a_bad_page_once_is_retried_and_every_row_loads(mocked: responses.RequestsMock) -> None:
    mocked.get(ITEMS, json={"items": None})
    mocked.get(ITEMS, body=HTML_ERROR_PAGE, content_type="text/html")
    mocked.get(ITEMS, json={"items": ROWS})

    rows = list(items_resource(http(max_retries=2)))

    assert rows == ROWS
    assert len(mocked.calls) == 3


def test_an_empty_list_is_a_page(mocked: responses.RequestsMock) -> None:
    mocked.get(ITEMS, json={"items": []})

    assert list(items_resource(http())) == []
    assert len(mocked.calls) == 1


def test_a_single_object_resource_takes_one_object_and_nothing_else(
    mocked: responses.RequestsMock,
) -> None:
    site = {"id": 9, "name": "Acme"}
    mocked.get(ITEMS, json={"site": site})
    assert list(items_resource(http(), "site", single_object=True)) == [site]

    for wrong, reason in (
        ({"site": [site]}, "`site` is a list, not the one object this resource is"),
        ({"site": None}, "`site` is null, not the one object"),
    ):
        mocked.replace(responses.GET, ITEMS, json=wrong)
        with pytest.raises(Exception) as raised:
            list(items_resource(http(max_retries=0), "site", single_object=True))
        assert reason in str(root_cause(raised.value, InvalidResponseError))


def test_a_list_resource_refuses_a_single_object(mocked: responses.RequestsMock) -> None:
    mocked.get(ITEMS, json={"site": {"id": 9}})

    with pytest.raises(Exception) as raised:
        list(items_resource(http(max_retries=0), "site"))

    assert "`site` is an object, not a list of objects" in str(
        root_cause(raised.value, InvalidResponseError)
    )


def test_the_body_is_parsed_once_for_the_check_dlt_and_the_paginator(
    mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    mocked.get(ITEMS, json={"items": ROWS, "next": None})

    def no_second_parse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("requests parsed the body again")

    # requests' `Response.json()` parses with this; the check's cached document replaces it
    monkeypatch.setattr(requests.models.complexjson, "loads", no_second_parse)
    (resource,) = build_resources(
        http(),
        [{"name": "items", "endpoint": {"path": "/items", "data_selector": "items"}}],
        {"endpoint": {"paginator": {"type": "json_link", "next_url_path": "next"}}},
        file_format=None,
    )

    assert list(resource) == ROWS


def test_a_restclient_caller_puts_the_check_in_its_hooks_and_the_session_runs_it(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(ITEMS, json={"results": None})
    mocked.get(ITEMS, json={"results": ROWS})
    source_http = http()
    client = RESTClient(base_url=BASE_URL, session=source_http.session())
    hooks = {"response": [source_http.page_check("contacts", "results")]}

    pages = list(client.paginate("/items", data_selector="results", hooks=hooks, paginator=None))

    assert [list(page) for page in pages][0] == ROWS
    assert len(mocked.calls) == 2  # the null page was retried by the session


def test_the_check_as_a_plain_hook_raises_on_a_response_no_session_checked() -> None:
    check = PageCheck("demo", "items", "items")
    response = requests.Response()
    response.status_code = 200
    response.url = ITEMS
    response.request = requests.Request("GET", ITEMS).prepare()
    response._content = b'{"items": 3}'
    response.headers["Content-Type"] = "application/json"

    with pytest.raises(InvalidResponseError) as raised:
        check(response)

    assert "`items` is a number, not a list of objects" in str(raised.value)
    assert "after" not in str(raised.value).split("Body")[0]  # no attempts were counted


def test_find_page_check_sees_through_dlt_response_action_hooks() -> None:
    from dlt.sources.rest_api.config_setup import create_response_hooks

    check = PageCheck("demo", "items", "items")
    hooks = create_response_hooks([{"status_code": 404, "action": "ignore"}, check])

    assert find_page_check(hooks) is check
    assert find_page_check({"response": [check]}) is check
    assert find_page_check({"response": []}) is None
    assert find_page_check(None) is None


def test_a_non_2xx_answer_is_left_to_the_error_hooks(mocked: responses.RequestsMock) -> None:
    mocked.get(ITEMS, body="<html>gone</html>", status=404, content_type="text/html")
    session = ConnectorSession("demo", BASE_URL, retry_policy=RetryPolicy(max_retries=0))
    check = PageCheck("demo", "items", "items")
    seen: list[int] = []

    session.get(ITEMS, hooks={"response": [check, lambda r, **_: seen.append(r.status_code)]})

    assert seen == [404]


@pytest.mark.parametrize("where", [795, 798, 799, 1000])
def test_a_secret_across_the_excerpts_cut_shows_none_of_its_characters(where: int) -> None:
    """The excerpt reads 800 bytes and keeps 200 characters: a secret that either cut
    would split is masked before anything is cut or folded."""
    secret = "SeKrEt-9f8e7d6c5b4a"
    check = PageCheck("demo", "items", "items", redactor=Redactor([secret, "two  spaced pw"]))
    response = requests.Response()
    response._content = ("x" * where + secret + " and two  spaced pw " + "y" * 300).encode()

    for limit in (200, where + 5):
        excerpt = check.excerpt(response, limit=limit)
        assert "SeK" not in excerpt and "spaced pw" not in excerpt, excerpt
    assert check.excerpt(response, limit=where + 40).count("***") == 2
