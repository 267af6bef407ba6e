"""shared.arrow.tables: dlt's relational normalizer in Arrow.

Each shape is loaded twice into DuckDB, through dlt's own row normalizer and through the
Arrow split, and every table is compared (names, columns, types, rows and their links);
shapes Arrow cannot build as dlt does must go to dlt's normalizer, and say so.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
import pytest

import shared.arrow.tables as arrow_tables
from shared.arrow.tables import (
    DoesNotFit,
    Splitter,
    load_as_arrow_tables,
    rows_through_dlt_normalizer,
)
from shared.loading import duckdb_pipeline
from tests.test_default_path_equivalence import assert_same, data_tables

FALLBACK = "go through dlt's normalizer"


def source(pages: list[list[dict[str, Any]]], arrow: bool) -> Any:
    @dlt.resource(name="items", primary_key="id", write_disposition="merge")
    def items() -> Any:
        yield from pages

    @dlt.source(name="shapes")
    def shapes() -> Any:
        return items

    loaded = shapes()
    if arrow:
        load_as_arrow_tables(loaded.resources.values(), "shapes")
    else:
        rows_through_dlt_normalizer(loaded)
    return loaded


def load_both(
    tmp_path: Path, *runs: list[list[dict[str, Any]]]
) -> tuple[dlt.Pipeline, dlt.Pipeline]:
    pipelines = [
        duckdb_pipeline(
            f"shapes_{name}", database=str(tmp_path / f"{name}.duckdb"), pipelines_dir=str(tmp_path)
        )
        for name in ("dlt", "arrow")
    ]
    for pages in runs:
        for pipeline, arrow in zip(pipelines, (False, True), strict=True):
            pipeline.run(source(pages, arrow))
    return pipelines[0], pipelines[1]


SHAPES: dict[str, list[dict[str, Any]]] = {
    "nested structs": [
        {"id": 1, "address": {"cityName": "Leeds", "geo": {"lat": 53.8, "lng": -1.5}}},
        {"id": 2, "address": None, "empty": {}},
        {"id": 3, "address": {"cityName": "York"}, "zone": {"a": {"b": {"c": "deep"}}}},
    ],
    "list of structs": [
        {"id": 1, "emails": [{"address": "a@x", "meta": {"verified": True}, "tags": ["w"]}]},
        {"id": 2, "emails": [{"address": "b@x"}, None, {"address": "c@x", "rank": 2}]},
    ],
    "list of scalars": [
        {"id": 1, "tags": ["a", "b", None], "scores": [1.5, 2.5]},
        {"id": 2, "tags": ["c"], "scores": []},
    ],
    "list of lists": [
        {"id": 1, "matrix": [[1, 2], [3], []], "deep": [[[{"x": 1}]]]},
        {"id": 2, "matrix": [None, [4]]},
    ],
    "empty and null lists": [
        {"id": 1, "tags": [], "items": None, "nulls": [None, None]},
        {"id": 2},
        {"id": 3, "tags": None, "items": [{"sku": "A"}]},
    ],
    "date-times": [
        {"id": 1, "at": "2024-03-19T18:25:25Z", "naive": "2024-03-19T18:25:25.123"},
        {"id": 2, "at": "2024-03-19T20:25:25.5+02:00", "day": "2024-03-19", "text": "hello"},
        {"id": 3, "at": None, "later": ["2024-01-01T00:00:00Z"]},
    ],
    "floats after ints where the first is a float": [
        {"id": 1, "amount": 1.5, "odd_keys": {"a b": 1, "ÄÖ": 2}},
        {"id": 2, "amount": 2},
    ],
}


#: the shapes `make test` loads both ways (each is four syncs); the rest in `make test-slow`
FAST_SHAPES = {"nested structs", "list of lists", "date-times"}


@pytest.mark.parametrize(
    "shape",
    [s if s in FAST_SHAPES else pytest.param(s, marks=pytest.mark.slow) for s in sorted(SHAPES)],
)
def test_each_shape_loads_the_tables_dlt_loads_in_arrow(
    shape: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared.arrow.tables")
    rows = SHAPES[shape]
    changed = [{**row, "changed": True} for row in rows[:1]]  # a merge that replaces children

    dlt_path, arrow_path = load_both(tmp_path, [rows], [changed])

    assert_same(dlt_path, arrow_path, ordered=("items",))
    assert FALLBACK not in caplog.text  # Arrow built every table itself


MISFITS: dict[str, tuple[list[list[dict[str, Any]]], str]] = {
    "an int then a string": ([[{"id": 1, "x": 1}, {"id": 2, "x": "one"}]], "different types"),
    "an int then a float": ([[{"id": 1, "x": 1}, {"id": 2, "x": 2.5}]], "ints and floats"),
    "keys that collide once snake-cased": (
        [[{"id": 1, "fooBar": 1, "foo_bar": 2}]],
        "collide",
    ),
    "a date-time then text": (
        [[{"id": 1, "at": "2024-03-19T18:25:25Z"}, {"id": 2, "at": "soon"}]],
        "date-times",
    ),
    "a type that changes between batches": (
        [[{"id": 1, "x": 1}], [{"id": 2, "x": "two"}]],
        "is bigint, a batch holds text",
    ),
}


@pytest.mark.parametrize("misfit", sorted(MISFITS))
def test_shapes_arrow_cannot_match_go_to_dlt_normalizer_and_load_the_same(
    misfit: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="shared.arrow.tables")
    monkeypatch.setattr(arrow_tables, "BATCH_ROWS", 1)  # each page is its own batch
    pages, why = MISFITS[misfit]

    dlt_path, arrow_path = load_both(tmp_path, pages)

    assert_same(dlt_path, arrow_path, ordered=("items",))
    assert "shapes: resource `items`: " in caplog.text
    assert why in caplog.text and FALLBACK in caplog.text
    # dlt's own outcome, e.g. a variant column for the value that does not fit
    if misfit == "an int then a string":
        assert "x__v_text" in data_tables(dlt_path)["items"]["columns"]


def test_split_names_links_and_types_the_tables_as_dlt_does() -> None:
    splitter = Splitter("parties", root_key=True)
    rows = [
        {"id": 1, "createdAt": "2024-01-01T00:00:00Z", "geo": {"lat": 1.5}, "tags": ["a", "b"]},
        {"id": 2, "createdAt": None, "geo": None, "tags": []},
    ]

    root, tags = splitter.split(rows, load_id="123.4")

    assert (root.table, root.parent) == ("parties", None)
    assert root.data.column_names == ["id", "created_at", "geo__lat", "_dlt_load_id", "_dlt_id"]
    assert root.data.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert root.data.column("_dlt_load_id").to_pylist() == ["123.4", "123.4"]
    root_ids = root.data.column("_dlt_id").to_pylist()
    assert len(set(root_ids)) == 2
    assert (tags.table, tags.parent) == ("parties__tags", "parties")
    assert tags.data.column_names == [
        "value",
        "_dlt_root_id",
        "_dlt_parent_id",
        "_dlt_list_idx",
        "_dlt_id",
    ]
    assert tags.data.column("value").to_pylist() == ["a", "b"]
    assert tags.data.column("_dlt_parent_id").to_pylist() == [root_ids[0]] * 2
    assert tags.data.column("_dlt_root_id").to_pylist() == [root_ids[0]] * 2
    assert tags.data.column("_dlt_list_idx").to_pylist() == [0, 1]
    assert len(set(tags.data.column("_dlt_id").to_pylist())) == 2
    assert splitter.known["parties"] == {
        "id": "bigint",
        "created_at": "timestamp",
        "geo__lat": "double",
    }


def test_split_refuses_a_double_column_whose_first_value_is_an_int() -> None:
    with pytest.raises(DoesNotFit, match="`items.amount` holds ints and floats"):
        Splitter("items").split([{"amount": 1}, {"amount": 1.5}], load_id=None)


def child_source(pages: list[list[dict[str, Any]]], arrow: bool, large_pages: bool = True) -> Any:
    """`items`, a transformer yielding `pages` for its parent's one row (a child list)."""

    @dlt.resource(name="owners", selected=False)
    def owners() -> Any:
        yield [{"id": 1}]

    @dlt.transformer(data_from=owners, name="items", primary_key="id", write_disposition="merge")
    def items(owner_rows: list[dict[str, Any]]) -> Any:
        yield from pages

    @dlt.source(name="shapes")
    def shapes() -> Any:
        return owners, items

    loaded = shapes()
    if arrow:
        load_as_arrow_tables(
            loaded.resources.values(), "shapes", {"items"} if large_pages else set()
        )
    else:
        rows_through_dlt_normalizer(loaded)
    return loaded


def load_children_both(
    tmp_path: Path, *runs: list[list[dict[str, Any]]]
) -> tuple[dlt.Pipeline, dlt.Pipeline]:
    pipelines = [
        duckdb_pipeline(
            f"children_{name}",
            database=str(tmp_path / f"{name}.duckdb"),
            pipelines_dir=str(tmp_path),
        )
        for name in ("dlt", "arrow")
    ]
    for pages in runs:
        for pipeline, arrow in zip(pipelines, (False, True), strict=True):
            pipeline.run(child_source(pages, arrow))
    return pipelines[0], pipelines[1]


def extracted_tables(pipeline: dlt.Pipeline) -> set[str]:
    info = pipeline.last_trace.last_extract_info
    return {
        t for metrics in info.metrics.values() for step in metrics for t in step["table_metrics"]
    }


def test_a_transformer_with_large_pages_loads_the_tables_dlt_loads_in_arrow(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared.arrow.tables")
    pages = [
        [{"id": n, "tags": [f"t{n}"] * (n % 3), "owner": {"name": f"o{n}"}} for n in range(300)],
        [{"id": 300 + n, "tags": ["last"]} for n in range(5)],
    ]
    changed = [[{"id": 1, "tags": ["only one now"]}]]

    dlt_path, arrow_path = load_children_both(tmp_path, pages, changed)

    assert_same(dlt_path, arrow_path, ordered=("items",))
    assert "items__tags" in extracted_tables(arrow_path)  # split at extract, in Arrow
    assert "items__tags" not in extracted_tables(dlt_path)
    assert FALLBACK not in caplog.text


def test_a_transformer_without_large_pages_stays_rows() -> None:
    loaded = child_source([[{"id": 1}]], arrow=True, large_pages=False)

    steps = loaded.resources["items"]._pipe.steps
    assert not any(isinstance(step, arrow_tables.RowsToTables) for step in steps)


def test_an_item_over_the_split_size_is_split_in_parts_and_a_misfit_part_goes_to_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="shared.arrow.tables")
    monkeypatch.setattr(arrow_tables, "BATCH_ROWS", 2)
    monkeypatch.setattr(arrow_tables, "MAX_SPLIT_ROWS", 4)
    # one item of 7 rows (a parallelized child's whole list): parts of 2; the third part
    # holds strings where the column is bigint
    page = [{"id": n, "x": n, "tags": [n]} for n in range(7)]
    page[4]["x"], page[5]["x"] = "four", "five"

    dlt_path, arrow_path = load_children_both(tmp_path, [page])

    assert_same(dlt_path, arrow_path, ordered=("items",))
    assert "x__v_text" in data_tables(arrow_path)["items"]["columns"]  # dlt's own outcome
    assert "is bigint, a batch holds text" in caplog.text and FALLBACK in caplog.text
    assert "items__tags" in extracted_tables(arrow_path)  # the parts before it: Arrow


def test_add_limit_counts_pages_on_the_arrow_path_and_requests_no_more(
    pipeline: dlt.Pipeline,
) -> None:
    """Batched, `add_limit(2)` let through two batches of up to 2,000 rows: every page of
    this resource was requested (and loaded). Limited, pages pass one by one, as on dlt's
    own path."""
    requested: list[int] = []

    @dlt.resource(primary_key="id", write_disposition="merge")
    def items() -> Any:
        for page in range(50):
            requested.append(page)
            yield [{"id": page * 10 + i, "value": i} for i in range(10)]

    load_as_arrow_tables([items], "demo")

    pipeline.run(items.add_limit(2))

    assert requested == [0, 1]
    with pipeline.sql_client() as client:
        assert client.execute_sql("SELECT COUNT(*) FROM items")[0][0] == 20


def dlt_keeps_json(rows: list[dict[str, Any]], max_nesting: int) -> bool:
    """Whether dlt's own normalizer, at `max_nesting`, leaves a dict or list in a row."""
    from dlt.common.schema import Schema, utils

    schema = Schema("shapes")
    table = utils.new_table("items")
    table["x-normalizer"] = {"max_nesting": max_nesting}  # what `max_table_nesting` sets
    schema.update_table(table)
    return any(
        isinstance(value, (dict, list))
        for row in rows
        for _, flat in schema.normalize_data_item(row, "1", "items")
        for value in flat.values()
    )


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_nesting_a_shape_needs_is_where_dlt_starts_keeping_json(shape: str) -> None:
    rows = SHAPES[shape]
    needed = arrow_tables.nesting_needed(pa.array(rows).type)

    assert needed >= 1
    assert not dlt_keeps_json(rows, needed)
    assert dlt_keeps_json(rows, needed - 1)


def test_rows_nested_deeper_than_the_bound_go_to_dlts_normalizer_which_keeps_json(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared.arrow.tables")
    shallow = [{"id": 1, "tags": [{"name": "a"}]}]
    deep: dict[str, Any] = {"leaf": "bottom"}
    for _ in range(100):  # 200 levels of JSON (orjson, which dlt writes with, takes 254)
        deep = {"inner": [deep]}
    pages = [shallow, [{"id": 2, "tree": deep}]]

    pipelines = []
    for arrow in (False, True):
        loaded = source(pages, arrow)
        loaded.resources["items"].max_table_nesting = 3
        pipeline = duckdb_pipeline(
            f"deep_{arrow}", database=str(tmp_path / f"{arrow}.duckdb"), pipelines_dir=str(tmp_path)
        )
        pipeline.run(loaded)
        pipelines.append(pipeline)

    assert_same(*pipelines, ordered=("items",))
    tables = data_tables(pipelines[1])
    # three levels of child tables (a dict counts as a level too), then one JSON value
    assert sorted(tables) == [
        "items",
        "items__tags",
        "items__tree__inner",
        "items__tree__inner__inner",
        "items__tree__inner__inner__inner",
    ]
    with pipelines[1].sql_client() as client:
        (value,) = client.execute_sql('SELECT "inner" FROM items__tree__inner__inner__inner')[0]
    assert json.loads(value)[0]["inner"][0]["inner"][0]["inner"]  # the rest, 97 levels
    assert '"leaf":"bottom"' in value.replace(" ", "")
    assert "rows nested deeper than the table's bound of 3 levels" in caplog.text
    assert "items__tags" in tables  # the first page went the Arrow way, before the bound
