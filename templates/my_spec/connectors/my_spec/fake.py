"""Fake My spec API: what connectors/my_spec/my_spec.yml reads, over loopback."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.base import FakeServer

EPOCH = datetime(2024, 3, 1, 9, 0, 0, tzinfo=timezone.utc)
TOKEN = "my_spec-fake-token-0123456789"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class MySpecFake(FakeServer):
    """`users` and `items` in pages linked by `Link` headers, `updated_since` on items,
    and two notes per item."""

    def __init__(self, users: int = 12, items: int = 120, latency: float = 0.0) -> None:
        self.token = TOKEN
        self.users = [{"id": i, "name": f"User {i}"} for i in range(1, users + 1)]
        self.items = [
            {
                "id": 1000 + i,
                "title": f"Item {i}",
                "owner_id": 1 + i % users,
                "updated_at": stamp(EPOCH + timedelta(minutes=i)),
            }
            for i in range(items)
        ]
        super().__init__(latency=latency)

    def rules(self) -> list[Rule]:
        return [
            Rule("/v1/users", endpoint="list_users"),
            Rule("/v1/items", endpoint="list_items"),
            Rule("/v1/items/<int:item>/notes", endpoint="item_notes"),
        ]

    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def notes(self, item: int) -> list[dict[str, Any]]:
        return [{"id": item * 10 + n, "text": f"note {n} of {item}"} for n in (1, 2)]

    def list_users(self, request: Request) -> Response:
        return self.paged(request, "users", self.users)

    def list_items(self, request: Request) -> Response:
        since = request.args.get("updated_since")
        rows = [item for item in self.items if not since or item["updated_at"] > since]
        return self.paged(request, "items", sorted(rows, key=lambda item: item["updated_at"]))

    def item_notes(self, request: Request, item: int) -> Response:
        if item not in {row["id"] for row in self.items}:
            return self.json_response({"message": "not found"}, 404)
        return self.paged(request, "notes", self.notes(item))

    def paged(self, request: Request, key: str, rows: list[dict[str, Any]]) -> Response:
        """The page `page` asks for (`per_page` rows), and a `Link` to the next one."""
        page, per_page = int(request.args.get("page", 1)), int(request.args.get("per_page", 50))
        headers = {}
        if page * per_page < len(rows):
            query = {**request.args.to_dict(), "page": page + 1}
            headers["Link"] = f'<{request.base_url}?{urlencode(query)}>; rel="next"'
        chunk = rows[(page - 1) * per_page : page * per_page]
        return self.json_response({key: chunk}, headers=headers)

    def change_items(self, count: int) -> list[int]:
        """Change the first `count` items a minute after the newest: the next sync asks for
        them alone."""
        newest = max(item["updated_at"] for item in self.items)
        later = stamp(datetime.fromisoformat(newest[:-1] + "+00:00") + timedelta(minutes=1))
        for item in self.items[:count]:
            item.update(title=f"{item['title']} (changed)", updated_at=later)
        return [item["id"] for item in self.items[:count]]
