"""Paging past an API's offset cap by restarting the query from the last cursor value.

Some APIs refuse any page whose `offset + limit` passes a cap (say 20,000), however long
the list. When the list is sorted ascending by a cursor (`updatedAt`) and the query can
filter on "cursor >= value", every record is still reachable: before the next page would
pass the cap, ask again from offset 0 with the filter moved to the largest cursor value
seen so far. The records at exactly that value are read twice; a merge on the primary key
de-duplicates them.

If a whole window (`max_offset` records) shares one cursor value, restarting from it
asks the same question again: that is an error, not a loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dlt.common import jsonpath
from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator
from requests import Request, Response

from shared.errors import ConnectorError, redact_url

logger = logging.getLogger(__name__)


class OffsetCapError(ConnectorError):
    """The offset cap cannot be crossed: one cursor value alone fills a whole window."""


def _identity(value: Any) -> Any:
    return value


class OffsetCapRestartPaginator(JSONLinkPaginator):
    """Follow the absolute next-page URL in the body (dlt's `JSONLinkPaginator`); before
    that URL would pass `offset + limit > max_offset`, restart at offset 0 from the largest
    cursor value seen.

    The next-page URL must repeat every query parameter (the restart edits a copy of it),
    and the list must be sorted ascending by the cursor.

    Args:
        max_offset: the largest `offset + limit` the API accepts.
        cursor_path: JSON path of the cursor in a record, e.g. `updatedAt`.
        restart_params: the query parameters that restart the list at a cursor key, e.g.
            `lambda ms: {"query": f"updatedAt>={ms}"}`.
        cursor_key: turns a record's cursor value into the ordered key the filter takes
            (e.g. epoch milliseconds, truncated); identity by default.
        next_url_path: JSON path of the next-page URL in the response body.
        offset_param: the offset query parameter.
        limit_param: the page size query parameter.
        connector: the connector's name, for messages.
    """

    def __init__(
        self,
        max_offset: int,
        cursor_path: str,
        restart_params: Callable[[Any], dict[str, Any]],
        cursor_key: Callable[[Any], Any] = _identity,
        next_url_path: jsonpath.TJsonPath = "next",
        offset_param: str = "offset",
        limit_param: str = "limit",
        connector: str = "connector",
    ) -> None:
        super().__init__(next_url_path=next_url_path)
        self.max_offset = max_offset
        self.cursor_path = jsonpath.compile_path(cursor_path)
        self.restart_params = restart_params
        self.cursor_key = cursor_key
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.connector = connector
        self.restarts = 0
        self._lowest: Any = None
        self._highest: Any = None

    def init_request(self, request: Request) -> None:
        self.restarts = 0
        self._lowest = self._highest = None

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        super().update_state(response, data)
        self._observe(data or [])
        next_url = self._next_reference
        if next_url is None:
            return
        parts = urlsplit(next_url)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        offset = int(params.get(self.offset_param) or 0)
        limit = int(params.get(self.limit_param) or len(data or []))
        if offset + limit <= self.max_offset:
            return
        if self._highest is None or self._lowest == self._highest:
            why = (
                "no record carries the cursor"
                if self._highest is None
                else f"every record since the last restart has the cursor value {self._highest!r}"
            )
            raise OffsetCapError(
                f"{self.connector}: cannot page past the API's offset cap of {self.max_offset} "
                f"at {redact_url(response.url)}: {why}, so restarting the query from it would "
                "read the same records again"
            )
        params.update({self.offset_param: "0", **self.restart_params(self._highest)})
        self._next_reference = urlunsplit(parts._replace(query=urlencode(params)))
        self.restarts += 1
        logger.info(
            "%s: next page would pass the offset cap of %d; restarting from cursor %r",
            self.connector,
            self.max_offset,
            self._highest,
        )
        # the new window starts at the restart value; its records are counted afresh
        self._lowest = self._highest = None

    def _observe(self, rows: list[Any]) -> None:
        for row in rows:
            values = jsonpath.find_values(self.cursor_path, row)
            if not values or values[0] is None:
                continue
            key = self.cursor_key(values[0])
            if self._lowest is None or key < self._lowest:
                self._lowest = key
            if self._highest is None or key > self._highest:
                self._highest = key

    def __str__(self) -> str:
        return super().__str__() + f": restarts before offset {self.max_offset}"
