"""Authenticators that send credentials only to the origin they belong to.

dlt's own client re-applies auth to every request it sends, including a next-page link
that names another host. Here every authenticator is wrapped in `OriginScopedAuth`,
which applies the credentials only when the request goes to an allowed origin (the
origin of `base_url`; for OAuth2 the token request goes to the token URL's origin).
Requests to any other origin leave without credentials.

The header/query/basic mechanics are dlt's (`BearerTokenAuth`, `APIKeyAuth`,
`HttpBasicAuth`, `OAuth2ClientCredentials`); this module adds the scoping, a scheme word
for API keys (`GenieKey <key>`), and token renewal with a safety margin.

Secrets are cleaned before use: surrounding whitespace and line breaks (a secret read
from a file usually ends in one) are stripped; a secret with a line break or another
control character *inside* it is refused with a `ConfigurationError` that names the
config key, never the value. Every secret, and every token obtained, is registered with
the source's `Redactor` (`attach_redactor`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
from dlt.common.configuration.specs.base_configuration import configspec
from dlt.sources.helpers.rest_client.auth import (
    APIKeyAuth,
    BearerTokenAuth,
    HttpBasicAuth,
    OAuth2ClientCredentials,
)
from requests import PreparedRequest
from requests.auth import AuthBase

from shared.errors import AuthenticationError, ConfigurationError, RequestFailedError, redact_url

# the credential helpers connectors import from here (`require_secret`, ...) live in
# `shared.http.credentials`, below both this module and the session
from shared.http.credentials import (  # noqa: F401
    OriginScopedAuth,
    attach_redactor,
    auth_names,
    auth_secrets,
    clean_secret,
    credentials_in_url,
    has_control_character,
    require_base_url,
    require_secret,
)
from shared.http.retries import RetryPolicy
from shared.http.session import ConnectorSession
from shared.redaction import Redactor


def bearer_token(token: str) -> AuthBase:
    """`Authorization: Bearer <token>`."""
    return BearerTokenAuth(token=clean_secret(token, "the bearer token"))


def api_key_header(
    api_key: str, header: str = "Authorization", scheme: str | None = None
) -> AuthBase:
    """The key in a header: `<header>: <api_key>`, or `<header>: <scheme> <api_key>`.

    Args:
        api_key: the secret.
        header: the header name, e.g. `api_key` or `Authorization`.
        scheme: an optional scheme word such as `GenieKey`.
    """
    api_key = clean_secret(api_key, "the API key")
    value = f"{scheme} {api_key}" if scheme else api_key
    return APIKeyAuth(name=header, api_key=value, location="header")


def api_key_query(api_key: str, param: str = "api_key") -> AuthBase:
    """The key as a query parameter `?<param>=<api_key>`."""
    return APIKeyAuth(name=param, api_key=clean_secret(api_key, "the API key"), location="query")


def http_basic(username: str, password: str) -> AuthBase:
    """HTTP basic authentication."""
    return HttpBasicAuth(
        username=clean_secret(username, "the username"),
        password=clean_secret(password, "the password"),
    )


#: token requests: a few quick retries of 429/5xx (Retry-After honoured), then a clear error
TOKEN_RETRY_POLICY = RetryPolicy(max_retries=3, backoff_factor=1.0, max_wait=30.0)


@configspec
class RenewingClientCredentials(OAuth2ClientCredentials):
    """OAuth2 client credentials that renew the token `expiry_margin` seconds before it
    expires (so a token never expires in flight) and on demand after a `401`.

    The token request goes through a session of its own, scoped to the token URL's
    origin and retried on 429/5xx (`TOKEN_RETRY_POLICY`), not the source's paced data
    session; its failures are reported without the client secret.
    """

    expiry_margin: float = 30.0
    connector: str = "connector"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.session = requests.Session()
        self._lock = threading.Lock()
        self._expires_at = 0.0
        # replaced by the source's redactor when a ConnectorSession takes this auth
        self.redactor = Redactor([self.client_secret])

    def use_redactor(self, redactor: Redactor) -> None:
        """Register the client credentials (and every token obtained from now on) with
        `redactor`, the source's, which also masks the token session's messages."""
        redactor.register(self.client_secret, self.client_id, self.access_token)
        redactor.register_name("Authorization")
        self.redactor = redactor
        if isinstance(self.session, requests.Session) and hasattr(self.session, "redactor"):
            self.session.redactor = redactor

    def __getstate__(self) -> dict[str, Any]:
        # dlt's rest_api deep-copies its client config (this auth included) to validate
        # it; a lock cannot be copied, so a copy gets a lock of its own
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def is_token_expired(self) -> bool:
        return time.monotonic() >= self._expires_at - self.expiry_margin

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        with self._lock:
            if self.access_token is None or self.is_token_expired():
                self.obtain_token()
            token = self.access_token
        request.headers["Authorization"] = f"Bearer {token}"
        return request

    def _token_session(self) -> requests.Session:

        if not isinstance(self.session, ConnectorSession):
            self.session = ConnectorSession(
                self.connector,
                self.access_token_url,
                retry_policy=TOKEN_RETRY_POLICY,
                redactor=self.redactor,
            )
        return self.session

    def renew(self, refused: str | None = None) -> None:
        """Drop the token the server refused; the next request fetches a new one.

        Args:
            refused: the `Authorization` header the refused request carried. When
                another thread has already replaced that token, the current one is
                fresh and is kept: concurrent 401s fetch one new token, not one each.
        """
        with self._lock:
            if refused is None or refused == f"Bearer {self.access_token}":
                self.access_token = None

    def obtain_token(self) -> None:
        """Fetch a token and register it with the source's redactor before any use.

        Every error leaving here is scrubbed with its whole `__cause__`/`__context__`
        chain: dlt stores the chain in its trace, and the token request's own library
        errors carry the token URL and may echo what was sent."""
        try:
            self._obtain_token()
        except BaseException as exc:
            self.redactor.scrub_exception(exc)
            raise

    def _obtain_token(self) -> None:
        url = self.access_token_url
        try:
            response = self._token_session().post(
                url, timeout=60, **self.build_access_token_request()
            )
        except requests.RequestException as exc:
            raise RequestFailedError(
                f"{self.connector}: could not reach the token URL "
                f"{self.redactor.redact(redact_url(url))}: "
                f"{type(exc).__name__}"
            ) from None
        url = self.redactor.redact(url)
        if response.status_code in (400, 401, 403):
            raise AuthenticationError(
                f"{self.connector}: the token URL {redact_url(url)} answered "
                f"{response.status_code}; check `client_id` and `client_secret` "
                f"(sources.{self.connector}.client_id / client_secret)"
            )
        if response.status_code >= 300:
            raise RequestFailedError(
                f"{self.connector}: the token URL {redact_url(url)} answered "
                f"{response.status_code}",
                status_code=response.status_code,
            )
        try:
            payload: dict[str, Any] = response.json()
        except ValueError:
            raise RequestFailedError(
                f"{self.connector}: the token URL {redact_url(url)} answered "
                f"{response.status_code} with a body that is not JSON",
                status_code=response.status_code,
            ) from None
        if not isinstance(payload, dict) or not payload.get("access_token"):
            raise AuthenticationError(
                f"{self.connector}: the token URL {redact_url(url)} returned no access_token"
            )
        token = str(payload["access_token"])
        # registered before it is stored: no message can carry it unmasked
        self.redactor.register(token)
        if has_control_character(token.strip()):
            # the checks a configured secret gets: `http.client` would refuse the header
            # and print it (escaped) in its error
            raise AuthenticationError(
                f"{self.connector}: the token URL {redact_url(url)} returned an access_token "
                "with a line break or another control character inside it, which cannot be "
                "sent in a header (the value is not shown)"
            )
        self.access_token = token.strip()
        self._expires_at = time.monotonic() + self.parse_expiration_in_seconds(payload)


def oauth2_client_credentials(
    token_url: str,
    client_id: str,
    client_secret: str,
    expiry_margin: float = 30.0,
    connector: str = "connector",
) -> AuthBase:
    """OAuth2 client credentials against `token_url`, with renewal before expiry."""
    carried = credentials_in_url(token_url)
    if carried:
        raise ConfigurationError(
            f"{connector}: the token URL carries {carried}; the client id and secret are "
            "sent in the token request's body, never in a URL, which dlt keeps in its "
            "trace and logs (the URL is not shown)"
        )
    return RenewingClientCredentials(
        access_token_url=token_url,
        client_id=clean_secret(client_id, "the OAuth2 client id"),
        client_secret=clean_secret(client_secret, "the OAuth2 client secret"),
        expiry_margin=expiry_margin,
        connector=connector,
    )
