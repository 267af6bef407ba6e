"""shared.http.responses: the per-resource error hook, alone and installed by the builder."""

from __future__ import annotations

import logging

import pytest
import requests
import responses
from dlt.sources.helpers.rest_client.exceptions import IgnoreResponseException

from shared.errors import AuthenticationError, RequestFailedError
from shared.http.auth import api_key_query, bearer_token
from shared.http.responses import error_hook
from shared.http.retries import RetryPolicy
from shared.rest.builder import SourceHttp, build_resources
from shared.rest.paginators import SinglePagePaginator
from tests.failures import root_cause

BASE_URL = "https://api.example.com"
TOKEN = "tok-9f8e7d6c5b4a"


def answer(status: int, url: str, reason: str = "", body: str = "") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    response.url = url
    response.request = requests.Request("GET", url).prepare()
    response._content = body.encode()
    return response


@pytest.mark.parametrize(("status", "reason"), [(401, "Unauthorized"), (403, "Forbidden")])
def test_401_and_403_raise_authentication_error_naming_connector_resource_status_and_key(
    status: int, reason: str
) -> None:
    hook = error_hook("demo", "invoices", secret_keys=["api_token"])

    with pytest.raises(AuthenticationError) as raised:
        hook(answer(status, f"{BASE_URL}/invoices?token={TOKEN}", reason))

    message = str(raised.value)
    assert "demo" in message and "`invoices`" in message and f"{status} {reason}" in message
    assert "sources.demo.api_token" in message and "SOURCES__DEMO__API_TOKEN" in message
    assert TOKEN not in message


def test_other_failures_raise_request_failed_error_with_status_redacted_url_and_body() -> None:
    hook = error_hook("demo", "invoices", secret_keys=[], sensitive_params=["account_key"])
    failed = answer(
        500, f"{BASE_URL}/invoices?page=2&account_key={TOKEN}", "Internal Server Error", "x" * 400
    )
    failed.attempts = 6  # type: ignore[attr-defined]

    with pytest.raises(RequestFailedError) as raised:
        hook(failed)

    message = str(raised.value)
    assert raised.value.status_code == 500
    assert "`invoices`" in message and "500 Internal Server Error" in message
    assert "after 6 attempt(s)" in message
    assert "page=2" in message and "account_key=***" in message and TOKEN not in message
    assert "x" * 300 + "…" in message and "x" * 301 not in message


def test_404_skipped_when_the_parent_may_vanish_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook = error_hook("demo", "employees", secret_keys=[], skip_missing=True)

    with caplog.at_level(logging.WARNING), pytest.raises(IgnoreResponseException):
        hook(answer(404, f"{BASE_URL}/parties/7/people", "Not Found"))

    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "employees" in record.getMessage() and "/parties/7/people" in record.getMessage()


def test_404_fails_when_missing_parents_are_not_expected() -> None:
    hook = error_hook("demo", "employees", secret_keys=[])

    with pytest.raises(RequestFailedError) as raised:
        hook(answer(404, f"{BASE_URL}/parties/7/people", "Not Found"))

    assert raised.value.status_code == 404


@pytest.mark.parametrize("status", [200, 204, 301, 304])
def test_successful_and_redirect_answers_pass_through(status: int) -> None:
    assert error_hook("demo", "invoices", secret_keys=[])(answer(status, BASE_URL)) is None


# -- installed by the builder -----------------------------------------------------------


def one_resource(http: SourceHttp, name: str = "invoices") -> list:
    return build_resources(
        http,
        [{"name": name, "endpoint": {"path": f"/{name}"}}],
        {"endpoint": {"paginator": SinglePagePaginator()}},
    )


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_credentials_fail_the_resource_at_once_without_leaking_the_token(
    status: int, mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(f"{BASE_URL}/invoices", status=status, json={"message": "bad token"})
    http = SourceHttp("demo", BASE_URL, auth=bearer_token(TOKEN), secret_keys=["bearer_token"])
    (invoices,) = one_resource(http)

    with pytest.raises(Exception) as raised:
        list(invoices)

    error = root_cause(raised.value, AuthenticationError)
    message = str(error)
    assert len(mocked.calls) == 1 and sleeps == []
    assert "demo" in message and "`invoices`" in message and str(status) in message
    assert "sources.demo.bearer_token" in message
    assert TOKEN not in message and TOKEN not in str(raised.value)


def test_exhausted_retries_message_counts_the_attempts_of_that_request_only(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(f"{BASE_URL}/users", json=[{"id": 1}])
    mocked.get(f"{BASE_URL}/invoices", status=503)
    http = SourceHttp("demo", BASE_URL, retry_policy=RetryPolicy(max_retries=2))
    session = http.session()
    users, invoices = build_resources(
        http,
        [{"name": "users", "endpoint": "/users"}, {"name": "invoices", "endpoint": "/invoices"}],
        {"endpoint": {"paginator": SinglePagePaginator()}},
        session=session,
    )
    assert list(users) == [{"id": 1}]

    with pytest.raises(Exception) as raised:
        list(invoices)

    error = root_cause(raised.value, RequestFailedError)
    assert error.status_code == 503  # type: ignore[attr-defined]
    assert "after 3 attempt(s)" in str(error)
    assert session.attempts == 4  # the session's own counter still counts everything


def test_failure_message_redacts_the_query_api_key_whatever_the_parameter_is_called(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(f"{BASE_URL}/invoices", status=500, body="boom")
    http = SourceHttp(
        "demo",
        BASE_URL,
        auth=api_key_query(TOKEN, param="hapikey"),
        secret_keys=["api_key"],
        retry_policy=RetryPolicy(max_retries=0),
    )
    (invoices,) = one_resource(http)

    with pytest.raises(Exception) as raised:
        list(invoices)

    error = root_cause(raised.value, RequestFailedError)
    assert "hapikey=***" in str(error)
    assert TOKEN not in str(error) and TOKEN not in str(raised.value)


def test_error_body_echoing_the_request_url_has_its_query_credentials_redacted(
    mocked: responses.RequestsMock,
) -> None:
    echoed = "bad request for /v1/items?user_key=K3Y-0123456789&page=2 (api_key=K3Y-0123456789)"
    mocked.get("https://api.example.com/v1/items", status=400, body=echoed)
    hook = error_hook("demo", "items", ["user_key"], sensitive_params=["user_key"])

    response = requests.get("https://api.example.com/v1/items?user_key=K3Y-0123456789")
    with pytest.raises(RequestFailedError) as raised:
        hook(response)

    message = str(raised.value)
    assert "K3Y-0123456789" not in message
    assert "user_key=***" in message and "api_key=***" in message and "page=2" in message
