"""A request's deadline, enforced while the status line and headers arrive.

The session reads a body against its deadline itself (`shared.http.session`), but the status
line and headers are read inside `http.client`, where the only bound is the per-read
timeout, and that restarts with every byte: a server that drips its header lines one
byte at a time could hold a request, and the sync, for ever.

`DeadlineWatchdog` is one thread with the deadlines of the requests in flight. A request
`watch()`es its deadline; the connection pools of a watched adapter (`WatchedAdapter`,
which a `ConnectorSession` mounts, and any adapter mounted on one: `watched`) tell the
watch which connection the request went out on; if the deadline passes before the
request is done, the watchdog shuts that connection's socket down, the blocked read
returns, and the session reports `RequestDeadlineExceeded` (`Watch.fired`).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class Watch:
    """One request's deadline: the connection it went out on, and whether it fired."""

    __slots__ = ("connection", "deadline", "done", "fired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline  # time.monotonic()
        self.connection: Any = None
        self.done = False
        self.fired = False


_current = threading.local()
#: the watchdog's clock, bound at import: a test (or a user's code) that replaces
#: `time.monotonic` to fake time for something else does not move requests' deadlines
_monotonic = time.monotonic


class DeadlineWatchdog:
    """One daemon thread that shuts down the connection of any request still in flight
    at its deadline. Cheap per request: a heap push, and a wake-up only when the new
    deadline is the earliest."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, seconds: float) -> Iterator[Watch]:
        """Watch the request made inside the block (in this thread) for `seconds`."""
        watch = Watch(_monotonic() + seconds)
        with self._condition:
            self._start()
            # finished watches leave the top first: the thread, sleeping until the earliest
            # deadline it knew, must hear of a new earliest one
            while self._heap and self._heap[0][2].done:
                heapq.heappop(self._heap)
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._heap[0][2] is watch:
                self._condition.notify()
        previous, _current.watch = getattr(_current, "watch", None), watch
        try:
            yield watch
        finally:
            _current.watch = previous
            with self._condition:
                watch.done = True

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="connectors-request-deadlines", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        with self._condition:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._condition.wait()
                    continue
                deadline, _, watch = self._heap[0]
                remaining = deadline - _monotonic()
                if remaining > 0:
                    self._condition.wait(remaining)
                    continue
                heapq.heappop(self._heap)
                watch.fired = True
                _shut_down(watch.connection)


def _shut_down(connection: Any) -> None:
    """Unblock a read on `connection`'s socket from another thread (`close` alone would
    not wake a thread blocked in `recv`)."""
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    # already closed or never connected: nothing blocks on it
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


#: the process's watchdog: one thread for every session
WATCHDOG = DeadlineWatchdog()


class _WatchedPool:
    """Mixin: tell the request's watch which connection it goes out on."""

    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.connection = conn
            if watch.fired:  # the deadline passed before the connection was chosen
                _shut_down(conn)
        return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]


class WatchedHTTPConnectionPool(_WatchedPool, HTTPConnectionPool):
    pass


class WatchedHTTPSConnectionPool(_WatchedPool, HTTPSConnectionPool):
    pass


#: urllib3's own pool classes, which a watched pool manager replaces
PLAIN_POOLS = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}
WATCHED_POOLS = {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}


def watch_pools(manager: Any) -> None:
    """Make a urllib3 pool manager (or proxy manager) open watched connection pools; one
    with pools of its own (a SOCKS proxy's) keeps them."""
    if getattr(manager, "pool_classes_by_scheme", None) == PLAIN_POOLS:
        manager.pool_classes_by_scheme = dict(WATCHED_POOLS)


class WatchedPools:
    """Mixin for a `requests` `HTTPAdapter`: every pool manager it builds, when it is made,
    rebuilt (`init_poolmanager`, which unpickling calls too) or made for a proxy
    (`proxy_manager_for`), opens watched connection pools."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[misc]
        watch_pools(self.poolmanager)  # type: ignore[attr-defined]

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(*args, **kwargs)  # type: ignore[misc]
        watch_pools(manager)
        return manager

    def __reduce_ex__(self, protocol: Any) -> Any:
        # pickled as the adapter class it was made from (a class `watched` made is no
        # importable name); unpickling rebuilds the pools (`HTTPAdapter.__setstate__`)
        if type(self) is WatchedAdapter:
            return super().__reduce_ex__(protocol)
        kind = next(k for k in type(self).__mro__[1:] if k is not WatchedPools)
        return (_unpickle_watched, (kind, self.__getstate__()))  # type: ignore[attr-defined]


class WatchedAdapter(WatchedPools, HTTPAdapter):
    """`requests`' `HTTPAdapter`, its connections watched: what a `ConnectorSession` mounts."""


@cache
def _watched_class(kind: type) -> type:
    if kind is HTTPAdapter:
        return WatchedAdapter
    return type(f"Watched{kind.__name__}", (WatchedPools, kind), {"__module__": kind.__module__})


def _unpickle_watched(kind: type[HTTPAdapter], state: dict[str, Any]) -> BaseAdapter:
    adapter = kind.__new__(kind)
    adapter.__setstate__(state)
    return watched(adapter)


def watched(adapter: BaseAdapter) -> BaseAdapter:
    """`adapter`, its connections watched from now on, however often it rebuilds its pools.

    An `HTTPAdapter` (or subclass: a user's, with its own retries or TLS settings) becomes
    an instance of its class with `WatchedPools` mixed in, keeping its settings and its
    pool manager; any other adapter (one that does not open urllib3 pools) is returned
    as it is."""
    if isinstance(adapter, WatchedPools) or not isinstance(adapter, HTTPAdapter):
        return adapter
    kind: type = type(adapter)
    adapter.__class__ = _watched_class(kind)
    watch_pools(adapter.poolmanager)
    for manager in adapter.proxy_manager.values():
        watch_pools(manager)
    return adapter
