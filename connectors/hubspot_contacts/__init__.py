"""HubSpot CRM API v3 contacts: one `contacts` table, merged on `id`.

The first run lists every contact; later runs search for the contacts changed since the
stored `updated_at`; archived contacts come from the archived list.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import dlt
from dlt.common.jsonpath import compile_path
from dlt.common.typing import TSecretStrValue
from dlt.sources import DltResource
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.client import PageData
from requests import Response

from connectors.hubspot_contacts.settings import (
    CONNECTOR,
    DEFAULT_BASE_URL,
    DEFAULT_PROPERTIES,
    INTERVAL_HEADER,
    LAST_MODIFIED,
    LIST_PAGE_SIZE,
    LIST_PATH,
    MAX_HEADER,
    MAX_WINDOW_SECONDS,
    POLICY_WINDOW_SECONDS,
    PROPERTY_COLUMNS,
    REMAINING_HEADER,
    REQUESTS_PER_TEN_SECONDS,
    SEARCH_LOOKBACK_SECONDS,
    SEARCH_PAGE_SIZE,
    SEARCH_PATH,
    SEARCH_REQUESTS_PER_SECOND,
    SEARCH_RESULT_CAP,
)
from shared.errors import ConfigurationError
from shared.http.auth import bearer_token, require_secret
from shared.http.rate_limit import DEFAULT_BUDGET_RESERVE, BudgetHeaders, RateLimit
from shared.http.responses import error_hook
from shared.http.retries import RetryPolicy
from shared.incremental.deletions import DeletionFeed, deletion_mode
from shared.rest.builder import DEFAULT_MAX_BODY_BYTES, SourceHttp, finish_resources
from shared.rest.keyset import KeysetPaginator
from shared.rest.paginators import JSONResponseCursorPaginator
from shared.timestamps import epoch_millis

Hooks = dict[str, list[Any]]

#: where both endpoints put the page's contacts, parsed once (not on every page)
RESULTS = compile_path("results")

#: the table's columns, typed so they exist even while every value is null
CONTACT_COLUMNS: dict[str, Any] = {
    "id": {"data_type": "text", "nullable": False},
    **{column: {"data_type": "text"} for column in PROPERTY_COLUMNS},
    "created_at": {"data_type": "timestamp"},
    # keyset paging reads a contact twice when it changes mid-sync (the old copy, then
    # the new one further on): the merge keeps the copy with the latest `updated_at`
    "updated_at": {"data_type": "timestamp", "dedup_sort": "desc"},
    "archived": {"data_type": "bool"},
}


#: the archived (deleted) contacts, each with `archivedAt`: read in full every run (the
#: API has no filter by `archivedAt`)
ARCHIVED = DeletionFeed(
    path=LIST_PATH,
    data_selector="results",
    deleted_at="archivedAt",
    params={"archived": "true", "limit": LIST_PAGE_SIZE},
    paginator=JSONResponseCursorPaginator(cursor_path="paging.next.after", cursor_param="after"),
)


def policy_window(response: Response) -> float | None:
    """Seconds until the rate-limit policy a 429 names (`policyName`) admits requests again."""
    try:
        body = response.json()
    except ValueError:
        return None
    return POLICY_WINDOW_SECONDS.get(body.get("policyName")) if isinstance(body, dict) else None


def burst_limit(requests_per_ten_seconds: int | None) -> RateLimit:
    """The limit on all requests: `requests_per_ten_seconds` as given, or, when None, the
    rolling budget the API reports, with HubSpot's 100 per 10 s as the fallback."""
    if requests_per_ten_seconds is not None:
        return RateLimit(requests_per_ten_seconds, 10)
    budget = BudgetHeaders(
        limit=MAX_HEADER,
        remaining=REMAINING_HEADER,
        window_ms=INTERVAL_HEADER,
        max_window=MAX_WINDOW_SECONDS,
    )
    return RateLimit(REQUESTS_PER_TEN_SECONDS, 10, budget=budget)


def to_row(contact: dict[str, Any], extra_properties: Sequence[str]) -> dict[str, Any]:
    """A contact as a row: the table's columns, then each extra property by its name."""
    properties = contact.get("properties") or {}
    return {
        "id": contact["id"],
        **{column: properties.get(name) for column, name in PROPERTY_COLUMNS.items()},
        "created_at": contact.get("createdAt"),
        "updated_at": contact.get("updatedAt"),
        "archived": contact.get("archived", False),
        **{name: properties.get(name) for name in extra_properties},
    }


def list_contacts(
    client: RESTClient, properties: Sequence[str], hooks: Hooks
) -> Iterator[PageData[Any]]:
    """Every contact, 100 a page, following `paging.next.after`."""
    return client.paginate(
        LIST_PATH,
        params={"limit": LIST_PAGE_SIZE, "properties": ",".join(properties)},
        paginator=JSONResponseCursorPaginator(
            cursor_path="paging.next.after", cursor_param="after"
        ),
        data_selector=RESULTS,
        hooks=hooks,
    )


def modified_since(window_start: int) -> list[dict[str, Any]]:
    """The search's `filterGroups`: contacts modified at or after `window_start` (epoch ms)."""
    return [
        {
            "filters": [
                {"propertyName": LAST_MODIFIED, "operator": "GTE", "value": str(window_start)}
            ]
        }
    ]


def search_body(window_start: int, properties: Sequence[str]) -> dict[str, Any]:
    """The search for contacts modified at or after `window_start` (epoch ms), oldest first."""
    return {
        "filterGroups": modified_since(window_start),
        "sorts": [{"propertyName": LAST_MODIFIED, "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": SEARCH_PAGE_SIZE,
    }


def search_changed_contacts(
    client: RESTClient, since: Any, properties: Sequence[str], hooks: Hooks
) -> Iterator[PageData[Any]]:
    """Every contact modified at or after `since` (the stored cursor, already moved back by
    the lookback window), however many there are.

    `after` is an offset over `lastmodifieddate` order, capped at 10,000 results, and a
    contact modified while the search pages moves to the end and shifts the rest. So
    every page is a new search `GTE` the largest `lastmodifieddate` seen, `after` unset
    (keyset paging): nothing shifts past a page boundary and no offset nears the cap.
    Contacts at that boundary come twice; the merge on `id` keeps one.
    """
    window_start = epoch_millis(since)
    assert window_start is not None
    return client.paginate(
        SEARCH_PATH,
        method="POST",
        json=search_body(window_start, properties),
        paginator=KeysetPaginator(
            key_path=f"properties.{LAST_MODIFIED}",
            key=epoch_millis,
            restart=lambda _first, modified: {"filterGroups": modified_since(modified)},
            has_more_path="paging.next.after",
            offset_param="after",
            max_offset=SEARCH_RESULT_CAP,
            connector=CONNECTOR,
        ),
        data_selector=RESULTS,
        hooks=hooks,
    )


@dlt.source(name=CONNECTOR)
def hubspot_contacts_source(
    api_key: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    extra_properties: list[str] | None = None,
    requests_per_ten_seconds: int | None = None,
    budget_reserve: float = DEFAULT_BUDGET_RESERVE,
    search_requests_per_second: int = SEARCH_REQUESTS_PER_SECOND,
    max_retries: int = 5,
    max_retry_wait: float = 60.0,
    search_lookback_seconds: float = SEARCH_LOOKBACK_SECONDS,
    rate_limit_backend: TSecretStrValue | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    deletions: str = "soft",
    reconcile: bool = False,
) -> DltResource:
    """Load HubSpot contacts.

    Args:
        api_key: a HubSpot private app's access token, sent as `Authorization: Bearer`
            (`sources.hubspot_contacts.api_key`).
        base_url: HubSpot's API origin.
        extra_properties: further contact properties to request; each lands as a column
            named after the property.
        requests_per_ten_seconds: pace all requests under this many per 10 s. None (the
            default): by the budget the API reports (`X-HubSpot-RateLimit-Max` per
            `-Interval-Milliseconds`) as `budget_reserve` says, and 100 per 10 s while it
            reports none.
        budget_reserve: the share of the reported budget kept in reserve (0 to 1): while
            more than this share of `X-HubSpot-RateLimit-Max` remains, requests go at
            full speed (at most 90% of it inside any one window); from it on, they are
            spaced evenly at the reported maximum with 10% headroom. 0 spends it all at
            full speed, 1 spaces every request. Ignored with an explicit
            `requests_per_ten_seconds`.
        search_requests_per_second: pace search requests under this many per second.
        max_retries: retries of a 429, 500, 502, 503 or 504 (or a dropped connection)
            before the sync fails.
        max_retry_wait: upper bound in seconds on any wait before a retry (a 429 waits
            its `Retry-After`, else its policy's window: 10 s, or 1 s for the search).
        search_lookback_seconds: later searches start this many seconds before the stored
            cursor: the search index lags writes, so a contact modified just before another
            may become searchable after it.
        rate_limit_backend: share the pacing with other processes: `redis://host:port/db` or
            `sqlite:///file.db`; None paces in this process (docs/operations.md, "Running
            at scale").
            A secret (a Redis URL may hold a password): set it in `.dlt/secrets.toml` or
            the environment, and dlt keeps its value out of its trace.
        max_body_bytes: the largest response body one request may read, in bytes (64 MiB);
            a larger one fails the sync in one line naming the resource and the size,
            before anything of the run is loaded.
        deletions: what an archived (deleted) contact does to its row: `"soft"` sets
            `_deleted_at` to its `archivedAt`; `"hard"` deletes the row (README, "Deletions").
        reconcile: list every contact, without the cursor: what is missing or older loads,
            and a contact the list lacks is marked deleted (README, "Deletions"); the
            stored cursor stays where it was.
    """
    mode = deletion_mode(deletions, CONNECTOR)
    if search_lookback_seconds < 0:
        raise ConfigurationError(
            f"{CONNECTOR}: `search_lookback_seconds` must be 0 or more, got "
            f"{search_lookback_seconds}"
        )
    http = SourceHttp(
        connector=CONNECTOR,
        max_body_bytes=max_body_bytes,
        base_url=base_url,
        auth=bearer_token(require_secret(api_key, CONNECTOR, "api_key")),
        secret_keys=["api_key"],
        retry_policy=RetryPolicy(
            max_retries=max_retries, max_wait=max_retry_wait, wait_hint=policy_window
        ),
        rate_limits=[
            burst_limit(requests_per_ten_seconds),
            RateLimit(search_requests_per_second, 1, path_pattern=f"{SEARCH_PATH}$"),
        ],
        rate_limit_backend=rate_limit_backend,
        budget_reserve=budget_reserve,
    )
    session = http.session()
    client = RESTClient(base_url=base_url, session=session)
    hooks: Hooks = {
        "response": [
            error_hook(CONNECTOR, "contacts", http.secret_keys, redactor=http.redactor),
            http.page_check("contacts", RESULTS),
        ]
    }
    extra = [name for name in extra_properties or () if name not in DEFAULT_PROPERTIES]
    properties = [*DEFAULT_PROPERTIES, *extra]

    hints: dict[str, Any] = {
        "name": "contacts",
        "primary_key": "id",
        "write_disposition": "merge",
        "columns": {**CONTACT_COLUMNS, **{name: {"data_type": "text"} for name in extra}},
    }

    @dlt.resource(**hints)
    def contacts(
        # `lag`: dlt hands back the stored cursor moved back by the lookback window, and
        # keeps the contacts modified within it instead of dropping them as older
        updated_at: dlt.sources.incremental[str] = dlt.sources.incremental(
            "updated_at", lag=search_lookback_seconds
        ),
    ) -> Iterator[list[dict[str, Any]]]:
        """Every contact on the first run; later, those changed since the stored
        `updated_at` less the lookback window."""
        if updated_at.last_value is None:
            pages = list_contacts(client, properties, hooks)
        else:
            pages = search_changed_contacts(client, updated_at.last_value, properties, hooks)
        for page in pages:
            yield [to_row(contact, extra) for contact in page]

    @dlt.resource(**hints)
    def every_contact() -> Iterator[list[dict[str, Any]]]:
        """Every contact, without the cursor (a reconciling run: it neither reads nor
        moves the stored cursor)."""
        for page in list_contacts(client, properties, hooks):
            yield [to_row(contact, extra) for contact in page]

    # archived contacts leave the list and the search: the archived list names them; a
    # reconciling run also marks the contacts its full list lacks. Keyset paging never
    # shifts the list: a contact read twice does not hold the cursor
    (finished,) = finish_resources(
        [every_contact if reconcile else contacts],
        http,
        session,
        specs={"contacts": {"deletions": ARCHIVED, "reconciled": reconcile}},
        deletions=mode,
        append_first_sync=False,
    )
    return finished
