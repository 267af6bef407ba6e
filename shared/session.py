"""The `requests.Session` every connector's requests go through.

For each request it:

1. refuses (or strips credentials from) a URL outside the origin of `base_url`;
2. waits for the source's rate-limit pacers;
3. sends, and retries per the source's `RetryPolicy` (statuses, connection errors,
   `Retry-After` / reset / period headers, exponential backoff, bounded waits);
4. on a `401`, renews a renewable credential (OAuth2) once and sends again;
5. only then runs the response hooks (dlt's and the connector's error handling), so a
   429 that a retry cures never reaches them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
import tenacity
from dlt.sources.helpers.rest_client.auth import APIKeyAuth
from dlt.sources.helpers.rest_client.redaction import SENSITIVE_PARAMS
from requests import PreparedRequest, Response
from requests.hooks import default_hooks, dispatch_hook

from shared.auth import OriginScopedAuth, auth_secrets
from shared.errors import ForeignOriginError, redact_url
from shared.origins import origin_of
from shared.rate_limit import RateLimit, pacers_for
from shared.redaction import Redactor
from shared.retries import RetryPolicy

logger = logging.getLogger(__name__)

ForeignLinks = Literal["refuse", "follow_without_credentials"]
DEFAULT_TIMEOUT = 60.0


class ConnectorSession(requests.Session):
    """A session bound to one source: its origin, auth, retry policy and rate limits.

    Args:
        connector: the connector's name, used in messages.
        base_url: the API's base URL; credentials go only to its origin.
        auth: the authenticator (wrapped in `OriginScopedAuth` if it is not already).
        retry_policy: which responses to retry and how long to wait.
        rate_limits: limits to pace requests under, shared by all threads using this session.
        foreign_links: what to do with a request outside the origin of `base_url`:
            `"refuse"` (default) raises `ForeignOriginError` before anything is sent;
            `"follow_without_credentials"` sends it with no credentials attached.
        sensitive_params: query parameter names to redact in logs and messages.
        redactor: the source's redactor (secrets by value); one is made from `auth`'s
            secrets when none is given.
        rate_limit_backend: where the pacers keep their slots: None for this process
            only, or a shared backend URL (`shared.rate_limit.pacers_for`).
    """

    def __init__(
        self,
        connector: str,
        base_url: str,
        auth: Any = None,
        retry_policy: RetryPolicy | None = None,
        rate_limits: Sequence[RateLimit] = (),
        foreign_links: ForeignLinks = "refuse",
        sensitive_params: Sequence[str] = (),
        redactor: Redactor | None = None,
        rate_limit_backend: str | None = None,
    ) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()
        self.redactor.register(*auth_secrets(auth))
        self.connector = connector
        self.base_url = base_url
        self.origin = origin_of(base_url)
        if auth is not None and not isinstance(auth, OriginScopedAuth):
            auth = OriginScopedAuth(auth, base_url)
        self.auth = auth
        self.retry_policy = retry_policy or RetryPolicy()
        self.pacers = pacers_for(connector, rate_limits, rate_limit_backend)
        self.foreign_links = foreign_links
        self.sensitive_params = (*sensitive_params, *query_credential_names(auth))
        self.attempts = 0  # every request sent, retries included; read by tests and progress
        # requests' env proxy/netrc lookups are neither wanted nor safe for scoped credentials
        self.trust_env = False

    def redact(self, url: str) -> str:
        return self.redactor.redact(redact_url(url, self.sensitive_params))

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        url = request.url or ""
        if origin_of(url) != self.origin:
            if self.foreign_links == "refuse":
                raise ForeignOriginError(
                    f"{self.connector}: refusing to request {self.redact(url)}: it is outside "
                    f"the origin of base_url ({self.origin}), and credentials are only sent "
                    "there. A connector that trusts such links builds its SourceHttp with "
                    "foreign_links='follow_without_credentials' to follow them without "
                    "credentials."
                )
            strip_credentials(request, self.sensitive_params)
        if kwargs.get("timeout") is None:  # requests' own get/post pass timeout=None
            kwargs["timeout"] = DEFAULT_TIMEOUT
        hooks, request.hooks = request.hooks, default_hooks()
        response = self._send_with_retries(request, **kwargs)
        return dispatch_hook("response", hooks, response, **kwargs)

    def _send_with_retries(self, request: PreparedRequest, **kwargs: Any) -> Response:
        policy = self.retry_policy
        renewed = False
        sent = 0

        def attempt() -> Response:
            nonlocal renewed, sent
            response = self._send_paced(request, **kwargs)
            sent += 1
            if (
                response.status_code == 401
                and not renewed
                and origin_of(request.url or "") == self.origin  # a foreign 401 is not ours
                and self._renew_credentials()
            ):
                renewed = True
                logger.info("%s: 401, renewed the credentials and retrying once", self.connector)
                assert isinstance(self.auth, OriginScopedAuth)
                self.auth(request)
                response = self._send_paced(request, **kwargs)
                sent += 1
            # this request's attempts (not the session's), named when it finally fails
            response.attempts = sent  # type: ignore[attr-defined]
            return response

        def wait(state: tenacity.RetryCallState) -> float:
            outcome = state.outcome
            response = None if outcome is None or outcome.failed else outcome.result()
            return policy.wait_seconds(response, state.attempt_number)

        def log_retry(state: tenacity.RetryCallState) -> None:
            # called only when a retry really follows
            outcome = state.outcome
            assert outcome is not None  # tenacity sets it before calling before_sleep
            what = (
                type(outcome.exception()).__name__
                if outcome.failed
                else outcome.result().status_code
            )
            logger.warning(
                "%s: %s from %s; retry %d of %d in %.2fs",
                self.connector,
                what,
                self.redact(request.url or ""),
                state.attempt_number,
                policy.max_retries,
                state.next_action.sleep if state.next_action else 0.0,
            )

        retry_on: tenacity.retry_base = tenacity.retry_if_result(policy.should_retry)
        if policy.retry_connection_errors:
            retry_on = retry_on | tenacity.retry_if_exception_type(
                (requests.ConnectionError, requests.Timeout)
            )
        retrying = tenacity.Retrying(
            retry=retry_on,
            stop=tenacity.stop_after_attempt(policy.max_retries + 1),
            wait=wait,
            before_sleep=log_retry,
            reraise=True,
            # out of retries on a status: hand the last response to the hooks, which
            # turn it into a clear error
            retry_error_callback=lambda state: state.outcome.result(),  # type: ignore[union-attr]
        )
        return retrying(attempt)

    def _send_paced(self, request: PreparedRequest, **kwargs: Any) -> Response:
        path = urlsplit(request.url or "").path
        for pacer in self.pacers:
            if pacer.applies_to(path):
                pacer.wait()
        self.attempts += 1
        try:
            return super().send(request, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            # the library's message repeats the full URL, query credentials included:
            # re-raise the same type with a redacted message
            raise type(exc)(
                f"{self.connector}: could not reach {self.redact(request.url or '')} "
                f"({type(exc).__name__})",
                request=request,
            ) from None

    def _renew_credentials(self) -> bool:
        return isinstance(self.auth, OriginScopedAuth) and self.auth.renew()


def query_credential_names(auth: Any) -> tuple[str, ...]:
    """The query parameter `auth` sends an API key in, if any: it is redacted from every
    log line and error message, whatever the API calls it."""
    inner = auth.inner if isinstance(auth, OriginScopedAuth) else auth
    if isinstance(inner, APIKeyAuth) and inner.location in ("query", "param"):
        return (inner.name,)
    return ()


def strip_credentials(request: PreparedRequest, sensitive_params: Sequence[str] = ()) -> None:
    """Remove what carries credentials from a request bound for a foreign origin: the
    credential headers, and credential-named query parameters (an API may echo its key
    into the next-page links it returns)."""
    for header in ("Authorization", "Proxy-Authorization", "Cookie"):
        request.headers.pop(header, None)
    parts = urlsplit(request.url or "")
    sensitive = {name.lower() for name in (*SENSITIVE_PARAMS, *sensitive_params)}
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(key, value) for key, value in query if key.lower() not in sensitive]
    if len(kept) != len(query):
        request.url = urlunsplit(parts._replace(query=urlencode(kept)))
