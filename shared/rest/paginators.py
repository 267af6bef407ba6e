"""Paginators: dlt's, by name, plus what dlt lacks.

Use dlt's classes directly for the common strategies:
`HeaderLinkPaginator` (a `Link: <...>; rel="next"` header), `JSONLinkPaginator`
(an absolute next URL in the body), `JSONResponseCursorPaginator` (a token in the body
sent back as a query parameter), `OffsetPaginator`, `PageNumberPaginator`,
`SinglePagePaginator`.
"""

from __future__ import annotations

from typing import Any

from dlt.sources.helpers.rest_client.paginators import (
    BasePaginator,
    HeaderLinkPaginator,
    JSONLinkPaginator,
    JSONResponseCursorPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    SinglePagePaginator,
)
from requests import Response

__all__ = [
    "BasePaginator",
    "HeaderLinkPaginator",
    "JSONLinkPaginator",
    "JSONResponseCursorPaginator",
    "OffsetPaginator",
    "PageNumberPaginator",
    "ShortPageOffsetPaginator",
    "SinglePagePaginator",
]


class ShortPageOffsetPaginator(OffsetPaginator):
    """Offset paging for APIs that send no total: stop after a page shorter than `limit`.

    dlt's `OffsetPaginator` without `total_path` only stops on an empty page, which costs
    one extra request per resource.
    """

    def __init__(self, limit: int, offset: int = 0, **kwargs: Any) -> None:
        super().__init__(limit=limit, offset=offset, total_path=None, **kwargs)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        super().update_state(response, data)
        if data is None or len(data) < self.limit:
            self._has_next_page = False
