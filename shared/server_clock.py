"""The API server's clock, as the `Date` header of its responses tells it.

Records are stamped by the server's clock, not ours. A stored cursor must never pass the
moment a sync started (`shared.cursors`), and that moment has to be read on the clock that
stamps the records: a laptop running five minutes fast would otherwise store a cursor
five minutes past anything the server has written yet.

A session learns the offset between the two clocks from the first response that carries a
`Date` header; until then (or when no response carries one) the local clock stands in.
The header has whole seconds and is written before the response travels, so the offset
errs early: a cursor capped with it is capped a little early, never late.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from requests import Response


class ServerClock:
    """The server's time, from the local clock and the offset seen in a `Date` header.

    Args:
        local_clock: the local clock in epoch seconds (a test may pass a fake one).
    """

    def __init__(self, local_clock: Callable[[], float] = time.time) -> None:
        self.local_clock = local_clock
        #: server time minus local time, in seconds; None until a response carried a `Date`
        self.offset: float | None = None

    def observe(self, response: Response) -> None:
        """Learn the offset from `response`'s `Date` header, once: the first one counts."""
        if self.offset is not None:
            return
        header = response.headers.get("Date")
        if not header:
            return
        try:
            server_time = parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError):  # a garbled header says nothing
            return
        if server_time.tzinfo is None:
            server_time = server_time.replace(tzinfo=timezone.utc)
        self.offset = server_time.timestamp() - self.local_clock()

    def to_server_time(self, local_epoch: float) -> datetime:
        """The server's time (aware UTC) at the local instant `local_epoch`."""
        return datetime.fromtimestamp(local_epoch + (self.offset or 0.0), tz=timezone.utc)

    def now(self) -> datetime:
        """The server's time now (aware UTC)."""
        return self.to_server_time(self.local_clock())

    # resources are copied when a source is cloned (`with_resources`); their cursors must
    # keep reading the one clock their session updates
    def __copy__(self) -> ServerClock:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ServerClock:
        return self
