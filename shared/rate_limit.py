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
"""

from __future__ import annotations

import logging
import math
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from shared.errors import ConfigurationError

#: `connectors run` counts its DEBUG records to show pacing waits (connectors/cli/progress.py)
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
        """Block until this caller's slot comes; return the seconds waited.

        Callers go one at a time, and the next slot is counted from the moment this caller
        really leaves, not from when its slot was due: a thread woken late (a busy
        machine) must not let the next one follow it closely, which would put more
        requests into some window than the limit allows."""
        with self._lock:
            now = time.monotonic()
            delay = max(0.0, self._next_slot - now)
            if delay > 0:
                logger.debug("waiting %.3f s for the rate limit", delay)
                time.sleep(delay)
            self._next_slot = time.monotonic() + self.limit.interval
        return delay


class Pacer(Protocol):
    """What a session waits on before each request it sends."""

    limit: RateLimit

    def applies_to(self, path: str) -> bool: ...

    def wait(self) -> float: ...


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
        self, connector: str, limit: RateLimit, limiter: Any, key: str, backend: str
    ) -> None:
        self.connector = connector
        self.limit = limit
        self._pattern = re.compile(limit.path_pattern) if limit.path_pattern else None
        self._limiter = limiter
        self._key = key
        self._backend = backend

    def applies_to(self, path: str) -> bool:
        return self._pattern is None or bool(self._pattern.search(path))

    def wait(self) -> float:
        """Block until the shared bucket admits this request; return the seconds waited."""
        started = time.monotonic()
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
    connector: str, limits: Sequence[RateLimit], backend: str | None = None
) -> list[Pacer]:
    """The pacers of one source: in process when `backend` is empty, else on the shared
    backend it names (see the module docstring). Raises `ConfigurationError` naming
    `sources.<connector>.rate_limit_backend` for a backend it cannot use or reach."""
    if not backend or not limits:
        return [RequestPacer(limit) for limit in limits]
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
        pacers.append(SharedPacer(connector, limit, limiter, key, shown))
    return pacers


def _bucket_maker(connector: str, url: str, shown: str) -> Callable[[Any, str], Any]:
    """A function of (rate, key) making a pyrate-limiter bucket on the backend `url`."""
    setting = f"sources.{connector}.rate_limit_backend"
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
