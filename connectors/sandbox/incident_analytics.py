"""Fake incident-management API (Opsgenie-shaped): `GenieKey` auth, `{data, took,
requestId, paging}` envelopes, absolute `paging.next` links, the
`query=updatedAt>=<epoch ms>[ AND createdAt>=<epoch ms>]` filter, the incident sort
fields (`sort=updatedAt` on incidents is refused with 422), the 20,000 offset cap and
timestamps with 0, 2, 3 or 6 fractional digits. A test can change a record between two
pages (`between_pages`).

Everything it serves is deterministic (UUIDv5 ids, `took` and `requestId` derived from
the request), so re-recording the cassettes gives the same bytes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, overload
from urllib.parse import urlencode

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.base import FakeServer, Fault

TOKEN = "incident-analytics-fake-api-token-3f9c2a"
SCHEME = "GenieKey"
NAMESPACE = uuid.UUID("6f1d3c52-0d7e-4b8e-9a51-2c4f1f0b7a10")
EPOCH = datetime(2024, 8, 1, 8, 0, 0, tzinfo=timezone.utc)
#: fractional digits of the timestamps, cycled through by record index
FRACTION_DIGITS = (0, 2, 3, 6)
OFFSET_CAP = 20_000
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
#: the query filters the API documents: `<field>>=<epoch ms>`, joined by ` AND `
QUERY_CLAUSE = re.compile(r"^(updatedAt|createdAt)>=(\d+)$")
#: the sort fields the real incidents API documents (no `updatedAt`)
INCIDENT_SORT_FIELDS = ("createdAt", "tinyId", "message", "status", "isSeen", "owner")
STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$")
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
PAGED_LISTS = ("users", "services", "incidents", "alerts")
#: the headers of a 429: throttled, by the per-second limit
THROTTLED_HEADERS = {
    "X-RateLimit-State": "THROTTLED",
    "X-RateLimit-Reason": "ACCOUNT",
    "X-RateLimit-Period-In-Sec": "1",
}


def record_id(kind: str, index: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}/{index}"))


def stamp(moment: datetime, digits: int) -> str:
    """`moment` in the API's format, with `digits` fractional digits (truncated)."""
    text = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    return text + "Z"


def parse_stamp(text: str) -> datetime:
    match = STAMP.match(text)
    if not match:
        raise ValueError(f"not an API timestamp: {text!r}")
    whole, fraction = match.groups()
    moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return moment.replace(microsecond=int((fraction or "").ljust(6, "0")))


def millis(moment: datetime) -> int:
    """Epoch milliseconds, truncated."""
    return (int(moment.replace(microsecond=0).timestamp()) * 1000) + moment.microsecond // 1000


def moment_of(index: int, base: datetime, step: timedelta) -> datetime:
    # a spread of sub-second parts, so every fractional form carries real digits
    return base + step * index + timedelta(microseconds=(index * 123_457 + 4_321) % 1_000_000)


def timestamps(index: int, spread: int) -> dict[str, str]:
    """`createdAt` in index order; `updatedAt` in a shuffled order (so sorting matters)."""
    digits = FRACTION_DIGITS[index % len(FRACTION_DIGITS)]
    shuffled = (index * 7919) % spread
    return {
        "createdAt": stamp(moment_of(index, EPOCH, timedelta(minutes=3)), digits),
        "updatedAt": stamp(
            moment_of(shuffled, EPOCH + timedelta(days=20), timedelta(minutes=7)), digits
        ),
    }


def make_user(i: int) -> dict[str, Any]:
    return {
        "id": record_id("user", i),
        "username": f"user{i}@example.com",
        "fullName": f"User {i}",
        "role": {
            "id": ("Admin", "User", "Owner")[i % 3],
            "name": ("Admin", "User", "Owner")[i % 3],
        },
        "blocked": i % 17 == 0,
        "verified": i % 5 != 0,
        "timeZone": "Europe/London",
        "locale": "en_GB",
        "tags": [f"tier{i % 3}"] if i % 2 else [],
        # user-defined properties: a dynamic map of string lists
        "details": {"department": [f"dept{i % 4}"], "floor": [str(i % 3)]} if i % 3 else {},
        "userContacts": [
            {
                "to": f"user{i}@example.com",
                "id": record_id("contact", i),
                "contactMethod": "email",
                "enabled": True,
            }
        ],
        "createdAt": timestamps(i, 1)["createdAt"],
    }


def make_team(i: int) -> dict[str, Any]:
    return {
        "id": record_id("team", i),
        "name": f"Team {i}",
        "description": f"On-call team {i}",
        "members": [
            {
                "user": {
                    "id": record_id("user", i * 3 + k),
                    "username": f"user{i * 3 + k}@example.com",
                },
                "role": "admin" if k == 0 else "user",
            }
            for k in range(1 + i % 3)
        ],
    }


def make_service(i: int) -> dict[str, Any]:
    return {
        "id": record_id("service", i),
        "name": f"Service {i}",
        "teamId": record_id("team", i % 7),
        "description": f"Service number {i}",
        "tags": [f"tier{i % 3}", "prod" if i % 2 else "staging"],
        "isExternal": i % 9 == 0,
    }


def make_integration(i: int) -> dict[str, Any]:
    return {
        "id": record_id("integration", i),
        "name": f"Integration {i}",
        "type": ("API", "Email", "Webhook")[i % 3],
        "enabled": i % 4 != 0,
        "teamId": record_id("team", i % 7),
    }


def make_incident(i: int, spread: int) -> dict[str, Any]:
    return {
        "id": record_id("incident", i),
        "tinyId": str(1000 + i),
        "message": f"Incident {i}",
        "status": ("open", "resolved", "closed")[i % 3],
        "priority": PRIORITIES[i % 5],
        "tags": [f"tag{i % 4}"],
        "ownerTeam": record_id("team", i % 7),
        "isSeen": i % 2 == 0,
        "source": "monitoring",
        "responders": [{"type": "team", "id": record_id("team", i % 7)}],
        # custom properties: a dynamic map of strings
        "extraProperties": {"region": ("eu", "us")[i % 2], "customer": f"c{i % 5}"},
        "impactedServices": [record_id("service", i % 110), record_id("service", (i + 1) % 110)],
        **timestamps(i, spread),
    }


def make_alert(i: int, spread: int) -> dict[str, Any]:
    return {
        "id": record_id("alert", i),
        "tinyId": str(50_000 + i),
        "alias": f"alias-{i}",
        "message": f"Alert {i}",
        "status": ("open", "closed")[i % 2],
        "acknowledged": i % 3 == 0,
        "isSeen": i % 2 == 0,
        "snoozed": False,
        "count": 1 + i % 5,
        "source": "monitoring",
        "owner": f"user{i % 130}@example.com",
        "priority": PRIORITIES[i % 5],
        "tags": [f"host{i % 6}"],
        "integration": {"id": record_id("integration", i % 9), "type": "API"},
        "responders": [{"type": "user", "id": record_id("user", i % 130)}],
        **timestamps(i, spread),
    }


class RecordStream(Sequence[dict[str, Any]]):
    """`count` records made on demand (ids `record_id(kind, i)`), already in `updatedAt`
    and `createdAt` order (the two are equal): `per_milli` records share each millisecond.
    With `per_milli` above 1000, all of a millisecond's records have the same stamps;
    otherwise the first of each millisecond has 3 fractional digits and the rest 6, a
    microsecond apart (so a restart that rounded up would lose them)."""

    def __init__(
        self, count: int, per_milli: int = 1, start: datetime = EPOCH, kind: str = "stream-alert"
    ) -> None:
        self.size = count
        self.kind = kind
        self.per_milli = per_milli
        self.start_millis = millis(start)

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._make(i) for i in range(*index.indices(self.size))]
        if not 0 <= index < self.size:
            raise IndexError(index)
        return self._make(index)

    def first_at_or_after(self, at_millis: int) -> int:
        """Index of the first record stamped at or after `at_millis`."""
        return min(self.size, max(0, (at_millis - self.start_millis) * self.per_milli))

    def _make(self, i: int) -> dict[str, Any]:
        within = i % self.per_milli if self.per_milli <= 1000 else 0
        moment = datetime.fromtimestamp(
            (self.start_millis + i // self.per_milli) / 1000, tz=timezone.utc
        ) + timedelta(microseconds=within)
        updated = stamp(moment, 6 if within else 3)
        return {
            "id": record_id(self.kind, i),
            "tinyId": str(i),
            "message": f"Record {i}",
            "status": "open",
            "createdAt": updated,
            "updatedAt": updated,
        }


class IncidentAnalyticsFake(FakeServer):
    """The incident-management API.

    Args:
        token: the accepted API key.
        scheme: the accepted word before it in the `Authorization` header.
        alerts: replace the alerts, e.g. with a `RecordStream` of more than 20,000.
        incidents: replace the incidents likewise.
        latency: seconds added to every response.
    """

    def __init__(
        self,
        token: str = TOKEN,
        scheme: str = SCHEME,
        alerts: Sequence[dict[str, Any]] | None = None,
        incidents: Sequence[dict[str, Any]] | None = None,
        latency: float = 0.0,
    ) -> None:
        self.token = token
        self.scheme = scheme
        self.data: dict[str, Sequence[dict[str, Any]]] = {
            "users": [make_user(i) for i in range(130)],
            "teams": [make_team(i) for i in range(7)],
            "services": [make_service(i) for i in range(110)],
            "integrations": [make_integration(i) for i in range(9)],
            "incidents": (
                incidents if incidents is not None else [make_incident(i, 140) for i in range(140)]
            ),
            "alerts": alerts if alerts is not None else [make_alert(i, 230) for i in range(230)],
        }
        super().__init__(latency=latency)

    def rules(self) -> list[Rule]:
        return [
            Rule("/v2/users", endpoint="paged_list", defaults={"kind": "users"}),
            Rule("/v2/teams", endpoint="whole_list", defaults={"kind": "teams"}),
            Rule("/v1/services", endpoint="paged_list", defaults={"kind": "services"}),
            Rule("/v2/integrations", endpoint="whole_list", defaults={"kind": "integrations"}),
            Rule("/v1/incidents", endpoint="paged_list", defaults={"kind": "incidents"}),
            Rule("/v2/alerts", endpoint="paged_list", defaults={"kind": "alerts"}),
        ]

    # -- behaviour a test controls ---------------------------------------------------
    def update(self, kind: str, id_: str, moment: datetime, **fields: Any) -> dict[str, Any]:
        """Change record `id_` of `kind` at `moment` (its new `updatedAt`); returns it."""
        rows = list(self.data[kind])
        index = next(i for i, row in enumerate(rows) if row["id"] == id_)
        rows[index] = {**rows[index], **fields, "updatedAt": stamp(moment, 3)}
        self.data[kind] = rows
        return rows[index]

    def delete(self, kind: str, id_: str) -> None:
        """Delete record `id_` of `kind`: gone from its list (no API reports deletions)."""
        self.data[kind] = [row for row in self.data[kind] if row["id"] != id_]

    def newest_updated(self, kind: str) -> datetime:
        return max(parse_stamp(row["updatedAt"]) for row in self.data[kind])

    # -- the API's behaviour ----------------------------------------------------------
    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"{self.scheme} {self.token}"

    def unauthorized(self) -> Response:
        return self.error(401, "Could not authenticate")

    def rate_limited(self) -> Response:
        return self.error(429, "You are making too many requests!", THROTTLED_HEADERS)

    def error_body(self, message: str) -> dict[str, Any]:
        return {"message": message, "took": 0.002, "requestId": str(uuid.uuid5(NAMESPACE, message))}

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return self.answer(self.error_body(message), status, headers)

    def answer(
        self, body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        """`body` with the headers Opsgenie documents on every answer (`documented`)."""
        return self.json_response(body, status, {**self.documented(body), **(headers or {})})

    @staticmethod
    def documented(body: dict[str, Any]) -> dict[str, str]:
        """The headers Opsgenie documents on every answer, error or not: the request id,
        the time taken, the rate-limit state and the paging links as `X-Paging-*`."""
        headers = {
            "X-Request-ID": body["requestId"],
            "X-Response-Time": f"{body['took']}",
            "X-RateLimit-State": "OK",
        }
        for name, url in (body.get("paging") or {}).items():
            headers[f"X-Paging-{name.capitalize()}"] = url
        return headers

    def fault(
        self, status: int, message: str, path: str, headers: dict[str, str] | None = None
    ) -> Fault:
        """A fault answering `status` with the API's error body and documented headers."""
        body = self.error_body(message)
        return Fault(status, body, {**self.documented(body), **(headers or {})}, path=path)

    def envelope(
        self, request: Request, data: list[dict[str, Any]], **extra: Any
    ) -> dict[str, Any]:
        identity = f"{request.path}?{request.query_string.decode()}"
        return {
            "data": data,
            **extra,
            "took": round(0.004 + (len(data) % 9) / 1000, 3),
            "requestId": str(uuid.uuid5(NAMESPACE, identity)),
        }

    def whole_list(self, request: Request, kind: str) -> Response:
        return self.answer(self.envelope(request, list(self.data[kind])))

    def paged_list(self, request: Request, kind: str) -> Response:
        try:
            offset = int(request.args.get("offset", 0))
            limit = int(request.args.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return self.error(422, "offset and limit must be integers")
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            return self.error(422, f"limit must be between 1 and {MAX_LIMIT}")
        if offset + limit > OFFSET_CAP:
            return self.error(422, f"offset + limit must not exceed {OFFSET_CAP}")
        query = request.args.get("query", "")
        if kind == "incidents" and not query:
            return self.error(422, "Query field cannot be empty.")
        sort = request.args.get("sort")
        if kind == "incidents" and sort is not None and sort not in INCIDENT_SORT_FIELDS:
            return self.error(
                422, f"Invalid sort field: {sort}. Valid fields: {', '.join(INCIDENT_SORT_FIELDS)}"
            )
        bounds: dict[str, int] = {}
        for clause in query.split(" AND ") if query else []:
            match = QUERY_CLAUSE.match(clause)
            if not match:
                return self.error(422, f"Unsupported query: {query}")
            bounds[match.group(1)] = int(match.group(2))
        rows = self.select(kind, bounds, sort, request.args.get("order", "desc"))
        total = len(rows)
        page = list(rows[offset : offset + limit])
        extra: dict[str, Any] = {"totalCount": total} if kind == "users" else {}
        paging = self.paging(request, offset, limit, total)
        if paging:
            extra["paging"] = paging
        return self.answer(self.envelope(request, page, **extra))

    def select(
        self, kind: str, bounds: dict[str, int], sort: str | None, order: str
    ) -> Sequence[dict[str, Any]]:
        """The records stamped at or after every bound (`field -> epoch ms`), sorted by
        `sort` then `id` (unsorted without `sort`)."""
        rows = self.data[kind]
        if isinstance(rows, RecordStream):
            # a stream's `createdAt` equals its `updatedAt`: one bound, the larger
            start = rows.first_at_or_after(max(bounds.values())) if bounds else 0
            return _Window(rows, start)
        for field, since in bounds.items():
            rows = [row for row in rows if millis(parse_stamp(row[field])) >= since]
        if sort in ("updatedAt", "createdAt"):
            rows = sorted(
                rows,
                key=lambda row: (parse_stamp(row[sort]), row["id"]),
                reverse=order == "desc",
            )
        return rows

    @staticmethod
    def paging(request: Request, offset: int, limit: int, total: int) -> dict[str, str]:
        """`next` while records remain; `first` and `last` while there is more than one page."""
        if total <= limit and offset == 0:
            return {}
        origin = request.host_url.rstrip("/")

        def url(at: int) -> str:
            args = {**request.args.to_dict(), "offset": str(at), "limit": str(limit)}
            return f"{origin}{request.path}?{urlencode(args)}"

        links = {"first": url(0)}
        if offset + limit < total:
            links["next"] = url(offset + limit)
        links["last"] = url(max(0, (total - 1) // limit * limit))
        return links

    # -- scenario changes ------------------------------------------------------------
    def change_for_second_run(self) -> dict[str, list[str]]:
        """Between two syncs: incidents and alerts change after the previous maximum, one
        alert in the very millisecond of it, and new ones arrive."""
        incidents = list(self.data["incidents"])
        alerts = list(self.data["alerts"])
        newest_incident = max(parse_stamp(row["updatedAt"]) for row in incidents)
        newest_alert = max(parse_stamp(row["updatedAt"]) for row in alerts)

        incidents[3] = {
            **incidents[3],
            "status": "resolved",
            "updatedAt": stamp(newest_incident + timedelta(minutes=5, microseconds=250_001), 6),
        }
        incidents[10] = {
            **incidents[10],
            "status": "closed",
            "updatedAt": stamp(newest_incident + timedelta(minutes=6), 0),
        }
        new_incident = make_incident(len(incidents), len(incidents))
        new_incident["updatedAt"] = stamp(
            newest_incident + timedelta(minutes=7, milliseconds=480), 2
        )
        incidents.append(new_incident)

        same_milli = newest_alert.replace(microsecond=newest_alert.microsecond // 1000 * 1000 + 999)
        assert same_milli > newest_alert, "the fake's newest alert must not end in 999 µs"
        alerts[7] = {**alerts[7], "status": "closed", "updatedAt": stamp(same_milli, 6)}
        for index in (8, 9):
            alerts[index] = {
                **alerts[index],
                "acknowledged": True,
                "updatedAt": stamp(newest_alert + timedelta(minutes=3), 3),
            }
        new_alerts = [make_alert(len(alerts) + k, 1) for k in range(2)]
        new_alerts[0]["updatedAt"] = stamp(newest_alert + timedelta(minutes=4), 0)
        new_alerts[1]["updatedAt"] = stamp(newest_alert + timedelta(minutes=4, milliseconds=250), 3)
        alerts.extend(new_alerts)

        self.data["incidents"], self.data["alerts"] = incidents, alerts
        return {
            "incidents": [incidents[3]["id"], incidents[10]["id"], new_incident["id"]],
            "alerts": [
                alerts[7]["id"],
                alerts[8]["id"],
                alerts[9]["id"],
                *(alert["id"] for alert in new_alerts),
            ],
        }


class _Window(Sequence[dict[str, Any]]):
    """A `RecordStream` from index `start` on, without making the alerts before it."""

    def __init__(self, stream: RecordStream, start: int) -> None:
        self.stream = stream
        self.start = start

    def __len__(self) -> int:
        return len(self.stream) - self.start

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            begin, end, _ = index.indices(len(self))
            return self.stream[self.start + begin : self.start + end]
        return self.stream[self.start + index]


def small_account_with_retries(fake: IncidentAnalyticsFake) -> None:
    """Three records of each list, and on the way a 429 (throttled for a second) on the
    users and a 503 on the teams: both retried, the sync succeeds."""
    for kind in fake.data:
        fake.data[kind] = list(fake.data[kind])[:3]
    throttled = "You are making too many requests!"
    fake.inject(fake.fault(429, throttled, "/v2/users", THROTTLED_HEADERS))
    fake.inject(fake.fault(503, "Service Unavailable", "/v2/teams"))


def incidents_refused(fake: IncidentAnalyticsFake) -> None:
    """The incidents answer 422 (as to a request without `query`): the sync fails."""
    fake.inject(fake.fault(422, "Query field cannot be empty.", "/v1/incidents"))


def _recording() -> Any:
    from connectors.incident_analytics import incident_analytics_source
    from shared.tooling.recordings import Recording, Step

    return Recording(
        connector="incident_analytics",
        source=incident_analytics_source,
        fake=IncidentAnalyticsFake,
        credentials={"api_token": TOKEN},
        canonical_base_url="https://api.example.com",
        steps=[
            Step("full_sync"),
            Step("incremental", prepare=lambda fake: fake.change_for_second_run()),
            Step("retried_sync", prepare=small_account_with_retries, own_pipeline=True),
            Step("validation_error", prepare=incidents_refused, fails_with="422"),
        ],
        live_credentials={"api_token": "INCIDENT_ANALYTICS_API_TOKEN"},
        live_base_url_env="INCIDENT_ANALYTICS_BASE_URL",
        offline_kwargs={"requests_per_minute": 60_000},
    )


RECORDING = _recording()
