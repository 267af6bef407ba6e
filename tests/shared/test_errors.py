"""shared.errors: the exception family and secret-free messages."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from shared.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    ForeignOriginError,
    RequestFailedError,
    exception_chain,
    redact_url,
    secret_hint,
)


@pytest.mark.parametrize(
    "kind", [ConfigurationError, AuthenticationError, ForeignOriginError, RequestFailedError]
)
def test_every_error_is_a_connector_error(kind: type[Exception]) -> None:
    assert issubclass(kind, ConnectorError)


def test_request_failed_error_keeps_the_status_code() -> None:
    error = RequestFailedError("demo: failed", status_code=503)

    assert error.status_code == 503 and str(error) == "demo: failed"
    assert RequestFailedError("demo: unreachable").status_code is None


@pytest.mark.parametrize("name", ["api_key", "API_KEY", "token", "access_token", "client_secret"])
def test_redact_url_hides_credential_query_parameters(name: str) -> None:
    redacted = redact_url(f"https://api.example.com/v1/items?page=2&{name}=s3cr3t")

    assert "s3cr3t" not in redacted
    assert parse_qs(urlsplit(redacted).query) == {"page": ["2"], name: ["***"]}


def test_redact_url_hides_extra_parameter_names_case_insensitively() -> None:
    redacted = redact_url("https://api.example.com/x?User_Key=s3cr3t&q=a", ["user_key"])

    assert redacted == "https://api.example.com/x?User_Key=***&q=a"


def test_redact_url_leaves_urls_without_credentials_readable() -> None:
    url = "https://api.example.com/v1/items?since=2024-01-01T00:00:00Z&ids=1,2"

    assert redact_url(url) == url


def test_secret_hint_names_config_keys_and_env_vars() -> None:
    assert secret_hint("crm", ["bearer_token"]) == (
        "`sources.crm.bearer_token` (env SOURCES__CRM__BEARER_TOKEN)"
    )
    assert secret_hint("demo", ["client_id", "client_secret"]) == (
        "`sources.demo.client_id` (env SOURCES__DEMO__CLIENT_ID) or "
        "`sources.demo.client_secret` (env SOURCES__DEMO__CLIENT_SECRET)"
    )
    assert secret_hint("demo", []) == "the connector's credentials"


def test_exception_chain_walks_every_link_once_outermost_first() -> None:
    class StepFailed(Exception):
        def __init__(self, exception: BaseException) -> None:
            super().__init__("step failed")
            self.exception = exception

    class PoolError(Exception):
        def __init__(self, reason: BaseException) -> None:
            super().__init__("pool")
            self.reason = reason

    root = OSError("name does not resolve")
    pool = PoolError(root)
    wrapped = ConnectionError(pool)  # requests keeps urllib3's error in its args
    try:
        try:
            raise KeyError("hidden library message")
        except KeyError:
            raise wrapped from None
    except ConnectionError as error:
        step = StepFailed(error)
    root.__context__ = step  # a cycle: walked once

    every = list(exception_chain(step))
    shown = list(exception_chain(step, honour_suppressed_context=True))

    assert [type(e).__name__ for e in every] == [
        "StepFailed",
        "ConnectionError",
        "KeyError",
        "PoolError",
        "OSError",
    ]
    assert [type(e).__name__ for e in shown] == [
        "StepFailed",
        "ConnectionError",
        "PoolError",
        "OSError",
    ]
