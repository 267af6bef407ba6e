"""shared.session: what the session does around every request (origin, hooks, pacing)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import requests
import responses

from shared.auth import api_key_query, bearer_token
from shared.builder import SourceHttp, build_resources
from shared.errors import ForeignOriginError
from shared.paginators import HeaderLinkPaginator
from shared.rate_limit import RateLimit
from shared.retries import RetryPolicy
from shared.session import DEFAULT_TIMEOUT, ConnectorSession
from tests.failures import root_cause

BASE_URL = "https://api.example.com"
FOREIGN = "https://cdn.elsewhere.example"
TOKEN = "tok-1c2d3e4f"


def paged_items(mocked: responses.RequestsMock, next_page: str) -> list:
    """Page 1 on the API, whose Link header points at `next_page`; page 2 there."""
    mocked.get(
        f"{BASE_URL}/items",
        json=[{"id": 1}, {"id": 2}],
        headers={"Link": f'<{next_page}>; rel="next"'},
    )
    mocked.get(next_page, json=[{"id": 3}])
    return [{"name": "items", "endpoint": {"path": "/items", "paginator": HeaderLinkPaginator()}}]


def test_next_page_link_to_another_origin_is_refused_before_it_is_sent(
    mocked: responses.RequestsMock,
) -> None:
    table = paged_items(mocked, f"{FOREIGN}/items?page=2")
    http = SourceHttp("demo", BASE_URL, auth=bearer_token(TOKEN))
    (items,) = build_resources(http, table)

    with pytest.raises(Exception) as raised:
        list(items)

    assert isinstance(root_cause(raised.value, ForeignOriginError), ForeignOriginError)
    assert [call.request.url for call in mocked.calls] == [f"{BASE_URL}/items"]


def test_next_page_link_to_another_origin_is_followed_without_credentials_when_allowed(
    mocked: responses.RequestsMock,
) -> None:
    table = paged_items(mocked, f"{FOREIGN}/items?page=2")
    http = SourceHttp(
        "demo", BASE_URL, auth=bearer_token(TOKEN), foreign_links="follow_without_credentials"
    )
    (items,) = build_resources(http, table)

    assert [row["id"] for row in items] == [1, 2, 3]
    first, second = (call.request for call in mocked.calls)
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert second.url == f"{FOREIGN}/items?page=2"
    assert "Authorization" not in second.headers


def test_next_page_link_on_the_same_origin_keeps_its_credentials(
    mocked: responses.RequestsMock,
) -> None:
    table = paged_items(mocked, f"{BASE_URL}/items?page=2")
    (items,) = build_resources(SourceHttp("demo", BASE_URL, auth=bearer_token(TOKEN)), table)

    assert [row["id"] for row in items] == [1, 2, 3]
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in mocked.calls)


def test_credential_headers_set_by_the_caller_are_stripped_for_a_foreign_origin(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(f"{FOREIGN}/file", body="x")
    session = ConnectorSession("demo", BASE_URL, foreign_links="follow_without_credentials")

    session.get(
        f"{FOREIGN}/file",
        headers={"Authorization": "x", "Proxy-Authorization": "y", "Cookie": "z", "Accept": "*/*"},
    )

    headers = mocked.calls[0].request.headers
    assert not {"Authorization", "Proxy-Authorization", "Cookie"} & set(headers)
    assert headers["Accept"] == "*/*"


def test_netrc_credentials_are_never_picked_up(
    mocked: responses.RequestsMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine cdn.elsewhere.example login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    mocked.get(f"{FOREIGN}/file", body="x")
    # a plain session would read the netrc: proof that the file is in effect
    requests.Session().get(f"{FOREIGN}/file")
    assert "Authorization" in mocked.calls[0].request.headers

    ConnectorSession("demo", BASE_URL, foreign_links="follow_without_credentials").get(
        f"{FOREIGN}/file"
    )

    assert "Authorization" not in mocked.calls[1].request.headers


def test_response_hooks_see_only_the_final_response_after_retries(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(f"{BASE_URL}/items", status=429, headers={"Retry-After": "1"})
    mocked.get(f"{BASE_URL}/items", status=503)
    mocked.get(f"{BASE_URL}/items", json=[])
    seen: list[int] = []
    session = ConnectorSession("demo", BASE_URL, retry_policy=RetryPolicy(backoff_factor=0))

    session.get(f"{BASE_URL}/items", hooks={"response": lambda r, **_: seen.append(r.status_code)})

    assert seen == [200]
    assert len(mocked.calls) == 3


def test_every_request_gets_the_default_timeout_unless_given_one(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(f"{BASE_URL}/items", json=[])
    session = ConnectorSession("demo", BASE_URL)

    session.get(f"{BASE_URL}/items")
    session.get(f"{BASE_URL}/items", timeout=5)

    timeouts = [call.request.req_kwargs["timeout"] for call in mocked.calls]  # type: ignore[attr-defined]
    assert timeouts == [DEFAULT_TIMEOUT, 5]


def test_pacers_wait_only_for_requests_matching_their_path_pattern(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(f"{BASE_URL}/search", json=[])
    mocked.get(f"{BASE_URL}/items", json=[])
    search_limit = RateLimit(1, 9.0, path_pattern=r"^/search", headroom=1.0)
    session = ConnectorSession("demo", BASE_URL, rate_limits=[search_limit])

    for path in ("/search", "/items", "/items", "/search"):
        session.get(f"{BASE_URL}{path}")

    (wait,) = sleeps  # the second search waits for its slot; items never wait
    assert 8.5 < wait <= 9.0
    assert len(mocked.calls) == 4


def test_retry_log_lines_redact_a_query_api_key_whatever_its_name(
    mocked: responses.RequestsMock, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    mocked.get(f"{BASE_URL}/items", status=503)
    mocked.get(f"{BASE_URL}/items", json=[])
    session = ConnectorSession("demo", BASE_URL, auth=api_key_query(TOKEN, param="user_key"))

    with caplog.at_level(logging.WARNING, logger="shared.session"):
        session.get(f"{BASE_URL}/items")

    (line,) = [record.getMessage() for record in caplog.records]
    assert "503" in line and "user_key=***" in line
    assert TOKEN not in caplog.text


def test_follow_without_credentials_drops_credential_query_params_echoed_into_a_foreign_link(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get("https://elsewhere.example/v1/items", json={"data": []})
    session = ConnectorSession(
        "demo",
        "https://api.example.com",
        auth=api_key_query("KEY-0123456789", param="user_key"),
        foreign_links="follow_without_credentials",
    )

    session.get("https://elsewhere.example/v1/items?page=2&user_key=KEY-0123456789&api_key=x")

    (call,) = mocked.calls
    assert "KEY-0123456789" not in call.request.url
    assert "api_key" not in call.request.url and "page=2" in call.request.url
