"""Python's cyclic garbage collector while a sync reads its pages.

A sync brings many rows that live for a batch (about 2,000 rows, half a dozen containers
each): long enough for the collector's young collections, every 700 allocations by
default, to move them into the older generations, so the collector soon makes full
collections, each walking every object of the process (dlt's, pyarrow's, DuckDB's
modules and all). Reading 100,000 project_tracker stories that took 0.5-0.6 s of 2.8 s.

While a resource reads its pages (`fewer_collections`), the objects that existed before
are left alone (`gc.freeze`) and the youngest generation is collected every
`SYNC_COLLECTION_THRESHOLD` allocations, so a batch's rows are freed before a collection
walks them (0.1 s in the same sync); after, the older objects are collected again and
the thresholds are the process's again. Nested or concurrent readers (several resources,
threads) change the collector once, the first in and the last out; a process whose
objects are frozen already (its own `gc.freeze`), or whose collector is off, is left as
it is.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: allocations between two collections of the youngest generation while pages are read
#: (Python's default: 700); a threshold the process set higher is kept
SYNC_COLLECTION_THRESHOLD = 30_000

_readers = 0  # readers inside `fewer_collections` that changed the collector
_saved_thresholds: list[tuple[int, ...]] = []
_lock = threading.Lock()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Within: the collector leaves older objects alone and collects young ones less
    often (see the module)."""
    global _readers
    with _lock:
        owns = _readers > 0 or (gc.isenabled() and gc.get_freeze_count() == 0)
        if owns:
            if _readers == 0:
                gc.freeze()
                thresholds = gc.get_threshold()
                _saved_thresholds.append(thresholds)
                if 0 < thresholds[0] < SYNC_COLLECTION_THRESHOLD:
                    gc.set_threshold(SYNC_COLLECTION_THRESHOLD, *thresholds[1:])
            _readers += 1
    try:
        yield
    finally:
        if owns:
            with _lock:
                _readers -= 1
                if _readers == 0:
                    gc.set_threshold(*_saved_thresholds.pop())
                    gc.unfreeze()
