"""project_tracker: offline replay of the recorded cassettes
(../shared/api-contracts/project_tracker.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dlt
import pytest

from connectors.sandbox.project_tracker import RECORDING, ProjectTrackerFake
from shared.loading import duckdb_pipeline
from shared.tooling.cassettes import cassette_path, replaying
from tests.dataset import columns, count, loaded_file_formats, query
from tests.recording import replay

# counts of the recorded fake's data (ProjectTrackerFake() defaults: 6 epics, 2 stories each,
# one story only in a group and one only in an iteration)
EXPECTED_ROWS = {
    "categories": 3,
    "categories_milestones": 4,
    "categories_objectives": 3,
    "custom_fields": 2,
    "epic_workflow": 1,
    "epics": 6,
    "epics_comments": 6,
    "epics_stories": 12,
    "files": 2,
    "groups": 3,
    "groups_stories": 13,
    "iterations": 3,
    "iterations_stories": 13,
    "labels": 4,
    "member": 1,
    "members": 3,
    "milestones": 4,
    "milestones_epics": 6,
    "objectives": 3,
    "objectives_epics": 6,
    "workflows": 2,
    "stories_comments": 21,
    "story_history": 28,
    "search_epics": 6,
}

#: every story the sync sees: under an epic, a group or an iteration
STORIES_SEEN = (
    "(SELECT id FROM epics_stories UNION SELECT id FROM groups_stories "
    "UNION SELECT id FROM iterations_stories)"
)

# child table -> (parent-id column, parent table, primary key per the contract)
CHILDREN = {
    "categories_milestones": ("category_id", "categories", ["category_id", "id"]),
    "categories_objectives": ("category_id", "categories", ["category_id", "id"]),
    "epics_comments": ("epic_id", "epics", ["id"]),
    "epics_stories": ("epic_id", "epics", ["id"]),
    "groups_stories": ("group_id", "groups", ["group_id", "id"]),
    "iterations_stories": ("iteration_id", "iterations", ["iteration_id", "id"]),
    "milestones_epics": ("milestone_id", "milestones", ["milestone_id", "id"]),
    "objectives_epics": ("objective_id", "objectives", ["objective_id", "id"]),
    "stories_comments": ("story_id", STORIES_SEEN, ["id"]),
    "story_history": ("story_id", STORIES_SEEN, ["id"]),
}


@dataclass
class FullSync:
    pipeline: dlt.Pipeline
    cassette: Any
    info: Any


@pytest.fixture(scope="module")
def full_sync(tmp_path_factory: pytest.TempPathFactory) -> FullSync:
    """One replay of the full sync, shared by the tests that only read what it loaded.

    A plain `pipeline.run`, no loader_file_format: the connector's hints choose parquet."""
    workdir = tmp_path_factory.mktemp("project_tracker_full_sync")
    pipeline = duckdb_pipeline(
        "full_sync", database=str(workdir / "full_sync.duckdb"), pipelines_dir=str(workdir)
    )
    source = RECORDING.source(
        base_url=RECORDING.canonical_base_url, **RECORDING.credentials, **RECORDING.offline_kwargs
    )
    with replaying(
        cassette_path("project_tracker", "full_sync"),
        RECORDING.scrubber(RECORDING.canonical_base_url),
    ) as cassette:
        info = pipeline.run(source)
    return FullSync(pipeline, cassette, info)


def primary_key(pipeline: dlt.Pipeline, table: str) -> list[str]:
    table_columns = pipeline.default_schema.get_table_columns(table)
    return [name for name, column in table_columns.items() if column.get("primary_key")]


def test_full_sync_replay_loads_all_24_tables_with_the_fakes_row_counts(
    full_sync: FullSync,
) -> None:
    pipeline, cassette = full_sync.pipeline, full_sync.cassette

    assert len(EXPECTED_ROWS) == 24
    assert {table: count(pipeline, table) for table in EXPECTED_ROWS} == EXPECTED_ROWS
    # one request per list, one per parent row per child list, and one per story seen (14:
    # 12 under epics, 1 only in a group, 1 only in an iteration) for its comments and one
    # for its history; no list read twice
    fake = ProjectTrackerFake()
    assert len(fake.stories) == 14
    assert cassette.play_count == len(cassette.data) == 45 + 2 * 14
    paths = [urlsplit(request.uri).path for request in cassette.requests]
    assert len(set(paths)) == len(paths)
    for story in fake.stories:
        assert paths.count(f"/v1/stories/{story['id']}/comments") == 1
        assert paths.count(f"/v1/stories/{story['id']}/history") == 1


def test_children_carry_their_parents_id_and_the_contracts_primary_keys(
    full_sync: FullSync,
) -> None:
    pipeline = full_sync.pipeline

    fake = ProjectTrackerFake()
    for child, (column, parent, key) in CHILDREN.items():
        assert column in columns(pipeline, child), child
        assert set(primary_key(pipeline, child)) == set(key), child
        orphans = query(
            pipeline,
            f"SELECT COUNT(*) FROM {child} c LEFT JOIN {parent} p ON p.id = c.{column} "
            "WHERE p.id IS NULL",
        )
        assert orphans == [(0,)], child
        key_sql = ", ".join(key)
        assert query(pipeline, f"SELECT COUNT(*) - COUNT(DISTINCT ({key_sql})) FROM {child}") == [
            (0,)
        ], child
    # parent ids come from the parent row: each story under the epic that lists it
    stories = {(s["id"], s["epic_id"]) for s in fake.stories if s["epic_id"]}
    assert set(query(pipeline, "SELECT id, epic_id FROM epics_stories")) == stories
    # group ids are UUID strings, kept as text
    groups = {(s["id"], s["group_id"]) for s in fake.stories if s["group_id"]}
    assert set(query(pipeline, "SELECT id, group_id FROM groups_stories")) == groups
    # grandchildren: comments and history of every story seen, keyed by the story
    per_story = query(pipeline, "SELECT story_id, COUNT(*) FROM story_history GROUP BY 1")
    assert len(per_story) == len(fake.stories)
    assert {n for _, n in per_story} == {2}
    epics_with_comments = query(pipeline, "SELECT COUNT(DISTINCT epic_id) FROM epics_comments")
    assert epics_with_comments == [(sum(1 for rows in fake.comments_by_epic.values() if rows),)]


def test_single_objects_and_lists_are_unwrapped_from_the_data_envelope(
    full_sync: FullSync,
) -> None:
    pipeline = full_sync.pipeline

    fake = ProjectTrackerFake()
    assert query(pipeline, "SELECT id, mention_name FROM member") == [
        (fake.objects["member"]["id"], "m0")
    ]
    assert query(pipeline, "SELECT id, default_epic_state_id FROM epic_workflow") == [(1, 950)]
    assert count(pipeline, "epic_workflow__epic_states") == 2
    assert "data" not in columns(pipeline, "epics")
    assert {"id", "name", "updated_at", "milestone_id"} <= columns(pipeline, "epics")
    assert pipeline.default_schema.get_table_columns("epics")["updated_at"]["data_type"] == (
        "timestamp"
    )
    for table in EXPECTED_ROWS:
        assert pipeline.default_schema.get_table(table)["write_disposition"] == "merge", table


def test_search_sends_query_and_page_size_and_stops_when_next_is_null(
    full_sync: FullSync,
) -> None:
    pipeline, cassette = full_sync.pipeline, full_sync.cassette

    searches = [
        parse_qs(urlsplit(request.uri).query)
        for request in cassette.requests
        if urlsplit(request.uri).path == "/v1/search/epics"
    ]
    # six epics fit one page of 250: the body's `next` is null, so no second request
    assert searches == [{"query": ["*"], "page_size": ["250"]}]
    assert query(pipeline, "SELECT COUNT(*) FROM search_epics s JOIN epics e USING (id)") == [(6,)]


@pytest.mark.slow
def test_second_run_skips_unchanged_rows_but_reads_every_child_list_again(
    pipeline: dlt.Pipeline,
) -> None:
    replay(RECORDING, pipeline, steps=["full_sync"])

    (cassette,) = replay(RECORDING, pipeline, steps=["incremental"])

    # the lists have no time filter: the same requests go out, children for every parent
    paths = [urlsplit(request.uri).path for request in cassette.requests]
    fake = ProjectTrackerFake()
    for epic in fake.epics:
        assert paths.count(f"/v1/epics/{epic['id']}/comments") == 1
    assert len(paths) == 73
    # only the two changed epics pass the cursor, and the one without `updated_at` (it
    # loads every run); unchanged lists load nothing but their records without a cursor
    loaded = pipeline.last_trace.last_normalize_info.row_counts
    assert fake.undated["epics"] == [1005] and fake.undated["labels"] == [700]
    assert loaded["epics"] == 2 + 1
    assert loaded["search_epics"] == 2 + 1
    assert loaded["labels"] == 1
    assert "categories" not in loaded and "milestones" not in loaded
    # children load in full: the comment added under an unchanged epic arrived
    assert loaded["epics_comments"] == EXPECTED_ROWS["epics_comments"] + 1
    assert query(pipeline, "SELECT epic_id FROM epics_comments WHERE id = 29999") == [(1000,)]
    # merged, not appended
    assert count(pipeline, "epics") == 6
    assert count(pipeline, "epics_comments") == 7
    renamed = query(pipeline, "SELECT id FROM epics WHERE name LIKE '%(renamed)' ORDER BY id")
    assert renamed == [(1001,), (1004,)]
    # the cursor is the newest `updated_at` the fake now serves
    fake.change_for_second_run()
    newest = max(epic["updated_at"] for epic in fake.epics if epic.get("updated_at"))
    state = pipeline.state["sources"]["project_tracker"]["resources"]["epics"]["incremental"]
    assert state["updated_at"]["last_value"] == newest == "2024-05-06T09:09:00Z"


def test_group_stories_ask_for_the_contracts_1000_stories_a_request(full_sync: FullSync) -> None:
    groups = [
        parse_qs(urlsplit(request.uri).query)
        for request in full_sync.cassette.requests
        if urlsplit(request.uri).path.startswith("/v1/groups/")
    ]
    # three groups, each fits one short page
    assert groups == [{"limit": ["1000"], "offset": ["0"]}] * 3


def test_full_sync_loads_parquet_not_insert_values(full_sync: FullSync) -> None:
    assert loaded_file_formats(full_sync.info) == {"parquet"}
