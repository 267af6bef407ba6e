"""shared.rest.fan_in: a child of several parents is requested once for every row any parent
yields, whichever parents list it, on every run; every list is read once and its table
keeps its rows, keys and cursor."""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import dlt
import pytest
import requests
import responses

from shared.arrow.tables import RowsToTables
from shared.collector import SYNC_COLLECTION_THRESHOLD
from shared.errors import ConfigurationError
from shared.loading import run_source
from shared.rest.builder import SourceHttp
from shared.rest.fan_in import build_resources
from tests.dataset import columns, count, query

BASE_URL = "https://api.example.com"


class TasksApi:
    """`/teams` and `/sprints`, the tasks under each, and `/tasks/{id}/notes`.

    Task 1 is in team 1 and sprint 1; task 2 only in team 2; task 3 only in sprint 2.
    """

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.teams = [{"id": "t1"}, {"id": "t2"}]
        self.sprints = [
            {"id": 1, "updated_at": "2024-01-01T00:00:00Z"},
            {"id": 2, "updated_at": "2023-12-01T00:00:00Z"},
        ]
        self.tasks = {
            "/teams/t1/tasks": [{"id": 1, "name": "both"}],
            "/teams/t2/tasks": [{"id": 2, "name": "team only"}],
            "/sprints/1/tasks": [{"id": 1, "name": "both"}],
            "/sprints/2/tasks": [{"id": 3, "name": "sprint only"}],
        }
        self.paths: list[str] = []
        mock.add_callback("GET", re.compile(rf"{BASE_URL}/.*"), callback=self.reply)

    def reply(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        path = urlsplit(request.url or "").path
        self.paths.append(path)
        if path == "/teams":
            return 200, {}, json.dumps(self.teams)
        if path == "/sprints":
            return 200, {}, json.dumps(self.sprints)
        if path in self.tasks:
            return 200, {}, json.dumps(self.tasks[path])
        task_id = int(path.split("/")[2])
        return 200, {}, json.dumps([{"id": task_id * 100, "text": f"note on {task_id}"}])


@pytest.fixture
def api() -> Iterator[TasksApi]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield TasksApi(mock)


def table(notes_parents: Any = ("team_tasks", "sprint_tasks")) -> list[dict[str, Any]]:
    return [
        {"name": "teams", "endpoint": {"path": "/teams"}},
        {
            "name": "sprints",
            "endpoint": {"path": "/sprints", "incremental": {"cursor_path": "updated_at"}},
        },
        {
            "name": "team_tasks",
            "endpoint": {"path": "/teams/{team_id}/tasks"},
            "parent": {"resource": "teams", "field": "id", "column": "team_id"},
            "primary_key": ["team_id", "id"],
        },
        {
            "name": "sprint_tasks",
            "endpoint": {"path": "/sprints/{sprint_id}/tasks"},
            "parent": {"resource": "sprints", "field": "id", "column": "sprint_id"},
            "primary_key": ["sprint_id", "id"],
        },
        {
            "name": "task_notes",
            "endpoint": {"path": "/tasks/{task_id}/notes"},
            "parent": {"resource": list(notes_parents), "field": "id", "column": "task_id"},
        },
    ]


def source(resources: list[dict[str, Any]] | None = None, **options: Any) -> Any:
    http = SourceHttp(connector="demo", base_url=BASE_URL)
    defaults = {"primary_key": "id", "write_disposition": "merge"}
    return dlt.source(
        lambda: build_resources(http, resources or table(), defaults, **options), name="demo"
    )()


def primary_key(pipeline: dlt.Pipeline, table: str) -> list[str]:
    table_columns = pipeline.default_schema.get_table_columns(table)
    return [name for name, column in table_columns.items() if column.get("primary_key")]


@pytest.mark.parametrize("parallel_children", [True, False])
def test_every_task_any_parent_lists_gets_its_notes_requested_once(
    api: TasksApi, pipeline: dlt.Pipeline, parallel_children: bool
) -> None:
    run_source(pipeline, source(parallel_children=parallel_children))

    assert sorted(query(pipeline, "SELECT task_id, id FROM task_notes")) == [
        (1, 100),
        (2, 200),
        (3, 300),
    ]
    notes = sorted(p for p in api.paths if p.endswith("/notes"))
    assert notes == ["/tasks/1/notes", "/tasks/2/notes", "/tasks/3/notes"]
    # the parents' tables keep their own rows and keys
    assert sorted(query(pipeline, "SELECT team_id, id FROM team_tasks")) == [("t1", 1), ("t2", 2)]
    assert sorted(query(pipeline, "SELECT sprint_id, id FROM sprint_tasks")) == [(1, 1), (2, 3)]
    # one union reads every list once, for the tables and the child alike
    assert sorted(p for p in api.paths if not p.endswith("/notes")) == sorted(
        ["/teams", "/sprints", *api.tasks]
    )


def test_a_second_run_requests_every_tasks_notes_again(
    api: TasksApi, pipeline: dlt.Pipeline
) -> None:
    run_source(pipeline, source())
    api.paths.clear()
    api.tasks["/teams/t2/tasks"].append({"id": 4, "name": "new"})

    run_source(pipeline, source())

    notes = sorted(p for p in api.paths if p.endswith("/notes"))
    assert notes == ["/tasks/1/notes", "/tasks/2/notes", "/tasks/3/notes", "/tasks/4/notes"]
    assert count(pipeline, "task_notes") == 4
    # the sprints' cursor skips their unchanged rows, yet their tasks are read and loaded
    loaded = pipeline.last_trace.last_normalize_info.row_counts
    assert "sprints" not in loaded
    assert loaded["sprint_tasks"] == 2 and loaded["team_tasks"] == 3
    state = pipeline.state["sources"]["demo"]["resources"]["sprints"]["incremental"]
    assert state["updated_at"]["last_value"] == "2024-01-01T00:00:00Z"


def test_selecting_only_the_child_still_reads_every_parent(
    api: TasksApi, pipeline: dlt.Pipeline
) -> None:
    run_source(pipeline, source().with_resources("task_notes"))

    assert sorted(query(pipeline, "SELECT task_id FROM task_notes")) == [(1,), (2,), (3,)]
    tables = {t["name"] for t in pipeline.default_schema.data_tables()}
    assert "team_tasks" not in tables and "sprint_tasks" not in tables
    assert api.paths.count("/teams") == 1


def test_the_union_tags_never_reach_a_table(api: TasksApi, pipeline: dlt.Pipeline) -> None:
    run_source(pipeline, source())

    for table in ("teams", "sprints", "team_tasks", "sprint_tasks", "task_notes"):
        assert not {c for c in columns(pipeline, table) if "fan_in" in c}, table
    assert set(primary_key(pipeline, "team_tasks")) == {"team_id", "id"}
    assert pipeline.default_schema.get_table("sprints")["write_disposition"] == "merge"


def test_an_unknown_parent_in_the_list_names_the_resources(api: TasksApi) -> None:
    with pytest.raises(ConfigurationError, match=r"`task_notes` names unknown parent `epics`"):
        source(table(notes_parents=["team_tasks", "epics"]))


def test_a_parent_with_several_parents_itself_is_refused(api: TasksApi) -> None:
    resources = table()
    resources.append(
        {
            "name": "note_likes",
            "endpoint": {"path": "/notes/{note_id}/likes"},
            "parent": {"resource": ["task_notes", "teams"], "field": "id", "column": "note_id"},
        }
    )
    with pytest.raises(ConfigurationError, match="`task_notes`, which has several parents"):
        source(resources)


def test_selecting_a_parent_table_reads_only_its_own_lists(
    api: TasksApi, pipeline: dlt.Pipeline
) -> None:
    run_source(pipeline, source().with_resources("teams", "sprint_tasks"))

    assert sorted(api.paths) == sorted(
        ["/teams", "/sprints", "/sprints/1/tasks", "/sprints/2/tasks"]
    )
    assert count(pipeline, "teams") == 2 and count(pipeline, "sprint_tasks") == 2
    tables = {t["name"] for t in pipeline.default_schema.data_tables()}
    assert "sprints" not in tables and "task_notes" not in tables


def test_two_children_of_the_same_parents_must_take_the_same_field(api: TasksApi) -> None:
    resources = table()
    resources.append(
        {
            "name": "task_owners",
            "endpoint": {"path": "/users/{owner}/profile"},
            "parent": {
                "resource": ["team_tasks", "sprint_tasks"],
                "field": "name",
                "column": "owner",
            },
        }
    )
    with pytest.raises(ConfigurationError, match="`task_owners` takes `name` from its parents"):
        source(resources)


def test_a_list_filtered_on_the_server_cannot_be_read_through_a_union(api: TasksApi) -> None:
    resources = table()
    resources[1]["endpoint"]["incremental"] = {"cursor_path": "updated_at", "start_param": "since"}
    with pytest.raises(
        ConfigurationError, match="demo: `sprints` filters by its cursor on the server"
    ):
        source(resources)


def extracted_tables(pipeline: dlt.Pipeline) -> set[str]:
    """The tables the last run's extract step wrote: nested tables only when a resource
    loaded as Arrow tables split into dlt's tables (dlt's normalizer makes them later)."""
    info = pipeline.last_trace.last_extract_info
    return {
        table
        for metrics in info.metrics.values()
        for step in metrics
        for table in step["table_metrics"]
    }


@pytest.mark.parametrize("parallel_children", [True, False])
def test_a_list_with_large_pages_loads_as_arrow_tables_and_still_feeds_its_children(
    api: TasksApi, pipeline: dlt.Pipeline, parallel_children: bool
) -> None:
    api.tasks["/teams/t1/tasks"] = [
        {"id": 1, "name": "both", "labels": [{"id": 7, "name": "red"}], "owners": [10, 11]},
        {"id": 5, "name": "second", "labels": [], "owners": [12]},
    ]
    resources = table()
    resources[2]["large_pages"] = True  # team_tasks

    run_source(pipeline, source(resources, parallel_children=parallel_children))

    # team_tasks' child tables were written at extract: split in Arrow, as dlt would
    assert {"team_tasks", "team_tasks__labels", "team_tasks__owners"} <= extracted_tables(pipeline)
    assert sorted(query(pipeline, "SELECT team_id, id, name FROM team_tasks")) == [
        ("t1", 1, "both"),
        ("t1", 5, "second"),
        ("t2", 2, "team only"),
    ]
    assert sorted(
        query(
            pipeline,
            "SELECT t.id, o.value, o._dlt_list_idx FROM team_tasks__owners o "
            "JOIN team_tasks t ON o._dlt_parent_id = t._dlt_id",
        )
    ) == [(1, 10, 0), (1, 11, 1), (5, 12, 0)]
    assert query(pipeline, "SELECT id, name FROM team_tasks__labels") == [(7, "red")]
    # every task any parent lists still gets its notes, once
    notes = sorted(p for p in api.paths if p.endswith("/notes"))
    assert notes == ["/tasks/1/notes", "/tasks/2/notes", "/tasks/3/notes", "/tasks/5/notes"]
    assert count(pipeline, "task_notes") == 4
    for name in ("team_tasks", "team_tasks__labels", "team_tasks__owners"):
        assert not {c for c in columns(pipeline, name) if "fan_in" in c}, name


def test_without_large_pages_a_list_read_through_a_union_stays_rows(
    api: TasksApi, pipeline: dlt.Pipeline
) -> None:
    api.tasks["/teams/t1/tasks"][0]["owners"] = [10, 11]

    run_source(pipeline, source())

    # dlt's normalizer made the child table after extract
    assert "team_tasks__owners" not in extracted_tables(pipeline)
    assert sorted(query(pipeline, "SELECT value FROM team_tasks__owners")) == [(10,), (11,)]


@pytest.mark.parametrize("parallel_children", [True, False])
def test_a_child_with_large_pages_outside_a_union_loads_as_arrow_tables(
    api: TasksApi, pipeline: dlt.Pipeline, parallel_children: bool
) -> None:
    api.tasks["/teams/t1/tasks"][0]["owners"] = [10, 11]
    resources = table()[:-1]  # no child of several parents: no union
    resources[2]["large_pages"] = True  # team_tasks, an ordinary (parallelized) child
    # and its own child, which must still receive team_tasks' rows
    resources.append({**table()[-1], "parent": {**table()[-1]["parent"], "resource": "team_tasks"}})

    run_source(pipeline, source(resources, parallel_children=parallel_children))

    assert "team_tasks__owners" in extracted_tables(pipeline)  # split in Arrow
    assert sorted(query(pipeline, "SELECT team_id, id FROM team_tasks")) == [("t1", 1), ("t2", 2)]
    assert sorted(query(pipeline, "SELECT value FROM team_tasks__owners")) == [(10,), (11,)]
    assert sorted(query(pipeline, "SELECT task_id, id FROM task_notes")) == [(1, 100), (2, 200)]


def rows_per_split(monkeypatch: pytest.MonkeyPatch, resource: str) -> list[int]:
    """The rows of every batch `resource`'s Arrow step splits into tables, as they come."""
    sizes: list[int] = []
    original = RowsToTables.__call__

    def spy(self: RowsToTables, item: Any, meta: Any = None) -> Any:
        if self.resource.name == resource and isinstance(item, list):
            sizes.append(len(item))
        return original(self, item, meta)

    monkeypatch.setattr(RowsToTables, "__call__", spy)
    return sizes


def test_a_large_pages_lists_pages_reach_its_table_gathered_into_one_batch(
    api: TasksApi, pipeline: dlt.Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.tasks["/teams/t1/tasks"].append({"id": 5, "name": "second"})
    resources = table()
    resources[2]["large_pages"] = True  # team_tasks: a page of t1's tasks, then t2's
    sizes = rows_per_split(monkeypatch, "team_tasks")

    run_source(pipeline, source(resources).with_resources("team_tasks"))

    # both pages in one batch: dlt's work per Arrow table is paid once, not per page
    assert sizes == [3]
    assert sorted(query(pipeline, "SELECT team_id, id FROM team_tasks")) == [
        ("t1", 1),
        ("t1", 5),
        ("t2", 2),
    ]
    assert not [p for p in api.paths if p.endswith("/notes")]


def test_a_list_feeding_a_selected_child_hands_on_each_page_at_once(
    api: TasksApi, pipeline: dlt.Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.tasks["/teams/t1/tasks"].append({"id": 5, "name": "second"})
    resources = table()
    resources[2]["large_pages"] = True
    sizes = rows_per_split(monkeypatch, "team_tasks")

    run_source(pipeline, source(resources))

    # each page as it came, so that its rows' child requests start at once
    assert sizes == [2, 1]
    assert count(pipeline, "team_tasks") == 3
    notes = sorted(p for p in api.paths if p.endswith("/notes"))
    assert notes == ["/tasks/1/notes", "/tasks/2/notes", "/tasks/3/notes", "/tasks/5/notes"]


class CollectorNotingApi(TasksApi):
    """`TasksApi`, noting at each request the number of objects the garbage collector
    leaves alone (`gc.freeze`) and its thresholds."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.frozen: list[int] = []
        self.thresholds: list[tuple[int, int, int]] = []
        super().__init__(mock)

    def reply(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.frozen.append(gc.get_freeze_count())
        self.thresholds.append(gc.get_threshold())
        return super().reply(request)


def test_while_a_union_reads_its_lists_the_collector_leaves_older_objects_alone(
    pipeline: dlt.Pipeline,
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        api = CollectorNotingApi(mock)
        before = gc.get_freeze_count()
        thresholds = gc.get_threshold()
        run_source(pipeline, source())

    # every list the union read was requested with the process's older objects frozen
    # and young objects collected less often (the notes, requested by dlt's own
    # iterator after the union's pages, may come after the union ended); after the
    # sync the collector is as it was
    union_requests = [
        (frozen, threshold)
        for frozen, threshold, path in zip(api.frozen, api.thresholds, api.paths, strict=True)
        if "/notes" not in path
    ]
    assert len(union_requests) == 2 + len(api.tasks)
    assert all(frozen > before for frozen, _ in union_requests)
    assert {threshold for _, threshold in union_requests} == {
        (SYNC_COLLECTION_THRESHOLD, *thresholds[1:])
    }
    assert gc.get_freeze_count() == before
    assert gc.get_threshold() == thresholds
    assert count(pipeline, "task_notes") == 3


def test_a_process_that_froze_its_objects_itself_keeps_them_frozen(
    pipeline: dlt.Pipeline,
) -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            api = CollectorNotingApi(mock)
            run_source(pipeline, source())
        # the union neither froze more nor unfroze the process's own (frozen objects
        # freed since leave the count), nor changed the collector's thresholds
        assert api.frozen and all(0 < n <= frozen for n in api.frozen)
        assert set(api.thresholds) == {gc.get_threshold()}
        assert 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
    assert count(pipeline, "task_notes") == 3
