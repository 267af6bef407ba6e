"""Fake analytics API speaking the analytics connector's API.

Offset-paged lists (`?offset=&limit=`, `{"data": [...]}`, no total) behind either an
api key (query parameter or header `api_key`) or OAuth2 client-credentials bearer
tokens that expire after `token_lifetime` seconds and can be revoked mid-sync.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.base import FakeServer

EPOCH = datetime(2024, 5, 1, 8, 0, 0, tzinfo=timezone.utc)
API_KEY = "analytics-fake-api-key-5f3a9c"
CLIENT_ID = "analytics-fake-client-id-71b2"
CLIENT_SECRET = "analytics-fake-client-secret-e4d8"
TOKEN_PREFIX = "analytics-fake-access-token-"
TOKEN_PATH = "/oauth/token"
#: the API's fractional-second digits vary: none, 2, 3 or 6
FRACTIONS = ("", ".25", ".125", ".123456")
LISTS = {"events": "/v1/events", "users": "/v1/users", "page_views": "/v1/pageviews"}
KEY_HEADER = "api_key"


def stamp(moment: datetime, fraction: str = "") -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def parse_stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def changed_since(row: dict[str, Any], since: datetime) -> bool:
    """Whether `updated_since` returns `row`; a record whose `updated_at` is missing or not
    a date (a fault a test injected) is always returned."""
    try:
        return parse_stamp(row["updated_at"]) >= since
    except (KeyError, AttributeError, TypeError, ValueError):
        return True


def make_event(i: int) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": 10_000 + i,
        "name": ("signup", "login", "purchase", "logout")[i % 4],
        "created_at": stamp(EPOCH + timedelta(minutes=i), FRACTIONS[i % 4]),
        "user_id": 1 + i % 50 if i % 9 else None,  # fields are nullable
        "properties": {"source": "web" if i % 2 else "app", "value": i * 1.5},
    }
    if i % 7 == 0:  # extra fields appear freely
        event["campaign"] = f"campaign-{i % 3}"
    return event


def make_user(i: int) -> dict[str, Any]:
    return {
        "id": 1 + i,
        "name": f"User {i}",
        "created_at": stamp(EPOCH + timedelta(hours=i), FRACTIONS[i % 4]),
        "updated_at": stamp(EPOCH + timedelta(days=1, minutes=i)),
        "email": f"user{i}@example.com" if i % 5 else None,
        "plan": ("free", "pro", "team")[i % 3],
    }


def make_page_view(i: int) -> dict[str, Any]:
    return {
        "id": 500 + i,
        "name": f"/page/{i % 6}",
        "created_at": stamp(EPOCH + timedelta(seconds=37 * i), FRACTIONS[i % 4]),
        "duration_ms": i * 120 if i % 4 else None,
        # nested: a list of objects (one of them with a nested object), empty for some views
        "scrolls": [{"depth": d * 25, "at": {"second": d}} for d in range(i % 3)],
    }


class AnalyticsFake(FakeServer):
    """The analytics API.

    Args:
        events, users, page_views: how many records each list holds.
        token_lifetime: `expires_in` of issued tokens; the fake rejects them afterwards.
        latency: seconds each request takes.
    """

    def __init__(
        self,
        events: int = 250,
        users: int = 200,
        page_views: int = 42,
        token_lifetime: float = 3600,
        latency: float = 0.0,
    ) -> None:
        self.api_key = API_KEY
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        self.token_lifetime = token_lifetime
        #: token -> monotonic expiry; a revoked token is simply forgotten
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.accept_tokens = True
        #: revoke every token once this many data requests have been served
        self.revoke_after: int | None = None
        self.data_requests_served = 0
        #: monotonic arrival time of every request, in the order of `requests`
        self.arrivals: list[float] = []
        #: the exact names of the headers an api key arrived in
        self.key_headers: list[str] = []
        self._token_lock = threading.Lock()
        #: (path, page) -> extra records served on that page (one id on two pages)
        self.extra_records: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.data: dict[str, list[dict[str, Any]]] = {
            "events": [make_event(i) for i in range(events)],
            "users": [make_user(i) for i in range(users)],
            "page_views": [make_page_view(i) for i in range(page_views)],
        }
        super().__init__(latency=latency)

    def rules(self) -> list[Rule]:
        return [
            *(
                Rule(path, endpoint="listing", defaults={"key": key}, methods=["GET"])
                for key, path in LISTS.items()
            ),
            Rule(TOKEN_PATH, endpoint="token", methods=["POST"]),
        ]

    # -- auth --------------------------------------------------------------------------
    def authorized(self, request: Request) -> bool:
        if request.path == TOKEN_PATH:
            return True  # the token endpoint checks the client credentials itself
        with self._token_lock:
            if self.revoke_after is not None and self.data_requests_served >= self.revoke_after:
                self.tokens.clear()
                self.revoke_after = None
        key = request.args.get("api_key")
        sent = self.sent_header(request, KEY_HEADER)
        if sent is not None:
            self.key_headers.append(sent[0])
            key = sent[1]
        if key is not None:
            return key == self.api_key
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not self.accept_tokens:
            return False
        expires_at = self.tokens.get(header.removeprefix("Bearer "))
        return expires_at is not None and time.monotonic() < expires_at

    def unauthorized(self) -> Response:
        return self.json_response({"error": "unauthorized"}, 401)

    def token(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return self.json_response({"error": "unsupported_grant_type"}, 400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return self.json_response({"error": "invalid_client"}, 401)
        with self._token_lock:
            self.tokens_issued += 1
            token = f"{TOKEN_PREFIX}{self.tokens_issued:04d}"
            self.tokens[token] = time.monotonic() + self.token_lifetime
        return self.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime}
        )

    # -- lists -------------------------------------------------------------------------
    def listing(self, request: Request, key: str) -> Response:
        rows = self.data[key]
        since = request.args.get("updated_since")
        if since:
            rows = [row for row in rows if changed_since(row, parse_stamp(since))]
        offset = max(0, int(request.args.get("offset", 0)))
        limit = min(100, max(1, int(request.args.get("limit", 100))))
        with self._token_lock:
            self.data_requests_served += 1
        page = rows[offset : offset + limit]
        page = [*page, *self.extra_records.get((request.path, offset // limit + 1), [])]
        return self.json_response({"data": page})

    # -- cursor faults -----------------------------------------------------------------
    def serve_copy_on_page(self, path: str, page: int, record: dict[str, Any]) -> None:
        """Serve `record` as an extra row of page `page` (1-based, `offset // limit + 1`) of
        `path`: one id on two pages, as when a record moves while a sync pages."""
        self.extra_records.setdefault((path, page), []).append(dict(record))

    # -- what tests read ---------------------------------------------------------------
    def _respond(self, request: Request) -> Response:
        self.arrivals.append(time.monotonic())
        return super()._respond(request)

    def token_requests(self) -> list[Any]:
        return self.requests_to(TOKEN_PATH, method="POST")

    def data_requests(self) -> list[Any]:
        return [r for r in self.requests if r.path != TOKEN_PATH]

    # -- scenario changes --------------------------------------------------------------
    def change_for_second_run(self) -> dict[str, Any]:
        """Between two syncs: three users change, one user is new, one event is gone and
        two are new."""
        users = self.data["users"]
        newest = max(parse_stamp(user["updated_at"]) for user in users)
        for user in users[10:13]:
            user["updated_at"] = stamp(newest + timedelta(minutes=5))
            user["plan"] = "enterprise"
        new_user = make_user(len(users))
        new_user["updated_at"] = stamp(newest + timedelta(minutes=6))
        users.append(new_user)
        events = self.data["events"]
        del events[0]
        events.extend(make_event(1000 + i) for i in range(2))
        return {"changed_users": [u["id"] for u in users[10:13]], "new_user": new_user["id"]}


#: the resources the recorded api-key runs load: a plain name, an incremental mapping,
#: and a mapping with its own path
RESOURCES: list[Any] = [
    "events",
    {
        "name": "users",
        "incremental": {
            "cursor_path": "updated_at",
            "param": "updated_since",
            "initial_value": "2024-01-01T00:00:00Z",
        },
    },
    {"name": "page_views", "path": "/v1/pageviews", "data_selector": "data"},
]
#: the resources the recorded OAuth2 run loads (full refresh only, so it replays alone)
OAUTH_RESOURCES: list[Any] = ["events", {"name": "page_views", "path": "/v1/pageviews"}]
API_KEY_AUTH = {"api_key": API_KEY}
OAUTH_AUTH = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token_url": TOKEN_PATH}
#: source argument -> environment variable, for recording against the real API (LIVE=1)
LIVE_API_KEY_AUTH = {"api_key": "ANALYTICS_API_KEY"}
LIVE_OAUTH_AUTH = {
    "client_id": "ANALYTICS_CLIENT_ID",
    "client_secret": "ANALYTICS_CLIENT_SECRET",
    "token_url": "ANALYTICS_TOKEN_URL",
}


def _recording() -> Any:
    from connectors.analytics import analytics_source
    from shared.tooling.recordings import Recording, Step

    return Recording(
        connector="analytics",
        source=analytics_source,
        fake=AnalyticsFake,
        # the steps differ in auth mode (exactly one per run), so each carries its own
        # fake credentials and the environment variables LIVE=1 reads instead
        credentials={},
        canonical_base_url="https://api.example.com",
        steps=[
            Step(
                "full_sync",
                source_kwargs={"resources": RESOURCES},
                credentials=API_KEY_AUTH,
                live_credentials=LIVE_API_KEY_AUTH,
            ),
            Step(
                "incremental",
                prepare=lambda fake: fake.change_for_second_run(),
                source_kwargs={"resources": RESOURCES},
                credentials=API_KEY_AUTH,
                live_credentials=LIVE_API_KEY_AUTH,
            ),
            Step(
                "oauth_sync",
                source_kwargs={"resources": OAUTH_RESOURCES},
                credentials=OAUTH_AUTH,
                live_credentials=LIVE_OAUTH_AUTH,
            ),
        ],
        live_base_url_env="ANALYTICS_BASE_URL",
        secret_fields=["api_key", "client_id", "client_secret", "access_token"],
    )


RECORDING = _recording()
