"""shared.collector: the garbage collector while a sync reads its pages."""

from __future__ import annotations

import gc
import threading

from shared.collector import SYNC_COLLECTION_THRESHOLD, fewer_collections


def test_within_older_objects_are_left_alone_and_after_the_collector_is_as_it_was() -> None:
    before, thresholds = gc.get_freeze_count(), gc.get_threshold()
    kept = [[n] for n in range(1000)]  # objects the collector tracks

    with fewer_collections():
        assert gc.get_freeze_count() >= before + len(kept)
        assert gc.get_threshold() == (SYNC_COLLECTION_THRESHOLD, *thresholds[1:])

    assert gc.get_freeze_count() == before
    assert gc.get_threshold() == thresholds


def test_overlapping_readers_in_threads_change_the_collector_once_first_in_last_out() -> None:
    before, thresholds = gc.get_freeze_count(), gc.get_threshold()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, tuple[int, tuple[int, ...]]] = {}

    def first() -> None:
        with fewer_collections():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with fewer_collections():
            second_in.set()
            first_out.wait(5)
            seen["after the first left"] = (gc.get_freeze_count(), gc.get_threshold())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    frozen, during = seen["after the first left"]
    assert frozen > before and during == (SYNC_COLLECTION_THRESHOLD, *thresholds[1:])
    assert (gc.get_freeze_count(), gc.get_threshold()) == (before, thresholds)


def test_a_collector_turned_off_or_frozen_by_the_process_is_left_as_it_is() -> None:
    thresholds = gc.get_threshold()
    gc.disable()
    try:
        with fewer_collections():
            assert gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds
    finally:
        gc.enable()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with fewer_collections():
            assert gc.get_freeze_count() == frozen and gc.get_threshold() == thresholds
        assert gc.get_freeze_count() == frozen  # not unfrozen by us
    finally:
        gc.unfreeze()
