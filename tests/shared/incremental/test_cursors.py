"""shared.incremental.cursors: GuardedIncremental filters rows as dlt does, but caps what
it stores at
the sync's start (server clock, minus lag), checks values against the cursor's type,
includes rows without the cursor; guard_cursors applies it (and dedup_sort) to resources."""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timezone
from typing import Any

import dlt
import pyarrow as pa
import pytest

from shared.http.server_clock import ServerClock
from shared.incremental.cursors import (
    WARNINGS_PER_SYNC,
    GuardedIncremental,
    Instant,
    guard_cursors,
    hold_cursor,
    instant_key,
    kind_of,
)
from shared.loading import run_source
from shared.redaction import Redactor
from tests.dataset import query

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


def cursor_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "shared.incremental.cursors" and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("bad", ["yesterday", True, "2024-13-01T00:00:00Z", {"at": 1}])
def test_an_unreadable_value_loads_its_row_leaves_the_cursor_and_warns_once(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture, bad: Any
) -> None:
    rows = [
        {"id": 1, "updated_at": "2024-12-31T10:00:00Z"},
        {"id": 2, "email": "private@example.com", "updated_at": bad},
    ]

    with caplog.at_level(logging.WARNING):
        run_source(pipeline, items_source(rows, fixed_clock()))

    assert query(pipeline, "SELECT id FROM items ORDER BY id") == [(1,), (2,)]
    assert stored(pipeline)["last_value"] == "2024-12-31T10:00:00Z"
    (warning,) = cursor_warnings(caplog)
    assert warning.startswith("demo: resource `items`: record 2 has cursor field `updated_at` = ")
    assert repr(bad) in warning and "stored cursor stays where it was" in warning
    assert "private@example.com" not in warning


def test_an_unreadable_value_on_a_later_run_never_moves_or_blocks_the_cursor(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    run_source(
        pipeline, items_source([{"id": 1, "updated_at": "2024-12-31T10:00:00Z"}], fixed_clock())
    )
    later = [
        {"id": 2, "updated_at": "yesterday"},
        {"id": 3, "updated_at": "2024-12-31T11:00:00Z"},
    ]

    with caplog.at_level(logging.WARNING):
        run_source(pipeline, items_source(later, fixed_clock()))

    assert query(pipeline, "SELECT id FROM items ORDER BY id") == [(1,), (2,), (3,)]
    assert stored(pipeline)["last_value"] == "2024-12-31T11:00:00Z"
    assert len(cursor_warnings(caplog)) == 1


def test_a_numeric_cursor_lets_an_unreadable_value_through(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [{"id": 1, "updated_at": 5}, {"id": 2, "updated_at": "6"}]

    with caplog.at_level(logging.WARNING):
        run_source(pipeline, items_source(rows, fixed_clock()))

    assert query(pipeline, "SELECT id FROM items ORDER BY id") == [(1,), (2,)]
    assert stored(pipeline)["last_value"] == 5
    (warning,) = cursor_warnings(caplog)
    assert "record 2 has cursor field `updated_at` = '6'" in warning


def test_many_unreadable_values_warn_a_bounded_number_of_times(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [{"id": i, "updated_at": f"bad {i}"} for i in range(WARNINGS_PER_SYNC + 5)]

    with caplog.at_level(logging.WARNING):
        run_source(pipeline, items_source(rows, fixed_clock()))

    assert query(pipeline, "SELECT COUNT(*) FROM items") == [(WARNINGS_PER_SYNC + 5,)]
    warnings = cursor_warnings(caplog)
    assert len(warnings) == WARNINGS_PER_SYNC + 1
    assert "without further warnings" in warnings[-1]


# -- values compare as instants ---------------------------------------------------------------


def test_an_offset_timestamp_compares_as_its_instant_not_as_text(pipeline: dlt.Pipeline) -> None:
    # 05:30+05:00 is 00:30 UTC: as text it sorts after 03:00Z and would skip it for good
    first = [
        {"id": 1, "updated_at": "2024-12-05T00:00:00Z"},
        {"id": 2, "updated_at": "2024-12-05T05:30:00+05:00"},
    ]
    initial = {"initial_value": "2024-01-01T00:00:00Z"}

    run_source(pipeline, items_source(first, fixed_clock(), **initial))

    assert stored(pipeline)["last_value"] == "2024-12-05T00:30:00Z"  # the API's own form

    later = [
        {"id": 3, "updated_at": "2024-12-05T03:00:00Z"},
        {"id": 4, "updated_at": "2024-12-05T00:10:00Z"},  # older than the stored cursor
    ]
    run_source(pipeline, items_source(later, fixed_clock(), **initial))

    assert query(pipeline, "SELECT id FROM items ORDER BY id") == [(1,), (2,), (3,)]
    assert stored(pipeline)["last_value"] == "2024-12-05T03:00:00Z"
    # the row keeps the value as the API wrote it; DuckDB holds the same instant
    assert query(pipeline, "SELECT updated_at FROM items WHERE id = 2") == [
        (datetime(2024, 12, 5, 0, 30, tzinfo=timezone.utc),)
    ]


def test_fractions_of_any_length_compare_as_instants(pipeline: dlt.Pipeline) -> None:
    rows = [
        {"id": 1, "updated_at": "2024-12-05T10:00:00.5Z"},  # as text: before `…00Z`
        {"id": 2, "updated_at": "2024-12-05T10:00:00Z"},
    ]

    run_source(pipeline, items_source(rows, fixed_clock(), initial_value="2024-01-01T00:00:00Z"))

    # the instant of the later value, in the stored form (never later than it)
    assert stored(pipeline)["last_value"] == "2024-12-05T10:00:00Z"
    run_source(
        pipeline,
        items_source([{"id": 3, "updated_at": "2024-12-05T10:00:00.25Z"}], fixed_clock()),
    )
    assert query(pipeline, "SELECT id FROM items ORDER BY id") == [(1,), (2,), (3,)]


@pytest.mark.parametrize(
    ("values", "newer", "stored_value"),
    [
        # epoch milliseconds: 2024-12-05T00:00Z, 01:00Z; then 00:30Z (older) and 02:00Z
        pytest.param(
            [1733356800000, 1733360400000],
            [1733358600000, 1733364000000],
            1733364000000,
            marks=pytest.mark.slow,  # `mixed` holds milliseconds too
        ),
        # epoch seconds, the same instants
        ([1733356800, 1733360400], [1733358600, 1733364000], 1733364000),
        # mixed: ms, s and ISO with an offset; the stored form is the first value's (ms)
        (
            [1733356800000, 1733360400],
            ["2024-12-05T06:00:00+05:30", "2024-12-05T02:00:00Z"],
            1733364000000,
        ),
    ],
    ids=["epoch_ms", "epoch_s", "mixed"],
)
def test_epoch_numbers_are_instants(
    pipeline: dlt.Pipeline, values: list[Any], newer: list[Any], stored_value: Any
) -> None:
    run_source(
        pipeline,
        items_source([{"id": i, "updated_at": v} for i, v in enumerate(values)], fixed_clock()),
    )
    later = [{"id": 10 + i, "updated_at": v} for i, v in enumerate(newer)]

    run_source(pipeline, items_source(later, fixed_clock()))

    # the older of the two later rows (00:30Z) is not newer than 01:00Z: filtered as dlt does
    assert query(pipeline, "SELECT id FROM items ORDER BY id") == [(0,), (1,), (11,)]
    assert stored(pipeline)["last_value"] == stored_value


def test_mixed_forms_are_stored_in_the_initial_values_form(pipeline: dlt.Pipeline) -> None:
    rows = [
        {"id": 1, "updated_at": 1733360400000},  # 01:00Z in epoch ms
        {"id": 2, "updated_at": 1733364000},  # 02:00Z in epoch s
        {"id": 3, "updated_at": "2024-12-05T08:00:00+05:00"},  # 03:00Z
        {"id": 4, "updated_at": "2024-12-05T00:30:00.123Z"},
    ]

    run_source(pipeline, items_source(rows, fixed_clock(), initial_value="2024-01-01T00:00:00Z"))

    assert stored(pipeline)["last_value"] == "2024-12-05T03:00:00Z"
    assert query(pipeline, "SELECT COUNT(*) FROM items") == [(4,)]


def arrow_source(table: pa.Table, **incremental: Any) -> dlt.sources.DltSource:
    @dlt.resource(name="items", primary_key="id", write_disposition="merge")
    def items() -> Any:
        yield table

    resource = items()
    resource.apply_hints(incremental=dlt.sources.incremental("updated_at", **incremental))
    return dlt.source(lambda: guard_cursors([resource], "demo", fixed_clock()), name="demo")()


def test_arrow_tables_compare_instants_and_keep_the_values_as_sent(pipeline: dlt.Pipeline) -> None:
    initial = {"initial_value": "2024-01-01T00:00:00Z"}
    first = pa.table(
        {"id": [1, 2], "updated_at": ["2024-12-05T00:00:00Z", "2024-12-05T05:30:00+05:00"]}
    )

    run_source(pipeline, arrow_source(first, **initial))

    assert stored(pipeline)["last_value"] == "2024-12-05T00:30:00Z"
    assert query(pipeline, "SELECT updated_at FROM items WHERE id = 2") == [
        ("2024-12-05T05:30:00+05:00",)  # as the API sent it (Arrow text stays text)
    ]

    later = pa.table(
        {"id": [3, 4], "updated_at": ["2024-12-05T03:00:00Z", "2024-12-05T00:10:00+00:00"]}
    )
    run_source(pipeline, arrow_source(later, **initial))

    assert query(pipeline, "SELECT id FROM items ORDER BY id") == [(1,), (2,), (3,)]
    assert stored(pipeline)["last_value"] == "2024-12-05T03:00:00Z"
    assert "_cursor_guard_row_number" not in pipeline.default_schema.get_table_columns("items")


def test_instants_order_against_plain_text_both_ways() -> None:
    early = Instant("2024-12-05T05:30:00+05:00", instant_key("2024-12-05T05:30:00+05:00"))
    late = "2024-12-05T03:00:00Z"

    assert max((early, late)) == late and max((late, early)) == late
    assert early < late and late > early and early != late
    assert early == "2024-12-05T00:30:00Z" and early == 1733358600000
    # epoch seconds of 04:00Z against the ISO text of 03:00Z
    assert max((late, Instant("1733371200", instant_key(1733371200)))) == 1733371200


# -- holding the cursor ------------------------------------------------------------------------


def shifting_source(
    pages: list[list[dict[str, Any]]], clock: ServerClock, hold_from: str | None = None
) -> dlt.sources.DltSource:
    """`items` yielding `pages`, its cursor watched for shifts; `hold_from` names a second
    resource (`deletions`) that holds the items cursor by name, as a deletion feed does."""

    @dlt.resource(name="items", primary_key="id", write_disposition="merge")
    def items() -> Any:
        for page in pages:
            yield copy.deepcopy(page)
            if hold_from == "items":
                assert hold_cursor("items", "held from inside the resource")

    @dlt.resource(name="deletions", write_disposition="append")
    def deletions() -> Any:
        hold_cursor("items", "a record was deleted while the sync paged")
        yield {"id": 1}

    @dlt.source(name="demo")
    def demo() -> Any:
        resource = items()
        resource.apply_hints(incremental=dlt.sources.incremental("updated_at"))
        guarded = guard_cursors([resource], "demo", clock, Redactor(), shifting=["items"])
        return [*guarded, deletions()] if hold_from == "deletions" else guarded

    return demo()


def test_a_key_seen_twice_holds_the_cursor_at_the_syncs_start(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    first = [[{"id": 1, "updated_at": "2024-12-05T01:00:00Z"}]]
    run_source(pipeline, shifting_source(first, fixed_clock()))
    assert stored(pipeline)["last_value"] == "2024-12-05T01:00:00Z"
    # record 2 was edited while the list paged: it comes on page 1 and again on page 2
    pages = [
        [
            {"id": 2, "updated_at": "2024-12-05T02:00:00Z"},
            {"id": 3, "updated_at": "2024-12-05T03:00:00Z"},
        ],
        [
            {"id": 4, "updated_at": "2024-12-05T04:00:00Z"},
            {"id": 2, "updated_at": "2024-12-05T05:00:00Z"},
        ],
    ]

    with caplog.at_level(logging.WARNING):
        run_source(pipeline, shifting_source(pages, fixed_clock()))

    assert query(pipeline, "SELECT id, updated_at FROM items ORDER BY id") == [
        (1, datetime(2024, 12, 5, 1, tzinfo=timezone.utc)),
        (2, datetime(2024, 12, 5, 5, tzinfo=timezone.utc)),
        (3, datetime(2024, 12, 5, 3, tzinfo=timezone.utc)),
        (4, datetime(2024, 12, 5, 4, tzinfo=timezone.utc)),
    ]
    assert stored(pipeline)["last_value"] == "2024-12-05T01:00:00Z"  # held
    (warning,) = cursor_warnings(caplog)
    assert warning.startswith("demo: resource `items`: record 2 came twice in one sync")
    assert "stores cursor `updated_at` as it started ('2024-12-05T01:00:00Z')" in warning

    # the next run without a shift moves on
    run_source(pipeline, shifting_source([pages[0]], fixed_clock()))
    assert stored(pipeline)["last_value"] == "2024-12-05T03:00:00Z"


def test_keys_of_arrow_pages_are_watched_and_a_two_column_key_is_named_in_the_warning(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    def demo(*tables: dict[str, list[Any]]) -> dlt.sources.DltSource:
        @dlt.resource(name="items", primary_key=["id", "kind"], write_disposition="merge")
        def items() -> Any:
            yield from (pa.table(table) for table in tables)

        @dlt.source(name="demo")
        def source() -> Any:
            resource = items()
            resource.apply_hints(incremental=dlt.sources.incremental("updated_at"))
            return guard_cursors([resource], "demo", fixed_clock(), Redactor(), shifting=["items"])

        return source()

    first = {"id": [1], "kind": ["a"], "updated_at": ["2024-12-05T01:00:00Z"]}
    run_source(pipeline, demo(first))
    pages = [
        {"id": [2, 3], "kind": ["a", "a"], "updated_at": ["2024-12-05T02:00:00Z"] * 2},
        {"id": [2, 2], "kind": ["b", "a"], "updated_at": ["2024-12-05T04:00:00Z"] * 2},
    ]

    with caplog.at_level(logging.WARNING):
        run_source(pipeline, demo(*pages))

    assert stored(pipeline)["last_value"] == "2024-12-05T01:00:00Z"  # held
    (warning,) = cursor_warnings(caplog)
    assert warning.startswith("demo: resource `items`: record (2, 'a') came twice in one sync")
    assert query(pipeline, "SELECT id, kind FROM items ORDER BY id, kind") == [
        (1, "a"),
        (2, "a"),
        (2, "b"),
        (3, "a"),
    ]


def test_a_watched_transformer_holds_at_the_key_that_comes_again_under_another_parent(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    @dlt.resource(name="parents", selected=False)
    def parents() -> Any:
        yield {"parent": 1}
        yield {"parent": 2}

    @dlt.transformer(name="items", primary_key="id", write_disposition="merge")
    def items(parent: dict[str, Any]) -> Any:
        # both parents list record 7: the list shifted between the two requests
        yield [
            {"id": parent["parent"] * 10, "updated_at": "2024-12-05T02:00:00Z"},
            {"id": 7, "updated_at": f"2024-12-05T0{parent['parent'] + 2}:00:00Z"},
        ]

    @dlt.source(name="demo")
    def demo() -> Any:
        child = parents | items
        child.apply_hints(incremental=dlt.sources.incremental("updated_at"))
        return guard_cursors([child], "demo", fixed_clock(), Redactor(), shifting=["items"])

    with caplog.at_level(logging.WARNING):
        run_source(pipeline, demo())

    assert stored(pipeline)["last_value"] is None  # held at the start: no cursor yet
    (warning,) = cursor_warnings(caplog)
    assert warning.startswith("demo: resource `items`: record 7 came twice in one sync")
    assert query(pipeline, "SELECT id, updated_at FROM items ORDER BY id") == [
        (7, datetime(2024, 12, 5, 4, tzinfo=timezone.utc)),
        (10, datetime(2024, 12, 5, 2, tzinfo=timezone.utc)),
        (20, datetime(2024, 12, 5, 2, tzinfo=timezone.utc)),
    ]


def test_the_end_of_the_pages_reaches_neither_the_table_a_child_nor_the_limit(
    pipeline: dlt.Pipeline,
) -> None:
    seen_by_child: list[Any] = []

    def demo(hours: range) -> dlt.sources.DltSource:
        pages = [[{"id": n, "updated_at": f"2024-12-05T{n:02}:00:00Z"}] for n in hours]

        @dlt.source(name="demo")
        def source() -> Any:
            (resource,) = shifting_source(pages, fixed_clock()).resources.values()

            @dlt.transformer(data_from=resource, name="children", write_disposition="append")
            def children(page: Any) -> Any:
                seen_by_child.append(page)
                yield [{"parent_id": row["id"]} for row in page]

            return [resource, children]

        return source()

    run_source(pipeline, demo(range(1, 4)))

    assert seen_by_child == [
        [{"id": n, "updated_at": f"2024-12-05T0{n}:00:00Z"}] for n in (1, 2, 3)
    ]
    assert query(pipeline, "SELECT COUNT(*) FROM items") == [(3,)]
    assert query(pipeline, "SELECT COUNT(*) FROM children") == [(3,)]
    assert stored(pipeline)["last_value"] == "2024-12-05T03:00:00Z"  # nothing came twice

    limited = demo(range(4, 7))
    limited.resources["items"].add_limit(1)
    run_source(pipeline, limited)  # the limit counts pages, never the end of them

    assert query(pipeline, "SELECT COUNT(*) FROM children") == [(4,)]
    assert query(pipeline, "SELECT COUNT(*) FROM items") == [(4,)]
    assert stored(pipeline)["last_value"] == "2024-12-05T04:00:00Z"


def test_a_key_seen_twice_is_no_shift_when_the_resource_is_not_watched(
    pipeline: dlt.Pipeline,
) -> None:
    rows = [
        {"id": 1, "updated_at": "2024-12-05T01:00:00Z"},
        {"id": 1, "updated_at": "2024-12-05T02:00:00Z"},
    ]

    run_source(pipeline, items_source(rows, fixed_clock()))  # keyset paging reads ties twice

    assert stored(pipeline)["last_value"] == "2024-12-05T02:00:00Z"


def test_a_first_sync_held_stores_no_cursor_so_the_next_one_reads_everything(
    pipeline: dlt.Pipeline,
) -> None:
    pages = [
        [{"id": 1, "updated_at": "2024-12-05T01:00:00Z"}],
        [{"id": 1, "updated_at": "2024-12-05T02:00:00Z"}],
    ]

    run_source(pipeline, shifting_source(pages, fixed_clock()))

    assert stored(pipeline)["last_value"] is None
    assert query(pipeline, "SELECT COUNT(*) FROM items") == [(1,)]


@pytest.mark.parametrize("hold_from", ["items", "deletions"])
def test_hold_cursor_holds_a_resource_by_name_from_anywhere_in_the_sync(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture, hold_from: str
) -> None:
    run_source(
        pipeline,
        shifting_source([[{"id": 1, "updated_at": "2024-12-05T01:00:00Z"}]], fixed_clock()),
    )
    pages = [
        [{"id": 2, "updated_at": "2024-12-05T02:00:00Z"}],
        [{"id": 3, "updated_at": "2024-12-05T03:00:00Z"}],
    ]

    with caplog.at_level(logging.WARNING):
        run_source(pipeline, shifting_source(pages, fixed_clock(), hold_from=hold_from))

    assert query(pipeline, "SELECT id FROM items ORDER BY id") == [(1,), (2,), (3,)]
    assert stored(pipeline)["last_value"] == "2024-12-05T01:00:00Z"
    (warning,) = cursor_warnings(caplog)
    reason = (
        "held from inside" if hold_from == "items" else "a record was deleted while the sync paged"
    )
    assert f"demo: resource `items`: {reason}" in warning


def test_hold_restores_the_start_value_and_its_hashes() -> None:
    incremental = GuardedIncremental("updated_at", connector="demo", clock=fixed_clock())
    incremental.resource_name = "items"
    incremental._cached_state = {"last_value": "b", "unique_hashes": ["h2"]}
    incremental._hold_value, incremental._hold_hashes = "a", ["h1"]

    incremental.hold("a test")
    incremental.hold("again")

    assert incremental._cached_state == {"last_value": "a", "unique_hashes": ["h1"]}
    assert incremental.held == "a test"


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
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
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
    with caplog.at_level(logging.WARNING):
        run_source(
            pipeline,
            dlt.source(lambda: guard_cursors([resource], "demo", fixed_clock()), name="demo")(),
        )
    # the unreadable value loads with its row and leaves the cursor where the other put it
    assert query(pipeline, "SELECT id FROM items ORDER BY id") == [(1,), (2,), (3,), (4,), (5,)]
    assert stored(pipeline)["last_value"] == "2025-01-01T10:00:00Z"
    (warning,) = cursor_warnings(caplog)
    assert "record 5 has cursor field `updated_at` = 'yesterday'" in warning


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
