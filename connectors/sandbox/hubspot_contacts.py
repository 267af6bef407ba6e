"""Fake HubSpot CRM v3 contacts API: the list, and the search with its 10,000-result cap
and its lagging index (a write becomes searchable `index_lag` seconds later; until then
the search sees the contact as it was, or not at all if it is new). A test can change a
contact between two pages (`between_pages`)."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timedelta, timezone
from functools import lru_cache, partial
from typing import Any
from urllib.parse import quote, unquote

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.base import FakeServer, Fault

TOKEN = "pat-na1-fake-hubspot-token-0123456789"
CREATED_FROM = datetime(2023, 10, 26, 17, 55, 48, 301000, tzinfo=timezone.utc)
MODIFIED_FROM = datetime(2024, 12, 1, 9, 0, 0, 0, tzinfo=timezone.utc)
LIST_PATH = "/crm/v3/objects/contacts"
SEARCH_PATH = "/crm/v3/objects/contacts/search"
#: properties HubSpot returns whether or not they were asked for
ALWAYS_RETURNED = ("createdate", "lastmodifieddate", "hs_object_id")
SEARCH_CAP = 10_000
LIFECYCLE_STAGES = ("subscriber", "lead", "customer")
#: 429 bodies per policy (the API's rate limits)
POLICY_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "SECONDLY": "You have reached your secondly limit.",
}


def stamp(moment: datetime) -> str:
    """HubSpot's timestamps: ISO 8601 UTC with milliseconds, `2023-10-26T17:55:48.301Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


@lru_cache(maxsize=65_536)
def stamp_ms(value: str) -> int:
    """A stamp as epoch ms (cached: the search compares every contact's on every request)."""
    return epoch_ms(parse_stamp(value))


def parse_filter_value(value: str) -> int:
    """A filter value as epoch ms: the search accepts epoch ms or ISO 8601."""
    return int(value) if value.isdigit() else stamp_ms(value)


def to_cursor(contact_id: str) -> str:
    """The list's `after`: an opaque token, as HubSpot's spec shows it (`NTI1Cg%3D%3D`,
    the base64 of `525\\n`, percent-encoded); a client passes it back as it is."""
    return quote(base64.b64encode(f"{contact_id}\n".encode()).decode(), safe="")


def from_cursor(token: str | None) -> int:
    """The first contact id a list `after` token names (0 without one); ValueError for a
    token this fake never handed out."""
    if not token:
        return 0
    try:
        return int(base64.b64decode(unquote(token), validate=True).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(token) from exc


def make_contact(number: int, modified: datetime | None = None) -> dict[str, Any]:
    """Contact `number` (id = number): stored with every property it has."""
    created = CREATED_FROM + timedelta(minutes=37 * number)
    modified = modified or MODIFIED_FROM + timedelta(
        minutes=(number * 37) % 1009, milliseconds=(number * 7919) % 1000
    )
    return {
        "id": str(number),
        "properties": {
            "email": f"contact{number}@example.com",
            "firstname": f"First{number}",
            "lastname": f"Last{number}",
            "company": None if number % 3 == 0 else f"Company {number % 17}",
            "phone": None if number % 4 == 0 else f"+1 555 01{number % 100:02d}",
            "createdate": stamp(created),
            "lastmodifieddate": stamp(modified),
            "lifecyclestage": LIFECYCLE_STAGES[number % 3],
            "hs_lead_status": None,
            "hs_object_id": str(number),
        },
        "createdAt": stamp(created),
        "updatedAt": stamp(modified),
        "archived": False,
    }


#: how `arrivals` names a request for the archived list
ARCHIVED = "?archived=true"


class HubSpotContactsFake(FakeServer):
    """HubSpot's contacts list and search. `count` contacts (ids 1..count), every 50th
    archived; `token` is the accepted private-app token; `index_lag`: seconds before a
    write (`modify`, `create`) is visible to the search."""

    def __init__(
        self, count: int = 250, token: str = TOKEN, latency: float = 0.0, index_lag: float = 0.0
    ) -> None:
        self.token = token
        self.index_lag = index_lag
        # id -> (monotonic time the write becomes searchable, the copy the index holds
        # until then, or None for a contact the index has not seen yet)
        self._unindexed: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self.contacts: list[dict[str, Any]] = [make_contact(n) for n in range(1, count + 1)]
        for contact in self.contacts[49::50]:
            contact["archived"] = True
            contact["archivedAt"] = contact["updatedAt"]
        self.search_window: tuple[int, float] | None = None
        #: the rolling budget non-search responses report (the API's rate limits): the
        #: window enforced with `enforce_window`, else 100 per 10 s (only reported)
        self.reported_budget = (100, 10.0)
        #: False: no budget headers; a dict: these values instead (faults)
        self.budget_headers: bool | dict[str, str] = True
        self.arrivals: list[tuple[float, str]] = []  # (monotonic time, path), in arrival order
        self._search_times: deque[float] = deque()
        self._search_lock = threading.Lock()
        super().__init__(latency=latency)

    def rules(self) -> list[Rule]:
        return [
            Rule(LIST_PATH, endpoint="list_contacts", methods=["GET"]),
            Rule(SEARCH_PATH, endpoint="search_contacts", methods=["POST"]),
        ]

    # -- behaviour a test controls ---------------------------------------------------
    def enforce_search_window(self, requests: int, seconds: float) -> None:
        """Answer 429 (policy SECONDLY) to search requests beyond `requests` per `seconds`."""
        self.search_window = (requests, seconds)

    def rate_limit_body(self, policy: str) -> dict[str, Any]:
        return {
            "status": "error",
            "message": POLICY_MESSAGES[policy],
            "errorType": "RATE_LIMIT",
            "correlationId": self.correlation_id(),
            "policyName": policy,
        }

    def search_bodies(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.requests_to(SEARCH_PATH, "POST")]

    def searchable(self) -> list[dict[str, Any]]:
        """The contacts as the search index sees them now (lagging writes)."""
        now = time.monotonic()
        seen = []
        for contact in self.contacts:
            visible_at, stale = self._unindexed.get(contact["id"], (0.0, None))
            if now >= visible_at:
                seen.append(contact)
            elif stale is not None:
                seen.append(stale)
        return seen

    # -- the API's behaviour ----------------------------------------------------------
    def correlation_id(self) -> str:
        """A per-request id, deterministic so recorded error bodies repeat byte for byte."""
        return str(uuid.UUID(int=len(self.requests)))

    def _respond(self, request: Request) -> Response:
        # the archived list (the deletions) apart from the list it shares a path with
        archived = request.args.get("archived") == "true"
        with self._lock:
            self.arrivals.append((time.monotonic(), request.path + ARCHIVED * archived))
        return super()._respond(request)

    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def unauthorized(self) -> Response:
        return self.json_response(
            {
                "status": "error",
                "message": "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "correlationId": self.correlation_id(),
                "category": "INVALID_AUTHENTICATION",
            },
            401,
        )

    def rate_limited(self) -> Response:
        body = self.rate_limit_body("TEN_SECONDLY_ROLLING")
        return self.json_response(body, 429, headers=self.rate_limit_headers())

    def error_body(self, message: str, category: str) -> dict[str, Any]:
        """HubSpot's error body (its `Error` schema's required fields)."""
        return {
            "status": "error",
            "message": message,
            "correlationId": self.correlation_id(),
            "category": category,
        }

    def validation_error(self, message: str) -> Response:
        return self.json_response(self.error_body(message, "VALIDATION_ERROR"), 400)

    def rate_limit_headers(self) -> dict[str, str]:
        """The rolling window's budget: its maximum, what the requests of the last window
        left of it, and its length."""
        if self.budget_headers is False:
            return {}
        if isinstance(self.budget_headers, dict):
            return dict(self.budget_headers)
        limit, seconds = self.window_limit or self.reported_budget
        now = time.monotonic()
        with self._lock:
            recent = sum(1 for at, _ in self.arrivals if now - at < seconds)
        return {
            "X-HubSpot-RateLimit-Max": str(limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, limit - recent)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(round(seconds * 1000)),
        }

    @staticmethod
    def project(contact: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
        """A contact as the API returns it: only the asked-for properties (plus the
        always-returned ones), each a string or null."""
        names = [*wanted, *(n for n in ALWAYS_RETURNED if n not in wanted)]
        return {
            **contact,
            "properties": {name: contact["properties"].get(name) for name in names},
        }

    def list_contacts(self, request: Request) -> Response:
        limit = int(request.args.get("limit", 10))
        if not 1 <= limit <= 100:
            return self.validation_error(f"limit must be between 1 and 100, got {limit}")
        wanted = [p for p in request.args.get("properties", "").split(",") if p]
        archived = request.args.get("archived", "false") == "true"
        try:
            after = from_cursor(request.args.get("after"))
        except ValueError:
            return self.validation_error(f"Invalid after cursor: {request.args.get('after')}")
        rows = sorted(
            (c for c in self.contacts if c["archived"] == archived and int(c["id"]) >= after),
            key=lambda c: int(c["id"]),
        )
        body: dict[str, Any] = {"results": [self.project(c, wanted) for c in rows[:limit]]}
        if len(rows) > limit:
            next_after = to_cursor(rows[limit]["id"])
            link = f"{request.host_url.rstrip('/')}{LIST_PATH}?after={next_after}&limit={limit}"
            body["paging"] = {"next": {"after": next_after, "link": link}}
        return self.json_response(body, headers=self.rate_limit_headers())

    def _over_search_window(self) -> bool:
        if self.search_window is None:
            return False
        limit, seconds = self.search_window
        with self._search_lock:
            now = time.monotonic()
            while self._search_times and now - self._search_times[0] >= seconds:
                self._search_times.popleft()
            if len(self._search_times) >= limit:
                self.limited_responses += 1
                return True
            self._search_times.append(now)
            return False

    def search_contacts(self, request: Request) -> Response:
        if self._over_search_window():
            return self.json_response(self.rate_limit_body("SECONDLY"), 429)
        try:
            query = json.loads(request.get_data() or b"{}")
        except ValueError:
            return self.validation_error("Invalid input JSON")
        limit = int(query.get("limit", 10))
        after = int(query.get("after") or 0)
        if not 1 <= limit <= 200:
            return self.validation_error(f"limit must be between 1 and 200, got {limit}")
        if after + limit > SEARCH_CAP:
            return self.validation_error(
                f"The search API cannot page past {SEARCH_CAP} results (after={after}, "
                f"limit={limit})"
            )
        rows = [c for c in self.searchable() if not c["archived"]]
        groups = query.get("filterGroups") or []
        if groups:
            try:
                rows = [c for c in rows if any(self.matches(c, g["filters"]) for g in groups)]
            except (KeyError, ValueError) as exc:
                return self.validation_error(f"Unsupported filter: {exc}")
        for sort in reversed(query.get("sorts") or []):
            rows.sort(key=lambda c: int(c["id"]))
            rows.sort(
                key=partial(self.sort_key, name=sort["propertyName"]),
                reverse=sort.get("direction") == "DESCENDING",
            )
        wanted = query.get("properties") or []
        body: dict[str, Any] = {
            "total": len(rows),
            "results": [self.project(c, wanted) for c in rows[after : after + limit]],
        }
        if after + limit < len(rows):
            body["paging"] = {"next": {"after": str(after + limit)}}
        return self.json_response(body)

    @staticmethod
    def sort_key(contact: dict[str, Any], name: str) -> Any:
        value = contact["properties"].get(name)
        if name in ("lastmodifieddate", "createdate"):
            return stamp_ms(value)
        return value or ""

    @staticmethod
    def matches(contact: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
        for condition in filters:
            name, operator = condition["propertyName"], condition["operator"]
            if name not in ("lastmodifieddate", "createdate"):
                raise KeyError(name)
            value = stamp_ms(contact["properties"][name])
            bound = parse_filter_value(str(condition["value"]))
            compare = {
                "GTE": value >= bound,
                "GT": value > bound,
                "LTE": value <= bound,
                "LT": value < bound,
                "EQ": value == bound,
            }
            if operator not in compare:
                raise KeyError(operator)
            if not compare[operator]:
                return False
        return True

    # -- scenario changes ------------------------------------------------------------
    def newest_modified(self) -> datetime:
        return max(parse_stamp(c["properties"]["lastmodifieddate"]) for c in self.contacts)

    def modify(
        self,
        contact: dict[str, Any],
        moment: datetime,
        index_lag: float | None = None,
        **properties: Any,
    ) -> None:
        """Change `contact` at `moment`; the search sees the change `index_lag` seconds
        later (the fake's `index_lag` by default)."""
        self._lag_index(contact, index_lag, contact)
        contact["properties"].update(properties, lastmodifieddate=stamp(moment))
        contact["updatedAt"] = stamp(moment)

    def create(
        self, moment: datetime, index_lag: float | None = None, **properties: Any
    ) -> dict[str, Any]:
        """A new contact modified at `moment`, searchable `index_lag` seconds later."""
        contact = make_contact(len(self.contacts) + 1, moment)
        contact["properties"].update(properties)
        self._lag_index(contact, index_lag, None)
        self.contacts.append(contact)
        return contact

    def _lag_index(
        self, contact: dict[str, Any], lag: float | None, before: dict[str, Any] | None
    ) -> None:
        lag = self.index_lag if lag is None else lag
        if lag <= 0:
            return
        if contact["id"] in self._unindexed:  # the index still holds an older copy
            stale = self._unindexed[contact["id"]][1]
        elif before is not None:
            stale = {**before, "properties": dict(before["properties"])}
        else:
            stale = None
        self._unindexed[contact["id"]] = (time.monotonic() + lag, stale)

    def index_catches_up(self) -> None:
        """The search index shows every write now (a test's lag of an hour ends here, not
        after a sleep that a loaded machine can outrun)."""
        self._unindexed.clear()

    def change_for_second_run(self) -> dict[str, list[str]]:
        """Between two syncs: 205 contacts change (their company), three are created, one
        more is archived. Returns the ids of each."""
        newest = self.newest_modified()
        changed = [c for c in self.contacts if not c["archived"]][10:215]
        for k, contact in enumerate(changed):
            moment = newest + timedelta(seconds=1 + k // 2, milliseconds=k % 7)
            self.modify(contact, moment, company=f"Changed Co {k}")
        created = []
        for n in range(3):
            contact = make_contact(len(self.contacts) + 1, newest + timedelta(minutes=10 + n))
            self.contacts.append(contact)
            created.append(contact)
        archived = self.contacts[0]
        self.modify(archived, newest + timedelta(minutes=20))
        self.archive(archived, newest + timedelta(minutes=20))
        return {
            "changed": [c["id"] for c in changed],
            "created": [c["id"] for c in created],
            "archived": [archived["id"]],
        }

    def archive(self, contact: dict[str, Any], moment: datetime) -> None:
        """Archive (delete) `contact` at `moment`: gone from the list and the search,
        listed with `archived=true`, `archivedAt` set."""
        contact["archived"] = True
        contact["archivedAt"] = stamp(moment)

    def add_changed_contacts(self, count: int, per_stamp: int = 3) -> list[str]:
        """`count` new contacts modified after every existing one, `per_stamp` sharing each
        `lastmodifieddate` (so a search window boundary falls inside a tie)."""
        newest = self.newest_modified()
        start = len(self.contacts) + 1
        added = [
            make_contact(start + k, newest + timedelta(seconds=1 + k // per_stamp))
            for k in range(count)
        ]
        self.contacts.extend(added)
        return [c["id"] for c in added]


FAST = {"requests_per_ten_seconds": 100_000, "search_requests_per_second": 100_000}


def small_account_with_retries(fake: HubSpotContactsFake) -> None:
    """Three contacts and one archived, and on the way a 429 (the ten-secondly limit,
    `Retry-After: 1`) and a 502 on the list: both retried, the sync succeeds."""
    fake.contacts = [*fake.contacts[:3], fake.contacts[49]]
    limited = fake.rate_limit_body("TEN_SECONDLY_ROLLING")
    fake.inject(Fault(429, limited, {"Retry-After": "1"}, path=LIST_PATH))
    failed = fake.error_body("internal error", "INTERNAL_ERROR")
    fake.inject(Fault(502, failed, path=LIST_PATH))


def list_refused(fake: HubSpotContactsFake) -> None:
    """The list answers 400 VALIDATION_ERROR: the sync fails."""
    invalid = fake.error_body(
        "Unable to parse the request: invalid property name", "VALIDATION_ERROR"
    )
    fake.inject(Fault(400, invalid, path=LIST_PATH))


def _recording() -> Any:
    from connectors.hubspot_contacts import hubspot_contacts_source
    from shared.tooling.recordings import Recording, Step

    return Recording(
        connector="hubspot_contacts",
        source=hubspot_contacts_source,
        fake=HubSpotContactsFake,
        credentials={"api_key": TOKEN},
        canonical_base_url="https://api.hubapi.com",
        steps=[
            Step("full_sync"),
            Step("incremental", prepare=lambda fake: fake.change_for_second_run()),
            Step("retried_sync", prepare=small_account_with_retries, own_pipeline=True),
            Step("validation_error", prepare=list_refused, fails_with="400"),
        ],
        live_credentials={"api_key": "HUBSPOT_API_KEY"},
        live_base_url_env="HUBSPOT_BASE_URL",
        offline_kwargs=FAST,
    )


RECORDING = _recording()
