"""What a pacer waited for in a test: the DEBUG records `shared.http.rate_limit` writes for
each wait it schedules (the ones `connectors run` counts as pacing waits)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

#: a wait this short is no pacing: a thread handing the pacer's turn to the next
EPSILON_SECONDS = 0.01
PACING_LOGGER = "shared.http.rate_limit"


class PacingWaits(logging.Handler):
    """The waits the pacers scheduled, with the moment (epoch seconds) each began."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.waits: list[tuple[float, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = re.match(r"waiting ([0-9.]+) s for the rate limit", record.getMessage())
        if match:
            self.waits.append((record.created, float(match[1])))

    def longer_than(self, seconds: float = EPSILON_SECONDS) -> list[tuple[float, float]]:
        """The waits longer than `seconds`: (when it began, seconds)."""
        return [(at, wait) for at, wait in self.waits if wait > seconds]


@contextmanager
def recorded_pacing_waits() -> Iterator[PacingWaits]:
    """Record every pacing wait scheduled inside the block."""
    handler = PacingWaits()
    pacing_logger = logging.getLogger(PACING_LOGGER)
    level = pacing_logger.level
    pacing_logger.addHandler(handler)
    pacing_logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        pacing_logger.removeHandler(handler)
        pacing_logger.setLevel(level)
