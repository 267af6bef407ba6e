"""Fake project-tracking API speaking the project_tracker connector's API."""

from __future__ import annotations

import base64
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.base import FakeServer

EPOCH = datetime(2024, 5, 6, 8, 0, 0, tzinfo=timezone.utc)
API_KEY = "pt-fake-api-key-5c1b0e9d7a3f"
#: only this many search results can be paged
SEARCH_CAP = 1000
MAX_PAGE_SIZE = 250
#: `groups/{group_id}/stories` returns at most this many stories a request
GROUP_STORIES_CAP = 1000


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def at(minutes: int, hours: int = 0) -> str:
    return stamp(EPOCH + timedelta(hours=hours, minutes=minutes))


def uuid(kind: int, i: int) -> str:
    """A stable UUID-shaped id: members, groups and custom fields have string ids."""
    return f"{kind:08x}-0000-4000-8000-{i:012x}"


def entity(id_: Any, name: str, i: int, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "name": name, "created_at": at(i), "updated_at": at(i, hours=1), **extra}


def story_lists(n: int) -> dict[str, Any]:
    """Story `n`'s nested lists: one or two `labels` objects and one or two owners."""
    return {
        "labels": [
            {"id": 700 + (n + k) % 4, "name": f"Label {(n + k) % 4}"} for k in range(1 + n % 2)
        ],
        "owner_ids": [700_000 + (n + k) % 3 for k in range(1 + (n + 1) % 2)],
    }


class ProjectTrackerFake(FakeServer):
    """The project-tracking API.

    Args:
        epics: how many epics (the search matches all of them, whatever the query).
        stories_per_epic: stories under each epic; each story also sits in a group and an
            iteration.
        group_only_stories: stories in the first group and no epic or iteration.
        iteration_only_stories: stories in the first iteration and no epic or group.
        group_stories_cap: the most stories `groups/{group_id}/stories` returns a request
            (its default and maximum `limit`; the real API's is 1,000).
        undated: leave `updated_at` out, or null, on a few records of the types the
            API names (epics, stories, members, labels, files, epic_workflow).
        api_key: the accepted key; `header` is the header it must come in.
        latency: seconds every response is delayed.
    """

    def __init__(
        self,
        epics: int = 6,
        stories_per_epic: int = 2,
        group_only_stories: int = 1,
        iteration_only_stories: int = 1,
        group_stories_cap: int = GROUP_STORIES_CAP,
        undated: bool = True,
        api_key: str = API_KEY,
        header: str = "api_key",
        latency: float = 0.0,
    ) -> None:
        self.group_stories_cap = group_stories_cap
        self.api_key = api_key
        self.header = header
        #: ids of parents deleted mid-sync: their child lists answer 404
        self.vanished: set[Any] = set()
        #: requests being answered right now, and the most there ever were at once
        self.in_flight = 0
        self.max_in_flight = 0
        self._in_flight_lock = threading.Lock()
        self.groups = [
            {"id": uuid(1, i), "name": f"Team {i}", "mention_name": f"team-{i}", "archived": False}
            for i in range(3)
        ]
        self.categories = [entity(100 + i, f"Category {i}", i, type="milestone") for i in range(3)]
        self.milestones = [
            entity(400 + i, f"Milestone {i}", i, state="in progress", categories=[100 + i % 3])
            for i in range(4)
        ]
        self.objectives = [
            entity(500 + i, f"Objective {i}", i, state="to do", categories=[100 + (i + 1) % 3])
            for i in range(3)
        ]
        self.iterations = [
            entity(300 + i, f"Sprint {i}", i, status="started", start_date=f"2024-05-{i + 1:02d}")
            for i in range(3)
        ]
        self.epics = [
            entity(
                1000 + i,
                f"Epic {i}",
                i,
                state="in progress",
                milestone_id=400 + i % 4,
                objective_ids=[500 + i % 3],
                group_id=self.groups[i % 3]["id"],
                labels=[{"id": 700 + i % 4, "name": f"Label {i % 4}"}],
            )
            for i in range(epics)
        ]
        self.stories: list[dict[str, Any]] = []
        for e, epic in enumerate(self.epics):
            for k in range(stories_per_epic):
                n = e * stories_per_epic + k
                self.stories.append(
                    entity(
                        5000 + n,
                        f"Story {n}",
                        n,
                        story_type=("feature", "bug", "chore")[n % 3],
                        epic_id=epic["id"],
                        group_id=self.groups[n % 3]["id"],
                        iteration_id=300 + n % 3,
                        **story_lists(n),
                    )
                )
        # stories outside every epic: the API's "a story need not belong to an epic"
        for where in ["group"] * group_only_stories + ["iteration"] * iteration_only_stories:
            n = len(self.stories)
            self.stories.append(
                entity(
                    5000 + n,
                    f"Story {n} ({where} only)",
                    n,
                    story_type="chore",
                    epic_id=None,
                    group_id=self.groups[0]["id"] if where == "group" else None,
                    iteration_id=300 if where == "iteration" else None,
                    **story_lists(n),
                )
            )
        self.comments_by_epic = {
            epic["id"]: [
                entity(
                    20000 + e * 10 + c, f"comment {c}", c, text=f"on epic {e}", author_id=uuid(2, 0)
                )
                for c in range(e % 3)
            ]
            for e, epic in enumerate(self.epics)
        }
        self.comments_by_story = {
            story["id"]: [
                entity(
                    25000 + s * 10 + c, f"note {c}", c, text=f"on story {s}", author_id=uuid(2, 1)
                )
                for c in range(1 + s % 2)
            ]
            for s, story in enumerate(self.stories)
        }
        self.history_by_story = {
            story["id"]: [
                {
                    "id": 30000 + s * 10 + h,
                    "changed_at": at(s, hours=2 + h),
                    "member_id": uuid(2, h),
                    "actions": [{"action": "update", "entity_type": "story", "id": story["id"]}],
                }
                for h in range(2)
            ]
            for s, story in enumerate(self.stories)
        }
        self.lists: dict[str, list[dict[str, Any]]] = {
            "categories": self.categories,
            "custom-fields": [
                entity(
                    uuid(3, i),
                    f"Field {i}",
                    i,
                    field_type="enum",
                    values=[{"id": uuid(4, i * 10 + v), "value": f"value {v}"} for v in range(2)],
                )
                for i in range(2)
            ],
            "epics": self.epics,
            "files": [entity(600 + i, f"file-{i}.pdf", i, size=1024 * (i + 1)) for i in range(2)],
            "groups": self.groups,
            "iterations": self.iterations,
            "labels": [entity(700 + i, f"Label {i}", i, color="#00ff00") for i in range(4)],
            "members": [
                entity(
                    uuid(2, i), f"Member {i}", i, role="member", profile={"mention_name": f"m{i}"}
                )
                for i in range(3)
            ],
            "milestones": self.milestones,
            "objectives": self.objectives,
            "workflows": [
                entity(
                    800 + i,
                    f"Workflow {i}",
                    i,
                    states=[
                        {"id": 900 + i * 10 + s, "name": n} for s, n in enumerate(("To do", "Done"))
                    ],
                )
                for i in range(2)
            ],
        }
        self.objects: dict[str, dict[str, Any]] = {
            "epic-workflow": entity(
                1,
                "Epic workflow",
                0,
                default_epic_state_id=950,
                epic_states=[{"id": 950 + s, "name": n} for s, n in enumerate(("to do", "done"))],
            ),
            "member": {"id": uuid(2, 0), "mention_name": "m0", "workspace": {"name": "Example"}},
        }
        #: ids of the records served without `updated_at` (key left out) or with it null
        self.undated: dict[str, list[Any]] = {}
        if undated:
            self.leave_undated()
        super().__init__(latency=latency)

    def delete(self, key: str, id_: Any) -> None:
        """Delete record `id_` of the list `key` (`labels`, `epics`, ...): gone from its
        list (the API reports no deletions)."""
        self.lists[key][:] = [row for row in self.lists[key] if row["id"] != id_]

    def leave_undated(self) -> None:
        """Leave `updated_at` out of, or null on, one record of each type the API
        names: a real API may send such records, and they must load."""
        targets = [
            ("epics", self.epics[-1:], "missing"),
            ("stories", self.stories[-2:-1], "null"),
            ("stories", self.stories[-1:], "missing"),
            ("members", self.lists["members"][-1:], "missing"),
            ("labels", self.lists["labels"][:1], "null"),
            ("files", self.lists["files"][-1:], "missing"),
            ("epic_workflow", [self.objects["epic-workflow"]], "null"),
        ]
        for kind, records, how in targets:
            for record in records:
                if how == "missing":
                    record.pop("updated_at", None)
                else:
                    record["updated_at"] = None
                self.undated.setdefault(kind, []).append(record["id"])

    def rules(self) -> list[Rule]:
        return [
            *[Rule(f"/v1/{key}", endpoint="listing", defaults={"key": key}) for key in self.lists],
            *[Rule(f"/v1/{key}", endpoint="single", defaults={"key": key}) for key in self.objects],
            Rule("/v1/categories/<int:id_>/milestones", endpoint="category_milestones"),
            Rule("/v1/categories/<int:id_>/objectives", endpoint="category_objectives"),
            Rule("/v1/epics/<int:id_>/comments", endpoint="epic_comments"),
            Rule("/v1/epics/<int:id_>/stories", endpoint="epic_stories"),
            Rule("/v1/groups/<id_>/stories", endpoint="group_stories"),
            Rule("/v1/iterations/<int:id_>/stories", endpoint="iteration_stories"),
            Rule("/v1/milestones/<int:id_>/epics", endpoint="milestone_epics"),
            Rule("/v1/objectives/<int:id_>/epics", endpoint="objective_epics"),
            Rule("/v1/stories/<int:id_>/comments", endpoint="stories_comments"),
            Rule("/v1/stories/<int:id_>/history", endpoint="stories_history"),
            Rule("/v1/search/epics", endpoint="search_epics"),
        ]

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._in_flight_lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return super().wsgi(environ, start_response)
        finally:
            with self._in_flight_lock:
                self.in_flight -= 1

    # -- the API's behaviour ----------------------------------------------------------
    def authorized(self, request: Request) -> bool:
        sent = self.sent_header(request, self.header)
        return sent is not None and sent[1] == self.api_key

    def data(self, body: Any) -> Response:
        return self.json_response({"data": body})

    def not_found(self) -> Response:
        return self.json_response({"message": "Resource not found"}, 404)

    def children(self, parent_id: Any, parents: list[dict[str, Any]], rows: list[Any]) -> Response:
        if parent_id in self.vanished or parent_id not in {p["id"] for p in parents}:
            return self.not_found()
        return self.data(rows)

    def listing(self, request: Request, key: str) -> Response:
        return self.data(self.lists[key])

    def single(self, request: Request, key: str) -> Response:
        return self.data(self.objects[key])

    def category_milestones(self, request: Request, id_: int) -> Response:
        rows = [m for m in self.milestones if id_ in m["categories"]]
        return self.children(id_, self.categories, rows)

    def category_objectives(self, request: Request, id_: int) -> Response:
        rows = [o for o in self.objectives if id_ in o["categories"]]
        return self.children(id_, self.categories, rows)

    def epic_comments(self, request: Request, id_: int) -> Response:
        return self.children(id_, self.epics, self.comments_by_epic.get(id_, []))

    def epic_stories(self, request: Request, id_: int) -> Response:
        rows = [s for s in self.stories if s["epic_id"] == id_]
        return self.children(id_, self.epics, rows)

    def group_stories(self, request: Request, id_: str) -> Response:
        """At most `limit` stories (default and maximum: the cap) from `offset`."""
        try:
            limit = int(request.args.get("limit", self.group_stories_cap))
            offset = int(request.args.get("offset", 0))
        except ValueError:
            return self.json_response({"message": "limit and offset must be integers"}, 400)
        if not 1 <= limit <= self.group_stories_cap or offset < 0:
            return self.json_response(
                {"message": f"limit must be 1..{self.group_stories_cap}, offset >= 0"}, 400
            )
        rows = [s for s in self.stories if s["group_id"] == id_]
        return self.children(id_, self.groups, rows[offset : offset + limit])

    def iteration_stories(self, request: Request, id_: int) -> Response:
        rows = [s for s in self.stories if s["iteration_id"] == id_]
        return self.children(id_, self.iterations, rows)

    def milestone_epics(self, request: Request, id_: int) -> Response:
        rows = [e for e in self.epics if e["milestone_id"] == id_]
        return self.children(id_, self.milestones, rows)

    def objective_epics(self, request: Request, id_: int) -> Response:
        rows = [e for e in self.epics if id_ in e["objective_ids"]]
        return self.children(id_, self.objectives, rows)

    def stories_comments(self, request: Request, id_: int) -> Response:
        return self.children(id_, self.stories, self.comments_by_story.get(id_, []))

    def stories_history(self, request: Request, id_: int) -> Response:
        return self.children(id_, self.stories, self.history_by_story.get(id_, []))

    def search_epics(self, request: Request) -> Response:
        if not request.args.get("query"):
            return self.json_response({"message": "query is required"}, 400)
        page_size = int(request.args.get("page_size", 25))
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            return self.json_response({"message": "page_size must be 1..250"}, 400)
        offset = decode_token(request.args["next"]) if "next" in request.args else 0
        if offset >= SEARCH_CAP:
            return self.json_response(
                {
                    "error": "maximum-results-exceeded",
                    "message": "A maximum of 1000 search results are supported.",
                    "maximum-results": SEARCH_CAP,
                },
                400,
            )
        rows = self.epics[offset : offset + page_size]
        more = offset + page_size < len(self.epics)
        return self.json_response(
            {
                "data": rows,
                "next": encode_token(offset + page_size) if more else None,
                "total": len(self.epics),
            }
        )

    # -- scenario changes ------------------------------------------------------------
    def change_for_second_run(self) -> dict[str, Any]:
        """Between two syncs: two epics change, and an epic whose `updated_at` does not
        move gets a new comment (children must be read again for every parent)."""
        newest = max(epic["updated_at"] for epic in self.epics if epic.get("updated_at"))
        later = stamp(datetime.fromisoformat(newest.replace("Z", "+00:00")) + timedelta(minutes=5))
        changed = [self.epics[1], self.epics[4]]
        for epic in changed:
            epic["updated_at"] = later
            epic["name"] += " (renamed)"
        quiet = self.epics[0]
        comment = entity(29999, "late comment", 0, text="added without touching the epic")
        self.comments_by_epic[quiet["id"]].append(comment)
        return {"changed_epics": [e["id"] for e in changed], "new_comment": comment["id"]}


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_token(token: str) -> int:
    return int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1])


def _recording() -> Any:
    from connectors.project_tracker import project_tracker_source
    from shared.tooling.recordings import Recording, Step

    return Recording(
        connector="project_tracker",
        source=project_tracker_source,
        fake=ProjectTrackerFake,
        credentials={"api_key": API_KEY},
        canonical_base_url="https://api.example.com",
        steps=[
            Step("full_sync"),
            Step("incremental", prepare=lambda fake: fake.change_for_second_run()),
        ],
        live_credentials={"api_key": "PROJECT_TRACKER_API_KEY"},
        live_base_url_env="PROJECT_TRACKER_BASE_URL",
        secret_headers=["api_key"],
        offline_kwargs={"requests_per_minute": 60_000},
    )


RECORDING = _recording()
