"""A per-source retry policy.

dlt's retries are per client, and every client takes them from the same runtime settings
(`RUNTIME__REQUEST_MAX_ATTEMPTS` ...) unless built by hand; a catalog needs each API's
policy declared with its connector: which statuses to retry, how many times, how fast to
back off, and which response headers say how long to wait (`Retry-After`, an epoch reset
header, a period).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timezone
from email.utils import parsedate_to_datetime

from requests import Response

#: a reset header names a whole second, and a server may round its reset down: the window
#: has surely reset only this long after the second it names (the retry after a 429 and
#: the pacer's budget both wait this slack)
RESET_GRANULARITY_SECONDS = 1.0

#: Statuses retried by default: rate limited, and the transient server errors.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
#: an HTTP-date `Retry-After` this far in the past still means "now" (whole-second dates,
#: a little clock skew); older than that, the header is unusable and the backoff applies
RETRY_AFTER_PAST_TOLERANCE = 5.0


@dataclass(frozen=True)
class RetryPolicy:
    """Which responses to retry and how long to wait before each retry.

    Args:
        statuses: HTTP statuses that are retried.
        max_retries: retries after the first attempt (so `max_retries + 1` attempts at most).
        backoff_factor: exponential backoff, `backoff_factor * 2 ** (retry - 1)` seconds,
            used when the response names no wait.
        max_wait: upper bound in seconds on any single wait, whatever a header says (the
            wait until a `reset_header` has its own bound, `max_rate_limit_wait`).
        retry_after_header: seconds or an HTTP date (RFC 9110 `Retry-After`). A value that
            is negative, not a number or a date, or a date long past is ignored: the
            backoff applies instead of "retry now".
        reset_header: epoch seconds at which the rate-limit window resets (used for 429s).
        max_rate_limit_wait: upper bound in seconds on the wait until `reset_header`; an
            API whose window resets hourly names waits of up to an hour, and waiting them
            out is correct. None: `max_wait`.
        period_header: the rate-limit window length in seconds (used for 429s).
        wait_hint: connector-specific wait (seconds) read from a 429 response, or None;
            consulted after the headers above.
        retry_connection_errors: also retry connection errors and timeouts.
    """

    statuses: frozenset[int] = TRANSIENT_STATUSES
    max_retries: int = 5
    backoff_factor: float = 1.0
    max_wait: float = 120.0
    retry_after_header: str | None = "Retry-After"
    reset_header: str | None = None
    max_rate_limit_wait: float | None = None
    period_header: str | None = None
    wait_hint: Callable[[Response], float | None] | None = field(default=None, compare=False)
    retry_connection_errors: bool = True

    def should_retry(self, response: Response) -> bool:
        return response.status_code in self.statuses

    def backoff(self, retry_number: int) -> float:
        """The exponential backoff before retry number `retry_number` (1-based)."""
        return min(self.max_wait, self.backoff_factor * 2 ** (retry_number - 1))

    def wait_seconds(
        self, response: Response | None, retry_number: int, now: float | None = None
    ) -> float:
        """How long to wait before retry `retry_number` after `response` (None: no response);
        `now`: the server's time in epoch seconds, that a reset header is counted from
        (default: the local clock)."""
        if response is not None:
            reset = self.reset_wait(response, now)
            if reset is not None:
                return max(0.0, min(self.rate_limit_cap, reset))
            named = self.named_wait(response, now)
            if named is not None:
                return max(0.0, min(self.max_wait, named))
        return max(0.0, min(self.max_wait, self.backoff(retry_number)))

    @property
    def rate_limit_cap(self) -> float:
        """The longest wait for a rate-limit window to reset."""
        return self.max_wait if self.max_rate_limit_wait is None else self.max_rate_limit_wait

    def reset_wait(self, response: Response, now: float | None = None) -> float | None:
        """Seconds until the rate-limit window a 429 names resets (`reset_header`), if it
        names one and no usable `Retry-After` comes first; `now` as in `wait_seconds`."""
        headers = response.headers
        if response.status_code != 429 or not self.reset_header:
            # rate-limit reset headers ride on every response; they only say how long to
            # wait when the response is the rate limit itself
            return None
        if self._retry_after(response) is not None or not headers.get(self.reset_header):
            return None
        reset = _finite(headers[self.reset_header])
        if reset is None:
            return None
        return max(0.0, reset - (time.time() if now is None else now)) + RESET_GRANULARITY_SECONDS

    def named_wait(self, response: Response, now: float | None = None) -> float | None:
        """The wait a response asks for through its headers or the connector's hint."""
        retry_after = self._retry_after(response)
        if retry_after is not None:
            return retry_after
        if response.status_code != 429:
            return None
        reset = self.reset_wait(response, now)
        if reset is not None:
            return reset
        if self.period_header and response.headers.get(self.period_header):
            period = _finite(response.headers[self.period_header])
            if period is not None and period >= 0:
                return period
        if self.wait_hint is not None:
            return self.wait_hint(response)
        return None

    def _retry_after(self, response: Response) -> float | None:
        if self.retry_after_header and response.headers.get(self.retry_after_header):
            return parse_retry_after(response.headers[self.retry_after_header])
        return None


def parse_retry_after(value: str) -> float | None:
    """Parse a `Retry-After` value, seconds or an HTTP date, into seconds from now.

    None when the value is unusable: a negative or non-finite number, neither a number
    nor a date, or a date more than `RETRY_AFTER_PAST_TOLERANCE` seconds past. The
    caller then backs off as if there were no header, rather than retrying at once.
    """
    value = value.strip()
    seconds = _finite(value)
    if seconds is not None:
        return seconds if seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # `-0000` parses as naive; HTTP dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    remaining = when.timestamp() - time.time()
    if remaining < -RETRY_AFTER_PAST_TOLERANCE:
        return None
    return max(0.0, remaining)


def _finite(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
