"""A generic analytics API: the configured offset-paged resources, by api key or OAuth2.

No vendor publishes this API; it is configured (`resources`, `base_url`) rather than
written for one.
"""

from __future__ import annotations

from typing import Any

import dlt
from dlt.common.typing import TSecretStrValue
from dlt.sources import DltResource

from connectors.analytics.auth import authentication
from connectors.analytics.resources import resource_table
from connectors.analytics.settings import (
    API_KEY_PARAM,
    BACKOFF_FACTOR,
    DATA_SELECTOR,
    DEFAULT_PRIMARY_KEY,
    MAX_RETRIES,
    PAGE_LIMIT,
    RETRY_STATUSES,
    TOKEN_EXPIRY_MARGIN_SECONDS,
)
from shared.http.auth import require_base_url
from shared.http.retries import RetryPolicy
from shared.incremental.deletions import deletion_mode
from shared.rest.builder import DEFAULT_MAX_BODY_BYTES, SourceHttp, build_resources
from shared.rest.paginators import ShortPageOffsetPaginator


def retry_policy(max_retries: int = MAX_RETRIES) -> RetryPolicy:
    """Retries of 429 and 5xx, factor-2 backoff (2, 4, 8 s), `Retry-After` first."""
    return RetryPolicy(
        statuses=RETRY_STATUSES,
        max_retries=max_retries,
        backoff_factor=BACKOFF_FACTOR,
        retry_after_header="Retry-After",
    )


#: what a resource is unless its entry says otherwise
RESOURCE_DEFAULTS: dict[str, Any] = {
    "primary_key": DEFAULT_PRIMARY_KEY,
    "write_disposition": "replace",
    "endpoint": {
        "data_selector": DATA_SELECTOR,
        "paginator": ShortPageOffsetPaginator(limit=PAGE_LIMIT),
    },
}


@dlt.source(name="analytics")
def analytics_source(
    base_url: str | None = dlt.config.value,
    resources: list[str | dict[str, Any]] = dlt.config.value,
    api_key: TSecretStrValue | None = dlt.secrets.value,
    client_id: TSecretStrValue | None = None,
    client_secret: TSecretStrValue | None = None,
    token_url: str | None = None,
    api_key_location: str = "query",
    expiry_margin: float = TOKEN_EXPIRY_MARGIN_SECONDS,
    max_retries: int = MAX_RETRIES,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    deletions: str = "soft",
    reconcile: bool = False,
) -> list[DltResource]:
    """Load the configured resources of the analytics API.

    Configure exactly one auth mode: `api_key`, or `client_id` + `client_secret` +
    `token_url` (OAuth2 client credentials). Both or neither raise a `ConfigurationError`
    before any request is sent.

    Args:
        base_url: the API's origin; required, as no vendor serves this API
            (`sources.analytics.base_url`).
        resources: what to load: names (`"events"`: `/v1/events`, key `id`, full refresh)
            or mappings with `name`, `path`, `primary_key`, `data_selector`,
            `write_disposition` and `incremental: {cursor_path, param, initial_value}`
            (merged on the primary key).
        api_key: the api key, sent as the `api_key` query parameter (or header, see
            `api_key_location`); one of the two auth modes (`sources.analytics.api_key`).
        client_id: the OAuth2 client id; with `client_secret` and `token_url`, the other
            auth mode (`sources.analytics.client_id`).
        client_secret: the OAuth2 client secret (`sources.analytics.client_secret`).
        token_url: the OAuth2 token URL, absolute or a path on `base_url`.
        api_key_location: `"query"` sends `?api_key=...`; `"header"` a header `api_key`.
        expiry_margin: renew an OAuth2 token this many seconds before it expires.
        max_retries: retries of a 429, 500, 502, 503 or 504 (or a dropped connection)
            before the sync fails; each waits `Retry-After` when sent, else 2, 4, 8 s, ...
        max_body_bytes: the largest response body one request may read, in bytes (64 MiB);
            a larger one fails the sync in one line naming the resource and the size,
            before anything of the run is loaded.
        deletions: what a record missing from a resource read in full does to its row:
            `"soft"` keeps it with `_deleted_at` set (a replaced table too); `"hard"`
            deletes it (README, "Deletions").
        reconcile: read every incremental resource in full, without its cursor: what is
            missing or older loads, and what the source no longer lists is marked deleted
            (README, "Deletions"); the stored cursors stay where they were.
    """
    mode = deletion_mode(deletions, "analytics")
    origin = require_base_url(base_url, "analytics")  # a token_url may be a path on it
    chosen = authentication(
        origin,
        api_key=api_key,
        client_id=client_id,
        client_secret=client_secret,
        token_url=token_url,
        api_key_location=api_key_location,
        expiry_margin=expiry_margin,
    )
    table = resource_table(resources)
    http = SourceHttp(
        connector="analytics",
        max_body_bytes=max_body_bytes,
        base_url=origin,
        auth=chosen.auth,
        secret_keys=chosen.secret_keys,
        retry_policy=retry_policy(max_retries),
        sensitive_params=[API_KEY_PARAM],
    )
    return build_resources(http, table, RESOURCE_DEFAULTS, deletions=mode, reconcile=reconcile)
