"""shared.rest.stop_paging: an answer that means "no further" ends paging with a warning."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import dlt
import pytest
import requests
import responses
from dlt.pipeline.exceptions import PipelineStepFailed

from shared.errors import RequestFailedError
from shared.loading import run_source
from shared.rest.builder import SourceHttp, build_resources
from shared.rest.paginators import JSONResponseCursorPaginator
from shared.rest.stop_paging import stop_paging_on
from tests.dataset import query

BASE_URL = "https://api.example.com"
PAGE = 3


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    """`/search` pages 10 results by a `next` token, but serves only the first 6."""

    def search(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        token = parse_qs(urlsplit(request.url or "").query).get("next", ["0"])[0]
        offset = int(token)
        if offset >= 6:
            return 400, {}, json.dumps({"error": "too-far", "message": "6 results at most"})
        rows = [{"id": i} for i in range(offset, min(offset + PAGE, 10))]
        more = offset + PAGE < 10
        return 200, {}, json.dumps({"data": rows, "next": str(offset + PAGE) if more else None})

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback("GET", f"{BASE_URL}/search", callback=search)
        yield mock


def search_resource(content: str) -> dlt.sources.DltResource:
    http = SourceHttp(connector="demo", base_url=BASE_URL)
    (resource,) = build_resources(
        http,
        [
            {
                "name": "search",
                "endpoint": {
                    "path": "/search",
                    "data_selector": "data",
                    "paginator": JSONResponseCursorPaginator(
                        cursor_path="next", cursor_param="next"
                    ),
                    "response_actions": [stop_paging_on(400, content, "6 results at most")],
                },
            }
        ],
        {"primary_key": "id"},
    )
    return resource


def test_the_matching_answer_ends_paging_with_a_warning_and_keeps_earlier_pages(
    api: responses.RequestsMock, pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        run_source(pipeline, search_resource("too-far"))

    assert query(pipeline, "SELECT id FROM search ORDER BY id") == [(i,) for i in range(6)]
    assert [call.response.status_code for call in api.calls] == [200, 200, 400]
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "shared.rest.stop_paging"]
    assert "/search?next=6" in warning and "400 too-far" in warning
    assert "6 results at most" in warning


def test_an_answer_without_the_content_still_fails_the_sync(
    api: responses.RequestsMock, pipeline: dlt.Pipeline
) -> None:
    with pytest.raises(PipelineStepFailed) as failed:
        run_source(pipeline, search_resource("some-other-error"))

    error: BaseException | None = failed.value
    while error is not None and not isinstance(error, RequestFailedError):
        error = error.__cause__ or error.__context__
    assert isinstance(error, RequestFailedError) and error.status_code == 400
