"""Keyset paging: every page re-issues the query from the largest sort key seen so far.

Offset paging over a list whose sort key changes while a sync pages loses records: a
record updated between two pages moves to the end, every later record shifts one place
towards the start, and the record at the page boundary is never read although it never
changed. An API that sorts ascending by a key and can filter on "key >= value" (`updatedAt`,
`createdAt`, `lastmodifieddate`) avoids that: ask for the next page as "key >= the largest
key on this page", from offset 0. A record that moves only moves to the end, where the
query still reaches it. The records at exactly that key are read twice; a merge on the
primary key de-duplicates them. Offsets never grow, so an API's offset cap (`offset + limit`
at most 20,000, say) is never reached either.

Only when a whole page shares one key does a restart from it ask the same question again.
Then the records of that key are paged by offset, one record of overlap a page: if the
first record of a page is not the last of the page before, records of that key moved
while paging, and that key is read again from offset 0 (a bounded number of times). If
one key holds more records than the offset cap lets one query reach, the list cannot be
paged safely: that is an error, not a loop.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

from dlt.common import jsonpath
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from requests import Request, Response

from shared.errors import ConnectorError, redact_url

logger = logging.getLogger(__name__)

#: how often the records of one key are read again from offset 0 because they moved
MAX_TIE_REREADS = 3


class KeysetPagingError(ConnectorError):
    """The list cannot be paged without possibly skipping records; nothing was lost yet."""


def _identity(value: Any) -> Any:
    return value


class KeysetPaginator(BasePaginator):
    """Page a list sorted ascending by a key by re-issuing the query, from offset 0, with
    its filter moved to the largest key of the page just read.

    The fields a page changes go where the first request carries its parameters: the JSON
    body of a POST (a search), else the query string. An offset of 0 is sent by leaving
    the offset field out, as the first request does.

    Args:
        key_path: JSON path of the sort key in a record, e.g. `updatedAt`.
        restart: given the first request's query parameters (or JSON body) and a key, the
            fields to set so the list starts at that key, e.g.
            `lambda first, ms: {"query": f"updatedAt>={ms}"}`.
        key: turns a record's value at `key_path` into the ordered key the filter takes
            (e.g. epoch milliseconds, truncated: never rounded up); identity by default.
        id_path: JSON path of a record's id, to check that paging within one key is
            contiguous.
        has_more_path: JSON path in the body that is present while the query has records
            beyond this page (e.g. `paging.next`); None: a full page means there may be more.
            An empty page on which it is present is not the end: paging goes on at the
            query's next offset, as the page's own next link would.
        offset_param: the offset field (query parameter or body field).
        limit_param: the page size field of the first request.
        max_offset: the largest `offset + limit` the API accepts, if it caps offsets.
        connector: the connector's name, for messages.
    """

    def __init__(
        self,
        key_path: str,
        restart: Callable[[dict[str, Any], Any], dict[str, Any]],
        key: Callable[[Any], Any] = _identity,
        id_path: str = "id",
        has_more_path: str | None = None,
        offset_param: str = "offset",
        limit_param: str = "limit",
        max_offset: int | None = None,
        connector: str = "connector",
    ) -> None:
        super().__init__()
        self.key_path = jsonpath.compile_path(key_path)
        self.key_name = key_path
        self.restart = restart
        self.key = key
        self.id_path = jsonpath.compile_path(id_path)
        # paths that name one plain field (`updatedAt`, `id`): read directly
        self._fields_named = {
            path: field
            for path in (self.key_path, self.id_path)
            if (field := jsonpath.extract_simple_field_name(path)) is not None
        }
        self.has_more_path = jsonpath.compile_path(has_more_path) if has_more_path else None
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.max_offset = max_offset
        self.connector = connector
        self.restarts = 0
        self._first: dict[str, Any] = {}
        self._in_body = False
        self._limit = 0
        self._start: Any = None  # the key the current query starts at (None: the first query)
        self._offset = 0  # offset within the current query (only grows inside one key)
        self._expected_first_id: Any = None  # paging inside one key: the overlap record
        self._rereads = 0
        self._next_fields: dict[str, Any] = {}

    def init_request(self, request: Request) -> None:
        self._in_body = request.json is not None
        self._first = self._fields(request)
        self._limit = int(self._first.get(self.limit_param) or 0)
        self.restarts = self._offset = self._rereads = 0
        self._start = self._expected_first_id = None
        self._next_fields = {}
        self._has_next_page = True

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        rows = [row for row in data or [] if isinstance(row, dict)]
        if not rows:
            # an empty page that still says there is more (a page whose records the
            # server filtered out) is not the end: its next page is
            if self._links_on(response):
                self._skip_empty_page(response)
            else:
                self._has_next_page = False
            return
        if self._expected_first_id is not None and not self._contiguous(rows):
            self._reread_key()
            return
        if not self._has_more(response, rows):
            self._has_next_page = False
            return
        keys = [self.key(values[0]) for row in rows if (values := self._values(self.key_path, row))]
        if not keys:
            raise self._error(response, f"no record on the page carries `{self.key_name}`")
        top = max(keys)
        if self._start is None or top > self._start:
            self._restart_at(top)
        else:
            self._page_within_key(response, rows)

    def update_request(self, request: Request) -> None:
        if not self._next_fields:
            return
        fields = self._fields(request)
        for name, value in self._next_fields.items():
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value
        if self._in_body:
            request.json = fields
        else:
            request.params = fields

    # -- decisions ---------------------------------------------------------------------
    def _restart_at(self, key: Any) -> None:
        """Next: the query from `key` on, at offset 0."""
        self._start, self._offset, self._expected_first_id, self._rereads = key, 0, None, 0
        self.restarts += 1
        self._next_fields = {**self.restart(copy.deepcopy(self._first), key), **self._at(0)}

    def _page_within_key(self, response: Response, rows: list[dict[str, Any]]) -> None:
        """Every record of the page has the key the query starts at: page through that key
        by offset, overlapping one record to notice records that moved meanwhile."""
        last_ids = self._values(self.id_path, rows[-1])
        if len(rows) < 2 or not last_ids:
            raise self._error(
                response,
                f"a page of records sharing `{self.key_name}` {self._start!r} "
                "cannot be paged through (too short, or the records carry no id)",
            )
        offset = self._offset + len(rows) - 1
        limit = self._limit or len(rows)
        if self.max_offset is not None and offset + limit > self.max_offset:
            raise self._error(
                response,
                f"more than {self.max_offset} records share `{self.key_name}` "
                f"{self._start!r}, and the API's offset cap of {self.max_offset} stops "
                "paging through them",
            )
        self._offset, self._expected_first_id = offset, last_ids[0]
        self._next_fields = self._at(offset)

    def _skip_empty_page(self, response: Response) -> None:
        """Next: the page after the empty one, in the same query (what its next link
        names). Nothing on it can be checked for overlap, so the check starts over."""
        if not self._limit:
            raise self._error(response, "an empty page links on, but the page size is unknown")
        offset = self._offset + self._limit
        if self.max_offset is not None and offset + self._limit > self.max_offset:
            raise self._error(
                response,
                f"empty pages link on past the API's offset cap of {self.max_offset}",
            )
        self._offset, self._expected_first_id = offset, None
        self._next_fields = self._at(offset)

    def _contiguous(self, rows: list[dict[str, Any]]) -> bool:
        """Whether a page within one key starts with the last record of the page before."""
        first_ids = self._values(self.id_path, rows[0]) if rows else []
        return bool(first_ids) and first_ids[0] == self._expected_first_id

    def _reread_key(self) -> None:
        """A record of the key being paged moved (or a new one arrived) meanwhile: the
        offsets within the key shifted, and a record may have slipped past the page
        boundary, even if this page reaches beyond the key. Read the key again from offset
        0; the merge de-duplicates."""
        self._rereads += 1
        if self._rereads > MAX_TIE_REREADS:
            raise KeysetPagingError(
                f"{self.connector}: records sharing `{self.key_name}` {self._start!r} kept "
                f"moving while they were paged ({MAX_TIE_REREADS} re-reads); run the sync "
                "again later"
            )
        logger.info(
            "%s: records sharing %s %r moved while paging; reading them again",
            self.connector,
            self.key_name,
            self._start,
        )
        self._offset, self._expected_first_id = 0, None
        self._next_fields = self._at(0)

    # -- helpers ---------------------------------------------------------------------
    def _fields(self, request: Request) -> dict[str, Any]:
        """A copy of the request's parameters: its JSON body, or its query parameters."""
        fields = request.json if self._in_body else (request.params or {})
        if not isinstance(fields, dict):
            raise TypeError(f"{self.connector}: keyset paging needs a dict of parameters")
        return copy.deepcopy(fields)

    def _has_more(self, response: Response, rows: list[dict[str, Any]]) -> bool:
        if self.has_more_path is None:
            return bool(rows) and len(rows) >= (self._limit or len(rows))
        return bool(rows) and self._links_on(response)

    def _links_on(self, response: Response) -> bool:
        """Whether the response says the query has more pages (`has_more_path` is set in
        its body); without `has_more_path`, only a full page says so."""
        if self.has_more_path is None:
            return False
        try:
            body = response.json()
        except ValueError:
            return False
        return any(value for value in jsonpath.find_values(self.has_more_path, body))

    def _at(self, offset: int) -> dict[str, Any]:
        """The offset field for `offset`: left out for 0; a string in a JSON body (a
        search's `after`), as APIs that page bodies by offset spell it."""
        if offset == 0:
            return {self.offset_param: None}
        return {self.offset_param: str(offset)}

    def _values(self, path: Any, row: dict[str, Any]) -> list[Any]:
        field = self._fields_named.get(path)
        if field is not None:
            # a plain field name (`updatedAt`): read directly, once per record of every page
            value = row.get(field)
            return [] if value is None else [value]
        return [value for value in jsonpath.find_values(path, row) if value is not None]

    def _error(self, response: Response, why: str) -> KeysetPagingError:
        return KeysetPagingError(
            f"{self.connector}: cannot page {redact_url(response.url)} safely: {why}"
        )

    def __str__(self) -> str:
        return f"{type(self).__name__} on `{self.key_name}`: {self.restarts} restart(s)"
