"""A merge table's first sync appends, without dlt's staging merge (shared/arrow/first_sync.py),
and loads exactly what dlt's merge loads: every table (child tables too), column, type,
row and link, and the same cursors; so does every later sync (updates, deletions, a
record seen twice), which merges as before.

Each scenario syncs one fake over loopback HTTP into two DuckDB files: as the connector
ships, and through `merge_every_sync` (dlt's merge every time). Whether a load merged is
read from DuckDB: dlt's merge copies the files into the `<dataset>_staging` schema first.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.crm import crm_source
from connectors.project_tracker import project_tracker_source
from connectors.sandbox.base import Fault
from connectors.sandbox.crm import TOKEN as CRM_TOKEN
from connectors.sandbox.crm import CrmFake, parse_stamp, stamp
from connectors.sandbox.project_tracker import API_KEY as TRACKER_KEY
from connectors.sandbox.project_tracker import ProjectTrackerFake
from shared.arrow import first_sync
from shared.arrow.first_sync import AppendFirstSync, _unique_and_kept, merge_every_sync
from shared.loading import duckdb_pipeline, run_source
from tests.dataset import query
from tests.test_default_path_equivalence import assert_same, linked_rows, shrink_a_group_story

pytestmark = pytest.mark.loopback

PARTIES = "/api/v2/parties"
TABLES = "SELECT 1 FROM information_schema.tables WHERE table_name = 'parties'"
WAYS = ("merge", "new")


def crm(fake: CrmFake, way: str, **options: Any) -> Any:
    """crm's parties (three child tables, a deletion feed) and projects."""
    source = crm_source(
        bearer_token=CRM_TOKEN, base_url=fake.base_url, requests_per_minute=600_000, **options
    ).with_resources("parties", "projects")
    return merge_every_sync(source) if way == "merge" else source


def pipelines(tmp_path: Path, name: str) -> dict[str, dlt.Pipeline]:
    return {
        way: duckdb_pipeline(
            f"{name}_{way}",
            database=str(tmp_path / f"{way}.duckdb"),
            pipelines_dir=str(tmp_path / way),
        )
        for way in WAYS
    }


def merged(info: Any) -> set[str]:
    """The tables a load merged: dlt's merge is a SQL job on each merged root table."""
    return {
        job.job_file_info.table_name
        for package in info.load_packages
        for job in package.jobs["completed_jobs"]
        if job.job_file_info.file_format == "sql"
    }


def ids(pipeline: dlt.Pipeline, table: str) -> list[Any]:
    return [row[0] for row in query(pipeline, f"SELECT id FROM {table} ORDER BY id")]


def sync_both(fake: Any, make: Any, ways: dict[str, dlt.Pipeline], **run: Any) -> dict[str, Any]:
    """Each way's load info."""
    return {way: run_source(pipeline, make(fake, way), **run) for way, pipeline in ways.items()}


def test_a_first_sync_appends_the_tables_dlt_merge_loads(tmp_path: Path) -> None:
    ways = pipelines(tmp_path, "crm_first")
    with CrmFake() as fake:
        parties = {way: crm(fake, way).with_resources("parties") for way in WAYS}
        steps = {way: parties[way].resources["parties"]._pipe.steps for way in WAYS}
        assert any(isinstance(step, AppendFirstSync) for step in steps["new"])
        assert not any(isinstance(step, AppendFirstSync) for step in steps["merge"])
        infos = {way: run_source(pipeline, parties[way]) for way, pipeline in ways.items()}
        assert merged(infos["new"]) == set()
        assert merged(infos["merge"]) == {"parties"}
        # only the load appended: the pipeline's schema still merges the table
        assert ways["new"].default_schema.tables["parties"]["write_disposition"] == "merge"
        assert_same(ways["merge"], ways["new"], ("parties",))
        children = {"parties__email_addresses", "parties__phone_numbers", "parties__fields"}
        assert children <= set(linked_rows(ways["new"]))
        assert len(set(ids(ways["new"], "parties"))) == len(fake.data["parties"])


def test_the_load_starts_after_the_extracts_spare_arrow_memory_went_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = duckdb_pipeline(
        "crm_release", database=str(tmp_path / "crm.duckdb"), pipelines_dir=str(tmp_path)
    )
    released: list[bool] = []  # per release: whether the load had written parties yet
    arrow_pool = pa.default_memory_pool

    class Pool:
        def release_unused(self) -> None:
            with pipeline.sql_client() as client:
                released.append(client.has_dataset() and bool(query(pipeline, TABLES)))
            arrow_pool().release_unused()

    monkeypatch.setattr(first_sync.pa, "default_memory_pool", Pool)
    with CrmFake() as fake:
        run_source(pipeline, crm(fake, "new").with_resources("parties"))
        run_source(pipeline, crm(fake, "new").with_resources("parties"))

    assert released == [False, True]  # before each load: the first found no table yet
    assert len(ids(pipeline, "parties")) == len(fake.data["parties"])


# the scenarios of two syncs or more run in `make test-slow`, which CI runs too
@pytest.mark.slow
@pytest.mark.parametrize("deletions", ["soft", "hard"])
def test_first_sync_appends_and_later_syncs_merge_to_the_same_tables(
    tmp_path: Path, deletions: str
) -> None:
    ways = pipelines(tmp_path, f"crm_{deletions}")

    def make(fake: CrmFake, way: str) -> Any:
        return crm(fake, way, deletions=deletions)

    with CrmFake() as fake:
        assert any(
            isinstance(step, AppendFirstSync)
            for step in crm(fake, "new").resources["parties"]._pipe.steps
        )
        assert not any(
            isinstance(step, AppendFirstSync)
            for step in crm(fake, "merge").resources["parties"]._pipe.steps
        )
        infos = sync_both(fake, make, ways)
        assert merged(infos["new"]) == set()
        assert merged(infos["merge"]) == {"parties", "projects"}
        assert_same(ways["merge"], ways["new"], ("parties", "projects"))
        children = {"parties__email_addresses", "parties__phone_numbers", "parties__fields"}
        assert children <= set(linked_rows(ways["new"]))
        assert len(ids(ways["new"], "parties")) == len(fake.data["parties"])

        # updates, a deletion (the feed) and a record served on two pages
        changed = fake.change_for_second_run()["parties"]
        deleted = fake.data["parties"][10]["id"]
        fake.delete("parties", deleted)
        twice = dict(fake.record("parties", changed[1]))
        twice["about"] = "an older copy"
        # newer than the stored cursor (so it loads), older than the record's own update
        twice["updatedAt"] = stamp(parse_stamp(twice["updatedAt"]) - timedelta(minutes=4))
        fake.serve_copy_on_page(PARTIES, 1, twice)
        infos = sync_both(fake, make, ways)
        assert merged(infos["new"]) == {"parties", "projects"}
        assert ways["new"].default_schema.tables["parties"]["write_disposition"] == "merge"
        assert_same(ways["merge"], ways["new"], ("parties", "projects"))
        loaded = ids(ways["new"], "parties")
        kept = 1 if deletions == "soft" else 0  # the deleted party's row
        assert len(loaded) == len(set(loaded)) == len(fake.data["parties"]) + kept
        about = query(ways["new"], f"SELECT about FROM parties WHERE id = {changed[1]}")
        assert about == [("changed later",)]
        marked = f"SELECT _deleted_at IS NOT NULL FROM parties WHERE id = {deleted}"
        # soft: the row stays, marked; hard: it is gone (the hint came back with the merge)
        assert query(ways["new"], marked) == ([(True,)] if deletions == "soft" else [])


@pytest.mark.slow
def test_a_record_seen_twice_in_a_first_sync_merges_and_the_newest_copy_wins(
    tmp_path: Path,
) -> None:
    ways = pipelines(tmp_path, "crm_twice")
    with CrmFake() as fake:
        newer = dict(fake.data["parties"][3])
        newer["updatedAt"] = stamp(parse_stamp(newer["updatedAt"]) + timedelta(minutes=1))
        newer["about"] = "the newer copy"
        fake.serve_copy_on_page(PARTIES, 2, newer)
        infos = sync_both(fake, crm, ways)
        # parties' keys were not unique: dlt's merge kept the newest copy, as before
        assert merged(infos["new"]) == {"parties"}
        assert_same(ways["merge"], ways["new"], ("parties", "projects"))
        loaded = ids(ways["new"], "parties")
        assert len(loaded) == len(set(loaded)) == len(fake.data["parties"])
        about = query(ways["new"], f"SELECT about FROM parties WHERE id = {newer['id']}")
        assert about == [("the newer copy",)]


@pytest.mark.slow
def test_a_full_refresh_appends_again(tmp_path: Path) -> None:
    ways = pipelines(tmp_path, "crm_refresh")
    with CrmFake() as fake:
        sync_both(fake, crm, ways)
        fake.change_for_second_run()
        fake.delete("parties", fake.data["parties"][0]["id"])
        infos = sync_both(fake, crm, ways, refresh="drop_sources")
        # the new way appended again: the full refresh dropped its tables first
        assert merged(infos["new"]) == set()
        assert merged(infos["merge"]) == {"parties", "projects"}
        assert_same(ways["merge"], ways["new"], ("parties", "projects"))
        loaded = ids(ways["new"], "parties")
        assert len(loaded) == len(set(loaded)) == len(fake.data["parties"])


@pytest.mark.slow
def test_a_failed_first_sync_and_its_retry_load_every_row_once(tmp_path: Path) -> None:
    ways = pipelines(tmp_path, "crm_retry")
    with CrmFake() as fake:
        # the first sync fails on its second page of parties: nothing loads
        fake.inject(Fault(status=401, body={"message": "expired"}, path=PARTIES, after=1))
        with pytest.raises(Exception, match="401"):
            run_source(ways["new"], crm(fake, "new"))
        assert not fake.faults
        infos = sync_both(fake, crm, ways)
        assert merged(infos["new"]) == set()
        assert_same(ways["merge"], ways["new"], ("parties", "projects"))
        loaded = ids(ways["new"], "parties")
        assert len(loaded) == len(set(loaded)) == len(fake.data["parties"])


@pytest.mark.slow
def test_a_first_sync_extracted_twice_before_its_load_merges_the_second(tmp_path: Path) -> None:
    """A first sync interrupted after its extract (its package pending), then extracted
    again before anything loaded: the second package knows the table, so it merges."""
    ways = pipelines(tmp_path, "crm_pending")
    with CrmFake() as fake:
        new = ways["new"]
        new.extract(crm(fake, "new"))
        new.extract(crm(fake, "new"))
        new.normalize()
        # the first package appended, the second (which knew the tables) merged
        assert merged(new.load()) == {"parties", "projects"}
        run_source(ways["merge"], crm(fake, "merge"))
        assert_same(ways["merge"], new, ("parties", "projects"))
        loaded = ids(new, "parties")
        assert len(loaded) == len(set(loaded)) == len(fake.data["parties"])


@pytest.mark.slow
def test_a_pipeline_that_lost_its_state_merges_into_the_tables_it_finds(tmp_path: Path) -> None:
    """A pipeline whose working folder is new (its state lost, not restored: `extract`
    alone) asks the destination: the tables are there, so it merges."""
    with CrmFake() as fake:
        first = duckdb_pipeline(
            "crm_lost", database=str(tmp_path / "crm.duckdb"), pipelines_dir=str(tmp_path / "a")
        )
        assert merged(run_source(first, crm(fake, "new"))) == set()
        again = duckdb_pipeline(
            "crm_lost", database=str(tmp_path / "crm.duckdb"), pipelines_dir=str(tmp_path / "b")
        )
        again.extract(crm(fake, "new"))
        again.normalize()
        assert merged(again.load()) == {"parties", "projects"}
        loaded = ids(again, "parties")
        assert len(loaded) == len(set(loaded)) == len(fake.data["parties"])


def tracker(fake: ProjectTrackerFake, way: str) -> Any:
    """project_tracker's groups and their stories: a child with large pages, in Arrow."""
    source = project_tracker_source(
        base_url=fake.base_url, api_key=TRACKER_KEY, requests_per_minute=6_000_000
    ).with_resources("groups", "groups_stories")
    return merge_every_sync(source) if way == "merge" else source


@pytest.mark.slow
def test_a_child_with_large_pages_appends_its_first_sync(tmp_path: Path) -> None:
    ways = pipelines(tmp_path, "tracker")
    with ProjectTrackerFake() as fake:
        infos = sync_both(fake, tracker, ways)
        # groups (read with the lists they feed, `shared.rest.fan_in`) are rows: they merge
        assert merged(infos["new"]) == {"groups"}
        assert merged(infos["merge"]) == {"groups", "groups_stories"}
        assert_same(ways["merge"], ways["new"], ("groups", "groups_stories"))
        assert {"groups_stories__labels", "groups_stories__owner_ids"} <= set(
            linked_rows(ways["new"])
        )
        fake.change_for_second_run()
        shrink_a_group_story(fake)
        infos = sync_both(fake, tracker, ways)
        assert merged(infos["new"]) == {"groups", "groups_stories"}
        assert_same(ways["merge"], ways["new"], ("groups", "groups_stories"))


def write_parquet(path: Path, **columns: list[Any]) -> str:
    pq.write_table(pa.table(columns), path)
    return str(path)


def test_the_files_keys_decide_whether_a_new_table_appends(tmp_path: Path) -> None:
    """What `appendable_tables` reads back from a sync's parquet files: keys unique across
    every file (composite keys by their columns together), and no row marked for dlt's
    hard delete (the merge would leave it out)."""
    first = write_parquet(
        tmp_path / "a.parquet", group_id=[1, 1], id=[1, 2], _deleted_at=[None, None]
    )
    again = write_parquet(
        tmp_path / "b.parquet", group_id=[2, 1], id=[1, 2], _deleted_at=[None, None]
    )
    other = write_parquet(
        tmp_path / "c.parquet", group_id=[2, 3], id=[2, 3], _deleted_at=[None, None]
    )
    assert _unique_and_kept([first, other], ["group_id", "id"], ["_deleted_at"])
    assert not _unique_and_kept([first, again], ["group_id", "id"], [])
    assert _unique_and_kept([first, again], ["group_id"], []) is False
    assert _unique_and_kept([first, other], ["id"], []) is False
    marked = write_parquet(tmp_path / "d.parquet", group_id=[9], id=[9], _deleted_at=["2026-12-01"])
    assert _unique_and_kept([first, marked], ["group_id", "id"], [])
    assert not _unique_and_kept([first, marked], ["group_id", "id"], ["_deleted_at"])
