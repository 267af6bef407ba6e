"""shared.rest.client_incremental: a client-side cursor on a parent skips the parent's unchanged
rows but still feeds its children every row."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import dlt
import pytest
import requests
import responses

from shared.loading import run_source
from shared.rest.builder import SourceHttp
from shared.rest.client_incremental import build_resources, client_side_cursor
from tests.dataset import columns, count, query

BASE_URL = "https://api.example.com"


class ProjectsApi:
    """`/projects` (no time filter) and `/projects/{id}/notes`."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.projects = [
            {"id": i, "name": f"project {i}", "updated_at": f"2024-01-0{i}T00:00:00Z"}
            for i in range(1, 5)
        ]
        self.notes = {p["id"]: [{"id": p["id"] * 10, "text": "first"}] for p in self.projects}
        self.paths: list[str] = []
        mock.add_callback("GET", f"{BASE_URL}/projects", callback=self.reply)
        mock.add_callback("GET", re.compile(rf"{BASE_URL}/projects/\d+/notes"), self.reply)

    def reply(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        path = urlsplit(request.url or "").path
        self.paths.append(path)
        if path == "/projects":
            return 200, {}, json.dumps(self.projects)
        project_id = int(path.split("/")[2])
        return 200, {}, json.dumps(self.notes[project_id])


@pytest.fixture
def api() -> Iterator[ProjectsApi]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield ProjectsApi(mock)


def source() -> Any:
    http = SourceHttp(connector="demo", base_url=BASE_URL)
    table = [
        {
            "name": "projects",
            "endpoint": {"path": "/projects", "incremental": {"cursor_path": "updated_at"}},
        },
        {
            "name": "project_notes",
            "endpoint": {"path": "/projects/{project_id}/notes"},
            "parent": {"resource": "projects", "field": "id", "column": "project_id"},
        },
    ]
    defaults = {"primary_key": "id", "write_disposition": "merge"}
    return dlt.source(lambda: build_resources(http, table, defaults), name="demo")()


def test_unchanged_parents_are_skipped_but_their_children_are_read_every_run(
    api: ProjectsApi, pipeline: dlt.Pipeline
) -> None:
    run_source(pipeline, source())
    assert count(pipeline, "projects") == 4
    assert count(pipeline, "project_notes") == 4
    assert "project_id" in columns(pipeline, "project_notes")
    assert api.paths.count("/projects") == 1  # one listing feeds the table and the children

    api.projects[1]["name"] = "renamed"
    api.projects[1]["updated_at"] = "2024-02-01T00:00:00Z"
    api.notes[3].append({"id": 31, "text": "added; project 3 unchanged"})
    api.paths.clear()
    run_source(pipeline, source())

    loaded = pipeline.last_trace.last_normalize_info.row_counts
    assert loaded["projects"] == 1
    assert loaded["project_notes"] == 5
    assert sorted(api.paths) == ["/projects", *[f"/projects/{i}/notes" for i in range(1, 5)]]
    assert query(pipeline, "SELECT project_id FROM project_notes WHERE id = 31") == [(3,)]
    assert query(pipeline, "SELECT name FROM projects WHERE id = 2") == [("renamed",)]
    assert [r.name for r in source().resources.values()] == ["projects", "project_notes"]


def test_a_cursor_bound_to_a_request_parameter_is_not_client_side() -> None:
    client_side = {"endpoint": {"incremental": {"cursor_path": "updated_at"}}}
    server_side = {
        "endpoint": {"incremental": {"cursor_path": "updated_at", "start_param": "since"}}
    }
    assert client_side_cursor(client_side, {}) == {"cursor_path": "updated_at"}
    assert client_side_cursor(server_side, {}) is None
    assert client_side_cursor({"endpoint": "/projects"}, client_side) == {
        "cursor_path": "updated_at"
    }


def test_the_client_side_cursor_is_guarded_like_every_cursor(
    api: ProjectsApi, pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    del api.projects[0]["updated_at"]  # a record without the cursor loads
    api.projects[1]["updated_at"] = "9999-12-31T23:59:59Z"  # a future one is not stored

    run_source(pipeline, source())

    assert count(pipeline, "projects") == 4
    assert count(pipeline, "project_notes") == 4
    state = pipeline.state["sources"]["demo"]["resources"]["projects"]["incremental"]
    stored = state["updated_at"]["last_value"]
    assert "2024-01-04T00:00:00Z" <= stored < "9999"
    assert (
        pipeline.default_schema.get_table_columns("projects")["updated_at"]["dedup_sort"] == "desc"
    )

    # an unreadable value loads with its record, leaves the cursor and warns
    api.projects[1]["updated_at"] = "2024-01-02T00:00:00Z"  # no longer in the future
    api.projects[2]["updated_at"] = "yesterday"
    with caplog.at_level("WARNING"):
        run_source(pipeline, source())
    after = pipeline.state["sources"]["demo"]["resources"]["projects"]["incremental"]
    assert after["updated_at"]["last_value"] == stored
    assert "demo: resource `projects`: record " in caplog.text
    assert "has cursor field `updated_at` = 'yesterday'" in caplog.text
