"""Fake My API: `users` in one response, `orders` in pages (`page_of`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.base import FakeServer

EPOCH = datetime(2024, 3, 1, 9, 0, 0, tzinfo=timezone.utc)
#: the credentials the fake accepts, by the source argument that carries each
CREDENTIALS = {"api_key": "my_api-fake-api-key-0123456789"}
PAGE_SIZE = 50


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_orders(count: int, users: int) -> list[dict[str, Any]]:
    return [
        {
            "id": 1000 + i,
            "user_id": 1 + i % users,
            "status": ("paid", "shipped", "delivered")[i % 3],
            "total": round(10 + i * 1.25, 2),
            "created_at": stamp(EPOCH + timedelta(minutes=i)),
            "updated_at": stamp(EPOCH + timedelta(hours=1, minutes=i)),
        }
        for i in range(count)
    ]


class MyApiFake(FakeServer):
    """My API: `users` in one response, `orders` in pages (`page_of`)."""

    def __init__(
        self,
        users: int = 12,
        orders: int = 120,
        credentials: Mapping[str, str] = CREDENTIALS,
        latency: float = 0.0,
    ) -> None:
        self.credentials = dict(credentials)
        self.users = [
            {"id": i, "name": f"User {i}", "email": f"user{i}@example.com"}
            for i in range(1, users + 1)
        ]
        self.orders = make_orders(orders, users)
        super().__init__(latency=latency)

    def rules(self) -> list[Rule]:
        return [Rule("/users", endpoint="list_users"), Rule("/orders", endpoint="list_orders")]

    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.credentials['api_key']}"

    def expected_rows(self) -> dict[str, int]:
        """The rows a full sync loads from this fake, per table."""
        return {"users": len(self.users), "orders": len(self.orders)}

    def list_users(self, request: Request) -> Response:
        return self.json_response({"data": self.users})

    def list_orders(self, request: Request) -> Response:
        after = request.args.get("updated_after", "")
        rows = sorted(
            (order for order in self.orders if order["updated_at"] >= after),
            key=lambda order: (order["updated_at"], order["id"]),
        )
        return self.page_of(request, rows)

    # -- paging --------------------------------------------------------------------------
    @staticmethod
    def page_number(query: Mapping[str, str]) -> int:
        """The page, from 1, that a request with this query asks for: `page=N`."""
        return max(1, int(query.get("page", 1)))

    def page_of(self, request: Request, rows: list[dict[str, Any]]) -> Response:
        """The page of `rows` the request asks for, and the absolute URL of the next page
        in `next_page_url` (null on the last)."""
        page = self.page_number(request.args)
        next_page_url = None
        if page * PAGE_SIZE < len(rows):
            query = {"updated_after": request.args.get("updated_after", ""), "page": page + 1}
            next_page_url = f"{request.base_url}?{urlencode(query)}"
        chunk = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return self.json_response({"data": chunk, "next_page_url": next_page_url})

    # -- scenario changes ------------------------------------------------------------
    def change_for_second_run(self) -> dict[str, list[int]]:
        """Between two syncs: two orders change status, one new order arrives."""
        newest = max(datetime.fromisoformat(o["updated_at"][:-1]) for o in self.orders)
        later = newest.replace(tzinfo=timezone.utc) + timedelta(minutes=5)
        changed = self.orders[:2]
        for order in changed:
            order["status"] = "refunded"
            order["updated_at"] = stamp(later)
        (new_order,) = make_orders(1, len(self.users))
        new_order.update(id=1000 + len(self.orders), updated_at=stamp(later))
        self.orders.append(new_order)
        return {"changed": [order["id"] for order in changed], "new": [new_order["id"]]}


def _recording() -> Any:
    from connectors.my_api import my_api_source
    from shared.tooling.recordings import Recording, Step

    return Recording(
        connector="my_api",
        source=my_api_source,
        fake=MyApiFake,
        credentials=CREDENTIALS,
        canonical_base_url="https://api.example.com",
        steps=[
            Step("full_sync"),
            Step("incremental", prepare=lambda fake: fake.change_for_second_run()),
        ],
        live_credentials={name: f"MY_API_{name.upper()}" for name in CREDENTIALS},
        live_base_url_env="MY_API_BASE_URL",
        offline_kwargs={"requests_per_minute": 60_000},
    )


RECORDING = _recording()
