"""Response hooks that turn HTTP failures into errors a user can act on.

The builder installs one hook per resource, so a message names the connector, the
resource, the status, the redacted URL and, for 401/403, the config key of the secret to
check (never its value).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from dlt.sources.helpers.rest_client.exceptions import IgnoreResponseException
from requests import Response

from shared.errors import (
    AuthenticationError,
    RequestFailedError,
    redact_query_values,
    redact_url,
    secret_hint,
)

logger = logging.getLogger(__name__)

ResponseHook = Callable[..., Any]


def error_hook(
    connector: str,
    resource: str,
    secret_keys: Sequence[str],
    skip_missing: bool = False,
    sensitive_params: Sequence[str] = (),
) -> ResponseHook:
    """Build the response hook of one resource.

    Args:
        connector: the connector's name.
        resource: the resource (table) the request belongs to.
        secret_keys: config keys of the credentials, named in 401/403 messages.
        skip_missing: a 404 means "this parent vanished": log a warning and skip it.
        sensitive_params: query parameter names to redact.
    """

    def hook(response: Response, *args: Any, **kwargs: Any) -> None:
        status = response.status_code
        if status < 400:
            return
        url = redact_url(response.url, sensitive_params)
        where = f"{connector}: resource `{resource}`"
        if status in (401, 403):
            raise AuthenticationError(
                f"{where}: the API answered {status} {response.reason} for {url}. "
                f"The credentials were rejected: check {secret_hint(connector, secret_keys)}."
            )
        if status == 404 and skip_missing:
            logger.warning("%s: %s is gone (404); skipping this parent", where, url)
            raise IgnoreResponseException
        attempts = getattr(response, "attempts", None)
        detail = _short_body(response, sensitive_params)
        raise RequestFailedError(
            f"{where}: {response.request.method} {url} failed with {status} {response.reason}"
            + (f" after {attempts} attempt(s)" if attempts else "")
            + (f": {detail}" if detail else ""),
            status_code=status,
        )

    return hook


def _short_body(response: Response, sensitive_params: Sequence[str] = (), limit: int = 300) -> str:
    """The start of the error body, with credential query parameters an API may echo
    (`...?api_key=...`) redacted."""
    text = redact_query_values((response.text or "").strip().replace("\n", " "), sensitive_params)
    return text[:limit] + ("…" if len(text) > limit else "")
