"""Fake My API: `users` in one response, `orders` paged by an absolute `next_page_url`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.base import FakeServer

EPOCH = datetime(2024, 3, 1, 9, 0, 0, tzinfo=timezone.utc)
API_KEY = "my_api-fake-api-key-0123456789"
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
    """My API: `users` in one response, `orders` paged by an absolute `next_page_url`."""

    def __init__(
        self, users: int = 12, orders: int = 120, api_key: str = API_KEY, latency: float = 0.0
    ) -> None:
        self.api_key = api_key
        self.users = [
            {"id": i, "name": f"User {i}", "email": f"user{i}@example.com"}
            for i in range(1, users + 1)
        ]
        self.orders = make_orders(orders, users)
        super().__init__(latency=latency)

    def rules(self) -> list[Rule]:
        return [Rule("/users", endpoint="list_users"), Rule("/orders", endpoint="list_orders")]

    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    def list_users(self, request: Request) -> Response:
        return self.json_response({"data": self.users})

    def list_orders(self, request: Request) -> Response:
        after = request.args.get("updated_after", "")
        rows = sorted(
            (order for order in self.orders if order["updated_at"] >= after),
            key=lambda order: (order["updated_at"], order["id"]),
        )
        page = max(1, int(request.args.get("page", 1)))
        next_page_url = None
        if page * PAGE_SIZE < len(rows):
            query = urlencode({"updated_after": after, "page": page + 1})
            next_page_url = f"{request.host_url.rstrip('/')}/orders?{query}"
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
        credentials={"api_key": API_KEY},
        canonical_base_url="https://api.example.com",
        steps=[
            Step("full_sync"),
            Step("incremental", prepare=lambda fake: fake.change_for_second_run()),
        ],
        live_credentials={"api_key": "MY_API_API_KEY"},
        live_base_url_env="MY_API_BASE_URL",
        offline_kwargs={"requests_per_minute": 60_000},
    )


RECORDING = _recording()
