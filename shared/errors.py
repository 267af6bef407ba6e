"""Exceptions a connector raises. Every message names the connector and what to fix,
and never carries a secret: URLs are redacted before they reach a message."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from dlt.sources.helpers.rest_client.redaction import SENSITIVE_PARAMS


class ConnectorError(Exception):
    """Base class of every error raised by the catalog's connectors and helpers."""


class ConfigurationError(ConnectorError):
    """The source was configured wrongly; raised before any request is sent."""


class AuthenticationError(ConnectorError):
    """The API rejected the credentials (401/403)."""


class ForeignOriginError(ConnectorError):
    """A request (usually a next-page link) pointed outside the origin of `base_url`."""


class RequestFailedError(ConnectorError):
    """A request still failed after the retry policy was exhausted, or failed for good."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class InvalidResponseError(RequestFailedError):
    """A `2xx` answer that is not a page of data (wrong shape, HTML, not JSON), still so
    after the retry policy's retries. The message names connector, resource, redacted URL,
    status, content type and a short redacted excerpt of the body."""

    def __init__(
        self,
        message: str,
        connector: str = "",
        resource: str = "",
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.connector = connector
        self.resource = resource


class RequestDeadlineExceeded(requests.exceptions.Timeout):
    """A request took longer than its overall deadline (connect plus the whole body): a
    server that accepts and never answers, or drips bytes. Retried like a timeout."""


class UnrecoverableRequestError(RequestFailedError):
    """A request that retrying cannot cure: the host name does not resolve, the URL is
    malformed. Raised at once, never retried."""


class ResponseTooLargeError(UnrecoverableRequestError):
    """A response body larger than the source's cap (`max_body_bytes`): reading it would
    take the process's memory, so the sync fails at once, never retried."""


def redact_url(url: str, extra_sensitive: Iterable[str] = ()) -> str:
    """Return `url` with credential-like query parameters and a password in its userinfo
    (`user:password@`) replaced by `***`.

    Args:
        url: the URL to redact.
        extra_sensitive: further query parameter names to redact (e.g. a connector's key name).
    """
    sensitive = {name.lower() for name in SENSITIVE_PARAMS} | {
        name.lower() for name in extra_sensitive
    }
    parts = urlsplit(url)
    query = [
        (key, "***" if key.lower() in sensitive else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    parts = parts._replace(query=urlencode(query, safe="*,:"))
    if parts.password is not None:  # `scheme://user:password@host`: the password goes
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username}:***@{host}")
    return urlunsplit(parts)


def redact_query_values(text: str, extra_sensitive: Iterable[str] = ()) -> str:
    """Redact `name=value` pairs of credential-like parameters anywhere in free text (an
    error body that echoes the request URL, say)."""
    names = sorted({*SENSITIVE_PARAMS, *extra_sensitive}, key=len, reverse=True)
    pattern = re.compile(
        r"(?i)(?<![\w-])(" + "|".join(re.escape(name) for name in names) + r")=[^&\s\"'<>]+"
    )
    return pattern.sub(lambda match: f"{match.group(1)}=***", text)


def config_key(section: str, key: str) -> str:
    """Where dlt looks a source's setting up: `sources.crm.bearer_token`."""
    return f"sources.{section}.{key}"


def env_var(section: str, key: str) -> str:
    """The environment variable dlt reads the same setting from:
    `SOURCES__CRM__BEARER_TOKEN`."""
    return f"SOURCES__{section.upper()}__{key.upper()}"


def secret_hint(connector: str, secret_keys: Iterable[str]) -> str:
    """Say where a connector's secrets are configured, e.g.
    `sources.crm.bearer_token (env SOURCES__CRM__BEARER_TOKEN)`."""
    hints = [
        f"`{config_key(connector, key)}` (env {env_var(connector, key)})" for key in secret_keys
    ]
    return " or ".join(hints) if hints else "the connector's credentials"


def exception_chain(
    exc: BaseException, honour_suppressed_context: bool = False
) -> Iterator[BaseException]:
    """`exc` and every exception it links to, each once, outermost first (breadth-first):
    `__cause__`, `__context__`, and the exceptions libraries keep in attributes and
    arguments (dlt's `PipelineStepFailed.exception`, urllib3's `MaxRetryError.reason`,
    requests' `ConnectionError(MaxRetryError(...))`).

    Args:
        exc: the outermost exception.
        honour_suppressed_context: skip the `__context__` of an exception raised
            `from None` (what a reader is shown: such a context was hidden on purpose,
            e.g. a library message repeating a URL with its credentials). Code that
            scrubs or classifies walks every link.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        context = current.__context__
        if honour_suppressed_context and current.__suppress_context__:
            context = None
        linked = (
            getattr(current, "exception", None),
            getattr(current, "reason", None),
            current.__cause__,
            context,
            *current.args,
        )
        pending.extend(inner for inner in linked if isinstance(inner, BaseException))
