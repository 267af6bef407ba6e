"""Fake CRM API speaking Capsule CRM API v2, shaped as Capsule documents its records
(developer.capsulecrm.com/v2, and the community OpenAPI spec of it): every field present
and null where unset, date-only `dueOn`/`expectedCloseOn`/`closedOn`, upper-case task
and project statuses, nested owner/party/milestone references; the `/deleted` feeds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.base import FakeServer, Fault, FixedWindowBudget, RawHeadersHandler

EPOCH = datetime(2024, 3, 1, 9, 0, 0, tzinfo=timezone.utc)
TOKEN = "crm-fake-bearer-token-0123456789"
ENTITIES = ("parties", "kases", "opportunities")
#: the budget Capsule documents: 4,000 requests an hour per user
DOCUMENTED_WINDOW = (4000, 3600.0)
#: where the recordings' clock stands (after every record's `updatedAt`): each response
#: of a recording is dated this second, so a re-recording writes the same `Date` and
#: `X-RateLimit-Reset`; replays move both to the time they run
RECORDED_AT = datetime(2024, 3, 4, 9, 0, 0, tzinfo=timezone.utc)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def changed_after(row: dict[str, Any], after: datetime) -> bool:
    """Whether `since` returns `row`; a record whose `updatedAt` is missing or not a date
    (a fault a test injected) is always returned, as the connector must cope with it."""
    try:
        return parse_stamp(row["updatedAt"]) > after
    except (KeyError, AttributeError, TypeError, ValueError):
        return True


TASK_STATUSES = ("OPEN", "COMPLETED", "PENDING")
AVATAR = "https://capsulecrm.com/theme/default/images/{}_avatar_70.png"
#: the parties (by index) that projects and opportunities belong to: past the first 200,
#: so tests that delete an early party cascade only to what they link themselves
OWNING_PARTIES = range(200, 250)


def day(moment: datetime) -> str:
    """A date without a time (`dueOn`, `expectedCloseOn`, `closedOn`): `2015-10-01`."""
    return moment.strftime("%Y-%m-%d")


def nested_user(i: int) -> dict[str, Any]:
    return {"id": 1 + i % 120, "username": f"user{i % 120}", "name": f"User {i % 120}"}


def nested_party(i: int) -> dict[str, Any]:
    index = OWNING_PARTIES[i % len(OWNING_PARTIES)]
    party: dict[str, Any] = {"id": 1000 + index, "type": "person", "pictureURL": None}
    if index % 4 == 0:
        party.update(type="organisation", name=f"Organisation {index}")
    else:
        party.update(firstName=f"First{index}", lastName=f"Last{index}")
    return party


def dated(i: int, updated_hours: int = 2) -> dict[str, str]:
    return {
        "createdAt": stamp(EPOCH + timedelta(minutes=i)),
        "updatedAt": stamp(EPOCH + timedelta(hours=updated_hours, minutes=i)),
    }


def belonging(i: int) -> dict[str, Any]:
    """The references of a project or an opportunity: its party, owner and (no) team."""
    return {"party": nested_party(i), "owner": nested_user(i), "team": None}


def make_party(i: int) -> dict[str, Any]:
    """A party as Capsule lists it: every field present, null where unset (`title`,
    `jobTitle`, `organisation`, `lastContactedAt`), a person's names or an
    organisation's `name`, and the nested arrays."""
    organisation = i % 4 == 0
    party: dict[str, Any] = {
        "id": 1000 + i,
        "type": "organisation" if organisation else "person",
        "about": None if i % 3 == 2 else f"party {i}",
        "title": None,
        "jobTitle": None,
        **dated(i, updated_hours=1),
        "lastContactedAt": None if i % 5 else stamp(EPOCH + timedelta(minutes=30 + i)),
        "pictureURL": AVATAR.format("org" if organisation else "person"),
        "owner": nested_user(i),
        "team": None,
        "emailAddresses": [
            {
                "id": 50000 + i * 2 + k,
                "type": "Work" if k == 0 else None,
                "address": f"p{i}.{k}@example.com",
            }
            for k in range(1 + i % 2)
        ],
        "phoneNumbers": [{"id": 70000 + i, "type": "Mobile", "number": f"+44 20 7946 {i:04d}"}],
        "addresses": (
            [
                {
                    "id": 80000 + i,
                    "type": None,
                    "city": "London",
                    "country": "United Kingdom",
                    "street": f"{i} High Street",
                    "state": None,
                    "zip": None,
                }
            ]
            if i % 2 == 0
            else []
        ),
        "websites": [],
        "fields": [{"id": 90000 + i, "definition": {"id": 1, "name": "Tier"}, "value": "gold"}],
    }
    if organisation:
        party["name"] = f"Organisation {i}"
    else:
        party.update(firstName=f"First{i}", lastName=f"Last{i}", organisation=None)
    return party


def make_task(i: int) -> dict[str, Any]:
    """A task: `description`, a date-only `dueOn`, upper-case `status`, a null `detail`
    and `dueTime`, the owner and (for some) the party it is about."""
    status = TASK_STATUSES[i % 3]
    return {
        "id": 3000 + i,
        "description": f"Task {i}",
        "detail": None,
        "dueOn": day(EPOCH + timedelta(days=i % 30)),
        "dueTime": None if i % 2 else "18:30:00",
        "status": status,
        "category": {"id": 50 + i % 6, "name": f"Category {i % 6}", "colour": "#fb9c4f"},
        "owner": nested_user(i),
        "party": nested_party(i) if i % 2 == 0 else None,
        "opportunity": None,
        "kase": None,
        "hasTrack": False,
        "completedAt": stamp(EPOCH + timedelta(hours=3, minutes=i))
        if status == "COMPLETED"
        else None,
        **dated(i),
    }


def make_project(i: int) -> dict[str, Any]:
    closed = i % 5 == 4
    return {
        "id": 4000 + i,
        "name": f"Project {i}",
        "description": f"Project {i} for the party" if i % 2 else None,
        "status": "CLOSED" if closed else "OPEN",
        **belonging(i),
        "opportunity": None,
        "closedOn": day(EPOCH + timedelta(days=i % 20)) if closed else None,
        "lastContactedAt": None,
        **dated(i),
    }


def make_opportunity(i: int) -> dict[str, Any]:
    won = i % 7 == 0
    return {
        "id": 5000 + i,
        "name": f"Opportunity {i}",
        "description": None,
        **belonging(i),
        "milestone": {"id": 20 + i % 5, "name": f"Milestone {i % 5}"},
        "lostReason": None,
        "value": {"amount": i * 10.5, "currency": "GBP"},
        "expectedCloseOn": day(EPOCH + timedelta(days=30 + i % 60)),
        "probability": (i % 5) * 20,
        "durationBasis": "FIXED",
        "duration": None,
        "closedOn": day(EPOCH + timedelta(days=i % 20)) if won else None,
        "lastContactedAt": None,
        "lastStageChangedAt": stamp(EPOCH + timedelta(hours=1, minutes=i)),
        "lastOpenMilestone": {"id": 20 + i % 5, "name": f"Milestone {i % 5}"},
        **dated(i),
    }


def make_entities(prefix: str, count: int, start_id: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": start_id + i,
            "name": f"{prefix} {i}",
            **dated(i),
            **{key: (value(i) if callable(value) else value) for key, value in extra.items()},
        }
        for i in range(count)
    ]


class ServerClockHandler(RawHeadersHandler):
    """Dates responses (the `Date` header the HTTP server writes) by the fake's clock."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        clock = getattr(self.server, "fake_clock", time.time)
        return super().date_time_string(clock() if timestamp is None else timestamp)


class CrmFake(FakeServer):
    """The CRM API. `scale` multiplies the row counts; `token` is the accepted bearer token;
    `window` the (requests, seconds) budget every response reports: by default a generous
    one, so that tests syncing against the fake never pace; `DOCUMENTED_WINDOW` (Capsule's
    4,000 an hour) for the recordings and `connectors serve`."""

    def __init__(
        self,
        scale: int = 1,
        token: str = TOKEN,
        latency: float = 0.0,
        window: tuple[int, float] = (1000, 60.0),
    ) -> None:
        self.token = token
        self.vanished: set[int] = set()
        self.next_link_origin: str | None = None
        self.rate_limit = window[0]
        #: the budget every response reports (the API's rate limit); `enforce_budget`
        #: makes the fake refuse requests beyond it
        self.budget = FixedWindowBudget(
            self.rate_limit, window[1], enforce=False, clock=self.server_time
        )
        #: epoch seconds the server's clock stands still at (`stop_clock`); None: it runs
        self.stopped_at: float | None = None
        self._refused_until: float | None = None
        #: False: responses carry no budget headers; a dict: these values instead (faults)
        self.budget_headers: bool | dict[str, str] = True
        #: (path, page) -> extra records served on that page (one id on two pages)
        self.extra_records: dict[tuple[str, int], list[dict[str, Any]]] = {}
        #: (path, page) -> (set when the request arrives, set to let it be answered)
        self.pauses: dict[tuple[str, int], tuple[threading.Event, threading.Event]] = {}
        #: (path, page) -> changes applied right after that page is served
        self.page_hooks: dict[tuple[str, int], list[Callable[[], None]]] = {}
        self.data: dict[str, list[dict[str, Any]]] = {
            "users": make_entities("User", 120 * scale, 1, username=lambda i: f"user{i}"),
            "parties": [make_party(i) for i in range(260 * scale)],
            "tasks": [make_task(i) for i in range(150 * scale)],
            "kases": [make_project(i) for i in range(130 * scale)],
            "opportunities": [make_opportunity(i) for i in range(110 * scale)],
            "pipelines": make_entities("Pipeline", 3, 10),
            "milestones": make_entities("Milestone", 5, 20, probability=lambda i: i * 20),
            "lostReasons": make_entities("Lost reason", 4, 30),
            "boards": make_entities("Board", 2, 40),
            "categories": make_entities("Category", 6, 50, colour="blue"),
            "activityTypes": make_entities("Activity type", 7, 60),
            "stages": make_entities("Stage", 5, 70),
        }
        self.tags = {
            e: make_entities(f"{e} tag", n, 1) for e, n in zip(ENTITIES, (5, 3, 4), strict=False)
        }
        self.definitions = {
            e: make_entities(f"{e} field", n, 1, type="string")
            for e, n in zip(ENTITIES, (4, 2, 3), strict=False)
        }
        #: body key (`parties`, `kases`, `opportunities`) -> the deleted feed's entries
        self.deleted: dict[str, list[dict[str, Any]]] = {entity: [] for entity in ENTITIES}
        self.employees: dict[int, list[dict[str, Any]]] = {}
        people = [p for p in self.data["parties"] if p["type"] == "person"]
        organisations = [p for p in self.data["parties"] if p["type"] == "organisation"]
        for n, organisation in enumerate(organisations):
            self.employees[organisation["id"]] = people[n * 2 : n * 2 + 2]
        super().__init__(latency=latency)

    def rules(self) -> list[Rule]:
        lists = {
            "users": "/api/v2/users",
            "parties": "/api/v2/parties",
            "tasks": "/api/v2/tasks",
            "kases": "/api/v2/kases",
            "opportunities": "/api/v2/opportunities",
            "pipelines": "/api/v2/pipelines",
            "milestones": "/api/v2/milestones",
            "lostReasons": "/api/v2/lostreasons",
            "boards": "/api/v2/boards",
            "categories": "/api/v2/categories",
            "activityTypes": "/api/v2/activitytypes",
            "stages": "/api/v2/stages",
        }
        rules = [
            Rule(path, endpoint="list_entities", defaults={"key": key})
            for key, path in lists.items()
        ]
        return [
            *rules,
            Rule("/api/v2/parties/<int:party>/people", endpoint="people"),
            Rule(
                "/api/v2/<any(parties,kases,opportunities):entity>/deleted",
                endpoint="deleted_entities",
            ),
            Rule("/api/v2/site", endpoint="site"),
            Rule("/api/v2/<any(parties,kases,opportunities):entity>/tags", endpoint="entity_tags"),
            Rule(
                "/api/v2/<any(parties,kases,opportunities):entity>/fields/definitions",
                endpoint="entity_definitions",
            ),
        ]

    def start(self, port: int = 0) -> CrmFake:
        super().start(port)
        self._server.RequestHandlerClass = ServerClockHandler
        self._server.fake_clock = self.server_time
        return self

    @property
    def clock_offset(self) -> float | None:
        """Seconds the server's clock (its `Date` header) is ahead of the local one."""
        return getattr(self._server, "clock_offset", None) if self._server else None

    @clock_offset.setter
    def clock_offset(self, seconds: float | None) -> None:
        self._server.clock_offset = seconds

    # -- the API's behaviour ----------------------------------------------------------
    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def unauthorized(self) -> Response:
        response = self.json_response({"message": "Invalid token"}, 401)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    def enforce_budget(self, requests: int, seconds: float) -> FixedWindowBudget:
        """Allow `requests` per fixed window of `seconds` and refuse the rest: `429` with
        the API's body and headers, no `Retry-After`."""
        self.rate_limit = requests
        self.budget = FixedWindowBudget(requests, seconds, clock=self.server_time)
        return self.budget

    def server_time(self) -> float:
        """The server's clock in epoch seconds (the one its `Date` header reads)."""
        if self.stopped_at is not None:
            return self.stopped_at
        return time.time() + (self.clock_offset or 0.0)

    def stop_clock(self, at: datetime = RECORDED_AT) -> None:
        """Stop the server's clock at `at`: every response dated that second, and the
        budget's window, which starts with the next request, resetting an hour after it."""
        self.stopped_at = at.timestamp()

    def _answer(self, request: Request) -> Response:
        if self.stopped_at is not None and self._refused_until is not None:
            # a stopped clock moves on to the reset the last 429 named: where a client
            # that waited for it finds the next window
            self.stopped_at = max(self.stopped_at, self._refused_until)
        self._refused_until = None
        if not self.budget.take():
            self.limited_responses += 1
            self._refused_until = float(self.budget.report()[2])
            return self.json_response({"error": "rate limit reached"}, 429)
        return super()._answer(request)

    def common_headers(self) -> dict[str, str]:
        if self.budget_headers is False:
            return {}
        if isinstance(self.budget_headers, dict):
            return dict(self.budget_headers)
        limit, remaining, reset = self.budget.report()
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }

    def rate_limit_fault_headers(self, reset_in: float = 1.0) -> dict[str, Any]:
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": lambda: str(int(self.server_time() + reset_in)),
        }

    def paged(self, request: Request, key: str, rows: list[dict[str, Any]]) -> Response:
        page = max(1, int(request.args.get("page", 1)))
        pause = self.pauses.get((request.path, page))
        if pause is not None:
            arrived, release = pause
            arrived.set()
            release.wait(timeout=120)
        per_page = min(100, max(1, int(request.args.get("perPage", 50))))
        chunk = rows[(page - 1) * per_page : page * per_page]
        chunk = [*chunk, *self.extra_records.get((request.path, page), [])]
        headers = {}
        links = []
        origin = self.next_link_origin or request.host_url.rstrip("/")
        if page * per_page < len(rows):
            links.append(f'<{self.page_url(request, origin, page + 1, per_page)}>; rel="next"')
        if page > 1:
            links.append(f'<{self.page_url(request, origin, page - 1, per_page)}>; rel="prev"')
        if links:
            headers["Link"] = ", ".join(links)
        response = self.json_response({key: chunk}, headers=headers)
        for change in self.page_hooks.pop((request.path, page), []):
            change()
        return response

    @staticmethod
    def page_url(request: Request, origin: str, page: int, per_page: int) -> str:
        args = {k: v for k, v in request.args.items() if k not in ("page", "perPage")}
        return f"{origin}{request.path}?{urlencode({**args, 'page': page, 'perPage': per_page})}"

    def list_entities(self, request: Request, key: str) -> Response:
        rows = self.data[key]
        if key == "tasks":
            # the query names statuses in lower case; records carry them in upper case
            wanted = set(request.args.get("status", "open").upper().split(","))
            rows = [row for row in rows if row["status"] in wanted]
        since = request.args.get("since")
        if since and key in ("parties", "kases", "opportunities"):
            after = parse_stamp(since)
            rows = [row for row in rows if changed_after(row, after)]
            rows.sort(key=lambda row: (str(row.get("updatedAt") or ""), row["id"]))
        return self.paged(request, key, rows)

    def deleted_entities(self, request: Request, entity: str) -> Response:
        since = request.args.get("since")
        if not since:
            return self.json_response(
                {"message": "Validation Failed", "errors": [{"message": "since is required"}]},
                422,
            )
        after = parse_stamp(since)
        rows = [row for row in self.deleted[entity] if parse_stamp(row["deletedAt"]) > after]
        return self.paged(request, entity, rows)

    def people(self, request: Request, party: int) -> Response:
        if party in self.vanished or party not in self.employees:
            return self.json_response({"message": "Could not find resource"}, 404)
        return self.paged(request, "parties", self.employees[party])

    def site(self, request: Request) -> Response:
        return self.json_response(
            {"site": {"name": "Example Ltd", "subdomain": "example", "url": "https://example.test"}}
        )

    def entity_tags(self, request: Request, entity: str) -> Response:
        return self.paged(request, "tags", self.tags[entity])

    def entity_definitions(self, request: Request, entity: str) -> Response:
        return self.paged(request, "definitions", self.definitions[entity])

    # -- cursor faults -----------------------------------------------------------------
    def record(self, key: str, record_id: int) -> dict[str, Any]:
        """The record `record_id` of the list under body key `key` (`parties`, `kases`...)."""
        return next(row for row in self.data[key] if row["id"] == record_id)

    def serve_copy_on_page(self, path: str, page: int, record: dict[str, Any]) -> None:
        """Serve `record` as an extra row of page `page` of `path` (`/api/v2/parties`): one
        id on two pages, as when a record moves between pages while a sync pages."""
        self.extra_records.setdefault((path, page), []).append(dict(record))

    def after_page(self, path: str, page: int, change: Callable[[], None]) -> None:
        """Apply `change` right after page `page` of `path` is served (before the next
        request): a record updated while a sync pages."""
        self.page_hooks.setdefault((path, page), []).append(change)

    def pause_on_page(self, path: str, page: int) -> tuple[threading.Event, threading.Event]:
        """Hold every request for page `page` of `path` until the returned `release` event is
        set; `arrived` is set when one comes (a sync paused in the middle)."""
        arrived, release = threading.Event(), threading.Event()
        self.pauses[(path, page)] = (arrived, release)
        return arrived, release

    def server_now(self) -> datetime:
        """The server's clock (the `Date` it sends)."""
        return datetime.fromtimestamp(self.server_time(), tz=timezone.utc)

    # -- deletions -----------------------------------------------------------------------
    def delete(self, key: str, record_id: int, at: datetime | None = None) -> datetime:
        """Delete record `record_id` of `key` (`users`, `parties`, `kases`, ...): gone from its
        list; listed in its deleted feed (for parties, projects and opportunities) at `at`
        (default: the server's clock, to the second). Deleting a party deletes its
        opportunities and projects too (those with `party: {"id": ...}`)."""
        moment = (at or self.server_now()).replace(microsecond=0)
        self.data[key] = [row for row in self.data[key] if row["id"] != record_id]
        if key in self.deleted:
            self.deleted[key].append({"id": record_id, "deletedAt": stamp(moment)})
        if key == "parties":
            for entity in ("kases", "opportunities"):
                for row in list(self.data[entity]):
                    if (row.get("party") or {}).get("id") == record_id:
                        self.delete(entity, row["id"], moment)
        return moment

    # -- scenario changes ------------------------------------------------------------
    def expected_rows(self) -> dict[str, int]:
        """The rows a full sync loads from this fake, per table."""
        lists = {
            "users": "users",
            "parties": "parties",
            "tasks": "tasks",
            "projects": "kases",
            "opportunities": "opportunities",
            "pipelines": "pipelines",
            "milestones": "milestones",
            "lost_reasons": "lostReasons",
            "board": "boards",
            "categories": "categories",
            "activity_types": "activityTypes",
            "stages": "stages",
        }
        return {
            **{table: len(self.data[key]) for table, key in lists.items()},
            "employees": sum(len(people) for people in self.employees.values()),
            "tags": sum(len(tags) for tags in self.tags.values()),
            "custom_fields": sum(len(fields) for fields in self.definitions.values()),
            "site": 1,
        }

    def change_for_second_run(self) -> dict[str, list[int]]:
        """Change records between two syncs: one party in the same second as the previous
        maximum, two later ones, one new party, one project and one opportunity."""
        parties = self.data["parties"]
        newest = max(parse_stamp(p["updatedAt"]) for p in parties)
        same_second = parties[3]
        same_second["updatedAt"] = stamp(newest)
        same_second["about"] = "changed in the same second"
        for party in parties[5:7]:
            party["updatedAt"] = stamp(newest + timedelta(minutes=5))
            party["about"] = "changed later"
        new_party = make_party(len(parties))
        new_party["updatedAt"] = stamp(newest + timedelta(minutes=6))
        parties.append(new_party)
        self.employees[new_party["id"]] = []
        project = self.data["kases"][0]
        project["updatedAt"] = stamp(newest + timedelta(minutes=7))
        opportunity = self.data["opportunities"][1]
        opportunity["updatedAt"] = stamp(newest + timedelta(minutes=8))
        return {
            "parties": [same_second["id"], parties[5]["id"], parties[6]["id"], new_party["id"]],
            "projects": [project["id"]],
            "opportunities": [opportunity["id"]],
        }


#: the error body of a 422 from a deleted feed asked without `since`
SINCE_REQUIRED = {"message": "Validation Failed", "errors": [{"message": "since is required"}]}


def small_account_with_retries(fake: CrmFake) -> None:
    """Three records of each list, and on the way a 429 on the first request (the hour's
    budget spent by another client, its window resetting a second later) and a 503 on
    the stages: both retried, the sync succeeds."""
    for key in fake.data:
        fake.data[key] = fake.data[key][:3]
    kept = {party["id"] for party in fake.data["parties"]}
    fake.employees = {k: people[:1] for k, people in fake.employees.items() if k in kept}
    fake.tags = {entity: tags[:1] for entity, tags in fake.tags.items()}
    fake.definitions = {entity: fields[:1] for entity, fields in fake.definitions.items()}
    fake.enforce_budget(*DOCUMENTED_WINDOW).spend(until=fake.server_time() + 1)
    fake.inject(Fault(503, {"message": "Service Unavailable"}, path="/api/v2/stages"))


def deleted_feed_refuses(fake: CrmFake) -> None:
    """The parties' deleted feed answers 422 (as without `since`): the sync fails."""
    fake.inject(Fault(422, SINCE_REQUIRED, path="/api/v2/parties/deleted"))


def _recording() -> Any:
    from connectors.crm import crm_source
    from shared.tooling.recordings import Recording, Step

    return Recording(
        connector="crm",
        source=crm_source,
        fake=lambda: CrmFake(window=DOCUMENTED_WINDOW),
        credentials={"bearer_token": TOKEN},
        canonical_base_url="https://api.example.com",
        steps=[
            # the clock stopped: the same `Date` and `X-RateLimit-Reset` every recording
            Step("full_sync", prepare=lambda fake: fake.stop_clock()),
            Step("incremental", prepare=lambda fake: fake.change_for_second_run()),
            Step(
                "retried_sync",
                prepare=small_account_with_retries,
                source_kwargs={"backoff_factor": 0.1},
                own_pipeline=True,
            ),
            Step("validation_error", prepare=deleted_feed_refuses, fails_with="422"),
        ],
        live_credentials={"bearer_token": "CRM_BEARER_TOKEN"},
        live_base_url_env="CRM_BASE_URL",
        # every response's budget, as Capsule reports it: `X-RateLimit-Reset` is read
        # against `Date`, which the cassettes keep (replays move both to now); which of
        # the concurrent child requests counted first varies, so `Remaining` is dealt out
        # again in the cassette's order
        kept_headers=["Date"],
        countdown_headers={"X-RateLimit-Remaining": "X-RateLimit-Reset"},
        offline_kwargs={"requests_per_minute": 60_000},
    )


RECORDING = _recording()
