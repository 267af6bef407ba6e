"""The fake vendor servers at benchmark scale: 100,000 to 1,000,000 records of each
connector's largest resource, made on demand.

The sandbox fakes (`connectors/sandbox/*.py`) hold every record in memory and filter or
sort the whole list on every request; at a million records that costs gigabytes and
minutes. Each class here subclasses a sandbox fake, keeps its contract (auth, envelope, paging,
headers) and its record shapes (the fake's own `make_*` functions, nested arrays and
objects included), and serves the benchmarked list from `RecordJson`: record `i` is made
from its index when asked for, so a page costs the same at offset 0 and at 999,900.

`keep=True` makes and serialises every record once, up front, so that a throughput run
times the client rather than the fake's JSON encoding; the 1,000,000-row memory runs
make each page when asked (a client there is slower than the server).

Every server reports a rate-limit budget far above what a run spends, where its contract
has one, so that a connector that paces itself to the server's reported budget is not
slowed either: the benchmark measures the default path with pacing off.

`python -m bench.serve <connector> --rows N [--keep]` serves one from its own process.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from connectors.sandbox import analytics, crm, hubspot_contacts, incident_analytics, project_tracker
from connectors.sandbox.base import FakeServer

#: a budget no run comes near: 10,000 pages a run, six runs a server
GENEROUS_BUDGET = 1_000_000_000


class RecordJson:
    """The JSON text of `count` records, record `i` made by `make(i)`.

    Args:
        make: builds record `i` (deterministic: the same `i` always gives the same record).
        count: how many records there are.
        keep: make and serialise every record now and keep the bytes.
    """

    def __init__(self, make: Callable[[int], Any], count: int, keep: bool = False) -> None:
        self.make = make
        self.count = count
        self.kept = [self._encode(i) for i in range(count)] if keep else None

    def _encode(self, index: int) -> bytes:
        return json.dumps(self.make(index)).encode()

    def array(self, start: int, stop: int) -> bytes:
        """Records `start` to `stop` (exclusive, clipped to the list) as a JSON array."""
        start, stop = max(0, start), min(stop, self.count)
        if self.kept is not None:
            parts = self.kept[start:stop]
        else:
            parts = [self._encode(i) for i in range(start, stop)]
        return b"[" + b",".join(parts) + b"]"


def json_body(key: str, array: bytes, **tail: Any) -> bytes:
    """`{key: <array>, **tail}` as JSON bytes, `array` (already JSON) spliced in as it is."""
    rest = json.dumps(tail)[1:-1]
    return b'{"' + key.encode() + b'": ' + array + (f", {rest}".encode() if rest else b"") + b"}"


def json_page(fake: FakeServer, body: bytes, headers: dict[str, str] | None = None) -> Response:
    """A 200 carrying `body`, with the fake's common headers and `headers`."""
    response = Response(body, mimetype="application/json")
    for name, value in {**fake.common_headers(), **(headers or {})}.items():
        response.headers[name] = value
    return response


# -- crm: parties ---------------------------------------------------------------------

CRM_FIRST_UPDATE = crm.EPOCH + timedelta(hours=1)  # make_party(i) is updated i minutes later


class CrmBench(crm.CrmFake):
    """The CRM fake with `rows` parties (`make_party`: three nested arrays each), paged by
    `page`/`perPage` with `Link` headers and filtered by `since`, as the contract says."""

    def __init__(self, rows: int, keep: bool = False, latency: float = 0.0) -> None:
        super().__init__(scale=1, latency=latency)
        self.rate_limit = GENEROUS_BUDGET
        self.parties = RecordJson(crm.make_party, rows, keep)

    def list_entities(self, request: Request, key: str) -> Response:
        if key != "parties":
            return super().list_entities(request, key)
        first = 0
        since = request.args.get("since")
        if since:
            minutes = (crm.parse_stamp(since) - CRM_FIRST_UPDATE) // timedelta(minutes=1)
            first = max(0, minutes + 1)
        page = max(1, int(request.args.get("page", 1)))
        per_page = min(100, max(1, int(request.args.get("perPage", 50))))
        start = first + (page - 1) * per_page
        stop = min(start + per_page, self.parties.count)
        origin = request.host_url.rstrip("/")
        links = []
        if stop < self.parties.count:
            links.append(f'<{self.page_url(request, origin, page + 1, per_page)}>; rel="next"')
        if page > 1:
            links.append(f'<{self.page_url(request, origin, page - 1, per_page)}>; rel="prev"')
        body = json_body("parties", self.parties.array(start, stop))
        return json_page(self, body, {"Link": ", ".join(links)} if links else None)


# -- analytics: events ----------------------------------------------------------------


class AnalyticsBench(analytics.AnalyticsFake):
    """The analytics fake with `rows` events (`make_event`: a nested `properties` object,
    an extra field on every seventh), offset-paged with no total."""

    def __init__(self, rows: int, keep: bool = False, latency: float = 0.0) -> None:
        super().__init__(events=0, latency=latency)
        self.events = RecordJson(analytics.make_event, rows, keep)

    def listing(self, request: Request, key: str) -> Response:
        if key != "events":
            return super().listing(request, key)
        offset = max(0, int(request.args.get("offset", 0)))
        limit = min(100, max(1, int(request.args.get("limit", 100))))
        return json_page(self, json_body("data", self.events.array(offset, offset + limit)))


# -- incident_analytics: alerts -------------------------------------------------------


def incident_alert(index: int) -> dict[str, Any]:
    """`make_alert(index)` (a `tags` array, an `integration` object), stamped one
    millisecond after alert `index - 1`: created and updated in index order, as the
    fake's `RecordStream`, so a keyset restart from a millisecond finds its index."""
    alert = incident_analytics.make_alert(index, 1)
    moment = incident_analytics.EPOCH + timedelta(milliseconds=index)
    stamp = incident_analytics.stamp(moment, 3)
    return {**alert, "createdAt": stamp, "updatedAt": stamp}


class IncidentAnalyticsBench(incident_analytics.IncidentAnalyticsFake):
    """The incident fake with `rows` alerts (`incident_alert`), filtered by
    `query=updatedAt>=<ms>`, sorted by `updatedAt`, offset-paged up to the 20,000 cap,
    with `paging.next` links: the connector's keyset paging restarts every page."""

    def __init__(self, rows: int, keep: bool = False, latency: float = 0.0) -> None:
        super().__init__(alerts=[], latency=latency)
        self.alerts = RecordJson(incident_alert, rows, keep)
        self.first_millis = incident_analytics.millis(incident_analytics.EPOCH)

    def paged_list(self, request: Request, kind: str) -> Response:
        if kind != "alerts":
            return super().paged_list(request, kind)
        offset = int(request.args.get("offset", 0))
        limit = int(request.args.get("limit", incident_analytics.DEFAULT_LIMIT))
        if not 1 <= limit <= incident_analytics.MAX_LIMIT or offset < 0:
            return self.error(422, f"limit must be between 1 and {incident_analytics.MAX_LIMIT}")
        if offset + limit > incident_analytics.OFFSET_CAP:
            return self.error(
                422, f"offset + limit must not exceed {incident_analytics.OFFSET_CAP}"
            )
        query = request.args.get("query", "")
        since = 0
        for clause in query.split(" AND ") if query else []:
            match = incident_analytics.QUERY_CLAUSE.match(clause)
            if not match:
                return self.error(422, f"Unsupported query: {query}")
            since = max(since, int(match.group(2)))
        start = min(self.alerts.count, max(0, since - self.first_millis))
        total = self.alerts.count - start
        first = start + offset
        array = self.alerts.array(first, first + limit)
        tail: dict[str, Any] = {}
        paging = self.paging(request, offset, limit, total)
        if paging:
            tail["paging"] = paging
        identity = f"{request.path}?{request.query_string.decode()}"
        tail["took"] = 0.004
        tail["requestId"] = str(uuid.uuid5(incident_analytics.NAMESPACE, identity))
        return json_page(self, json_body("data", array, **tail))


# -- project_tracker: groups_stories --------------------------------------------------

STORY_GROUPS = 3


def tracker_story(index: int) -> dict[str, Any]:
    """Story `index`: the fake's story fields, with the `labels` objects and `owner_ids`
    and `follower_ids` arrays a real story carries (the fake's epics carry `labels` too)."""
    group = project_tracker.uuid(1, index % STORY_GROUPS)
    return project_tracker.entity(
        5000 + index,
        f"Story {index}",
        index,
        story_type=("feature", "bug", "chore")[index % 3],
        epic_id=None,
        group_id=group,
        iteration_id=None,
        labels=[
            {"id": 700 + (index + k) % 4, "name": f"Label {(index + k) % 4}"}
            for k in range(1 + index % 2)
        ],
        owner_ids=[project_tracker.uuid(2, index % 3)],
        follower_ids=[project_tracker.uuid(2, (index + k) % 3) for k in range(2)],
    )


def group_story(group: int, index: int) -> dict[str, Any]:
    """The `index`-th story of group `group` (stories are dealt to the groups in turn)."""
    return tracker_story(index * STORY_GROUPS + group)


class ProjectTrackerBench(project_tracker.ProjectTrackerFake):
    """The project-tracker fake with `rows` stories spread over its 3 groups
    (`tracker_story`), served by `/v1/groups/{group_id}/stories` at most 1,000 a request,
    `offset`-paged until a short page; epics and iterations hold no stories."""

    def __init__(self, rows: int, keep: bool = False, latency: float = 0.0) -> None:
        super().__init__(
            epics=3,
            stories_per_epic=0,
            group_only_stories=0,
            iteration_only_stories=0,
            undated=False,
            latency=latency,
        )
        assert len(self.groups) == STORY_GROUPS
        self.stories_of = {
            group["id"]: RecordJson(
                functools.partial(group_story, g),
                (rows - g + STORY_GROUPS - 1) // STORY_GROUPS,
                keep,
            )
            for g, group in enumerate(self.groups)
        }

    def group_stories(self, request: Request, id_: str) -> Response:
        stories = self.stories_of.get(id_)
        if stories is None:
            return self.not_found()
        limit = int(request.args.get("limit", self.group_stories_cap))
        offset = int(request.args.get("offset", 0))
        if not 1 <= limit <= self.group_stories_cap or offset < 0:
            return self.json_response(
                {"message": f"limit must be 1..{self.group_stories_cap}, offset >= 0"}, 400
            )
        return json_page(self, json_body("data", stories.array(offset, offset + limit)))


# -- hubspot_contacts: contacts -------------------------------------------------------

#: the properties the connector asks for (contract: the list endpoint's `properties`)
HUBSPOT_PROPERTIES = "email,firstname,lastname,company,phone,createdate,lastmodifieddate"


class HubSpotContactsBench(hubspot_contacts.HubSpotContactsFake):
    """The HubSpot fake with `rows` contacts (ids 1..rows, `make_contact`, none archived),
    listed 100 a page by the `after` cursor with `paging.next.link`."""

    def __init__(self, rows: int, keep: bool = False, latency: float = 0.0) -> None:
        super().__init__(count=0, latency=latency)
        self.count = rows
        self.keep = keep
        self.by_properties: dict[str, RecordJson] = {}
        self.contacts_json(HUBSPOT_PROPERTIES)

    def contacts_json(self, properties: str) -> RecordJson:
        """The contacts as listed with `properties` (made once per distinct list)."""
        if properties not in self.by_properties:
            wanted = [name for name in properties.split(",") if name]
            self.by_properties[properties] = RecordJson(
                lambda i: self.project(hubspot_contacts.make_contact(i + 1), wanted),
                self.count,
                self.keep,
            )
        return self.by_properties[properties]

    def rate_limit_headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Max": str(GENEROUS_BUDGET),
            "X-HubSpot-RateLimit-Remaining": str(GENEROUS_BUDGET - 1),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        }

    def list_contacts(self, request: Request) -> Response:
        limit = int(request.args.get("limit", 10))
        if not 1 <= limit <= 100:
            return self.validation_error(f"limit must be between 1 and 100, got {limit}")
        if request.args.get("archived") == "true":
            # none archived: the archived list (the sync's deletions) is empty, as the
            # real API's is for an account that deleted nothing
            return json_page(self, json_body("results", b"[]"), self.rate_limit_headers())
        contacts = self.contacts_json(request.args.get("properties", ""))
        start = max(0, int(request.args.get("after", 1)) - 1)  # contact `after` is index after-1
        stop = min(start + limit, self.count)
        tail: dict[str, Any] = {}
        if stop < self.count:
            after = str(stop + 1)
            link = f"{request.host_url.rstrip('/')}{hubspot_contacts.LIST_PATH}?" + urlencode(
                {"after": after, "limit": limit}
            )
            tail["paging"] = {"next": {"after": after, "link": link}}
        body = json_body("results", contacts.array(start, stop), **tail)
        return json_page(self, body, self.rate_limit_headers())


#: connector -> its benchmark server
SERVERS: dict[str, Callable[..., FakeServer]] = {
    "crm": CrmBench,
    "analytics": AnalyticsBench,
    "incident_analytics": IncidentAnalyticsBench,
    "project_tracker": ProjectTrackerBench,
    "hubspot_contacts": HubSpotContactsBench,
}
