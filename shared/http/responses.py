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
from shared.redaction import Redactor

logger = logging.getLogger(__name__)

ResponseHook = Callable[..., Any]


def error_hook(
    connector: str,
    resource: str,
    secret_keys: Sequence[str],
    skip_missing: bool = False,
    sensitive_params: Sequence[str] = (),
    redactor: Redactor | None = None,
) -> ResponseHook:
    """Build the response hook of one resource.

    Args:
        connector: the connector's name.
        resource: the resource (table) the request belongs to.
        secret_keys: config keys of the credentials, named in 401/403 messages.
        skip_missing: a 404 means "this parent vanished": log a warning and skip it.
        sensitive_params: query parameter names to redact.
        redactor: the source's redactor; every message passes through it (a server may
            echo a credential in its error body).
    """
    redactor = redactor or Redactor()

    def hook(response: Response, *args: Any, **kwargs: Any) -> None:
        status = response.status_code
        if status < 400:
            return
        url = redactor.redact(redact_url(response.url, sensitive_params))
        where = f"{connector}: resource `{resource}`"
        if status in (401, 403):
            raise AuthenticationError(
                redactor.redact(
                    f"{where}: the API answered {status} {response.reason} for {url}. "
                    f"The credentials were rejected: check "
                    f"{secret_hint(connector, secret_keys)}."
                )
            )
        if status == 404 and skip_missing:
            logger.warning("%s: %s is gone (404); skipping this parent", where, url)
            raise IgnoreResponseException
        attempts = getattr(response, "attempts", None)
        detail = _short_body(response, sensitive_params, redactor)
        raise RequestFailedError(
            redactor.redact(
                f"{where}: {response.request.method} {url} failed with {status} "
                f"{response.reason}"
                + (f" after {attempts} attempt(s)" if attempts else "")
                + (f": {detail}" if detail else "")
            ),
            status_code=status,
        )

    return hook


def _short_body(
    response: Response,
    sensitive_params: Sequence[str] = (),
    redactor: Redactor | None = None,
    limit: int = 300,
) -> str:
    """The start of the error body, with credential query parameters an API may echo
    (`...?api_key=...`) and every secret value the redactor knows masked."""
    text = redact_query_values(response.text or "", sensitive_params)
    return (redactor or Redactor()).excerpt(text, limit)
