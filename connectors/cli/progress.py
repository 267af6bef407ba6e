"""Progress of a `connectors run` or `demo` on stderr: requests sent, pacing waits and
rows extracted per resource, one line at a time.

A dlt `Collector` (dlt calls `update` with rows per resource while it extracts) plus two
logging handlers: the connector session's request log (`request_log.RequestLog`: every
request sent, replayed ones too), and `shared.http.rate_limit`'s log of every pacing
wait. Only counts are printed, never a request's URL.

Shown when stderr is a terminal, or when forced (`--progress`, or the environment
variable `CONNECTORS_PROGRESS=1`); otherwise silent, so piped or logged output stays clean.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Any, TextIO

from dlt.common.runtime.collector import Collector

from connectors.cli.request_log import RequestLog

#: the logger whose DEBUG records of pacing waits are counted
PACING_LOGGER = "shared.http.rate_limit"
#: `shared.http.rate_limit`'s message for a wait, with the seconds waited
PACING_MESSAGE = re.compile(r"waiting ([0-9.]+) s")
#: set to 1 to force progress (0 to silence it) whatever stderr is
FORCE_VARIABLE = "CONNECTORS_PROGRESS"


def wanted(stream: TextIO, forced: bool = False) -> bool:
    """Whether to show progress on `stream`: forced, or `stream` is a terminal."""
    setting = os.environ.get(FORCE_VARIABLE, "").strip()
    if forced or setting == "1":
        return True
    if setting == "0":
        return False
    return stream.isatty()


class _Counter(logging.Handler):
    """Counts the records of one logger and the seconds of pacing waits; calls `on_wait`
    with the seconds of each."""

    def __init__(self, on_wait: Any = None) -> None:
        super().__init__(logging.DEBUG)
        self.records = 0
        self.seconds = 0.0
        self.on_wait = on_wait

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        waiting = PACING_MESSAGE.search(record.getMessage())
        if waiting:
            self.seconds += float(waiting[1])
            if self.on_wait is not None:
                self.on_wait(float(waiting[1]))


class Progress(Collector):
    """A dlt progress collector writing one line per `period` seconds to `stream`:

    crm: extract: 41 requests, 3 pacing waits (1.5 s); rows: users 130, parties 412
    """

    def __init__(self, stream: TextIO, label: str, period: float = 1.0) -> None:
        self.stream = stream
        self.label = label
        self.period = period
        self.step = ""
        self.rows: dict[str, int] = {}
        self.requests = RequestLog()
        self.waits = _Counter(on_wait=self._waiting)
        self._last = 0.0
        self._lock = threading.Lock()
        self._levels: dict[str, int] = {}
        self._printed = ""

    # -- counting requests and waits while dlt extracts -------------------------------

    def _attach(self) -> None:
        self.requests.attach()
        logger = logging.getLogger(PACING_LOGGER)
        self._levels.setdefault(PACING_LOGGER, logger.level)
        logger.setLevel(logging.DEBUG)
        if self.waits not in logger.handlers:
            logger.addHandler(self.waits)

    def _detach(self) -> None:
        self.requests.detach()
        logger = logging.getLogger(PACING_LOGGER)
        logger.removeHandler(self.waits)
        if PACING_LOGGER in self._levels:
            logger.setLevel(self._levels.pop(PACING_LOGGER))

    # -- dlt's Collector interface ----------------------------------------------------

    def update(
        self,
        name: str,
        inc: int = 1,
        total: int | None = None,
        inc_total: int | None = None,
        message: str | None = None,
        label: str | None = None,
    ) -> None:
        """dlt counts rows per resource while extracting (and files and jobs later)."""
        if not self.step.startswith("Extract") or name == "Resources" or name.startswith("_dlt"):
            return
        with self._lock:
            self.rows[name] = self.rows.get(name, 0) + inc
        if time.monotonic() - self._last >= self.period:
            self.write()

    def _start(self, step: str) -> None:
        self.step = step
        if step.startswith("Extract"):
            self._attach()
        if step.startswith(("Normalize", "Load")):
            self.stream.write(f"{self.label}: {step.split()[0].lower()} ...\n")
            self.stream.flush()

    def _stop(self) -> None:
        if self.step.startswith("Extract"):
            self._detach()
            if self.rows:
                self.write()

    def line(self) -> str:
        """The progress so far, in one line."""
        with self._lock:
            rows = ", ".join(f"{name} {count}" for name, count in self.rows.items())
        waits = self.waits.records
        parts = [f"{self.requests.requests} requests"]
        if waits:
            parts.append(f"{waits} pacing wait{'s' * (waits != 1)} ({self.waits.seconds:.1f} s)")
        return f"{self.label}: extract: {', '.join(parts)}" + (f"; rows: {rows}" if rows else "")

    def _waiting(self, seconds: float) -> None:
        """A long pacing wait gets its own line at once: the run is not stuck."""
        if seconds >= self.period:
            self.stream.write(
                f"{self.label}: waiting {seconds:.1f} s for the rate limit "
                f"({self.requests.requests} requests so far)\n"
            )
            self.stream.flush()

    def write(self) -> None:
        """Print the progress line, unless it says what the last one said."""
        self._last = time.monotonic()
        line = self.line()
        if line != self._printed:
            self._printed = line
            self.stream.write(line + "\n")
            self.stream.flush()
