"""The API server's clock, as the `Date` header of its responses tells it.

Records are stamped by the server's clock, not ours. A stored cursor must never pass the
moment a sync started (`shared.incremental.cursors`), and that moment has to be read on
the clock that
stamps the records: a laptop running five minutes fast would otherwise store a cursor
five minutes past anything the server has written yet.

A session learns the offset between the two clocks from the first response that carries a
`Date` header; until then (or when no response carries one) the local clock stands in.
The header has whole seconds and is written before the response travels, so the offset
errs early: a cursor capped with it is capped a little early, never late.

Pacing by a reported budget (`shared.http.rate_limit`) needs the server's time more tightly: a
window of ten seconds cannot take a second's error. Every `Date` seen gives a lower bound
of the offset (the header is rounded down and was written before we read it); the largest
of them, `least_offset`, comes within a few milliseconds of the truth after a second of
steady requests, and is still never ahead of it.
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
        #: the largest `Date` minus local time at receipt seen: never ahead of the true
        #: offset, and closer to it with every response; None until a `Date` came
        self.least_offset: float | None = None

    def observe(self, response: Response) -> None:
        """Learn from `response`'s `Date` header: `offset` from the first one (stored
        cursors read one clock all sync long), `least_offset` from every one."""
        header = response.headers.get("Date")
        if not header:
            return
        try:
            server_time = parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError, OverflowError):  # a garbled header
            return
        if server_time.tzinfo is None:
            server_time = server_time.replace(tzinfo=timezone.utc)
        sample = server_time.timestamp() - self.local_clock()
        if self.offset is None:
            self.offset = sample
        if self.least_offset is None or sample > self.least_offset:
            self.least_offset = sample

    def surely_now(self) -> float:
        """Epoch seconds the server's clock has surely reached by now (the local clock
        until a response carried a `Date`)."""
        return self.local_clock() + (self.least_offset or 0.0)

    def to_server_time(self, local_epoch: float) -> datetime:
        """The server's time (aware UTC) at the local instant `local_epoch`."""
        return datetime.fromtimestamp(local_epoch + (self.offset or 0.0), tz=timezone.utc)

    # resources are copied when a source is cloned (`with_resources`); their cursors must
    # keep reading the one clock their session updates
    def __copy__(self) -> ServerClock:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ServerClock:
        return self
