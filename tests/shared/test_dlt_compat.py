"""shared._dlt_compat: the one place the project reaches into dlt's private API."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, ClassVar

import dlt
import pytest
from dlt.extract.extract import Extract
from dlt.extract.incremental import Incremental
from dlt.extract.items_transform import ItemTransform
from dlt.sources.rest_api import config_setup

from connectors.crm import crm_source
from shared import _dlt_compat
from shared._dlt_compat import (
    TESTED_DLT,
    CursorStateUnreachable,
    PageCheckUnreachable,
    arrow_tables_supported,
    dlt_version,
    first_sync_hooks_problem,
    iterate_with_origin,
    make_parent_key_name,
    require_cursor_state_reachable,
    require_page_check_reachable,
)
from shared.arrow.tables import RowsToTables, load_as_arrow_tables
from shared.http.pages import PageCheck
from shared.loading import duckdb_pipeline, run_source
from tests.dataset import count, query


@dlt.source(name="numbers")
def numbers(upto: int = 5) -> Any:
    @dlt.resource(primary_key="id", write_disposition="merge")
    def counted(
        cursor: dlt.sources.incremental[int] = dlt.sources.incremental("id", initial_value=0),
    ) -> Iterator[list[dict[str, Any]]]:
        # a server that honours the cursor: only what is after it
        yield [{"id": n, "kind": "counted"} for n in range(1, upto + 1) if n > cursor.last_value]

    @dlt.resource(primary_key="id")
    def letters() -> Iterator[dict[str, Any]]:
        yield from ({"id": letter} for letter in "ab")

    return counted, letters


def test_iterating_with_a_fresh_state_reads_incremental_resources_from_their_start(
    pipeline: dlt.Pipeline,
) -> None:
    run_source(pipeline, numbers())  # the active pipeline now stores `id` 5
    stored = pipeline.state["sources"]["numbers"]["resources"]["counted"]
    # dlt's own iterator reads the active pipeline's state: nothing after `id` 5
    assert [row for row in numbers() if row.get("kind") == "counted"] == []

    state: dict[str, Any] = {}
    items = list(iterate_with_origin(numbers(), state))

    rows = [
        (name, row["id"])
        for name, page, _ in items
        for row in (page if isinstance(page, list) else [page])
    ]
    assert rows == [("counted", n) for n in range(1, 6)] + [("letters", "a"), ("letters", "b")]
    # the state given was used and changed; the pipeline's is untouched
    assert state["sources"]["numbers"]["resources"]["counted"]["incremental"]
    assert pipeline.state["sources"]["numbers"]["resources"]["counted"] == stored


@pytest.fixture
def fresh_checks() -> Iterator[None]:
    """The checks are made once a process; these tests make them again."""
    checks = (arrow_tables_supported, require_page_check_reachable, require_cursor_state_reachable)
    for check in checks:
        check.cache_clear()
    yield
    for check in checks:
        check.cache_clear()


def test_on_the_dlt_ci_runs_every_private_access_is_there(fresh_checks: None) -> None:
    assert dlt_version() >= TESTED_DLT[0]
    assert arrow_tables_supported()
    require_page_check_reachable(PageCheck)  # does not raise
    require_cursor_state_reachable()  # does not raise
    assert first_sync_hooks_problem() is None
    # dlt's own parent-key naming, not the fallback kept for a dlt that moves it
    assert make_parent_key_name.__module__ == "dlt.sources.rest_api.config_setup"


def test_a_dlt_that_hides_response_actions_fails_the_build_in_one_line(
    fresh_checks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Hook:  # an action kept in an object's attribute, not in a closure
        def __init__(self, action: Any) -> None:
            self._action = action

        def __call__(self, response: Any, *args: Any, **kwargs: Any) -> Any:
            return self._action(response, *args, **kwargs)

    monkeypatch.setattr(
        config_setup, "create_response_hooks", lambda actions: {"response": [Hook(actions[0])]}
    )

    with pytest.raises(PageCheckUnreachable) as raised:
        crm_source(bearer_token="t" * 16, base_url="http://127.0.0.1:9")

    (line,) = str(raised.value).splitlines()
    assert line.startswith(f"dlt {dlt.__version__} wraps a resource's response actions")
    assert "the page check would be lost" in line


def test_a_dlt_without_what_the_arrow_path_needs_warns_once_and_loads_the_same_rows(
    fresh_checks: None,
    monkeypatch: pytest.MonkeyPatch,
    pipeline: dlt.Pipeline,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dlt.extract.pipe import Pipe

    monkeypatch.delattr(Pipe, "remove_step")

    def arrow_numbers(upto: int) -> Any:
        source = numbers(upto=upto)
        load_as_arrow_tables(source.resources.values(), "numbers")
        return source

    with caplog.at_level(logging.WARNING, logger="shared._dlt_compat"):
        run_source(pipeline, arrow_numbers(5))
        run_source(pipeline, arrow_numbers(7))

    (warning,) = [r.getMessage() for r in caplog.records if r.name == "shared._dlt_compat"]
    assert warning.startswith("this dlt lacks a pipe's `remove_step`")
    assert warning.endswith("rows load through dlt's own normalizer (the same tables, slower)")
    assert count(pipeline, "counted") == 7  # merged by id
    assert count(pipeline, "letters") == 4  # appended twice


class NestedTablesSeen(ItemTransform[Any, dict[str, Any]]):
    """Pipe step passing items on; when dlt's extract reads its metrics (while it counts
    rows by resource), it records the resource each nested table of the source carries."""

    placement_affinity: ClassVar[float] = 2.0

    def __init__(self) -> None:
        super().__init__(lambda item: item)
        self.source: Any = None
        self.seen: list[dict[str, Any]] = []

    def __call__(self, item: Any, meta: Any = None) -> Any:
        return item

    @property
    def custom_metrics(self) -> dict[str, Any]:
        tables = self.source.schema.tables.values()
        self.seen.append({t["name"]: t.get("resource") for t in tables if t.get("parent")})
        return {}


def tagged(arrow: bool) -> tuple[Any, NestedTablesSeen]:
    """A source of 3 items with 2 tags each (a nested table), on the Arrow path or
    dlt's, and the probe on its resource."""

    @dlt.source(name="tagged")
    def source() -> Any:
        @dlt.resource(primary_key="id", write_disposition="merge")
        def items() -> Iterator[list[dict[str, Any]]]:
            yield [{"id": n, "tags": [f"a{n}", f"b{n}"]} for n in range(3)]

        return items

    built = source()
    if arrow:
        load_as_arrow_tables(built.resources.values(), "tagged")
    probe = NestedTablesSeen()
    probe.source = built
    built.resources["items"].add_step(probe)
    return built, probe


def items_counted(pipeline: dlt.Pipeline) -> int:
    info = pipeline.last_trace.last_extract_info
    (step,) = [
        step
        for steps in info.metrics.values()
        for step in steps
        if "items" in step["resource_metrics"]
    ]
    return int(step["resource_metrics"]["items"].items_count)


def test_extract_counts_nested_rows_by_resource_for_arrow_sources_only(
    pipeline: dlt.Pipeline,
) -> None:
    arrow, arrow_probe = tagged(arrow=True)
    run_source(pipeline, arrow)
    # the Arrow source wrote its nested rows at extract: counted under its resource
    assert arrow_probe.seen == [{"items__tags": "items"}]
    assert items_counted(pipeline) == 3 + 6

    # dlt's own path, in the same process and pipeline (whose schema holds the nested
    # table now): dlt's metrics, the nested table lent no resource
    rows, rows_probe = tagged(arrow=False)
    run_source(pipeline, rows)
    assert rows_probe.seen == [{"items__tags": None}]
    assert items_counted(pipeline) == 3

    assert "resource" not in pipeline.default_schema.tables["items__tags"]
    assert count(pipeline, "items") == 3
    assert count(pipeline, "items__tags") == 6


# make test-slow: make test keeps one fallback case (a pipe without `remove_step`, above)
@pytest.mark.slow
@pytest.mark.parametrize("gap", ["version", "signature"])
def test_a_dlt_whose_extract_metrics_differ_warns_once_and_loads_through_dlt(
    gap: str,
    fresh_checks: None,
    monkeypatch: pytest.MonkeyPatch,
    pipeline: dlt.Pipeline,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if gap == "version":
        monkeypatch.setattr(dlt, "__version__", "2.0.0")
    else:
        original = Extract._compute_metrics

        def _compute_metrics(self: Any, load_id: str, sources: Any) -> Any:
            return original(self, load_id, sources)

        monkeypatch.setattr(Extract, "_compute_metrics", _compute_metrics)

    with caplog.at_level(logging.WARNING, logger="shared._dlt_compat"):
        source, probe = tagged(arrow=True)
        run_source(pipeline, source)

    (warning,) = [r.getMessage() for r in caplog.records if r.name == "shared._dlt_compat"]
    expected = {
        "version": "this dlt lacks the extract metrics of dlt 1.28 to 1.x (dlt 2.0.0; tested",
        "signature": "this dlt lacks the extract's `_compute_metrics(load_id, source)`:",
    }[gap]
    assert warning.startswith(expected)
    assert warning.endswith("rows load through dlt's own normalizer (the same tables, slower)")
    # rows went to dlt's normalizer: the nested table was written after extract
    assert "items__tags" not in {
        t
        for steps in pipeline.last_trace.last_extract_info.metrics.values()
        for step in steps
        for t in step["table_metrics"]
    }
    assert count(pipeline, "items") == 3
    assert count(pipeline, "items__tags") == 6


def test_a_dlt_whose_incremental_keeps_no_bound_state_fails_the_build_in_one_line(
    fresh_checks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the state dict dlt binds an Incremental to, the cursor guard could neither
    cap a cursor at the sync's start nor hold it after a failed page: no fallback, the
    source does not build."""
    original = Incremental.__init__

    def without_bound_state(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        del self._cached_state

    monkeypatch.setattr(Incremental, "__init__", without_bound_state)

    with pytest.raises(CursorStateUnreachable) as raised:
        crm_source(bearer_token="t" * 16, base_url="http://127.0.0.1:9")

    (line,) = str(raised.value).splitlines()
    assert line.startswith(f"dlt {dlt.__version__}'s Incremental keeps no _cached_state")
    assert "could not cap or hold cursors" in line


@pytest.mark.parametrize("gap", ["version", "signature"])
def test_a_dlt_without_the_first_sync_hooks_warns_once_and_keeps_dlts_merge(
    gap: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from dlt.load.load import Load

    from shared._dlt_compat import _warn_once
    from shared.arrow.first_sync import AppendFirstSync, skip_merge_on_first_sync

    if gap == "version":
        monkeypatch.setattr(dlt, "__version__", "2.0.0")
    else:

        def extract_single_source(self: Any, load_id: str, source: Any) -> None:  # not hooked
            raise AssertionError("never called")

        def load_single_package(self: Any, load_id: str) -> None:  # a dlt that changed it
            raise AssertionError("never called")

        monkeypatch.setattr(Extract, "_extract_single_source", extract_single_source)
        monkeypatch.setattr(Load, "load_single_package", load_single_package)
    first_sync_hooks_problem.cache_clear()
    _warn_once.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="shared._dlt_compat"):
            for _ in range(2):
                resource = numbers().resources["counted"]
                skip_merge_on_first_sync([resource])
                assert not any(isinstance(step, AppendFirstSync) for step in resource._pipe.steps)
    finally:
        first_sync_hooks_problem.cache_clear()
        _warn_once.cache_clear()

    (warning,) = [r.getMessage() for r in caplog.records if r.name == "shared._dlt_compat"]
    expected = {
        "version": "this dlt lacks the extract and load steps of dlt 1.28 to 1.x (dlt 2.0.0;",
        "signature": "this dlt lacks the load's `load_single_package(load_id, schema)`:",
    }[gap]
    assert warning.startswith(expected)
    assert warning.endswith("first syncs load through dlt's merge (the same tables, slower)")


def paged(pages: list[list[dict[str, Any]]]) -> Any:
    """A source whose resource yields `pages`, each page a batch of the Arrow path."""

    @dlt.source(name="paged")
    def source() -> Any:
        @dlt.resource(primary_key="id", write_disposition="merge")
        def items() -> Iterator[list[dict[str, Any]]]:
            yield from pages

        return items

    built = source()
    assert arrow_tables_supported()  # wraps dlt's extract as `load_as_arrow_tables` does
    built.resources["items"].add_step(RowsToTables(built.resources["items"], "paged", 2))
    return built


def test_the_arrow_path_computes_a_tables_schema_again_only_when_its_arrow_schema_changes(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dlt.extract.extractors import ArrowExtractor

    def page(ids: range, note: bool = False) -> list[dict[str, Any]]:
        extra = (lambda n: {"note": f"n{n}", "links": [n]}) if note else (lambda n: {})
        return [{"id": n, "tags": [f"a{n}", f"b{n}"], **extra(n)} for n in ids]

    # four batches alike, then one with a new column and a new nested list
    pages = [page(range(k, k + 2)) for k in range(0, 8, 2)] + [page(range(8, 10), note=True)]
    computed: list[str] = []
    compute = ArrowExtractor._compute_and_update_tables

    def spy(self: Any, resource: Any, table_name: str, items: Any, meta: Any) -> Any:
        computed.extend(str(item.schema.names) for item in items)
        return compute(self, resource, table_name, items, meta)

    monkeypatch.setattr(ArrowExtractor, "_compute_and_update_tables", spy)
    kept = duckdb_pipeline(
        "kept", database=str(tmp_path / "kept.duckdb"), pipelines_dir=str(tmp_path)
    )
    run_source(kept, paged(pages))

    # the root: its first batch (which carries hints), its second, its fifth (a new
    # column); `items__tags`: its first; `items__links`: its first
    assert len(computed) == 3 + 1 + 1
    tables = kept.default_schema.tables
    # dlt's own path, computing every item's schema, makes the same schema and rows
    monkeypatch.setattr(_dlt_compat, "_same_schemas", lambda known, schemas: False)
    computed.clear()
    every = duckdb_pipeline(
        "every", database=str(tmp_path / "every.duckdb"), pipelines_dir=str(tmp_path)
    )
    run_source(every, paged(pages))
    assert len(computed) == 5 + 5 + 1  # every item: 5 roots, 5 tags tables, 1 links table
    for name in ("items", "items__tags", "items__links"):
        assert tables[name]["columns"] == every.default_schema.tables[name]["columns"]
    rows = (
        "SELECT i.id, i.note, t.value, t._dlt_list_idx FROM items i LEFT JOIN {child} t "
        "ON t._dlt_parent_id = i._dlt_id ORDER BY ALL"
    )
    for child in ("items__tags", "items__links"):
        assert query(kept, rows.format(child=child)) == query(every, rows.format(child=child))
    assert count(kept, "items") == 10
    assert query(kept, "SELECT id, note FROM items WHERE note IS NOT NULL ORDER BY id") == [
        (8, "n8"),
        (9, "n9"),
    ]
    assert count(kept, "items__tags") == 20
    assert count(kept, "items__links") == 2
