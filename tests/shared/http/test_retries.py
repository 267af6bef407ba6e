"""shared.http.retries: a per-source retry policy, and the session retrying by it.

`time.sleep` is patched (the `sleeps` fixture) so every wait is recorded, not slept.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
import responses

from shared.http.auth import api_key_query
from shared.http.retries import RetryPolicy, parse_retry_after
from shared.http.session import ConnectorSession

BASE_URL = "https://api.example.com"
ITEMS = f"{BASE_URL}/items"


def answer(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return response


def http_date_in(seconds: float) -> str:
    return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=seconds), usegmt=True)


def session(policy: RetryPolicy) -> ConnectorSession:
    return ConnectorSession("demo", BASE_URL, retry_policy=policy)


# -- the policy ---------------------------------------------------------------------------


def test_backoff_doubles_from_the_factor_and_is_capped_by_max_wait() -> None:
    policy = RetryPolicy(backoff_factor=0.5, max_wait=3.0)

    assert [policy.wait_seconds(answer(503), n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.wait_seconds(None, 2) == 1.0  # a connection error: backoff too


def test_retry_after_seconds_is_the_wait() -> None:
    assert RetryPolicy().wait_seconds(answer(429, {"Retry-After": "7"}), 1) == 7.0


def test_retry_after_http_date_is_the_seconds_until_that_date() -> None:
    wait = RetryPolicy().wait_seconds(answer(503, {"Retry-After": http_date_in(30)}), 1)

    assert 28.5 <= wait <= 30.0  # the date has whole seconds


def test_retry_after_a_moment_ago_means_retry_now() -> None:
    assert RetryPolicy().wait_seconds(answer(429, {"Retry-After": http_date_in(-2)}), 3) == 0.0


@pytest.mark.parametrize(
    "value",
    ["-5", "-0.5", "soon", "", "nan", "inf", "Tue, 99 Foo 2024 99:99:99 GMT", "PAST"],
)
def test_unusable_retry_after_falls_back_to_the_backoff_not_retry_now(value: str) -> None:
    if value == "PAST":
        value = http_date_in(-3600)  # a date long past
    policy = RetryPolicy(backoff_factor=0.5)

    assert policy.wait_seconds(answer(429, {"Retry-After": value}), 3) == 2.0  # 0.5 * 2**2
    assert policy.wait_seconds(answer(503, {"Retry-After": value}), 1) == 0.5


def test_unparseable_retry_after_falls_back_to_backoff() -> None:
    policy = RetryPolicy(backoff_factor=2.0)

    assert policy.wait_seconds(answer(429, {"Retry-After": "soon-ish"}), 2) == 4.0


def test_reset_header_epoch_seconds_is_waited_for() -> None:
    policy = RetryPolicy(retry_after_header=None, reset_header="X-RateLimit-Reset")
    reset = str(int(time.time()) + 20)

    wait = policy.wait_seconds(answer(429, {"X-RateLimit-Reset": reset}), 1)

    assert 19.9 <= wait <= 21.1  # the reset, plus a second's slack


def test_period_header_is_waited_for_when_no_other_header_names_a_wait() -> None:
    policy = RetryPolicy(reset_header="X-RateLimit-Reset", period_header="X-RateLimit-Period")

    assert policy.wait_seconds(answer(429, {"X-RateLimit-Period": "6"}), 1) == 6.0
    # Retry-After comes first when both are there
    both = answer(429, {"X-RateLimit-Period": "6", "Retry-After": "2"})
    assert policy.wait_seconds(both, 1) == 2.0


def test_a_header_asking_for_longer_than_max_wait_is_bounded() -> None:
    policy = RetryPolicy(max_wait=10.0, reset_header="X-RateLimit-Reset")

    assert policy.wait_seconds(answer(429, {"Retry-After": "3600"}), 1) == 10.0
    far_reset = {"X-RateLimit-Reset": str(int(time.time()) + 86_400)}
    assert policy.wait_seconds(answer(429, far_reset), 1) == 10.0


def test_wait_hint_is_consulted_when_no_header_names_a_wait() -> None:
    def milliseconds_header(response: requests.Response) -> float | None:
        value = response.headers.get("X-Wait-Ms")
        return float(value) / 1000 if value else None

    policy = RetryPolicy(wait_hint=milliseconds_header)

    assert policy.wait_seconds(answer(429, {"X-Wait-Ms": "1500"}), 1) == 1.5
    assert policy.wait_seconds(answer(429), 3) == 4.0  # no hint: backoff


def test_statuses_are_per_source() -> None:
    only_rate_limits = RetryPolicy(statuses=frozenset({429}))

    assert only_rate_limits.should_retry(answer(429))
    assert not only_rate_limits.should_retry(answer(503))
    assert RetryPolicy().should_retry(answer(503))
    assert not RetryPolicy().should_retry(answer(401))
    assert not RetryPolicy().should_retry(answer(403))


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), (" 12 ", 12.0), ("1.5", 1.5)])
def test_parse_retry_after_reads_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value) == seconds


# -- the session retrying by the policy ------------------------------------------------


def test_persistent_503_is_tried_exactly_max_retries_plus_one_times(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(ITEMS, status=503)
    http = session(RetryPolicy(max_retries=3, backoff_factor=0.5))

    response = http.get(ITEMS)

    assert response.status_code == 503  # handed on to the error hooks
    assert len(mocked.calls) == 4
    assert http.attempts == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_a_retried_status_that_clears_returns_the_good_response(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(ITEMS, status=502)
    mocked.get(ITEMS, status=429, headers={"Retry-After": "3"})
    mocked.get(ITEMS, json=[{"id": 1}])

    response = session(RetryPolicy(backoff_factor=0.25)).get(ITEMS)

    assert response.json() == [{"id": 1}]
    assert len(mocked.calls) == 3
    assert sleeps == [0.25, 3.0]


def test_session_waits_until_the_retry_after_http_date(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(ITEMS, status=503, headers={"Retry-After": http_date_in(45)})
    mocked.get(ITEMS, json=[])

    session(RetryPolicy()).get(ITEMS)

    (wait,) = sleeps
    assert 43.5 <= wait <= 45.0


def test_session_waits_for_the_epoch_reset_header(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    reset = str(int(time.time()) + 8)
    mocked.get(ITEMS, status=429, headers={"X-RateLimit-Reset": reset})
    mocked.get(ITEMS, json=[])

    session(RetryPolicy(retry_after_header=None, reset_header="X-RateLimit-Reset")).get(ITEMS)

    (wait,) = sleeps
    assert 7.9 <= wait <= 9.1


def test_session_waits_for_the_period_header(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(ITEMS, status=429, headers={"X-RateLimit-Interval": "6"})
    mocked.get(ITEMS, json=[])

    session(RetryPolicy(period_header="X-RateLimit-Interval")).get(ITEMS)

    assert sleeps == [6.0]


def test_session_never_waits_longer_than_max_wait(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(ITEMS, status=429, headers={"Retry-After": "86400"})
    mocked.get(ITEMS, json=[])

    session(RetryPolicy(max_wait=5.0)).get(ITEMS)

    assert sleeps == [5.0]


def test_status_outside_the_policy_is_not_retried(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(ITEMS, status=500)

    response = session(RetryPolicy(statuses=frozenset({429}))).get(ITEMS)

    assert response.status_code == 500
    assert len(mocked.calls) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_not_retried(
    status: int, mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(ITEMS, status=status)

    response = session(RetryPolicy()).get(ITEMS)

    assert response.status_code == status
    assert len(mocked.calls) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "error", [requests.ConnectionError("connection reset"), requests.Timeout("read timed out")]
)
def test_connection_errors_and_timeouts_are_retried(
    error: Exception, mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(ITEMS, body=error)
    mocked.get(ITEMS, json=[{"id": 1}])

    response = session(RetryPolicy(backoff_factor=0.1)).get(ITEMS)

    assert response.json() == [{"id": 1}]
    assert len(mocked.calls) == 2
    assert sleeps == [0.1]


def test_persistent_connection_error_is_raised_after_max_retries_plus_one_attempts(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(ITEMS, body=requests.ConnectionError("refused"))
    http = session(RetryPolicy(max_retries=2, backoff_factor=1.0))

    with pytest.raises(requests.ConnectionError):
        http.get(ITEMS)

    assert len(mocked.calls) == 3
    assert sleeps == [1.0, 2.0]


def test_connection_errors_fail_at_once_when_the_policy_says_so(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(ITEMS, body=requests.ConnectionError("refused"))

    with pytest.raises(requests.ConnectionError):
        session(RetryPolicy(retry_connection_errors=False)).get(ITEMS)

    assert len(mocked.calls) == 1
    assert sleeps == []


# -- rate-limit windows that reset far ahead ----------------------------------------------


def test_the_wait_for_a_rate_limit_reset_has_its_own_cap_apart_from_the_backoff_cap() -> None:
    policy = RetryPolicy(
        max_wait=120.0, reset_header="X-RateLimit-Reset", max_rate_limit_wait=3600.0
    )
    in_half_an_hour = answer(429, {"X-RateLimit-Reset": str(int(time.time()) + 1800)})
    in_two_hours = answer(429, {"X-RateLimit-Reset": str(int(time.time()) + 7200)})

    assert 1799.0 <= policy.wait_seconds(in_half_an_hour, 1) <= 1801.1
    assert policy.wait_seconds(in_two_hours, 1) == 3600.0
    assert policy.wait_seconds(answer(503), 10) == 120.0  # the backoff keeps its own cap
    # a 200's reset header says nothing about waiting
    assert policy.wait_seconds(answer(503, {"X-RateLimit-Reset": "9999999999"}), 1) == 1.0


def test_session_waits_out_an_hour_long_reset_and_says_why_in_a_warning(
    mocked: responses.RequestsMock,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    reset = int(time.time()) + 3000
    mocked.get(ITEMS, status=429, headers={"X-RateLimit-Reset": str(reset)})
    mocked.get(ITEMS, json=[])
    secret = "tok-5e6f7a8b9c0d"
    policy = RetryPolicy(
        retry_after_header=None, reset_header="X-RateLimit-Reset", max_rate_limit_wait=3600.0
    )
    long_wait = ConnectorSession(
        "demo", BASE_URL, auth=api_key_query(secret, param="key"), retry_policy=policy
    )

    with caplog.at_level(logging.WARNING, logger="shared.http.session"):
        long_wait.get(ITEMS)

    (slept,) = sleeps
    assert 2999.0 <= slept <= 3001.1
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert lines[1].startswith(f"demo: waiting {slept:.0f} s (until ")
    assert "UTC) before retrying https://api.example.com/items?key=***" in lines[1]
    assert (
        "rate-limit window resets then (X-RateLimit-Reset; waits are capped at 3600 s)"
        in (lines[1])
    )
    assert secret not in caplog.text
