"""shared._dlt_compat: the one place the project reaches into dlt's private API."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import dlt
import pytest
from dlt.sources.rest_api import config_setup

from connectors.crm import crm_source
from shared._dlt_compat import (
    TESTED_DLT,
    PageCheckUnreachable,
    arrow_tables_supported,
    dlt_version,
    iterate_with_origin,
    require_page_check_reachable,
)
from shared.arrow.tables import load_as_arrow_tables
from shared.http.pages import PageCheck
from shared.loading import run_source
from tests.dataset import count


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
    arrow_tables_supported.cache_clear()
    require_page_check_reachable.cache_clear()
    yield
    arrow_tables_supported.cache_clear()
    require_page_check_reachable.cache_clear()


def test_on_the_dlt_ci_runs_every_private_access_is_there(fresh_checks: None) -> None:
    assert dlt_version() >= TESTED_DLT[0]
    assert arrow_tables_supported()
    require_page_check_reachable(PageCheck)  # does not raise


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
