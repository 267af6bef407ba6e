"""Opsgenie REST API: users, teams, services, integrations, incidents and alerts.

Lists follow the absolute `paging.next` links; incidents and alerts load incrementally on
`updatedAt` (Opsgenie's `query` filter) and page by keyset, so neither a record updated
mid-sync nor the 20,000 offset cap skips one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import dlt
from dlt.common.typing import TSecretStrValue
from dlt.sources import DltResource

from connectors.incident_analytics.settings import (
    AUTH_SCHEME,
    CURSOR,
    DEFAULT_BASE_URL,
    INCIDENT_SORT,
    INITIAL_UPDATED_AT,
    MAX_RETRY_WAIT_SECONDS,
    OFFSET_CAP,
    PAGE_SIZE,
    REQUESTS_PER_MINUTE,
)
from shared.http.auth import api_key_header, require_secret
from shared.http.rate_limit import RateLimit
from shared.http.retries import RetryPolicy
from shared.incremental.deletions import deletion_mode
from shared.rest.builder import DEFAULT_MAX_BODY_BYTES, FULL_LIST, SourceHttp, build_resources
from shared.rest.keyset import KeysetPaginator
from shared.rest.paginators import JSONLinkPaginator, SinglePagePaginator
from shared.timestamps import epoch_millis, to_datetime

CONNECTOR = "incident_analytics"
NEXT_PAGE = "paging.next"
#: keyset paging reads a record twice when it changes mid-sync (the old copy, then the
#: new one further on): the merge keeps the copy with the latest `updatedAt`
NEWEST_COPY_WINS = {CURSOR: {"dedup_sort": "desc"}}


def updated_since_query(millis: int) -> str:
    """The `query` filter: records updated at or after `millis` (epoch milliseconds)."""
    return f"{CURSOR}>={millis}"


@lru_cache(maxsize=1024)
def instant(timestamp: str) -> datetime:
    # cached: dlt's incremental compares each row's cursor several times
    return to_datetime(timestamp)


def latest(values: Sequence[str]) -> str:
    """The latest of ISO 8601 timestamps. The API varies the fractional digits
    (`…54Z`, `…54.48Z`, `…54.467Z`), so string order is not time order."""
    return max(values, key=instant)


def paged() -> dict[str, Any]:
    """A list paged by the absolute URL in `paging.next`, 100 records a page."""
    return {
        "paginator": JSONLinkPaginator(next_url_path=NEXT_PAGE),
        "params": {"limit": PAGE_SIZE},
    }


def single_page() -> dict[str, Any]:
    """A list that comes whole, with no `paging`."""
    return {"paginator": SinglePagePaginator()}


def updated_since(initial_updated_at: str, sort: str) -> dict[str, Any]:
    """A list filtered by `query=updatedAt>=<epoch ms>`, bound to the `updatedAt` cursor,
    sorted ascending by `sort`. Paged by keyset: each page re-issues the query from offset
    0, narrowed to `sort` at or after the largest value seen (`updatedAt>=<ms>`, or
    `updatedAt>=<ms> AND createdAt>=<ms>`), so a record updated mid-sync cannot shift
    another past a page boundary, and no offset reaches the cap."""

    def restart(first: dict[str, Any], millis: int) -> dict[str, Any]:
        if sort == CURSOR:
            return {"query": updated_since_query(millis)}
        return {"query": f"{first['query']} AND {sort}>={millis}"}

    return {
        "paginator": KeysetPaginator(
            key_path=sort,
            key=epoch_millis,
            restart=restart,
            has_more_path=NEXT_PAGE,
            max_offset=OFFSET_CAP,
            connector=CONNECTOR,
        ),
        "params": {
            "limit": PAGE_SIZE,
            "sort": sort,
            "order": "asc",
            "query": {
                "type": "incremental",
                "cursor_path": CURSOR,
                "initial_value": initial_updated_at,
                "last_value_func": latest,
                # the merge on `id` de-duplicates the records read twice at each page's
                # boundary; dlt's own boundary hashes would cost O(n²) when many records
                # share one `updatedAt`
                "primary_key": (),
                "convert": lambda value: updated_since_query(epoch_millis(value)),
            },
        },
    }


def resource_table(initial_updated_at: str) -> list[dict[str, Any]]:
    """The source's resource table: one row per table, in the order they load."""
    return [
        # lists read in full every run: a record missing from one was deleted
        {"name": "users", "endpoint": {"path": "/v2/users", **paged()}, "deletions": FULL_LIST},
        {
            "name": "teams",
            "endpoint": {"path": "/v2/teams", **single_page()},
            "deletions": FULL_LIST,
        },
        {
            "name": "services",
            "endpoint": {"path": "/v1/services", **paged()},
            "deletions": FULL_LIST,
        },
        {
            "name": "integrations",
            "endpoint": {"path": "/v2/integrations", **single_page()},
            "deletions": FULL_LIST,
        },
        {
            "name": "incidents",
            "endpoint": {
                "path": "/v1/incidents",
                **updated_since(initial_updated_at, sort=INCIDENT_SORT),
            },
            "columns": NEWEST_COPY_WINS,
        },
        {
            "name": "alerts",
            "endpoint": {"path": "/v2/alerts", **updated_since(initial_updated_at, sort=CURSOR)},
            "columns": NEWEST_COPY_WINS,
        },
    ]


@dlt.source(name=CONNECTOR)
def incident_analytics_source(
    api_token: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    auth_scheme: str = AUTH_SCHEME,
    initial_updated_at: str | None = INITIAL_UPDATED_AT,
    requests_per_minute: int = REQUESTS_PER_MINUTE,
    max_retries: int = 5,
    max_retry_wait: float = MAX_RETRY_WAIT_SECONDS,
    rate_limit_backend: TSecretStrValue | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    deletions: str = "soft",
    reconcile: bool = False,
) -> list[DltResource]:
    """Load an Opsgenie account through its REST API.

    Args:
        api_token: an Opsgenie API key, sent as `Authorization: GenieKey <key>`
            (`sources.incident_analytics.api_token`).
        base_url: Opsgenie's API origin; `https://api.eu.opsgenie.com` for an account in
            its EU region.
        auth_scheme: the word before the key in the `Authorization` header.
        initial_updated_at: ISO 8601 instant the first sync of incidents and alerts starts
            at (`updatedAt>=`); None or the default loads everything.
        requests_per_minute: pace requests under this rate.
        max_retries: retries of a 429, 500, 502, 503 or 504 (or a dropped connection)
            before the sync fails.
        max_retry_wait: the longest wait in seconds before one retry, whatever the
            `Retry-After` or `X-RateLimit-Period-In-Sec` header asks for.
        rate_limit_backend: share the pacing with other processes: `redis://host:port/db` or
            `sqlite:///file.db`; None paces in this process (docs/operations.md, "Running
            at scale").
            A secret (a Redis URL may hold a password): set it in `.dlt/secrets.toml` or
            the environment, and dlt keeps its value out of its trace.
        max_body_bytes: the largest response body one request may read, in bytes (64 MiB);
            a larger one fails the sync in one line naming the resource and the size,
            before anything of the run is loaded.
        deletions: what a record deleted at the source does to its row: `"soft"` sets
            `_deleted_at`; `"hard"` deletes the row and its child-table rows (README,
            "Deletions").
        reconcile: read every incremental resource in full, without its cursor: what is
            missing or older loads, and what the source no longer lists is marked deleted
            (README, "Deletions"); the stored cursors stay where they were.
    """
    mode = deletion_mode(deletions, CONNECTOR)
    token = require_secret(api_token, CONNECTOR, "api_token")
    http = SourceHttp(
        connector=CONNECTOR,
        max_body_bytes=max_body_bytes,
        base_url=base_url,
        auth=api_key_header(token, header="Authorization", scheme=auth_scheme),
        secret_keys=["api_token"],
        retry_policy=RetryPolicy(
            max_retries=max_retries,
            backoff_factor=1.0,
            max_wait=max_retry_wait,
            retry_after_header="Retry-After",
            period_header="X-RateLimit-Period-In-Sec",
        ),
        rate_limits=[RateLimit(requests_per_minute, 60)],
        rate_limit_backend=rate_limit_backend,
    )
    defaults = {
        "primary_key": "id",
        "write_disposition": "merge",
        "endpoint": {"data_selector": "data"},
    }
    table = resource_table(initial_updated_at or INITIAL_UPDATED_AT)
    return build_resources(http, table, defaults, deletions=mode, reconcile=reconcile)
