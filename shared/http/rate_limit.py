"""Proactive pacing: keep a source under an API's rate limit instead of bouncing off it.

A token bucket would let a whole window's budget go out at once, which APIs that also
enforce the limit over shorter windows (20 per 6 s behind 200 per minute) answer with
429s. `RequestPacer` spaces requests evenly instead, with some headroom, and is shared by
every thread of one source, so concurrent child requests stay under the limit together.

Once a source runs in several processes (Airflow's parallel tasks, Dagster's multiprocess
executor, several machines), each process's pacer alone no longer holds the API's limit.
`pacers_for` then builds `SharedPacer`s on a backend every process reaches, chosen by one
setting per source, `sources.<name>.rate_limit_backend`:

- unset: the in-process `RequestPacer` (the default);
- `sqlite:///relative/path.db` or `sqlite:////absolute/path.db`: one machine;
- `redis://[:password@]host:port/db` (or `rediss://`): many machines.

The shared backends are pyrate-limiter buckets holding the same even spacing: at most one
request per `RateLimit.interval` across every process that uses the same backend.

Reading the server's budget. An API that reports its budget on every response
(`X-RateLimit-Limit`/`-Remaining`/`-Reset`, HubSpot's `X-HubSpot-RateLimit-*`) says more
than any configured pace: a `RateLimit` with `budget` headers paces by them and keeps its
own `requests`/`per_seconds` only as the default for when they are absent, stale or not
credible. A sync spends what it needs: while more than a reserve of the budget remains
(`reserve`, a share of the reported limit: 20% unless the source sets
`sources.<name>.budget_reserve`), requests go at full speed; from the reserve on, what is
left is spread to the reset. A small sync on a large budget never waits, a large one
slows down only for the last share of the window, and the reserve is there for the
account's other clients until the window ends. Two kinds of window:

- a fixed window with a reset time (`reset`): above the reserve, full speed; at or below
  it, the requests left are spread evenly until the reset, never more of them than the
  server said are left; with none left, requests wait until the window has surely reset.
  The reset is read on the server's clock (`ServerClock.surely_now`); the header has
  whole seconds and a server may round down, so the window surely has reset only a
  second after the one named, and the requests are spread until the middle of that
  second. Requests sent after a response left but not yet counted in it are subtracted,
  and so are those sent before it and still unanswered (the server may not have counted
  them yet), so threads running ahead of their responses cannot overspend the window.
- a rolling window (`window_ms`): above the reserve, full speed, but never more than the
  window's maximum (with the usual headroom) of this pacer's own requests inside any one
  window, so a burst stops at the window's allowance; at or below the reserve, requests
  are spaced evenly at the reported maximum per window, with the usual headroom; with
  nothing left (another client spending the same budget), requests wait one window.

Headers that cannot be believed (not numbers, negative, more remaining than the limit,
absurdly large, a reset long past or further away than `max_window`) are ignored: the
default pace applies, and the session logs it once. Spread, requests go at most
`MAX_SPEEDUP` times faster than the default pace, however large a believable budget;
above the reserve they do not wait at all (the sync's own speed). Each change of
pace (the first budget, a new window: at most one a minute; a fixed window's reserve
reached) and each wait of `ANNOUNCED_WAIT_SECONDS` or more is announced at INFO through
the session's logger (its redactor applied); pacing waits stay DEBUG records of this
module's logger, which the progress display counts. An explicit `requests_per_minute` of
a connector builds its `RateLimit` without `budget`, so what the user chose wins.

With a shared backend (`SharedPacer`) the bucket keeps the default spacing across all
processes, as before: a reported budget is spent by all of them, and each learning it
alone would spend it once per process. The headers can only slow a process down there
(a smaller budget than the default, or none left until the reset, or the reserve
reached), never speed it up.
"""

from __future__ import annotations

import logging
import math
import re
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from shared.errors import ConfigurationError, config_key
from shared.http.retries import RESET_GRANULARITY_SECONDS

#: `connectors run` counts its DEBUG records to show pacing waits (connectors/cli/progress.py);
#: budget notices go through `announce` (the session's logger) so they are not counted
logger = logging.getLogger(__name__)

#: a reset this far in the past is not clocks disagreeing by a moment but a wrong header
RESET_PAST_TOLERANCE_SECONDS = 5.0
#: more requests than this in one window is not a budget but a broken header
MAX_REPORTED_REQUESTS = 10_000_000
#: however large the reported budget, requests spread by it go at most this many times
#: faster than the default pace: a header is not a reason to flood an API
MAX_SPEEDUP = 100
#: a pacing wait this long is announced before it starts
ANNOUNCED_WAIT_SECONDS = 10.0
#: after the first, notices of a new budget window come at most this often
NOTICE_INTERVAL_SECONDS = 60.0
#: the share of a reported budget's limit kept in reserve: above it requests go at full
#: speed, from it on what is left is spread to the reset (`sources.<name>.budget_reserve`)
DEFAULT_BUDGET_RESERVE = 0.2

#: receives the one-line notices of budget pacing (a session logs them, redacted)
Announce = Callable[[str], None]


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
    #: the headers the API reports its budget in; None paces at `requests` per `per_seconds`
    budget: BudgetHeaders | None = None

    @property
    def interval(self) -> float:
        return self.per_seconds / (self.requests * self.headroom)

    def describe(self) -> str:
        """The pace, for messages: `66 requests per 60 s`."""
        return f"{self.requests:,} requests per {self.per_seconds:g} s"


@dataclass(frozen=True)
class BudgetHeaders:
    """The response headers an API reports its request budget in (module docstring).

    Args:
        limit: the requests the window allows (`X-RateLimit-Limit`).
        remaining: the requests left in it (`X-RateLimit-Remaining`).
        reset: a fixed window: epoch seconds when it resets (`X-RateLimit-Reset`).
        window_ms: a rolling window: its length in milliseconds.
        max_window: seconds; a reset further away, or a window longer, is not believed.
    """

    limit: str
    remaining: str
    reset: str | None = None
    window_ms: str | None = None
    max_window: float = 3600.0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.limit, self.remaining, self.reset, self.window_ms) if n)


@dataclass(frozen=True)
class Reading:
    """What one response reported: `remaining` of `limit` requests, and `seconds`: for a
    fixed window, until it has surely reset; for a rolling one, its length."""

    limit: int
    remaining: int
    seconds: float
    rolling: bool


class Unbelievable(ValueError):
    """Budget headers that cannot be believed; the message says which and why."""


def read_budget(
    headers: BudgetHeaders, sent: Mapping[str, str], server_now: float
) -> Reading | None:
    """The budget the response headers `sent` report, with `server_now` (epoch seconds,
    the server's clock) to place a reset. None when they report none (absent, or a
    window resetting this very moment); `Unbelievable` when they cannot be believed."""
    present = [name for name in headers.names if sent.get(name) is not None]
    if not present:
        return None
    if len(present) < len(headers.names):
        missing = ", ".join(n for n in headers.names if n not in present)
        raise Unbelievable(f"{missing} missing")
    limit = _count(headers.limit, sent[headers.limit])
    remaining = _count(headers.remaining, sent[headers.remaining])
    if limit < 1:
        raise Unbelievable(f"{headers.limit} {limit} allows nothing")
    if remaining > limit:
        raise Unbelievable(f"{headers.remaining} {remaining} is more than {headers.limit} {limit}")
    if headers.reset:
        reset = _number(headers.reset, sent[headers.reset])
        seconds = reset + RESET_GRANULARITY_SECONDS - server_now
        if seconds < -RESET_PAST_TOLERANCE_SECONDS:
            raise Unbelievable(f"{headers.reset} {_shown(sent[headers.reset])} is in the past")
        if seconds > headers.max_window + RESET_GRANULARITY_SECONDS:
            raise Unbelievable(
                f"{headers.reset} {_shown(sent[headers.reset])} is more than "
                f"{headers.max_window:g} s away"
            )
        if seconds <= 0:  # resetting now (or clocks a moment apart): nothing to learn
            return None
        return Reading(limit, remaining, seconds, rolling=False)
    assert headers.window_ms is not None
    window = _number(headers.window_ms, sent[headers.window_ms]) / 1000
    if not 0 < window <= headers.max_window:
        raise Unbelievable(
            f"{headers.window_ms} {_shown(sent[headers.window_ms])} is no window up to "
            f"{headers.max_window:g} s"
        )
    return Reading(limit, remaining, window, rolling=True)


def _shown(value: str) -> str:
    """A header value as quoted in a message: short, on one line."""
    text = " ".join(str(value).split())
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


def _number(name: str, value: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise Unbelievable(f"{name} {_shown(value)} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise Unbelievable(f"{name} {_shown(value)} is not a number of 0 or more")
    return number


def _count(name: str, value: str) -> int:
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise Unbelievable(f"{name} {_shown(value)} is not a count of requests")
    if len(text) > 12 or int(text) > MAX_REPORTED_REQUESTS:
        raise Unbelievable(f"{name} {_shown(value)} is not a credible count of requests")
    return int(text)


class ServerTime(Protocol):
    """The server's clock as a budget reads it (`shared.http.server_clock.ServerClock`)."""

    def surely_now(self) -> float: ...


class Budget:
    """The budget a `RateLimit`'s headers report, kept up to date from the responses of
    the requests its pacer let through (thread-safe).

    Each request the pacer lets through gets a number (`issue`, kept per thread); a
    response counts only if it answers a later request than the last one that counted,
    and the requests let through after it, and those before it still unanswered, are
    taken off what it says remains.
    """

    def __init__(self, limit: RateLimit, reserve: float, announce: Announce | None = None) -> None:
        assert limit.budget is not None
        self.limit = limit
        self.headers = limit.budget
        self.announce: Announce = announce or logger.info
        #: the share of the reported limit spent only by spreading it to the reset
        self.reserve = reserve
        #: set whenever a response changes the budget: a waiting caller looks again
        self.changed = threading.Event()
        self._lock = threading.Lock()
        self._issued = 0
        self._mine = threading.local()
        self._reading: Reading | None = None
        self._ticket = 0  # the request whose response `_reading` came from
        self._until = 0.0  # monotonic: when `_reading` stops holding
        self._warned = False
        self._noticed_at: float | None = None
        self._window_reset: float | None = None
        self._reserve_noticed: float | None = None  # the window whose reserve was announced
        self._reserve_noticed_at = -math.inf
        #: requests let through and not yet answered, by ticket: one at most per thread (a
        #: thread's next request means its last one ended, answered or not)
        self._unanswered: set[int] = set()
        #: when (monotonic) the requests let through left, for a rolling window's allowance
        self._sent: deque[float] = deque()

    # -- the pacer's side ------------------------------------------------------------
    def issue(self, now: float | None = None) -> None:
        """Number the request the pacer is letting through now (in this thread); `now`:
        the monotonic time it leaves."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._issued += 1
            self._unanswered.discard(getattr(self._mine, "ticket", 0))
            self._mine.ticket = self._issued
            self._unanswered.add(self._issued)
            if self.headers.window_ms:
                window = self._reading.seconds if self._reading else self.headers.max_window
                while self._sent and self._sent[0] <= now - window:
                    self._sent.popleft()
                self._sent.append(now)

    def due(self, now: float, last_left: float) -> float | None:
        """When (monotonic) the next request may leave by the budget, `last_left` being
        when the last one did; None when no budget holds (the default pace applies)."""
        with self._lock:
            return self._due(now, last_left)

    def _due(self, now: float, last_left: float) -> float | None:
        reading = self._reading
        if reading is None:
            return None
        if not reading.rolling and now >= self._until:
            # the window has reset: the first request may go at once, and its answer
            # tells the new window's budget; until then, the default pace
            return self._until if last_left < self._until else None
        left = self._left(reading)
        above_reserve = left > self._reserve_of(reading)
        # spread, requests still keep a spacing: a header is not a reason to flood an API
        closest = self.limit.interval / MAX_SPEEDUP
        if reading.rolling:
            allowed = self._allowance_frees(now, reading)
            if left <= 0 and now < self._until:
                return max(self._until, allowed)  # spent by someone else: wait the window out
            if above_reserve:
                return max(last_left, allowed)  # full speed, up to the window's allowance
            spacing = reading.seconds / self._allowance(reading)
            return max(last_left + max(spacing, closest), allowed)
        if left <= 0:
            return self._until
        if above_reserve:
            return last_left  # full speed
        # spread until the middle of the reset's second: the window ends somewhere in it,
        # and this halves what either guess wrong would cost (budget left unspent when it
        # ends earlier, a wait for `_until` when it ends later)
        end = self._until - RESET_GRANULARITY_SECONDS / 2
        return last_left + max(((end if now < end else self._until) - now) / left, closest)

    def _left(self, reading: Reading) -> int:
        """What `reading` left, less the requests it cannot have counted: those let
        through after its own, and those before it still unanswered."""
        unanswered_before = sum(1 for ticket in self._unanswered if ticket < self._ticket)
        return reading.remaining - (self._issued - self._ticket) - unanswered_before

    def _allowance(self, reading: Reading) -> float:
        """A rolling window's requests this pacer may send inside any one window."""
        return reading.limit * self.limit.headroom

    def _allowance_frees(self, now: float, reading: Reading) -> float:
        """When this pacer's own requests inside one rolling window drop below its
        allowance: `now` if they already are."""
        sent = self._sent
        while sent and sent[0] <= now - reading.seconds:
            sent.popleft()
        allowance = max(1, math.floor(self._allowance(reading)))
        if len(sent) < allowance:
            return now
        return sent[-allowance] + reading.seconds

    # -- the session's side ----------------------------------------------------------
    def observe(self, headers: Mapping[str, str], clock: ServerTime) -> None:
        """Learn from the headers of the response to this thread's latest request."""
        ticket = getattr(self._mine, "ticket", None)
        if ticket is None:
            return
        with self._lock:
            self._unanswered.discard(ticket)
        now = time.monotonic()
        try:
            reading = read_budget(self.headers, headers, clock.surely_now())
        except Unbelievable as problem:
            self._disbelieve(str(problem))
            return
        if reading is None:
            return
        notice = None
        with self._lock:
            if ticket <= self._ticket:
                return  # an older request's answer, overtaken by a newer one
            first = self._reading is None
            self._reading, self._ticket = reading, ticket
            self._until = now + reading.seconds
            if not reading.rolling:
                reset = round(now + reading.seconds)
                new_window = self._window_reset is None or abs(reset - self._window_reset) > 1
                self._window_reset = reset
            else:
                new_window = first
            if first or (
                new_window
                and (self._noticed_at is None or now - self._noticed_at >= NOTICE_INTERVAL_SECONDS)
            ):
                self._noticed_at = now
                notice = self._describe(reading, first)
                if self._left(reading) <= self._reserve_of(reading):
                    self._reserve_noticed = self._window_reset  # this notice says it
                    self._reserve_noticed_at = now
            elif (
                not reading.rolling
                and self._reserve_noticed != self._window_reset
                and self._left(reading) <= self._reserve_of(reading)
                and now - self._reserve_noticed_at >= NOTICE_INTERVAL_SECONDS
            ):
                # the change from full speed to spreading: once a window, at most once a minute
                self._reserve_noticed_at, self._reserve_noticed = now, self._window_reset
                notice = self._reserve_notice(reading)
        self.changed.set()
        if notice:
            self.announce(notice)

    def _disbelieve(self, why: str) -> None:
        with self._lock:
            self._reading = None
            warned, self._warned = self._warned, True
        self.changed.set()
        if not warned:
            self.announce(
                f"ignoring the rate-limit headers of the API ({why}); pacing at the default "
                f"{self.limit.describe()} instead"
            )

    def _describe(self, reading: Reading, first: bool) -> str:
        reserve = self._reserve_of(reading)
        if reading.rolling:
            pace = self._allowance(reading) / reading.seconds
            return (
                f"the API reports a budget of {reading.limit:,} requests per "
                f"{reading.seconds:g} s ({self.headers.limit}); full speed while more than "
                f"{reserve:,} remain ({self.reserve:.0%} in reserve), never more than "
                f"{math.floor(self._allowance(reading)):,} in one window, then "
                f"{pace:.3g} requests a second (default {self.limit.describe()})"
            )
        window = "" if first else "new window, "
        if reading.remaining > reserve:
            plan = (
                f"{window}full speed while more than {reserve:,} remain "
                f"({self.reserve:.0%} in reserve), then what is left spread evenly until the "
                "reset"
            )
        else:
            plan = f"{window}{self._spreading(reading)}"
        return f"{self._left_until(reading)}; {plan} (default {self.limit.describe()})"

    def _reserve_notice(self, reading: Reading) -> str:
        return (
            f"{self._left_until(reading)}, the reserve ({self.reserve:.0%} of the limit): "
            f"{self._spreading(reading)}"
        )

    def _left_until(self, reading: Reading) -> str:
        until = datetime.now(timezone.utc).timestamp() + reading.seconds
        return (
            f"the API reports {reading.remaining:,} of {reading.limit:,} requests left until "
            f"{datetime.fromtimestamp(until, timezone.utc):%H:%M:%S} UTC "
            f"({self.headers.remaining}, {self.headers.reset})"
        )

    @staticmethod
    def _spreading(reading: Reading) -> str:
        left = max(reading.remaining, 1)
        return (
            f"spreading them evenly until the reset, about {left / reading.seconds:.3g} "
            "requests a second"
        )

    def _reserve_of(self, reading: Reading) -> int:
        """The requests of `reading`'s limit kept in reserve, rounded down."""
        return math.floor(self.reserve * reading.limit)


class RequestPacer:
    """Thread-safe even spacing of requests under one `RateLimit`, or, if it reads a
    budget, pacing by what the API reports (full speed above `reserve`, see the module
    docstring)."""

    def __init__(
        self,
        limit: RateLimit,
        announce: Announce | None = None,
        reserve: float = DEFAULT_BUDGET_RESERVE,
    ) -> None:
        self.limit = limit
        self._pattern = re.compile(limit.path_pattern) if limit.path_pattern else None
        self._turn = threading.Lock()  # callers go one at a time
        self._last_left = -math.inf
        self.budget = Budget(limit, reserve, announce) if limit.budget else None

    def applies_to(self, path: str) -> bool:
        return self._pattern is None or bool(self._pattern.search(path))

    def observe(self, headers: Mapping[str, str], clock: ServerTime) -> None:
        """Learn the budget from a response's headers (the latest request of this thread)."""
        if self.budget is not None:
            self.budget.observe(headers, clock)

    def due(self, now: float) -> float:
        """When (monotonic) the next caller may leave."""
        due = self.budget.due(now, self._last_left) if self.budget else None
        return self._last_left + self.limit.interval if due is None else due

    def wait(self) -> float:
        """Block until this caller's slot comes; return the seconds waited.

        Callers go one at a time, and the next slot is counted from the moment this caller
        really leaves, not from when its slot was due: a thread woken late (a busy
        machine) must not let the next one follow it closely, which would put more
        requests into some window than the limit allows. A caller waiting by a reported
        budget looks again whenever a response changes it."""
        with self._turn:
            started = now = time.monotonic()
            if self.budget is None:
                delay = self._last_left + self.limit.interval - now
                if delay > 0:
                    logger.debug("waiting %.3f s for the rate limit", delay)
                    time.sleep(delay)
                self._last_left = time.monotonic()
                return max(0.0, delay)
            budget, first = self.budget, True
            while True:
                budget.changed.clear()
                delay = self.due(now) - now
                if delay <= 0:
                    break
                if first:
                    logger.debug("waiting %.3f s for the rate limit", delay)
                    if delay >= ANNOUNCED_WAIT_SECONDS:
                        budget.announce(waiting_notice(delay, self.limit))
                    first = False
                budget.changed.wait(delay)  # a response changing the budget ends it early
                now = time.monotonic()
            self._last_left = now
            budget.issue(now)
        return now - started


def waiting_notice(seconds: float, limit: RateLimit) -> str:
    """The notice of a long wait the API's reported budget asks for."""
    until = datetime.now(timezone.utc).timestamp() + seconds
    names = ", ".join(limit.budget.names[1:]) if limit.budget else "rate limit"
    return (
        f"waiting {seconds:,.0f} s (until {datetime.fromtimestamp(until, timezone.utc):%H:%M:%S}"
        f" UTC) for the budget the API reports ({names}): it has little or nothing left"
    )


class Pacer(Protocol):
    """What a session waits on before each request it sends."""

    limit: RateLimit

    def applies_to(self, path: str) -> bool: ...

    def wait(self) -> float: ...

    def observe(self, headers: Mapping[str, str], clock: ServerTime) -> None: ...


class SharedPacer:
    """Even spacing of requests under one `RateLimit`, shared by every thread, process and
    machine whose pacer uses the same backend and key (a pyrate-limiter `Limiter`).

    Args:
        connector: the connector's name, used in messages.
        limit: the limit to pace under.
        limiter: a blocking pyrate-limiter `Limiter` admitting one item per interval.
        key: the bucket key this limit is counted under.
        backend: the backend's URL with any password masked, named in errors.
    """

    def __init__(
        self,
        connector: str,
        limit: RateLimit,
        limiter: Any,
        key: str,
        backend: str,
        announce: Announce | None = None,
        reserve: float = DEFAULT_BUDGET_RESERVE,
    ) -> None:
        self.connector = connector
        self.limit = limit
        self._pattern = re.compile(limit.path_pattern) if limit.path_pattern else None
        self._limiter = limiter
        self._key = key
        self._backend = backend
        # the reported budget, read in this process: it only ever slows this process down
        # (module docstring), by the spacing it asks for when that is wider than the default
        self._local = RequestPacer(limit, announce, reserve) if limit.budget else None

    def applies_to(self, path: str) -> bool:
        return self._pattern is None or bool(self._pattern.search(path))

    def observe(self, headers: Mapping[str, str], clock: ServerTime) -> None:
        if self._local is not None:
            self._local.observe(headers, clock)

    def wait(self) -> float:
        """Block until the reported budget (if slower than the default) and then the shared
        bucket admit this request; return the seconds waited."""
        started = time.monotonic()
        if self._local is not None:
            self._local.wait()  # its default is the bucket's pace: never faster than the bucket
        try:
            self._limiter.try_acquire(self._key)
        except backend_errors() as exc:
            raise backend_error(self.connector, self._backend, exc) from None
        return time.monotonic() - started


# pyrate-limiter sleeps this much past the computed wait; its default (50 ms) would
# stretch every contended slot by as much. Machines sharing a Redis backend need clocks
# in step (NTP) anyway: the headroom of `RateLimit` absorbs a few milliseconds.
SHARED_BUFFER_MS = 0


def pacers_for(
    connector: str,
    limits: Sequence[RateLimit],
    backend: str | None = None,
    announce: Announce | None = None,
    reserve: float = DEFAULT_BUDGET_RESERVE,
) -> list[Pacer]:
    """The pacers of one source: in process when `backend` is empty, else on the shared
    backend it names (see the module docstring); `announce` receives the notices of
    budget pacing; `reserve` is the share of a reported budget spread to its reset.
    Raises `ConfigurationError` naming `sources.<connector>.rate_limit_backend` for a
    backend it cannot use or reach, or `sources.<connector>.budget_reserve` for a reserve
    that is no share of the limit."""
    if not 0 <= reserve <= 1:
        raise ConfigurationError(
            f"{connector}: `{config_key(connector, 'budget_reserve')}` must be a share of the "
            f"reported limit from 0 to 1 (0.2 keeps 20% in reserve), got {reserve!r}"
        )
    if not backend or not limits:
        return [RequestPacer(limit, announce, reserve) for limit in limits]
    from pyrate_limiter import Limiter, Rate

    shown = mask_password(backend)
    # ValueError: a malformed URL
    unusable: tuple[type[BaseException], ...] = (*backend_errors(), ValueError)
    try:
        make_bucket = _bucket_maker(connector, backend, shown)
    except unusable as exc:
        raise backend_error(connector, shown, exc) from None
    pacers: list[Pacer] = []
    for index, limit in enumerate(limits):
        # every process pacing this connector's limit counts under the same key
        key = f"dlt_catalog_{connector}_{index}"
        # one request per interval (rounded up to whole milliseconds), no bursts
        rate = Rate(1, max(1, math.ceil(limit.interval * 1000)), burst=1)
        try:
            bucket = make_bucket(rate, key)
        except backend_errors() as exc:
            raise backend_error(connector, shown, exc) from None
        limiter = Limiter(bucket, buffer_ms=SHARED_BUFFER_MS)
        pacers.append(SharedPacer(connector, limit, limiter, key, shown, announce, reserve))
    return pacers


def _bucket_maker(connector: str, url: str, shown: str) -> Callable[[Any, str], Any]:
    """A function of (rate, key) making a pyrate-limiter bucket on the backend `url`."""
    setting = config_key(connector, "rate_limit_backend")
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("redis", "rediss"):
        from pyrate_limiter import GCRA, RedisStateStore, StateBucket
        from redis import Redis

        client = Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
        client.ping()  # an unreachable server fails here, before any request is sent
        state_bucket = checked_now(StateBucket)
        # GCRA keeps one "next free slot" per key, updated atomically by a Lua script: a
        # process whose clock reading is a moment stale is refused, never let in early
        # (the sorted-set RedisBucket would admit it)
        return lambda rate, key: state_bucket(
            [rate], algorithm=GCRA(), store=RedisStateStore(client, f"{key}:gcra")
        )
    if scheme == "sqlite":
        from pyrate_limiter import SQLiteBucket

        # SQLAlchemy's form: sqlite:///relative.db, sqlite:////absolute.db
        path = url[len("sqlite:///") :] if url.lower().startswith("sqlite:///") else ""
        if not path:
            raise ConfigurationError(
                f"{connector}: `{setting}` = {shown!r} names no file: use "
                "sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        # the file lock serialises the check-and-insert across processes
        sqlite_bucket = checked_now(SQLiteBucket)
        return lambda rate, key: sqlite_bucket.init_from_file(
            [rate], table=key, db_path=path, use_file_lock=True
        )
    raise ConfigurationError(
        f"{connector}: unsupported rate-limit backend {shown!r} in `{setting}`: use "
        "redis://host:port/db, sqlite:///path/to/file.db, or leave it unset to pace in "
        "this process only"
    )


def checked_now(bucket_class: Any) -> Any:
    """`bucket_class` checking (and recording) each request at the time it is checked.

    pyrate-limiter's blocking retry re-checks with the first attempt's time plus the sleep
    it planned; after oversleeping, or waiting for the lock another process holds, that
    time is already past, and the request would be recorded earlier than it is sent, too
    close to the next process's."""

    class CheckedNow(bucket_class):
        def put(self, item: Any) -> Any:
            item.timestamp = self.now()
            return super().put(item)

    CheckedNow.__name__ = CheckedNow.__qualname__ = f"CheckedNow{bucket_class.__name__}"
    return CheckedNow


def backend_errors() -> tuple[type[BaseException], ...]:
    """The errors a shared backend raises when it cannot be reached or used."""
    from redis.exceptions import RedisError

    return (sqlite3.Error, OSError, RedisError)


def backend_error(connector: str, backend: str, exc: BaseException) -> ConfigurationError:
    """One line naming the backend, the setting it came from and what went wrong."""
    message = str(exc).strip()
    detail = message.splitlines()[0] if message else type(exc).__name__
    return ConfigurationError(
        f"{connector}: cannot use the rate-limit backend {backend} set in "
        f"`sources.{connector}.rate_limit_backend` ({detail}); start it, fix the setting, "
        "or remove it to pace in this process only"
    )


def mask_password(url: str) -> str:
    """`url` with the password in its user info replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
