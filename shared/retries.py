"""A per-source retry policy.

dlt's retries are global (`RUNTIME__REQUEST_MAX_ATTEMPTS` ...); a catalog needs one policy
per API: which statuses to retry, how many times, how fast to back off, and which
response headers say how long to wait (`Retry-After`, an epoch reset header, a period).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from requests import Response

#: Statuses retried by default: rate limited, and the transient server errors.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Which responses to retry and how long to wait before each retry.

    Args:
        statuses: HTTP statuses that are retried.
        max_retries: retries after the first attempt (so `max_retries + 1` attempts at most).
        backoff_factor: exponential backoff, `backoff_factor * 2 ** (retry - 1)` seconds,
            used when the response names no wait.
        max_wait: upper bound in seconds on any single wait, whatever a header says.
        retry_after_header: seconds or an HTTP date (RFC 9110 `Retry-After`).
        reset_header: epoch seconds at which the rate-limit window resets (used for 429s).
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
    period_header: str | None = None
    wait_hint: Callable[[Response], float | None] | None = field(default=None, compare=False)
    retry_connection_errors: bool = True

    def should_retry(self, response: Response) -> bool:
        return response.status_code in self.statuses

    def backoff(self, retry_number: int) -> float:
        """The exponential backoff before retry number `retry_number` (1-based)."""
        return min(self.max_wait, self.backoff_factor * 2 ** (retry_number - 1))

    def wait_seconds(self, response: Response | None, retry_number: int) -> float:
        """How long to wait before retry `retry_number` after `response` (None: no response)."""
        named = self.named_wait(response) if response is not None else None
        wait = named if named is not None else self.backoff(retry_number)
        return max(0.0, min(self.max_wait, wait))

    def named_wait(self, response: Response) -> float | None:
        """The wait a response asks for through its headers or the connector's hint."""
        headers = response.headers
        if self.retry_after_header and headers.get(self.retry_after_header):
            parsed = parse_retry_after(headers[self.retry_after_header])
            if parsed is not None:
                return parsed
        if response.status_code != 429:
            # rate-limit reset/period headers ride on every response; they only say how
            # long to wait when the response is the rate limit itself
            return None
        if self.reset_header and headers.get(self.reset_header):
            try:
                return max(0.0, float(headers[self.reset_header]) - time.time()) + 0.05
            except ValueError:
                pass
        if self.period_header and headers.get(self.period_header):
            try:
                return float(headers[self.period_header])
            except ValueError:
                pass
        if self.wait_hint is not None:
            return self.wait_hint(response)
        return None


def parse_retry_after(value: str) -> float | None:
    """Parse a `Retry-After` value, seconds or an HTTP date, into seconds from now."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
