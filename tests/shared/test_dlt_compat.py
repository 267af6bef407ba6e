"""shared._dlt_compat: the one place the project reaches into dlt's private API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt

from shared._dlt_compat import iterate_with_origin
from shared.loading import run_source


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
