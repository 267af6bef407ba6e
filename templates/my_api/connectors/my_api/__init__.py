"""My API: users in full, orders merged incrementally on `updated_at`.

Start here: edit the resource table and `settings.py`, then the fake server
(connectors/sandbox/my_api.py), re-record the cassettes with `make record-connector NAME=my_api`,
describe the real API in the catalog entry (`api`, `base_url`) and run `make readme`.
"""

from __future__ import annotations

from typing import Any

import dlt
from dlt.sources import DltResource

from connectors.my_api.settings import INITIAL_UPDATED_AFTER, REQUESTS_PER_MINUTE
from shared.http.auth import bearer_token, require_base_url, require_secret
from shared.http.rate_limit import RateLimit
from shared.http.retries import RetryPolicy
from shared.incremental.deletions import deletion_mode
from shared.rest.builder import FULL_LIST, SourceHttp, build_resources
from shared.rest.paginators import JSONLinkPaginator, SinglePagePaginator


def updated_after(initial_value: str) -> dict[str, Any]:
    """The `updated_after` query parameter, bound to the `updated_at` cursor."""
    return {"type": "incremental", "cursor_path": "updated_at", "initial_value": initial_value}


def resource_table(initial_updated_after: str) -> list[dict[str, Any]]:
    """The source's resource table: one row per table, in the order they load."""
    return [
        {
            "name": "users",
            "endpoint": {"path": "/users", "paginator": SinglePagePaginator()},
            "write_disposition": "replace",
            # read in full every run: a user the listing lacks was deleted at the source
            "deletions": FULL_LIST,
        },
        {
            "name": "orders",
            "endpoint": {
                "path": "/orders",
                "paginator": JSONLinkPaginator(next_url_path="next_page_url"),
                "params": {"updated_after": updated_after(initial_updated_after)},
            },
        },
    ]


@dlt.source(name="my_api")
def my_api_source(
    api_key: str = dlt.secrets.value,
    base_url: str | None = dlt.config.value,
    initial_updated_after: str = INITIAL_UPDATED_AFTER,
    requests_per_minute: int = REQUESTS_PER_MINUTE,
    max_retries: int = 5,
    deletions: str = "soft",
    reconcile: bool = False,
) -> list[DltResource]:
    """Load My API.

    Args:
        api_key: the API key, sent as a bearer token (`sources.my_api.api_key`).
        base_url: the API's origin (`sources.my_api.base_url`); required until the
            connector defaults to its vendor's URL.
        initial_updated_after: ISO 8601 UTC instant the first sync of orders starts at.
        requests_per_minute: pace requests under this rate, across all threads.
        max_retries: retries of a 429, 500, 502, 503 or 504 (or a dropped connection)
            before the sync fails.
        deletions: what a record deleted at the source does to its row: `"soft"` sets
            `_deleted_at`; `"hard"` deletes the row and its child-table rows.
        reconcile: read `orders` in full, without its cursor: what is missing or older
            loads, and an order the source no longer lists is marked deleted.
    """
    api_url = require_base_url(base_url, "my_api")
    http = SourceHttp(
        connector="my_api",
        base_url=api_url,
        auth=bearer_token(require_secret(api_key, "my_api", "api_key")),
        secret_keys=["api_key"],
        retry_policy=RetryPolicy(max_retries=max_retries),
        rate_limits=[RateLimit(requests_per_minute, 60)],
    )
    defaults = {
        "primary_key": "id",
        "write_disposition": "merge",
        "endpoint": {"data_selector": "data"},
    }
    return build_resources(
        http,
        resource_table(initial_updated_after),
        defaults,
        deletions=deletion_mode(deletions, "my_api"),
        reconcile=reconcile,
    )
