"""shared.arrow.pages: JSON records to Arrow tables, batching and reading pages ahead."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import dlt
import pyarrow as pa
import pytest

from shared.arrow.pages import (
    _batched_pages,
    _read_ahead,
    parse_iso_datetimes,
    records_to_table,
    yield_arrow_pages,
)
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


def test_nested_arrays_and_objects_become_lists_and_structs() -> None:
    rows = [
        {"id": 1, "emails": [{"id": 7, "address": "a@x"}], "value": {"amount": 1.5}},
        {"id": 2, "emails": [], "value": None},
    ]

    table = records_to_table(rows)

    assert pa.types.is_list(table.schema.field("emails").type)
    assert pa.types.is_struct(table.schema.field("emails").type.value_type)
    assert pa.types.is_struct(table.schema.field("value").type)
    assert table.column("emails").to_pylist() == [[{"id": 7, "address": "a@x"}], []]


def test_columns_arrow_cannot_type_hold_json_text() -> None:
    rows = [
        {"id": 1, "mixed": 5, "empty": {}},
        {"id": 2, "mixed": "five", "empty": {}},
        {"id": 3, "mixed": None, "empty": None},
    ]

    table = records_to_table(rows)

    assert table.schema.field("mixed").type == pa.string()
    assert [json.loads(v) if v else v for v in table.column("mixed").to_pylist()] == [
        5,
        "five",
        None,
    ]
    # parquet cannot store a struct without fields
    assert table.column("empty").to_pylist() == ["{}", "{}", None]


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


def test_pages_are_gathered_into_batches_and_other_items_pass_through_in_order() -> None:
    marker = {"not": "a page"}
    pages: list[Any] = [[1, 2], [3, 4], [5], marker, [6, 7, 8], [9]]

    assert list(_batched_pages(iter(pages), batch_rows=4)) == [
        [1, 2, 3, 4],
        [5],
        marker,
        [6, 7, 8, 9],
    ]


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
