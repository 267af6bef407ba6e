"""A project-tracking API shaped like Shortcut's REST API v3 (not as published: `/v1`
paths, the key in an `api_key` header, bodies in `{"data": ...}`): categories, epics,
stories, groups, iterations, milestones, objectives, their children, the workspace's
lookups and an epic search.
"""

from __future__ import annotations

import re
from typing import Any

import dlt
from dlt.common.typing import TSecretStrValue
from dlt.sources import DltResource

from connectors.project_tracker.settings import (
    API_KEY_HEADER,
    BACKOFF_FACTOR,
    CURSOR,
    GROUP_STORIES_LIMIT,
    MAX_RETRIES,
    REQUESTS_PER_MINUTE,
    SEARCH_CAP_ERROR,
    SEARCH_PAGE_SIZE,
    SEARCH_QUERY,
)
from shared.http.auth import api_key_header as header_auth
from shared.http.auth import require_base_url, require_secret
from shared.http.rate_limit import RateLimit
from shared.http.retries import RetryPolicy
from shared.incremental.deletions import deletion_mode
from shared.rest.builder import DEFAULT_MAX_BODY_BYTES, FULL_LIST, NEVER, SourceHttp
from shared.rest.fan_in import build_resources
from shared.rest.paginators import (
    JSONResponseCursorPaginator,
    ShortPageOffsetPaginator,
    SinglePagePaginator,
)
from shared.rest.stop_paging import stop_paging_on

#: client-side cursor: the lists have no time filter, so only rows are skipped, not requests;
#: a record without `updated_at` (missing or null) loads and leaves the cursor where it is
UPDATED_AT = {"cursor_path": CURSOR, "on_cursor_value_missing": "include"}
CURSOR_COLUMN = {CURSOR: {"data_type": "timestamp"}}
#: every story the sync sees, each once: a story need not belong to an epic
#: (`shared.rest.fan_in` reads the three story lists through one pipe for their children)
STORIES_SEEN = ["epics_stories", "groups_stories", "iterations_stories"]


def listed(name: str, path: str, cursor: bool = True) -> dict[str, Any]:
    """A top-level list, read in full every run (a record missing from it was deleted);
    `cursor` when its records have `updated_at`."""
    if not cursor:
        return {"name": name, "endpoint": {"path": path}, "deletions": FULL_LIST}
    # the cursor column stays a timestamp even on a run where every record has it null
    return {
        "name": name,
        "endpoint": {"path": path, "incremental": UPDATED_AT},
        "columns": CURSOR_COLUMN,
        "deletions": FULL_LIST,
    }


def single_object(name: str, path: str, cursor: bool = True) -> dict[str, Any]:
    """A single object (always there: nothing to delete)."""
    spec = {**listed(name, path, cursor), "single_object": True}
    del spec["deletions"]
    return spec


def child(
    name: str,
    path: str,
    parent: str | list[str],
    primary_key: str | list[str] = "id",
    paginator: Any = None,
) -> dict[str, Any]:
    """A list under each row of `parent` (or of every listed parent, each row once),
    loaded in full every run; its rows carry the parent's id in the column named by the
    path's placeholder."""
    (column,) = re.findall(r"{(\w+)}", path)
    endpoint: dict[str, Any] = {"path": path}
    if paginator is not None:
        endpoint["paginator"] = paginator
    return {
        "name": name,
        "endpoint": endpoint,
        "parent": {"resource": parent, "field": "id", "column": column},
        "primary_key": primary_key,
        "skip_missing_parent": True,
    }


def search(query: str) -> dict[str, Any]:
    """`search_epics`: cursor-paged, capped at the first 1,000 results."""
    return {
        "name": "search_epics",
        "endpoint": {
            "path": "/v1/search/epics",
            "params": {"query": query, "page_size": SEARCH_PAGE_SIZE},
            "paginator": JSONResponseCursorPaginator(cursor_path="next", cursor_param="next"),
            "response_actions": [
                stop_paging_on(400, SEARCH_CAP_ERROR, "only the first 1,000 results can be paged")
            ],
            "incremental": UPDATED_AT,
        },
        "columns": CURSOR_COLUMN,
        # capped at 1,000 results: its listing never shows that an epic was deleted
        "deletions": NEVER,
    }


def resource_table(search_query: str) -> list[dict[str, Any]]:
    """The source's resource table: one row per table, in the order they load."""
    return [
        listed("categories", "/v1/categories"),
        child(
            "categories_milestones",
            "/v1/categories/{category_id}/milestones",
            "categories",
            ["category_id", "id"],
        ),
        child(
            "categories_objectives",
            "/v1/categories/{category_id}/objectives",
            "categories",
            ["category_id", "id"],
        ),
        listed("custom_fields", "/v1/custom-fields"),
        single_object("epic_workflow", "/v1/epic-workflow"),
        listed("epics", "/v1/epics"),
        child("epics_comments", "/v1/epics/{epic_id}/comments", "epics"),
        child("epics_stories", "/v1/epics/{epic_id}/stories", "epics"),
        listed("files", "/v1/files"),
        listed("groups", "/v1/groups", cursor=False),
        {
            **child(
                "groups_stories",
                "/v1/groups/{group_id}/stories",
                "groups",
                ["group_id", "id"],
                # at most 1,000 stories a request, `offset` paging until a short page
                paginator=ShortPageOffsetPaginator(limit=GROUP_STORIES_LIMIT),
            ),
            # pages of up to 1,000 stories: loaded as Arrow tables (`shared.arrow.tables`)
            "large_pages": True,
        },
        listed("iterations", "/v1/iterations"),
        child(
            "iterations_stories",
            "/v1/iterations/{iteration_id}/stories",
            "iterations",
            ["iteration_id", "id"],
        ),
        listed("labels", "/v1/labels"),
        single_object("member", "/v1/member", cursor=False),
        listed("members", "/v1/members"),
        listed("milestones", "/v1/milestones"),
        child(
            "milestones_epics",
            "/v1/milestones/{milestone_id}/epics",
            "milestones",
            ["milestone_id", "id"],
        ),
        listed("objectives", "/v1/objectives"),
        child(
            "objectives_epics",
            "/v1/objectives/{objective_id}/epics",
            "objectives",
            ["objective_id", "id"],
        ),
        listed("workflows", "/v1/workflows"),
        child("stories_comments", "/v1/stories/{story_id}/comments", STORIES_SEEN),
        child("story_history", "/v1/stories/{story_id}/history", STORIES_SEEN),
        search(search_query),
    ]


@dlt.source(name="project_tracker")
def project_tracker_source(
    api_key: str = dlt.secrets.value,
    base_url: str | None = dlt.config.value,
    requests_per_minute: int = REQUESTS_PER_MINUTE,
    api_key_header: str = API_KEY_HEADER,
    search_query: str = SEARCH_QUERY,
    concurrent_children: bool = True,
    max_retries: int = MAX_RETRIES,
    backoff_factor: float = BACKOFF_FACTOR,
    rate_limit_backend: TSecretStrValue | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    deletions: str = "soft",
    reconcile: bool = False,
) -> list[DltResource]:
    """Load a project-tracking API shaped like Shortcut's.

    Args:
        api_key: the API key, sent in the `api_key_header` request header
            (`sources.project_tracker.api_key`).
        base_url: the API's origin; required, as no vendor serves this shape of the API
            (`sources.project_tracker.base_url`).
        requests_per_minute: pace requests evenly under this rate, across all threads.
        api_key_header: the request header carrying the key.
        search_query: the `query` of `search_epics` (required by the API); the default
            matches every epic.
        concurrent_children: fetch child lists concurrently (dlt's extract thread pool,
            `extract.workers`); False fetches them one after another.
        max_retries: retries of a 429, 500, 502, 503 or 504 (or a dropped connection)
            before the sync fails.
        backoff_factor: seconds before the first retry; doubles on each further retry (a
            `Retry-After` header, when sent, wins).
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
    mode = deletion_mode(deletions, "project_tracker")
    http = SourceHttp(
        connector="project_tracker",
        max_body_bytes=max_body_bytes,
        base_url=require_base_url(base_url, "project_tracker"),
        auth=header_auth(require_secret(api_key, "project_tracker", "api_key"), api_key_header),
        secret_keys=["api_key"],
        retry_policy=RetryPolicy(max_retries=max_retries, backoff_factor=backoff_factor),
        rate_limits=[RateLimit(requests_per_minute, 60)],
        rate_limit_backend=rate_limit_backend,
    )
    defaults = {
        "primary_key": "id",
        "write_disposition": "merge",
        "endpoint": {"data_selector": "data", "paginator": SinglePagePaginator()},
    }
    return build_resources(
        http,
        resource_table(search_query),
        defaults,
        parallel_children=concurrent_children,
        deletions=mode,
        reconcile=reconcile,
    )
