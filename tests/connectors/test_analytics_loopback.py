"""analytics against its fake server over loopback HTTP: auth modes, token renewal,
retries and configuration errors (../shared/api-contracts/analytics.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TypeVar

import dlt
import pytest
from requests import Response

from connectors.analytics import analytics_source, retry_policy
from connectors.sandbox.analytics import (
    API_KEY,
    API_KEY_AUTH,
    CLIENT_ID,
    CLIENT_SECRET,
    OAUTH_AUTH,
    TOKEN_PREFIX,
    AnalyticsFake,
)
from connectors.sandbox.base import Fault, LoggedRequest
from shared.errors import AuthenticationError, ConfigurationError, RequestFailedError
from shared.loading import run_source
from tests.dataset import count, query
from tests.failures import root_cause

pytestmark = pytest.mark.loopback
PAGE_VIEWS = {"name": "page_views", "path": "/v1/pageviews"}
SECRETS = (API_KEY, CLIENT_ID, CLIENT_SECRET, TOKEN_PREFIX)
E = TypeVar("E", bound=BaseException)


@pytest.fixture
def fake() -> Iterator[AnalyticsFake]:
    with AnalyticsFake() as server:
        yield server


def sync(
    pipeline: dlt.Pipeline, fake: AnalyticsFake, resources: Any = ("events",), **kwargs: Any
) -> Any:
    source = analytics_source(base_url=fake.base_url, resources=list(resources), **kwargs)
    return run_source(pipeline, source)


def assert_no_secret(message: str) -> None:
    for secret in SECRETS:
        assert secret not in message


def bearer(request: LoggedRequest) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")


# -- api key -------------------------------------------------------------------------


def test_api_key_is_sent_as_the_api_key_query_parameter_on_every_page(
    pipeline: dlt.Pipeline, fake: AnalyticsFake
) -> None:
    sync(pipeline, fake, ["events", "users"], **API_KEY_AUTH)

    data = fake.data_requests()
    assert len(data) == 6  # 100, 100, 50 events; 100, 100, 0 users
    assert all(r.args["api_key"] == API_KEY for r in data)
    assert fake.key_headers == []
    assert not any("Authorization" in r.headers for r in data)
    assert count(pipeline, "events") == len(fake.data["events"])
    assert count(pipeline, "users") == len(fake.data["users"])


def test_api_key_location_header_sends_a_header_named_api_key_and_no_query_parameter(
    pipeline: dlt.Pipeline, fake: AnalyticsFake
) -> None:
    sync(pipeline, fake, ["events"], api_key_location="header", **API_KEY_AUTH)

    data = fake.data_requests()
    assert len(data) == 3
    assert fake.key_headers == ["api_key"] * 3  # the header's exact name
    assert all("api_key" not in r.args for r in data)
    assert count(pipeline, "events") == len(fake.data["events"])


def test_rejected_api_key_fails_at_once_naming_the_config_key_never_the_key(
    pipeline: dlt.Pipeline, fake: AnalyticsFake
) -> None:
    fake.api_key = "a-different-key"

    with pytest.raises(Exception) as caught:
        sync(pipeline, fake, ["events"], **API_KEY_AUTH)

    error = root_cause(caught.value, AuthenticationError)
    assert [r.status for r in fake.requests] == [401]  # no retry, nothing to renew
    assert "401" in str(error) and "sources.analytics.api_key" in str(error)
    assert "api_key=***" in str(error)
    assert_no_secret(str(caught.value))


# -- OAuth2 client credentials -------------------------------------------------------


def test_oauth_token_is_fetched_once_and_reused_while_it_is_valid(
    pipeline: dlt.Pipeline, fake: AnalyticsFake
) -> None:
    sync(pipeline, fake, ["events", "users"], **OAUTH_AUTH)

    (token_request,) = fake.token_requests()
    assert dict(token_request.args) == {}
    form = dict(item.split("=", 1) for item in token_request.body.decode().split("&"))
    assert form == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    data = fake.data_requests()
    assert len(data) == 6
    assert {bearer(r) for r in data} == {f"{TOKEN_PREFIX}0001"}
    assert all("api_key" not in r.args for r in data)
    assert count(pipeline, "users") == len(fake.data["users"])


def test_token_living_shorter_than_the_margin_is_renewed_before_every_request(
    pipeline: dlt.Pipeline, fake: AnalyticsFake
) -> None:
    fake.token_lifetime = 1

    sync(pipeline, fake, ["events", "users"], expiry_margin=5, **OAUTH_AUTH)

    data = fake.data_requests()
    assert len(fake.token_requests()) == len(data) == 6
    assert len({bearer(r) for r in data}) == 6
    assert [r.status for r in data] == [200] * 6


def test_token_expiring_mid_sync_is_renewed_before_expiry_so_no_request_gets_401(
    pipeline: dlt.Pipeline,
) -> None:
    # tokens live 2 s and are renewed 1.2 s early (a margin far above a request's round
    # trip), so each serves 0.8 s; 15 pages at 0.1 s each outlive at least two
    with AnalyticsFake(events=1450, token_lifetime=2.0, latency=0.1) as fake:
        sync(pipeline, fake, ["events"], expiry_margin=1.2, **OAUTH_AUTH)

    data = fake.data_requests()
    assert len(data) == 15
    assert [r.status for r in data] == [200] * 15
    tokens_used = [bearer(r) for r in data]
    assert 2 <= len(fake.token_requests()) < len(data)  # renewed mid-sync, yet reused
    assert len(set(tokens_used)) == len(fake.token_requests())
    assert count(pipeline, "events") == 1450


def test_token_revoked_mid_sync_is_renewed_exactly_once_and_the_sync_completes(
    pipeline: dlt.Pipeline, fake: AnalyticsFake
) -> None:
    fake.revoke_after = 2  # the third data request finds every token revoked

    sync(pipeline, fake, ["events", "users"], **OAUTH_AUTH)

    data = fake.data_requests()
    statuses = [r.status for r in data]
    assert statuses.count(401) == 1 and statuses.index(401) == 2
    rejected, repeated = data[2], data[3]
    assert (repeated.path, repeated.args) == (rejected.path, rejected.args)
    assert bearer(rejected) == f"{TOKEN_PREFIX}0001" and bearer(repeated) == f"{TOKEN_PREFIX}0002"
    assert len(fake.token_requests()) == 2
    assert count(pipeline, "events") == len(fake.data["events"])
    assert count(pipeline, "users") == len(fake.data["users"])
    assert query(pipeline, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM events") == [(0,)]


def test_token_rejected_again_after_renewal_fails_after_exactly_one_renewal(
    pipeline: dlt.Pipeline, fake: AnalyticsFake
) -> None:
    fake.accept_tokens = False

    with pytest.raises(Exception) as caught:
        sync(pipeline, fake, ["events"], **OAUTH_AUTH)

    error = root_cause(caught.value, AuthenticationError)
    assert len(fake.token_requests()) == 2
    assert [r.status for r in fake.data_requests()] == [401, 401]
    assert "sources.analytics.client_id" in str(error)
    assert "sources.analytics.client_secret" in str(error)
    assert_no_secret(str(caught.value))


def test_wrong_client_secret_fails_at_the_token_url_before_any_data_request(
    pipeline: dlt.Pipeline, fake: AnalyticsFake
) -> None:
    fake.client_secret = "another-secret"

    with pytest.raises(Exception) as caught:
        sync(pipeline, fake, ["events"], **OAUTH_AUTH)

    error = root_cause(caught.value, AuthenticationError)
    assert [r.status for r in fake.token_requests()] == [401]
    assert fake.data_requests() == []
    assert "/oauth/token" in str(error) and "client_secret" in str(error)
    assert_no_secret(str(caught.value))


def test_absolute_token_url_is_used_as_given(pipeline: dlt.Pipeline, fake: AnalyticsFake) -> None:
    auth = {**OAUTH_AUTH, "token_url": f"{fake.base_url}/oauth/token"}

    sync(pipeline, fake, [PAGE_VIEWS], **auth)

    assert len(fake.token_requests()) == 1
    assert count(pipeline, "page_views") == len(fake.data["page_views"])


# -- exactly one auth mode -----------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({}, "no credentials configured"),
        ({**API_KEY_AUTH, **OAUTH_AUTH}, "both `api_key` and OAuth2"),
        ({**API_KEY_AUTH, "client_id": CLIENT_ID}, "both `api_key` and OAuth2"),
        ({**API_KEY_AUTH, "token_url": "/oauth/token"}, "both `api_key` and OAuth2"),
        ({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, "missing"),
        ({"client_id": CLIENT_ID, "token_url": "/oauth/token"}, "sources.analytics.client_secret"),
        ({"api_key": "   "}, "no credentials configured"),
        ({**API_KEY_AUTH, "api_key_location": "cookie"}, "api_key_location"),
    ],
    ids=[
        "neither",
        "both",
        "api-key-and-client-id",
        "api-key-and-token-url",
        "oauth-without-token-url",
        "oauth-without-secret",
        "blank-api-key",
        "unknown-key-location",
    ],
)
def test_auth_configuration_errors_are_raised_before_any_request(
    fake: AnalyticsFake, auth: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        analytics_source(base_url=fake.base_url, resources=["events"], **auth)

    assert expected in str(caught.value)
    assert str(caught.value).startswith("analytics: ")
    assert_no_secret(str(caught.value))
    assert fake.requests == []


def test_neither_auth_mode_in_dlt_config_is_our_configuration_error(
    fake: AnalyticsFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__ANALYTICS__BASE_URL", fake.base_url)
    monkeypatch.setenv("SOURCES__ANALYTICS__RESOURCES", '["events"]')

    with pytest.raises(ConfigurationError, match="no credentials configured"):
        analytics_source()
    assert fake.requests == []


def test_credentials_and_resources_come_from_dlt_config(
    pipeline: dlt.Pipeline, fake: AnalyticsFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__ANALYTICS__BASE_URL", fake.base_url)
    monkeypatch.setenv("SOURCES__ANALYTICS__RESOURCES", json.dumps([PAGE_VIEWS]))
    monkeypatch.setenv("SOURCES__ANALYTICS__CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SOURCES__ANALYTICS__CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SOURCES__ANALYTICS__TOKEN_URL", "/oauth/token")

    run_source(pipeline, analytics_source())

    assert len(fake.token_requests()) == 1
    assert [r.path for r in fake.data_requests()] == ["/v1/pageviews"]


# -- retries -------------------------------------------------------------------------


def response_with(headers: dict[str, str]) -> Response:
    response = Response()
    response.status_code = 503
    response.headers.update(headers)
    return response


def test_retry_policy_is_the_seeds_statuses_three_retries_and_backoff_2_4_8() -> None:
    policy = retry_policy()

    assert policy.statuses == {429, 500, 502, 503, 504}
    assert policy.max_retries == 3
    assert [policy.wait_seconds(response_with({}), n) for n in (1, 2, 3)] == [2, 4, 8]
    assert policy.wait_seconds(response_with({"Retry-After": "7"}), 1) == 7


def test_retry_exhaustion_is_one_attempt_plus_three_retries_then_a_clear_redacted_error(
    pipeline: dlt.Pipeline, fake: AnalyticsFake
) -> None:
    fake.inject(
        Fault(503, {"error": "unavailable"}, {"Retry-After": "0"}, path="/v1/events", times=99)
    )

    with pytest.raises(Exception) as caught:
        sync(pipeline, fake, ["events"], **API_KEY_AUTH)

    error = root_cause(caught.value, RequestFailedError)
    assert [r.status for r in fake.requests] == [503] * 4
    assert error.status_code == 503
    message = str(error)
    assert "503" in message and "after 4 attempt(s)" in message
    assert f"{fake.base_url}/v1/events?" in message and "api_key=***" in message
    assert_no_secret(str(caught.value))


def test_every_retryable_status_is_retried_without_losing_or_duplicating_rows(
    pipeline: dlt.Pipeline, fake: AnalyticsFake
) -> None:
    for status in (429, 500, 502):  # three failures: the third retry succeeds
        fake.inject(Fault(status, {"error": "x"}, {"Retry-After": "0"}, path="/v1/events"))
    for status in (503, 504):
        fake.inject(Fault(status, {"error": "x"}, {"Retry-After": "0"}, path="/v1/users"))

    sync(pipeline, fake, ["events", "users"], **API_KEY_AUTH)

    events = [r.status for r in fake.requests_to("/v1/events")]
    users = [r.status for r in fake.requests_to("/v1/users")]
    assert events == [429, 500, 502, 200, 200, 200]
    assert users == [503, 504, 200, 200, 200]
    assert count(pipeline, "events") == len(fake.data["events"])
    assert count(pipeline, "users") == len(fake.data["users"])
    assert query(pipeline, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM users") == [(0,)]


@pytest.mark.parametrize("status", [400, 404, 501])
def test_a_status_outside_the_seeds_list_fails_without_retrying(
    pipeline: dlt.Pipeline, fake: AnalyticsFake, status: int
) -> None:
    fake.inject(Fault(status, {"error": "nope"}, path="/v1/events"))

    with pytest.raises(Exception) as caught:
        sync(pipeline, fake, ["events"], **API_KEY_AUTH)

    assert root_cause(caught.value, RequestFailedError).status_code == status
    assert [r.status for r in fake.requests] == [status]


def test_backoff_waits_two_seconds_without_retry_after_and_retry_after_overrides_it(
    pipeline: dlt.Pipeline, fake: AnalyticsFake
) -> None:
    fake.inject(Fault(429, {"error": "slow down"}, path="/v1/events"))
    fake.inject(Fault(503, {"error": "busy"}, {"Retry-After": "1"}, path="/v1/pageviews"))

    sync(pipeline, fake, ["events", PAGE_VIEWS], **API_KEY_AUTH)

    def gap_after_first(path: str) -> float:
        times = [at for r, at in zip(fake.requests, fake.arrivals, strict=True) if r.path == path]
        return times[1] - times[0]

    assert 2.0 <= gap_after_first("/v1/events") < 3.0  # backoff factor 2: 2 s first
    assert 1.0 <= gap_after_first("/v1/pageviews") < 1.9  # Retry-After: 1 wins
    assert count(pipeline, "page_views") == len(fake.data["page_views"])


# -- resources -----------------------------------------------------------------------


def test_resource_mapping_sets_path_key_disposition_and_incremental_parameter(
    pipeline: dlt.Pipeline, fake: AnalyticsFake
) -> None:
    resources = [
        {
            "name": "signups",
            "path": "/v1/events",
            "primary_key": ["id"],
            "write_disposition": "append",
        },
        {
            "name": "users",
            "primary_key": "id",
            "incremental": {
                "cursor_path": "updated_at",
                "param": "updated_since",
                "initial_value": "2024-05-02T09:00:00Z",
            },
        },
    ]

    sync(pipeline, fake, resources, **API_KEY_AUTH)
    sync(pipeline, fake, resources, **API_KEY_AUTH)

    # appended twice; merged users sent the initial value, then the stored maximum
    assert count(pipeline, "signups") == 2 * len(fake.data["events"])
    expected_users = [u for u in fake.data["users"] if u["updated_at"] >= "2024-05-02T09:00:00Z"]
    assert 0 < count(pipeline, "users") == len(expected_users) < len(fake.data["users"])
    sent = [
        r.args["updated_since"] for r in fake.requests_to("/v1/users") if r.args["offset"] == "0"
    ]
    assert sent == ["2024-05-02T09:00:00Z", max(u["updated_at"] for u in fake.data["users"])]
    tables = pipeline.default_schema.tables
    assert (tables["signups"]["write_disposition"], tables["users"]["write_disposition"]) == (
        "append",
        "merge",
    )


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ([], "is empty"),
        ("events", "must be a list"),
        ([42], "entry 0 must be a resource name or a mapping, got int"),
        (["events", ""], "entry 1: `name` must be a non-empty string"),
        ([{"path": "/v1/events"}], "entry 0: `name` must be a non-empty string"),
        ([{"name": "events", "colour": "red"}], "unknown key(s) ['colour']"),
        ([{"name": "events", "write_disposition": "upsert"}], "write_disposition must be one of"),
        ([{"name": "events", "primary_key": []}], "primary_key must be"),
        ([{"name": "users", "incremental": "updated_at"}], "incremental must be a mapping"),
        ([{"name": "users", "incremental": {"param": "since"}}], "`incremental.cursor_path`"),
        ([{"name": "users", "incremental": {"cursor_path": "u"}}], "`incremental.param`"),
        ([{"name": "u", "incremental": {"cursor_path": "u", "param": "s", "lag": 1}}], "['lag']"),
        (["events", {"name": "events", "path": "/v2/events"}], "names 'events' more than once"),
    ],
)
def test_bad_resource_entries_are_configuration_errors_before_any_request(
    fake: AnalyticsFake, resources: Any, expected: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        analytics_source(base_url=fake.base_url, resources=resources, **API_KEY_AUTH)

    assert expected in str(caught.value)
    assert "sources.analytics.resources" in str(caught.value)
    assert fake.requests == []
