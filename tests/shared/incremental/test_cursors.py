"""shared.incremental.cursors: GuardedIncremental filters rows as dlt does, but caps what
it stores at
the sync's start (server clock, minus lag), checks values against the cursor's type,
includes rows without the cursor; guard_cursors applies it (and dedup_sort) to resources."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import dlt
import pyarrow as pa
import pytest

from shared.http.server_clock import ServerClock
from shared.incremental.cursors import CursorValueError, GuardedIncremental, guard_cursors, kind_of
from shared.loading import run_source
from shared.redaction import Redactor
from tests.dataset import query
from tests.failures import root_cause

#: the local clock of these tests: 2025-01-01T12:00:00Z
NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()


def fixed_clock(offset: float | None = None) -> ServerClock:
    clock = ServerClock(local_clock=lambda: NOW)
    clock.offset = offset
    return clock


def items_source(rows: list[Any], clock: ServerClock, **incremental: Any) -> dlt.sources.DltSource:
    """One merge resource `items` yielding `rows` with a guarded `updated_at` cursor."""

    @dlt.resource(name="items", primary_key="id", write_disposition="merge")
    def items() -> Any:
        yield copy.deepcopy(rows)

    @dlt.source(name="demo")
    def demo() -> Any:
        resource = items()
        resource.apply_hints(
            incremental=dlt.sources.incremental("updated_at", **incremental),
        )
        return guard_cursors([resource], "demo", clock, Redactor())

    return demo()


def stored(pipeline: dlt.Pipeline) -> Any:
    state = pipeline.state["sources"]["demo"]["resources"]["items"]["incremental"]
    return state["updated_at"]


def test_a_future_value_is_stored_as_the_syncs_start_in_its_own_format(
    pipeline: dlt.Pipeline,
) -> None:
    rows = [
        {"id": 1, "updated_at": "2024-12-31T10:00:00.250Z"},
        {"id": 2, "updated_at": "9999-12-31T23:59:59.999Z"},
    ]

    run_source(pipeline, items_source(rows, fixed_clock(), lag=30))

    state = stored(pipeline)
    assert state["last_value"] == "2025-01-01T11:59:30.000Z"  # NOW minus the 30 s lag
    assert state["unique_hashes"] == []
    assert query(pipeline, "SELECT id FROM items ORDER BY id") == [(1,), (2,)]


def test_the_cap_reads_the_servers_clock(pipeline: dlt.Pipeline) -> None:
    rows = [{"id": 1, "updated_at": "2025-01-01T11:30:00Z"}]

    # the server runs an hour behind: 11:30 is in its future
    run_source(pipeline, items_source(rows, fixed_clock(offset=-3600)))

    assert stored(pipeline)["last_value"] == "2025-01-01T11:00:00Z"


def test_a_value_before_the_start_is_stored_as_dlt_stores_it(pipeline: dlt.Pipeline) -> None:
    rows = [
        {"id": 1, "updated_at": "2024-12-31T10:00:00Z"},
        {"id": 2, "updated_at": "2024-12-31T11:00:00Z"},
    ]

    run_source(pipeline, items_source(rows, fixed_clock()))

    assert stored(pipeline)["last_value"] == "2024-12-31T11:00:00Z"
    assert stored(pipeline)["unique_hashes"]  # dlt's boundary hashes are kept


def test_a_stored_future_value_left_by_an_older_version_is_repaired_on_the_next_run(
    pipeline: dlt.Pipeline,
) -> None:
    run_source(
        pipeline, items_source([{"id": 1, "updated_at": "2024-12-31T10:00:00Z"}], fixed_clock())
    )
    with pipeline.managed_state() as state:
        incremental = state["sources"]["demo"]["resources"]["items"]["incremental"]
        # what a version without the cap stored after a run that started at 10:00
        incremental["updated_at"]["last_value"] = "9999-12-31T23:59:59Z"
        incremental["updated_at"]["start_value"] = "2024-12-31T10:00:00Z"
    later = [{"id": 3, "updated_at": "2025-01-01T11:00:00Z"}]  # would be skipped for good

    run_source(pipeline, items_source(later, fixed_clock()))

    assert query(pipeline, "SELECT id FROM items ORDER BY id") == [(1,), (3,)]
    assert stored(pipeline)["last_value"] == "2025-01-01T11:00:00Z"


def test_a_min_cursor_is_not_capped(pipeline: dlt.Pipeline) -> None:
    rows = [{"id": 1, "updated_at": "9999-12-31T23:59:59Z"}]

    run_source(pipeline, items_source(rows, fixed_clock(), last_value_func=min))

    assert stored(pipeline)["last_value"] == "9999-12-31T23:59:59Z"


@pytest.mark.parametrize("bad", ["yesterday", 17, True, "2024-13-01T00:00:00Z"])
def test_a_value_that_is_not_a_date_time_fails_naming_connector_resource_field_and_value(
    pipeline: dlt.Pipeline, bad: Any
) -> None:
    rows = [{"id": 1, "updated_at": "2024-12-31T10:00:00Z"}, {"id": 2, "updated_at": bad}]

    with pytest.raises(Exception) as raised:
        run_source(pipeline, items_source(rows, fixed_clock()))

    assert str(root_cause(raised.value, CursorValueError)) == (
        f"demo: resource `items`: cursor field `updated_at` holds {bad!r}, which is not an "
        "ISO 8601 date-time; the sync stopped before storing it, and the stored cursor is "
        "unchanged"
    )
    assert "demo" not in pipeline.state.get("sources", {})


def test_a_numeric_cursor_must_stay_numeric(pipeline: dlt.Pipeline) -> None:
    rows = [{"id": 1, "updated_at": 5}, {"id": 2, "updated_at": "6"}]

    with pytest.raises(Exception) as raised:
        run_source(pipeline, items_source(rows, fixed_clock()))

    assert "holds '6', which is not a number" in str(root_cause(raised.value, CursorValueError))


def test_a_quoted_value_is_redacted_and_shortened() -> None:
    incremental = GuardedIncremental(
        "updated_at", connector="demo", redactor=Redactor(["s3cr3t-token-value"])
    )
    incremental.resource_name = "items"

    message = str(incremental._error("s3cr3t-token-value " + "x" * 200))

    assert "s3cr3t-token-value" not in message
    assert "..." in message and len(message) < 300


def test_rows_without_the_cursor_load_and_leave_it_where_it_was(pipeline: dlt.Pipeline) -> None:
    rows = [
        {"id": 1, "updated_at": "2024-12-31T10:00:00Z"},
        {"id": 2},
        {"id": 3, "updated_at": None},
    ]

    run_source(pipeline, items_source(rows, fixed_clock()))

    assert query(pipeline, "SELECT id FROM items ORDER BY id") == [(1,), (2,), (3,)]
    assert stored(pipeline)["last_value"] == "2024-12-31T10:00:00Z"


def test_one_key_twice_in_a_load_keeps_the_newest_cursor_whatever_the_order(
    pipeline: dlt.Pipeline,
) -> None:
    rows = [
        {"id": 1, "name": "newer", "updated_at": "2024-12-31T11:00:00Z"},
        {"id": 1, "name": "older", "updated_at": "2024-12-31T10:00:00Z"},
        {"id": 2, "name": "older", "updated_at": "2024-12-31T10:00:00Z"},
        {"id": 2, "name": "newer", "updated_at": "2024-12-31T11:00:00Z"},
    ]

    run_source(pipeline, items_source(rows, fixed_clock()))

    assert query(pipeline, "SELECT id, name FROM items ORDER BY id") == [(1, "newer"), (2, "newer")]
    column = pipeline.default_schema.get_table_columns("items")["updated_at"]
    assert column["dedup_sort"] == "desc"


def test_arrow_tables_are_checked_and_a_table_without_the_cursor_column_loads(
    pipeline: dlt.Pipeline,
) -> None:
    good = pa.table({"id": [1, 2], "updated_at": ["2024-12-31T10:00:00Z", None]})
    no_cursor = pa.table({"id": [3]})

    @dlt.resource(name="items", primary_key="id", write_disposition="merge")
    def items() -> Any:
        yield good
        yield no_cursor

    resource = items()
    resource.apply_hints(incremental=dlt.sources.incremental("updated_at"))
    run_source(
        pipeline,
        dlt.source(lambda: guard_cursors([resource], "demo", fixed_clock()), name="demo")(),
    )

    assert query(pipeline, "SELECT id FROM items ORDER BY id") == [(1,), (2,), (3,)]
    assert stored(pipeline)["last_value"] == "2024-12-31T10:00:00Z"

    bad = pa.table({"id": [4, 5], "updated_at": ["2025-01-01T10:00:00Z", "yesterday"]})

    @dlt.resource(name="items", primary_key="id", write_disposition="merge")
    def more() -> Any:
        yield bad

    resource = more()
    resource.apply_hints(incremental=dlt.sources.incremental("updated_at"))
    with pytest.raises(Exception) as raised:
        run_source(
            pipeline,
            dlt.source(lambda: guard_cursors([resource], "demo", fixed_clock()), name="demo")(),
        )
    assert "holds 'yesterday'" in str(root_cause(raised.value, CursorValueError))


def test_copies_of_a_guarded_incremental_stay_guarded_with_their_context() -> None:
    clock = fixed_clock()
    guarded = GuardedIncremental("updated_at", connector="demo", clock=clock, lag=5)

    override = dlt.sources.incremental("updated_at", initial_value="2024-01-01T00:00:00Z")
    for copied in (guarded.copy(), guarded.merge(override)):
        assert isinstance(copied, GuardedIncremental)
        assert (copied.connector, copied.clock, copied.lag) == ("demo", clock, 5)
    assert copy.deepcopy(guarded).clock is clock  # one clock per session
    assert guarded.on_cursor_value_missing == "include"


def test_guarding_keeps_the_cursor_settings() -> None:
    def latest(values: Any) -> Any:
        return max(values)

    original = dlt.sources.incremental(
        "updatedAt",
        initial_value="2024-01-01T00:00:00Z",
        last_value_func=latest,
        primary_key=(),
        lag=1,
    )

    guarded = GuardedIncremental.guarding(original, "demo")

    assert guarded.cursor_path == "updatedAt"
    assert guarded.initial_value == "2024-01-01T00:00:00Z"
    assert guarded.last_value_func is latest and guarded.primary_key == () and guarded.lag == 1


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, None),
        ("2024-01-01T00:00:00Z", "datetime"),
        ("2024-01-01", "datetime"),
        (datetime(2024, 1, 1), "datetime"),
        (3, "number"),
        (2.5, "number"),
        (True, "text"),
        ("yesterday", "text"),
    ],
)
def test_kind_of(value: Any, kind: str | None) -> None:
    assert kind_of(value) == kind
