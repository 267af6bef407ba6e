"""shared.arrow.pages: JSON records to Arrow tables, batching and reading pages ahead."""

from __future__ import annotations

import gc
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import dlt
import pyarrow as pa
import pytest

from shared.arrow.pages import (
    JSON_TEXT,
    MixedTypesError,
    OneSchemaPerTable,
    _batched_pages,
    _read_ahead,
    parse_iso_datetimes,
    records_to_table,
    yield_arrow_pages,
)
from shared.arrow.tables import rows_of
from shared.collector import SYNC_COLLECTION_THRESHOLD
from tests.dataset import query

UTC_US = pa.timestamp("us", tz="UTC")


def test_columns_are_the_union_of_every_records_keys_in_first_seen_order() -> None:
    rows = [{"id": 1, "name": "Acme"}, {"id": 2, "firstName": "Ada"}, {"id": 3, "x": None}]

    table = records_to_table(rows)

    assert table.column_names == ["id", "name", "firstName", "x"]
    assert table.to_pylist() == [
        {"id": 1, "name": "Acme", "firstName": None, "x": None},
        {"id": 2, "name": None, "firstName": "Ada", "x": None},
        {"id": 3, "name": None, "firstName": None, "x": None},
    ]


def test_nested_arrays_and_objects_become_json_text_columns_as_the_api_wrote_them() -> None:
    rows = [
        {"id": 1, "emails": [{"id": 7, "address": "a@x"}], "value": {"amount": 1.5}},
        {"id": 2, "emails": [], "value": {"currency": "EUR", "amount": None}},
        {"id": 3, "emails": None},
    ]

    table = records_to_table(rows)

    assert [(f.name, f.type, f.metadata) for f in table.schema] == [
        ("id", pa.int64(), None),
        ("emails", pa.string(), JSON_TEXT),
        ("value", pa.string(), JSON_TEXT),
    ]
    # each value's own keys, in its own order: no key of another row's object added
    assert [json.loads(v) if v else v for v in table.column("value").to_pylist()] == [
        {"amount": 1.5},
        {"currency": "EUR", "amount": None},
        None,
    ]
    assert [json.loads(v) if v else v for v in table.column("emails").to_pylist()] == [
        [{"id": 7, "address": "a@x"}],
        [],
        None,
    ]


def test_nested_integers_past_64_bits_keep_their_value_in_the_json_text() -> None:
    table = records_to_table([{"id": 1, "ids": [2**70, 1]}])

    assert json.loads(table.column("ids")[0].as_py()) == [2**70, 1]


def test_columns_arrow_cannot_type_hold_json_text() -> None:
    rows = [
        {"id": 1, "mixed": 5, "empty": {}},
        {"id": 2, "mixed": "five", "empty": {}},
        {"id": 3, "mixed": None, "empty": None},
    ]

    table = records_to_table(rows)

    assert table.schema.field("mixed").type == pa.string()
    assert table.schema.field("mixed").metadata is None  # text, not a `json` column
    assert [json.loads(v) if v else v for v in table.column("mixed").to_pylist()] == [
        5,
        "five",
        None,
    ]
    assert [json.loads(v) if v else v for v in table.column("empty").to_pylist()] == [
        {},
        {},
        None,
    ]


def test_not_null_columns_match_by_api_spelling_or_dlt_snake_case() -> None:
    table = records_to_table([{"id": 1, "entityId": 2, "other": 3}], not_null={"id", "entity_id"})

    assert [field.nullable for field in table.schema] == [False, False, True]


def test_iso_datetimes_with_a_zone_become_utc_timestamps_others_stay_text() -> None:
    table = records_to_table(
        [
            {
                "z": "2024-03-19T18:25:25Z",
                "offset": "2024-03-19T20:25:25.5+02:00",
                "naive": "2024-03-19T18:25:25",
                "date": "2024-03-19",
                "late_junk": "2024-03-19T18:25:25Z",
            },
            {"z": None, "offset": None, "naive": None, "date": None, "late_junk": "soon"},
        ]
    )

    parsed = parse_iso_datetimes(table)

    types = {field.name: field.type for field in parsed.schema}
    assert types == {
        "z": UTC_US,
        "offset": UTC_US,
        "naive": pa.string(),
        "date": pa.string(),
        "late_junk": pa.string(),
    }
    assert parsed.column("z")[0].as_py().isoformat() == "2024-03-19T18:25:25+00:00"
    assert parsed.column("offset")[0].as_py().isoformat() == "2024-03-19T18:25:25.500000+00:00"


def conformed(step: OneSchemaPerTable, *pages: list[dict[str, Any]]) -> list[pa.Table]:
    """Each page through `records_to_table` and `step`, as the pipe runs them."""
    out = []
    for page in pages:
        item = step(records_to_table(page, not_null={"id"}))
        out.append(item.data if hasattr(item, "data") else item)
    return out


def test_every_batch_of_a_table_has_the_schema_of_the_first_widened_by_new_columns() -> None:
    # as the faithful crm fake serves parties: a list empty or null on every record of
    # one batch, objects in the next; a field absent from one batch; a late new field
    first = [
        {"id": 1, "addresses": [], "about": "x", "at": "2024-03-19T18:25:25Z", "n": 1},
        {"id": 2, "addresses": None, "about": None, "at": None, "n": None},
    ]
    second = [{"id": 3, "addresses": [{"city": "Oslo", "zip": None}], "n": 2.0}]
    third = [{"id": 4, "addresses": None, "about": "y", "at": "2024-03-20T00:00:00Z", "v": 1}]

    tables = conformed(OneSchemaPerTable("parties"), first, second, third)

    schemas = [table.schema for table in tables]
    assert [field.name for field in schemas[0]] == ["id", "addresses", "about", "at", "n"]
    assert schemas[1] == schemas[0]
    assert schemas[2] == pa.schema([*schemas[0], pa.field("v", pa.int64())])
    assert schemas[0].field("id").nullable is False
    assert schemas[0].field("at").type == UTC_US
    rows = [row for table in tables for row in table.to_pylist()]
    assert [row["about"] for row in rows] == ["x", None, None, "y"]
    assert [row["n"] for row in rows] == [1, None, 2, None]  # a whole float in an int column
    assert [json.loads(row["addresses"]) if row["addresses"] else None for row in rows] == [
        [],
        None,
        [{"city": "Oslo", "zip": None}],
        None,
    ]
    assert [row["at"].isoformat() if row["at"] else None for row in rows] == [
        "2024-03-19T18:25:25+00:00",
        None,
        None,
        "2024-03-20T00:00:00+00:00",
    ]


def test_a_column_with_no_value_yet_is_left_out_until_one_arrives() -> None:
    step = OneSchemaPerTable("parties")

    empty, typed = conformed(step, [{"id": 1, "late": None}], [{"id": 2, "late": 1.5}])

    assert empty.column_names == ["id"]  # dlt adds no column for it either
    assert typed.column_names == ["id", "late"]
    assert typed.schema.field("late").type == pa.float64()


def test_a_text_column_stays_text_when_a_later_batch_holds_only_instants() -> None:
    step = OneSchemaPerTable("tasks")

    text, later = conformed(
        step, [{"id": 1, "due": "next week"}], [{"id": 2, "due": "2024-03-19T18:25:25Z"}]
    )

    assert text.schema.field("due").type == later.schema.field("due").type == pa.string()
    assert later.column("due").to_pylist() == ["2024-03-19T18:25:25Z"]


def test_the_first_batch_of_a_json_column_carries_its_json_hint_once() -> None:
    step = OneSchemaPerTable("parties")

    items = [step(records_to_table(page)) for page in ([{"id": 1, "tags": ["a"]}],) * 2]

    assert items[0].meta.hints["columns"]["tags"]["data_type"] == "json"
    assert isinstance(items[1], pa.Table)


@pytest.mark.parametrize(
    ("later", "held"),
    [
        ([{"id": 2, "amount": 1.5}], "double values where earlier pages held int64"),
        ([{"id": 2, "amount": "ten"}], "string values where earlier pages held int64"),
    ],
)
def test_values_that_do_not_fit_the_columns_type_fail_in_one_line_naming_it(
    later: list[dict[str, Any]], held: str
) -> None:
    step = OneSchemaPerTable("opportunities")
    conformed(step, [{"id": 1, "amount": 10}])

    with pytest.raises(MixedTypesError) as failure:
        conformed(step, later)

    assert str(failure.value) == (
        f"resource `opportunities`: field `amount` holds {held}; load it without arrow_pages"
    )


def test_a_timestamp_column_takes_no_text_that_is_not_an_instant() -> None:
    step = OneSchemaPerTable("tasks")
    conformed(step, [{"id": 1, "due": "2024-03-19T18:25:25Z"}])

    with pytest.raises(MixedTypesError, match="field `due` holds string values"):
        conformed(step, [{"id": 2, "due": "tomorrow"}])


def test_pages_are_gathered_into_batches_and_other_items_pass_through_in_order() -> None:
    marker = {"not": "a page"}
    pages: list[Any] = [[1, 2], [3, 4], [5], marker, [6, 7, 8], [9]]

    assert list(_batched_pages(iter(pages), batch_rows=4)) == [
        [1, 2, 3, 4],
        [5],
        marker,
        [6, 7, 8, 9],
    ]


def test_while_batched_pages_are_read_the_collector_leaves_older_objects_alone() -> None:
    before, thresholds = gc.get_freeze_count(), gc.get_threshold()
    noted = []

    def pages() -> Iterator[list[int]]:
        for page in ([1, 2], [3]):
            noted.append((gc.get_freeze_count(), gc.get_threshold()))
            yield page

    batches = _batched_pages(pages(), batch_rows=2)
    assert next(batches) == [1, 2]
    assert gc.get_freeze_count() > before  # while the consumer holds a batch too
    assert list(batches) == [[3]]

    assert all(frozen > before for frozen, _ in noted)
    assert {threshold for _, threshold in noted} == {(SYNC_COLLECTION_THRESHOLD, *thresholds[1:])}
    assert (gc.get_freeze_count(), gc.get_threshold()) == (before, thresholds)
    unfinished = _batched_pages(pages(), batch_rows=2)
    next(unfinished)
    unfinished.close()  # a consumer that stops early (add_limit, a failure) restores it too
    assert (gc.get_freeze_count(), gc.get_threshold()) == (before, thresholds)


def test_read_ahead_re_raises_the_pages_error_after_the_pages_before_it() -> None:
    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("page 3 failed")

    seen = []
    with pytest.raises(RuntimeError, match="page 3 failed"):
        for item in _read_ahead(pages()):
            seen.append(item)
    assert seen == [1, 2]


def test_read_ahead_stops_requesting_and_closes_the_pages_when_the_consumer_stops() -> None:
    produced = []
    closed = threading.Event()

    def pages() -> Iterator[int]:
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    reader = _read_ahead(pages(), depth=3)
    assert [next(reader), next(reader)] == [0, 1]
    reader.close()

    assert closed.is_set()
    # never more than the read-ahead depth (plus the one being handed over) past the consumer
    assert len(produced) <= 2 + 3 + 1


def test_resource_with_arrow_pages_loads_merges_and_keeps_its_incremental_state(
    pipeline: dlt.Pipeline,
) -> None:
    calls = []

    @dlt.resource(primary_key="id", write_disposition="merge")
    def items(
        updated=dlt.sources.incremental("updatedAt"),  # noqa: B008
    ) -> Iterator[list[dict[str, Any]]]:
        calls.append(updated.start_value)
        for page in range(3):
            yield [
                {
                    "id": page * 10 + i,
                    "updatedAt": f"2024-01-0{page + 1}T00:00:0{i}Z",
                    "tags": [{"name": f"t{i}"}],
                }
                for i in range(4)
            ]

    pipeline.run(yield_arrow_pages(items()))
    pipeline.run(yield_arrow_pages(items()))

    assert query(pipeline, "SELECT COUNT(*), COUNT(DISTINCT id) FROM items") == [(12, 12)]
    assert calls == [None, "2024-01-03T00:00:03Z"]
    columns = pipeline.default_schema.get_table_columns("items")
    assert columns["updated_at"]["data_type"] == "timestamp"
    assert columns["tags"]["data_type"] == "json"
    assert columns["id"]["nullable"] is False
    assert not [t for t in pipeline.default_schema.data_table_names() if t.startswith("items__")]


def test_pages_of_different_shapes_load_in_a_plain_run_without_dlts_hint_warning(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    pages = [
        [{"id": i, "addresses": [] if i % 2 else None, "about": None} for i in range(3)],
        [{"id": 10, "addresses": [{"city": "Oslo", "zip": None}], "about": "x"}],
        [{"id": 20, "addresses": [{"city": "Bergen", "zip": "5003", "type": "home"}]}],
    ]

    @dlt.resource(primary_key="id", write_disposition="merge")
    def parties() -> Iterator[list[dict[str, Any]]]:
        yield from pages

    # dlt's writer, by default, fails on a table's batches whose Arrow schemas differ
    with caplog.at_level(logging.WARNING, logger="dlt"):
        pipeline.run(yield_arrow_pages(parties()), loader_file_format="parquet")

    loaded = query(pipeline, "SELECT id, addresses, about FROM parties ORDER BY id")
    assert [(i, json.loads(a) if a else a, about) for i, a, about in loaded] == [
        (row["id"], row["addresses"], row.get("about")) for page in pages for row in page
    ]
    columns = pipeline.default_schema.get_table_columns("parties")
    assert columns["addresses"]["data_type"] == "json"
    assert not [r for r in caplog.records if "hints were different" in r.getMessage()]


def test_children_get_a_batchs_rows_with_nested_values_as_the_api_sent_them() -> None:
    step = OneSchemaPerTable("parties")
    page = [{"id": 1, "owner": {"id": 7}, "tags": ["a"]}, {"id": 2, "owner": None, "tags": []}]

    first = step(records_to_table(page))  # carries the `json` hint: rows all the same
    second = step(records_to_table(page))

    assert rows_of(first.data, first.meta) == rows_of(second) == page


def test_add_limit_counts_pages_on_the_pages_path_and_requests_no_more(
    pipeline: dlt.Pipeline,
) -> None:
    """Batched, `add_limit(2)` would let through two batches of 1,000 rows: every page
    of this resource requested ahead. Limited, pages pass one by one, as on dlt's path."""
    requested: list[int] = []

    @dlt.resource(primary_key="id", write_disposition="merge")
    def items() -> Iterator[list[dict[str, Any]]]:
        for page in range(50):
            requested.append(page)
            yield [{"id": page * 10 + i, "value": i} for i in range(10)]

    pipeline.run(yield_arrow_pages(items()).add_limit(2))

    assert requested == [0, 1]
    assert query(pipeline, "SELECT COUNT(*) FROM items") == [(20,)]
