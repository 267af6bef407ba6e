"""Proactive pacing: keep a source under an API's rate limit instead of bouncing off it.

A token bucket would let a whole window's budget go out at once, which APIs that also
enforce the limit over shorter windows (20 per 6 s behind 200 per minute) answer with
429s. `RequestPacer` spaces requests evenly instead, with some headroom, and is shared by
every thread of one source, so concurrent child requests stay under the limit together.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass

#: `connectors run` counts its DEBUG records to show pacing waits (connectors/progress.py)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimit:
    """`requests` per `per_seconds`, optionally only for request paths matching `path_pattern`.

    Args:
        requests: how many requests the API allows per window.
        per_seconds: the window in seconds.
        path_pattern: a regular expression searched in the request path; None for all requests.
        headroom: the fraction of the limit actually used (0.9 leaves 10% spare).
    """

    requests: int
    per_seconds: float
    path_pattern: str | None = None
    headroom: float = 0.9

    @property
    def interval(self) -> float:
        return self.per_seconds / (self.requests * self.headroom)


class RequestPacer:
    """Thread-safe even spacing of requests under one `RateLimit`."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._pattern = re.compile(limit.path_pattern) if limit.path_pattern else None
        self._lock = threading.Lock()
        self._next_slot = 0.0

    def applies_to(self, path: str) -> bool:
        return self._pattern is None or bool(self._pattern.search(path))

    def wait(self) -> float:
        """Block until this caller's slot comes; return the seconds waited."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.limit.interval
        delay = slot - now
        if delay > 0:
            logger.debug("waiting %.3f s for the rate limit", delay)
            time.sleep(delay)
        return delay
