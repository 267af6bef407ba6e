"""What the benchmark loads from each connector, and the raw loop it compares against.

For every connector: its largest resource, the default path's source (pacing off) and a
raw loop that pages the bench server (`bench.servers`) exactly as the connector does,
with nothing but `requests`, `json`, `pyarrow` and DuckDB `CREATE TABLE AS`: the limit
of what this machine does with those libraries. The raw loop keeps nested arrays and
objects as Arrow list and struct columns of one table; the default path normalizes them
into child tables and flattened columns, which is the work being measured.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import requests

#: a pacing argument this high never waits: the benchmark measures the connector's own speed
UNPACED = 10_000_000
#: the pacing arguments a source may take; each one present is set to `UNPACED`
PACING_ARGUMENTS = (
    "requests_per_minute",
    "requests_per_second",
    "requests_per_ten_seconds",
    "search_requests_per_second",
)

Pages = Iterator[list[dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    """One connector's benchmark.

    Args:
        connector: the connector's name (`connectors.<name>`).
        resource: its largest resource, the one loaded (and its table).
        source_name: the `@dlt.source` function in `connectors.<name>`.
        credentials: the bench server's credentials, as source arguments.
        options: further source arguments.
        raw_pages: the raw loop's pages: `raw_pages(session, base_url)`.
        raw_headers: the headers the raw loop's session sends (its credentials).
        raw_params: the query parameters it adds to every request (a key in the query).
        shape: the records and their paging, for the report.
    """

    connector: str
    resource: str
    source_name: str
    credentials: dict[str, Any]
    options: dict[str, Any]
    raw_pages: Callable[[requests.Session, str], Pages]
    raw_headers: dict[str, str]
    raw_params: dict[str, str]
    shape: str

    def source_function(self) -> Any:
        module = __import__(f"connectors.{self.connector}", fromlist=[self.source_name])
        return getattr(module, self.source_name)

    def unpaced(self) -> dict[str, int]:
        """The source's pacing arguments, each set far above what a run sends."""
        parameters = inspect.signature(self.source_function()).parameters
        return {name: UNPACED for name in PACING_ARGUMENTS if name in parameters}

    def source(self, base_url: str, paced: bool = False) -> Any:
        """The default path: the source with its defaults, pacing off (`paced`: on, as a
        user runs it), this resource only."""
        function = self.source_function()
        pacing = {} if paced else self.unpaced()
        source = function(base_url=base_url, **self.credentials, **self.options, **pacing)
        return source.with_resources(self.resource)


def _get(session: requests.Session, url: str, **params: Any) -> requests.Response:
    response = session.get(url, params=params or None, timeout=60)
    response.raise_for_status()
    return response


# -- crm: `parties`, `Link`-header paging ------------------------------------------------


def crm_pages(session: requests.Session, base_url: str) -> Pages:
    url: str | None = f"{base_url}/api/v2/parties?perPage=100"
    while url:
        response = _get(session, url)
        yield json.loads(response.content)["parties"]
        url = response.links.get("next", {}).get("url")


# -- analytics: `events`, offset paging until a short page -------------------------------


def analytics_pages(session: requests.Session, base_url: str) -> Pages:
    offset, limit = 0, 100
    while True:
        rows = json.loads(
            _get(session, f"{base_url}/v1/events", offset=offset, limit=limit).content
        )
        yield rows["data"]
        if len(rows["data"]) < limit:
            return
        offset += limit


# -- incident_analytics: `alerts`, keyset paging -----------------------------------------

STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$")


def epoch_millis(stamp: str) -> int:
    """An API timestamp as epoch milliseconds, truncated."""
    match = STAMP.match(stamp)
    if match is None:
        raise ValueError(f"not an API timestamp: {stamp!r}")
    whole, fraction = match.groups()
    moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * 1000 + int((fraction or "0").ljust(3, "0")[:3])


def incident_pages(session: requests.Session, base_url: str) -> Pages:
    """As the connector pages (`shared.rest.keyset`): every page re-asks `updatedAt>=` the
    largest `updatedAt` seen, from offset 0; the records at that instant come again and
    are dropped here (the connector's merge drops them)."""
    since, boundary = 0, set[str]()
    while True:
        params = {"limit": 100, "sort": "updatedAt", "order": "asc", "query": f"updatedAt>={since}"}
        body = json.loads(_get(session, f"{base_url}/v2/alerts", **params).content)
        rows = body["data"]
        fresh = [row for row in rows if row["id"] not in boundary]
        if fresh:
            yield fresh
        if not (body.get("paging") or {}).get("next") or not rows:
            return
        last = epoch_millis(rows[-1]["updatedAt"])
        if last == since:
            raise RuntimeError("a whole page shares one updatedAt; the bench data never does")
        since = last
        boundary = {row["id"] for row in rows if epoch_millis(row["updatedAt"]) == last}


# -- project_tracker: `groups_stories`, a child list offset-paged 1,000 at a time ---------


def tracker_pages(session: requests.Session, base_url: str) -> Pages:
    groups = json.loads(_get(session, f"{base_url}/v1/groups").content)["data"]
    for group in groups:
        offset, limit = 0, 1000
        while True:
            url = f"{base_url}/v1/groups/{group['id']}/stories"
            rows = json.loads(_get(session, url, limit=limit, offset=offset).content)["data"]
            yield rows
            if len(rows) < limit:
                break
            offset += limit


# -- hubspot_contacts: `contacts`, the list endpoint's `after` cursor ---------------------


def hubspot_pages(session: requests.Session, base_url: str) -> Pages:
    params: dict[str, Any] = {
        "limit": 100,
        "properties": "email,firstname,lastname,company,phone,createdate,lastmodifieddate",
    }
    while True:
        body = json.loads(_get(session, f"{base_url}/crm/v3/objects/contacts", **params).content)
        yield body["results"]
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if after is None:
            return
        params["after"] = after


def _cases() -> dict[str, Case]:
    from connectors.sandbox import (
        analytics,
        crm,
        hubspot_contacts,
        incident_analytics,
        project_tracker,
    )

    cases = [
        Case(
            "crm",
            "parties",
            "crm_source",
            {"bearer_token": crm.TOKEN},
            {},
            crm_pages,
            {"Authorization": f"Bearer {crm.TOKEN}"},
            {},
            "`Link`-header paging, 100 a page, merge on `id` with the `since` cursor; each "
            "party has three nested arrays (`emailAddresses`, `phoneNumbers`, `fields`, "
            "with a nested `definition` object)",
        ),
        Case(
            "analytics",
            "events",
            "analytics_source",
            {"api_key": analytics.API_KEY},
            {"resources": ["events"]},
            analytics_pages,
            {},
            {"api_key": analytics.API_KEY},
            "offset paging, 100 a page until a short page, full refresh; each event has a "
            "nested `properties` object, every seventh an extra field",
        ),
        Case(
            "incident_analytics",
            "alerts",
            "incident_analytics_source",
            {"api_token": incident_analytics.TOKEN},
            {},
            incident_pages,
            {"Authorization": f"{incident_analytics.SCHEME} {incident_analytics.TOKEN}"},
            {},
            "keyset paging (`query=updatedAt>=<ms>` from offset 0 for every page), 100 a "
            "page, merge on `id` with the `updatedAt` cursor; each alert has a `tags` array "
            "and an `integration` object",
        ),
        Case(
            "project_tracker",
            "groups_stories",
            "project_tracker_source",
            {"api_key": project_tracker.API_KEY},
            {},
            tracker_pages,
            {"api_key": project_tracker.API_KEY},
            {},
            "a child list: `/v1/groups/{group_id}/stories` for each of 3 groups, offset "
            "paging 1,000 a request, merge on (`group_id`, `id`); each story has a `labels` "
            "array of objects and `owner_ids` and `follower_ids` arrays",
        ),
        Case(
            "hubspot_contacts",
            "contacts",
            "hubspot_contacts_source",
            {"api_key": hubspot_contacts.TOKEN},
            {},
            hubspot_pages,
            {"Authorization": f"Bearer {hubspot_contacts.TOKEN}"},
            {},
            "the list endpoint's `after` cursor, 100 a page, merge on `id` with the "
            "`updated_at` cursor; each contact's nested `properties` object is flattened "
            "into the table's columns",
        ),
    ]
    return {case.connector: case for case in cases}


CASES = _cases()
