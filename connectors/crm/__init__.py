"""Capsule CRM API v2: users, parties, tasks, projects, opportunities and their lookups.

Lists page through the `Link` header; parties, projects (Capsule's kases) and
opportunities load incrementally on `updatedAt` and learn deletions from their
`/deleted` feeds; the pace follows the `X-RateLimit-*` budget every response reports.
"""

from __future__ import annotations

from typing import Any

import dlt
from dlt.common.typing import TSecretStrValue
from dlt.sources import DltResource

from connectors.crm.settings import (
    DEFAULT_BASE_URL,
    LIMIT_HEADER,
    MAX_WINDOW_SECONDS,
    OPPORTUNITY_COLUMNS,
    PARTY_COLUMNS,
    PER_PAGE,
    PROJECT_COLUMNS,
    REMAINING_HEADER,
    REQUESTS_PER_MINUTE,
    RESET_HEADER,
    SINCE_LAG_SECONDS,
    TAGGED_ENTITIES,
    TASK_COLUMNS,
    TASK_STATUSES,
)
from shared.http.auth import bearer_token as bearer_auth
from shared.http.auth import require_secret
from shared.http.rate_limit import DEFAULT_BUDGET_RESERVE, BudgetHeaders, RateLimit
from shared.http.retries import RetryPolicy
from shared.http.session import DEFAULT_REQUEST_DEADLINE
from shared.incremental.deletions import DeletionFeed, deletion_mode
from shared.rest.builder import DEFAULT_MAX_BODY_BYTES, FULL_LIST, SourceHttp, build_resources
from shared.rest.paginators import HeaderLinkPaginator
from shared.timestamps import iso_utc_seconds

#: a 429's `X-RateLimit-Reset` can be up to an hour away; waiting for it is correct
MAX_RATE_LIMIT_WAIT_SECONDS = 3600.0


def since(initial_value: str | None) -> dict[str, Any]:
    """The `since` query parameter, bound to the `updatedAt` cursor."""
    return {
        "type": "incremental",
        "cursor_path": "updatedAt",
        "initial_value": initial_value,
        "lag": SINCE_LAG_SECONDS,
        "convert": iso_utc_seconds,
    }


def deleted_since(entity: str, data_selector: str, initial_since: str | None) -> DeletionFeed:
    """The entity's deleted feed, `/api/v2/{entity}/deleted?since=` (`since` required)."""
    return DeletionFeed(
        path=f"/api/v2/{entity}/deleted",
        data_selector=data_selector,
        deleted_at="deletedAt",
        params={"perPage": PER_PAGE},
        paginator=HeaderLinkPaginator(),
        since_param="since",
        initial_since=initial_since,
        since_lag_seconds=SINCE_LAG_SECONDS,
    )


def listed(name: str, path: str, data_selector: str, **params: Any) -> dict[str, Any]:
    """A list read in full every run: a record missing from it was deleted."""
    endpoint: dict[str, Any] = {"path": path, "data_selector": data_selector}
    if params:
        endpoint["params"] = params
    return {"name": name, "endpoint": endpoint, "deletions": FULL_LIST}


def is_organisation(party: dict[str, Any]) -> bool:
    return party.get("type") == "organisation"


def resource_table(initial_since: str | None) -> list[dict[str, Any]]:
    """The source's resource table: one row per table, in the order they load."""
    return [
        listed("users", "/api/v2/users", "users"),
        {
            "name": "parties",
            "endpoint": {
                "path": "/api/v2/parties",
                "data_selector": "parties",
                "params": {"since": since(initial_since)},
            },
            "deletions": deleted_since("parties", "parties", initial_since),
            "columns": PARTY_COLUMNS,
        },
        {
            **listed("tasks", "/api/v2/tasks", "tasks", status=TASK_STATUSES),
            "columns": TASK_COLUMNS,
        },
        {
            "name": "employees",
            "endpoint": {
                "path": "/api/v2/parties/{organisation_id}/people",
                "data_selector": "parties",
            },
            "parent": {
                "resource": "parties",
                "field": "id",
                "column": "organisation_id",
                "where": is_organisation,
            },
            "skip_missing_parent": True,
            "columns": PARTY_COLUMNS,
        },
        {
            "name": "projects",
            "endpoint": {
                "path": "/api/v2/kases",
                "data_selector": "kases",
                "params": {"since": since(initial_since)},
            },
            "deletions": deleted_since("kases", "kases", initial_since),
            "columns": PROJECT_COLUMNS,
        },
        {
            "name": "opportunities",
            "endpoint": {
                "path": "/api/v2/opportunities",
                "data_selector": "opportunities",
                "params": {"since": since(initial_since)},
            },
            "deletions": deleted_since("opportunities", "opportunities", initial_since),
            "columns": OPPORTUNITY_COLUMNS,
        },
        listed("pipelines", "/api/v2/pipelines", "pipelines"),
        listed("milestones", "/api/v2/milestones", "milestones"),
        {
            "name": "site",
            "endpoint": {"path": "/api/v2/site", "data_selector": "site"},
            "single_object": True,
            # one object, merged on its natural key: still one row, and no resource of
            # the source replaces (Dango runs a source with one as a full refresh)
            "primary_key": "subdomain",
            "write_disposition": "merge",
        },
        {
            "name": "tags",
            "endpoint": {"path": "/api/v2/{entity}/tags", "data_selector": "tags"},
            "for_each": {"entity": TAGGED_ENTITIES},
            "primary_key": ["entity", "id"],
        },
        {
            "name": "custom_fields",
            "endpoint": {
                "path": "/api/v2/{entity}/fields/definitions",
                "data_selector": "definitions",
            },
            "for_each": {"entity": TAGGED_ENTITIES},
            "primary_key": ["entity", "id"],
        },
        listed("lost_reasons", "/api/v2/lostreasons", "lostReasons"),
        listed("board", "/api/v2/boards", "boards"),
        listed("categories", "/api/v2/categories", "categories"),
        listed("activity_types", "/api/v2/activitytypes", "activityTypes"),
        listed("stages", "/api/v2/stages", "stages"),
    ]


def pace(requests_per_minute: int | None) -> RateLimit:
    """The source's rate limit: `requests_per_minute` as given, or, when None, the budget
    the API reports with the default pace as the fallback."""
    if requests_per_minute is not None:
        return RateLimit(requests_per_minute, 60)
    budget = BudgetHeaders(
        limit=LIMIT_HEADER,
        remaining=REMAINING_HEADER,
        reset=RESET_HEADER,
        max_window=MAX_WINDOW_SECONDS,
    )
    return RateLimit(REQUESTS_PER_MINUTE, 60, budget=budget)


@dlt.source(name="crm")
def crm_source(
    bearer_token: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    initial_since: str | None = None,
    requests_per_minute: int | None = None,
    budget_reserve: float = DEFAULT_BUDGET_RESERVE,
    max_retries: int = 5,
    backoff_factor: float = 1.0,
    arrow_pages: bool = False,
    max_rate_limit_wait: float = MAX_RATE_LIMIT_WAIT_SECONDS,
    request_deadline: float = DEFAULT_REQUEST_DEADLINE,
    rate_limit_backend: TSecretStrValue | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    deletions: str = "soft",
    reconcile: bool = False,
) -> list[DltResource]:
    """Load a Capsule CRM account through its API v2.

    Args:
        bearer_token: a Capsule API token (a personal token, or an OAuth2 access token),
            sent as `Authorization: Bearer` (`sources.crm.bearer_token`).
        base_url: Capsule's API origin; every path requested starts with `/api/v2`.
        initial_since: ISO 8601 UTC instant the first sync of parties, projects and
            opportunities starts after; None loads everything.
        requests_per_minute: pace requests under this rate, across all threads. None (the
            default): spend the budget the API reports (`X-RateLimit-Remaining` until
            `X-RateLimit-Reset`) as `budget_reserve` says, and 66 a minute while it
            reports none.
        budget_reserve: the share of the reported budget kept in reserve (0 to 1): while
            more than this share of `X-RateLimit-Limit` remains, requests go at full
            speed; from it on, what is left is spread evenly until `X-RateLimit-Reset`.
            0 spends it all at full speed, 1 spreads all of it. Ignored with an explicit
            `requests_per_minute`.
        max_retries: retries of a 429, 500, 502, 503 or 504 (or a dropped connection)
            before the sync fails.
        backoff_factor: seconds before the first retry of a 5xx or a dropped connection;
            doubles on each further retry (a 429 waits for `X-RateLimit-Reset` instead).
        arrow_pages: load every table as Arrow tables with nested arrays and objects
            (`emailAddresses`, ...) as JSON columns of their row instead of child tables;
            tables, keys and cursors stay the same. The default already loads Arrow
            tables, with dlt's child tables (`shared.arrow.tables`).
        max_rate_limit_wait: the longest wait in seconds for the rate-limit window to
            reset after a 429 (`X-RateLimit-Reset`, up to an hour away on the real API);
            each long wait is logged as a warning.
        request_deadline: seconds one request may take in all (connect and whole body).
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
    mode = deletion_mode(deletions, "crm")
    http = SourceHttp(
        connector="crm",
        max_body_bytes=max_body_bytes,
        base_url=base_url,
        auth=bearer_auth(require_secret(bearer_token, "crm", "bearer_token")),
        secret_keys=["bearer_token"],
        retry_policy=RetryPolicy(
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            retry_after_header=None,  # Capsule's 429 carries only X-RateLimit-Reset
            reset_header=RESET_HEADER,
            max_rate_limit_wait=max_rate_limit_wait,
        ),
        rate_limits=[pace(requests_per_minute)],
        request_deadline=request_deadline,
        rate_limit_backend=rate_limit_backend,
        budget_reserve=budget_reserve,
    )
    defaults = {
        "primary_key": "id",
        "write_disposition": "merge",
        "endpoint": {"paginator": HeaderLinkPaginator(), "params": {"perPage": PER_PAGE}},
    }
    table = resource_table(initial_since)
    fast = [resource["name"] for resource in table] if arrow_pages else []
    return build_resources(
        http, table, defaults, arrow_pages=fast, deletions=mode, reconcile=reconcile
    )
