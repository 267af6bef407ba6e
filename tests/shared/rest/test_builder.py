"""shared.rest.builder: a declarative resource table run against a small in-memory API."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dlt
import pytest
import requests
import responses

from shared.errors import ConfigurationError, RequestFailedError
from shared.http.auth import bearer_token, oauth2_client_credentials
from shared.loading import run_source
from shared.rest.builder import SourceHttp, build_resources
from shared.rest.paginators import HeaderLinkPaginator
from tests.dataset import columns, count, loaded_file_formats, query
from tests.failures import root_cause

BASE_URL = "https://api.example.com"
TOKEN = "tok-5e6f7a8b"
PARTIES = [
    {"id": i, "type": "organisation" if i % 2 else "person", "name": f"party {i}"}
    for i in range(1, 7)
]
ORGANISATIONS = [p["id"] for p in PARTIES if p["type"] == "organisation"]  # 1, 3, 5
TAGS = {"parties": ["vip", "lead", "cold"], "kases": ["urgent"]}
PAGE_SIZE = 2


def reply(rows: list[dict[str, Any]], request: requests.PreparedRequest) -> tuple[int, dict, str]:
    """One page of `rows`, with a `Link` header to the next one (HeaderLinkPaginator)."""
    url = urlsplit(request.url)
    page = int(parse_qs(url.query).get("page", ["1"])[0])
    body = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    headers = {}
    if page * PAGE_SIZE < len(rows):
        headers["Link"] = f'<{BASE_URL}{url.path}?page={page + 1}>; rel="next"'
    return 200, headers, json.dumps(body)


class InMemoryApi:
    """parties; their people (organisations only); tags per entity; tickets per person."""

    def __init__(self, mocked: responses.RequestsMock, missing: tuple[int, ...] = ()) -> None:
        self.threads: set[int] = set()
        self.missing = missing
        mocked.add_callback("GET", f"{BASE_URL}/parties", callback=self.parties)
        mocked.add_callback("GET", re.compile(rf"{BASE_URL}/parties/\d+/people"), self.people)
        mocked.add_callback("GET", re.compile(rf"{BASE_URL}/\w+/tags"), callback=self.tags)
        mocked.add_callback("GET", re.compile(rf"{BASE_URL}/people/\d+/tickets"), self.tickets)

    def parties(self, request: requests.PreparedRequest) -> tuple[int, dict, str]:
        return reply(PARTIES, request)

    def people(self, request: requests.PreparedRequest) -> tuple[int, dict, str]:
        self.threads.add(threading.get_ident())
        time.sleep(0.05)  # long enough for the other child requests to overlap
        party = int(urlsplit(request.url).path.split("/")[2])
        if party in self.missing:
            return 404, {}, json.dumps({"message": "no such party"})
        return reply([{"id": party * 100 + n, "name": f"person {n}"} for n in (1, 2)], request)

    def tags(self, request: requests.PreparedRequest) -> tuple[int, dict, str]:
        entity = urlsplit(request.url).path.split("/")[1]
        return reply([{"id": i, "name": tag} for i, tag in enumerate(TAGS[entity])], request)

    def tickets(self, request: requests.PreparedRequest) -> tuple[int, dict, str]:
        person = int(urlsplit(request.url).path.split("/")[2])
        return reply([{"id": person * 10}], request)


def is_organisation(party: dict[str, Any]) -> bool:
    return party["type"] == "organisation"


def http(base_url: str = BASE_URL) -> SourceHttp:
    return SourceHttp("demo", base_url, auth=bearer_token(TOKEN), secret_keys=["bearer_token"])


DEFAULTS = {
    "primary_key": "id",
    "write_disposition": "merge",
    "endpoint": {"paginator": HeaderLinkPaginator()},
}

TABLE: list[dict[str, Any]] = [
    {"name": "parties", "endpoint": {"path": "/parties"}},
    {
        "name": "employees",
        "endpoint": {"path": "/parties/{organisation_id}/people"},
        "parent": {
            "resource": "parties",
            "field": "id",
            "column": "organisation_id",
            "where": is_organisation,
        },
    },
    {
        "name": "tags",
        "endpoint": {"path": "/{entity}/tags"},
        "for_each": {"entity": ["parties", "kases"]},
        "primary_key": ["entity", "id"],
    },
]


def paths(mocked: responses.RequestsMock) -> list[str]:
    """Path and query of every request sent."""
    parts = [urlsplit(call.request.url) for call in mocked.calls]
    return [part.path + (f"?{part.query}" if part.query else "") for part in parts]


def test_parent_where_sends_child_requests_only_for_matching_parents(
    mocked: responses.RequestsMock, pipeline: dlt.Pipeline
) -> None:
    InMemoryApi(mocked)

    run_source(pipeline, build_resources(http(), TABLE, DEFAULTS))

    people_paths = sorted(p for p in paths(mocked) if "/people" in p)
    assert people_paths == [f"/parties/{o}/people" for o in ORGANISATIONS]
    # the parent list is read once (3 pages), not once per consumer
    party_pages = sorted(p for p in paths(mocked) if re.fullmatch(r"/parties(\?page=\d)?", p))
    assert party_pages == ["/parties", "/parties?page=2", "/parties?page=3"]
    assert count(pipeline, "parties") == len(PARTIES)


def test_child_rows_carry_the_parent_id_in_the_named_column(
    mocked: responses.RequestsMock, pipeline: dlt.Pipeline
) -> None:
    InMemoryApi(mocked)

    run_source(pipeline, build_resources(http(), TABLE, DEFAULTS))

    assert "organisation_id" in columns(pipeline, "employees")
    assert not any(c.startswith("_parties") for c in columns(pipeline, "employees"))
    assert query(pipeline, "SELECT id, organisation_id FROM employees ORDER BY id") == [
        (o * 100 + n, o) for o in ORGANISATIONS for n in (1, 2)
    ]


def test_for_each_runs_one_request_chain_per_value_and_rows_carry_the_value(
    mocked: responses.RequestsMock, pipeline: dlt.Pipeline
) -> None:
    InMemoryApi(mocked)

    run_source(pipeline, build_resources(http(), TABLE, DEFAULTS))

    tag_paths = sorted(p for p in paths(mocked) if "/tags" in p)
    assert tag_paths == ["/kases/tags", "/parties/tags", "/parties/tags?page=2"]
    assert query(pipeline, "SELECT entity, name FROM tags ORDER BY entity, id") == [
        (entity, tag) for entity in sorted(TAGS) for tag in TAGS[entity]
    ]


def test_children_of_a_filtered_child_carry_their_own_parent_id(
    mocked: responses.RequestsMock,
) -> None:
    InMemoryApi(mocked)
    table = [
        *TABLE[:2],
        {
            "name": "tickets",
            "endpoint": {"path": "/people/{person_id}/tickets"},
            "parent": {"resource": "employees", "field": "id", "column": "person_id"},
        },
    ]

    tickets = build_resources(http(), table, DEFAULTS)[2]

    rows = sorted(list(tickets), key=lambda row: row["id"])
    expected_people = [o * 100 + n for o in ORGANISATIONS for n in (1, 2)]
    assert rows == [{"id": p * 10, "person_id": p} for p in expected_people]


def test_child_requests_run_concurrently(mocked: responses.RequestsMock) -> None:
    api = InMemoryApi(mocked)

    employees = build_resources(http(), TABLE, DEFAULTS)[1]

    assert len(list(employees)) == 2 * len(ORGANISATIONS)
    assert len(api.threads) > 1


def test_every_resource_gets_the_parquet_file_format_hint_and_loads_parquet(
    mocked: responses.RequestsMock, pipeline: dlt.Pipeline
) -> None:
    InMemoryApi(mocked)
    resources = build_resources(http(), TABLE, DEFAULTS)

    assert [r.compute_table_schema().get("file_format") for r in resources] == ["parquet"] * 3
    info = pipeline.run(resources)  # no loader_file_format: the hints decide

    assert loaded_file_formats(info) == {"parquet"}


def test_file_format_none_leaves_the_hint_unset(mocked: responses.RequestsMock) -> None:
    resources = build_resources(http(), TABLE, DEFAULTS, file_format=None)

    assert [r.compute_table_schema().get("file_format") for r in resources] == [None] * 3


def test_defaults_and_resource_params_are_merged(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE_URL}/tasks", json=[{"id": 1}])
    defaults = {**DEFAULTS, "endpoint": {**DEFAULTS["endpoint"], "params": {"perPage": 100}}}
    table = [{"name": "tasks", "endpoint": {"path": "/tasks", "params": {"status": "open"}}}]

    (tasks,) = build_resources(http(), table, defaults)

    assert list(tasks) == [{"id": 1}]
    assert parse_qs(urlsplit(mocked.calls[0].request.url).query) == {
        "perPage": ["100"],
        "status": ["open"],
    }
    assert tasks.compute_table_schema()["write_disposition"] == "merge"


def test_missing_parent_is_skipped_with_a_warning_and_the_sync_continues(
    mocked: responses.RequestsMock, pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    InMemoryApi(mocked, missing=(3,))
    table = [*TABLE[:1], {**TABLE[1], "skip_missing_parent": True}]

    with caplog.at_level(logging.WARNING, logger="shared.http.responses"):
        run_source(pipeline, build_resources(http(), table, DEFAULTS))

    assert query(pipeline, "SELECT DISTINCT organisation_id FROM employees ORDER BY 1") == [
        (1,),
        (5,),
    ]
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "shared.http.responses"]
    assert "employees" in warning and "/parties/3/people" in warning and "404" in warning


def test_missing_parent_fails_the_sync_unless_skipping_was_asked_for(
    mocked: responses.RequestsMock, pipeline: dlt.Pipeline
) -> None:
    InMemoryApi(mocked, missing=(3,))

    with pytest.raises(Exception) as raised:
        run_source(pipeline, build_resources(http(), TABLE[:2], DEFAULTS))

    error = root_cause(raised.value, RequestFailedError)
    assert error.status_code == 404
    assert "/parties/3/people" in str(error)


def test_unknown_parent_is_a_configuration_error_naming_it(
    mocked: responses.RequestsMock,
) -> None:
    table = [{**TABLE[1], "parent": {**TABLE[1]["parent"], "resource": "organisations"}}]

    with pytest.raises(ConfigurationError) as raised:
        build_resources(http(), table, DEFAULTS)

    message = str(raised.value)
    assert message.startswith("demo:") and "`employees`" in message
    assert "organisations" in message
    assert len(mocked.calls) == 0


@pytest.mark.parametrize("base_url", ["", "api.example.com", "ftp://api.example.com", None])
def test_bad_base_url_is_a_configuration_error_naming_the_config_key(
    base_url: str | None, mocked: responses.RequestsMock
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        build_resources(http(base_url), TABLE, DEFAULTS)  # type: ignore[arg-type]

    assert "sources.demo.base_url" in str(raised.value)
    assert len(mocked.calls) == 0


def test_parent_and_for_each_together_is_a_configuration_error() -> None:
    table = [TABLE[0], {**TABLE[1], "for_each": {"entity": ["parties"]}}]

    with pytest.raises(ConfigurationError, match="both parent and for_each"):
        build_resources(http(), table, DEFAULTS)


def test_child_path_must_name_the_parent_column() -> None:
    table = [TABLE[0], {**TABLE[1], "endpoint": {"path": "/parties/{id}/people"}}]

    with pytest.raises(ConfigurationError, match="organisation_id"):
        build_resources(http(), table, DEFAULTS)


def test_every_request_of_a_parent_child_chain_carries_the_credentials(
    mocked: responses.RequestsMock,
) -> None:
    InMemoryApi(mocked)

    list(build_resources(http(), TABLE, DEFAULTS)[1])

    sent = Counter(c.request.headers.get("Authorization") for c in mocked.calls)
    assert sent == {f"Bearer {TOKEN}": len(mocked.calls)}


def test_messages_name_the_table_a_hidden_helper_resource_feeds() -> None:
    from shared.rest.builder import table_of

    assert table_of("epics__listing") == "epics"
    assert table_of("parties__for_employees") == "parties"
    assert table_of("lost_reasons") == "lost_reasons"


@pytest.mark.parametrize(
    ("base_url", "carried"),
    [
        ("https://loader:Pw-9z8y@api.example.com/v2", "a user name or password (`user:password@`)"),
        ("https://Pw-9z8y@api.example.com/v2", "a user name or password (`user:password@`)"),
        ("https://api.example.com/v2?api_key=Pw-9z8y", "a credential query parameter (`api_key`)"),
        ("https://api.example.com/v2?X-Team=Pw-9z8y", "a credential query parameter (`X-Team`)"),
    ],
)
def test_a_base_url_carrying_a_credential_is_refused_without_showing_it(
    base_url: str, carried: str
) -> None:
    """Userinfo was silently not sent, and dlt kept the URL in its trace: refused, with
    the place the credential belongs."""
    http = SourceHttp("demo", base_url, secret_keys=["bearer_token"], sensitive_params=["x-team"])

    with pytest.raises(ConfigurationError) as raised:
        http.session()

    message = str(raised.value)
    assert message.startswith(f"demo: base_url carries {carried}; credentials belong in ")
    assert "`sources.demo.bearer_token` (env SOURCES__DEMO__BEARER_TOKEN)" in message
    assert "Pw-9z8y" not in message and "loader" not in message and "\n" not in message


def test_a_token_url_carrying_a_credential_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigurationError) as raised:
        oauth2_client_credentials(
            "https://auth.example.com/token?client_secret=Pw-9z8y", "id", "secret-value-1"
        )
    assert "the token URL carries a credential query parameter (`client_secret`)" in str(
        raised.value
    )
    assert "Pw-9z8y" not in str(raised.value)


def hand_written() -> Any:
    """A resource a connector writes by hand (as hubspot_contacts does): a cursor, a key."""

    @dlt.resource(name="notes", primary_key="id", write_disposition="merge")
    def notes(
        updated_at: dlt.sources.incremental[str] = dlt.sources.incremental("updated_at"),
    ) -> Any:
        yield [{"id": 1, "updated_at": "2024-05-01T10:00:00Z"}]

    return notes


def finished(**options: Any) -> Any:
    """The hand-written resource, through `finish_resources`."""
    from shared.rest.builder import finish_resources

    source_http = http()
    (resource,) = finish_resources([hand_written()], source_http, source_http.session(), **options)
    return resource


def step_names(resource: Any) -> list[str]:
    from shared._dlt_compat import pipe_steps

    return [type(step).__name__ for step in pipe_steps(resource)][1:]  # after the generator


def test_finish_resources_gives_a_hand_written_resource_every_step_in_order() -> None:
    from shared.incremental.cursors import GuardedIncremental, declared_incremental
    from shared.rest.builder import FULL_LIST, MAX_TABLE_NESTING

    notes = finished(specs={"notes": {"deletions": FULL_LIST}})

    table = notes.compute_table_schema()
    assert notes.max_table_nesting == MAX_TABLE_NESTING
    assert table["file_format"] == "parquet"
    assert table["columns"]["_deleted_at"]["data_type"] == "timestamp"
    assert table["columns"]["updated_at"]["dedup_sort"] == "desc"  # the newest copy wins
    assert isinstance(declared_incremental(notes), GuardedIncremental)
    # the cursor filters before deletions are learned, and Arrow tables are built last
    assert step_names(notes) == [
        "AppendFirstSync",
        "IncrementalResourceWrapper",
        "Deletions",
        "RowsToTables",
    ]


def test_finish_resources_leaves_out_the_arrow_steps_it_is_told_to() -> None:
    notes = finished(file_format=None, arrow_tables=False, append_first_sync=False)

    assert step_names(notes) == ["IncrementalResourceWrapper"]  # no spec: no deletions
    assert "_deleted_at" in notes.compute_table_schema()["columns"]
    assert notes.compute_table_schema().get("file_format") is None


#: the steps that finish a resource: only `finish_resources` (and the helpers it calls)
#: applies them, so every connector gets them in one order
FINISHING_STEPS = {
    "guard_cursors",
    "track_deletions",
    "learn_deletions",
    "load_as_arrow_tables",
    "yield_arrow_pages",
    "skip_merge_on_first_sync",
}


def test_every_connector_path_finishes_its_resources_through_finish_resources() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    files = [
        *root.joinpath("connectors").rglob("*.py"),
        *root.joinpath("shared", "rest").rglob("*.py"),
        *root.joinpath("templates").rglob("*.py"),
    ]
    callers = set()
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    if name in FINISHING_STEPS:
                        callers.add((path.relative_to(root).as_posix(), function.name, name))

    assert callers == {
        ("shared/rest/builder.py", "finish_resources", "learn_deletions"),
        ("shared/rest/builder.py", "finish_resources", "yield_arrow_pages"),
        ("shared/rest/builder.py", "finish_resources", "guard_cursors"),
        ("shared/rest/builder.py", "finish_resources", "load_as_arrow_tables"),
        ("shared/rest/builder.py", "finish_resources", "skip_merge_on_first_sync"),
        ("shared/rest/builder.py", "learn_deletions", "track_deletions"),
    }
