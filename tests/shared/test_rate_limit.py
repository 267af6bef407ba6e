"""shared.rate_limit: proactive pacing, shared by every thread of a source."""

from __future__ import annotations

import threading
import time

import pytest
import requests
import responses

from shared.rate_limit import RateLimit, RequestPacer
from shared.session import ConnectorSession

BASE_URL = "https://api.example.com"


def most_in_any_window(moments: list[float], seconds: float) -> int:
    """The largest number of `moments` inside any half-open window of `seconds`."""
    moments = sorted(moments)
    return max(
        sum(1 for later in moments[i:] if later - start < seconds)
        for i, start in enumerate(moments)
    )


def test_interval_spreads_the_limit_evenly_with_headroom() -> None:
    assert RateLimit(20, 1.0).interval == pytest.approx(1 / 18)
    assert RateLimit(120, 60, headroom=1.0).interval == pytest.approx(0.5)


def test_path_pattern_selects_the_requests_a_pacer_applies_to() -> None:
    search = RequestPacer(RateLimit(10, 1.0, path_pattern=r"/search$"))
    everything = RequestPacer(RateLimit(10, 1.0))

    assert search.applies_to("/v2/contacts/search")
    assert not search.applies_to("/v2/contacts")
    assert everything.applies_to("/anything")


def test_pacer_gives_each_caller_the_next_slot_one_interval_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    pacer = RequestPacer(RateLimit(10, 1.0, headroom=1.0))

    waits = [pacer.wait() for _ in range(4)]
    now[0] = 105.0  # idle for a while: no debt carried over, the next caller goes at once
    waits.append(pacer.wait())

    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.0])


def test_threads_sharing_a_session_stay_under_the_limit_together(
    mocked: responses.RequestsMock,
) -> None:
    sent_at: list[float] = []
    lock = threading.Lock()

    def record(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        with lock:
            sent_at.append(time.monotonic())
        return 200, {}, "[]"

    mocked.add_callback("GET", f"{BASE_URL}/items", callback=record)
    limit = RateLimit(20, 1.0)  # paced at 18/s: one request every 1/18 s
    session = ConnectorSession("demo", BASE_URL, rate_limits=[limit])
    threads, per_thread = 8, 4

    def worker() -> None:
        for _ in range(per_thread):
            session.get(f"{BASE_URL}/items")

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    n = threads * per_thread
    assert len(sent_at) == n
    elapsed = max(sent_at) - started
    expected = (n - 1) * limit.interval  # 1.72 s
    assert expected - 0.05 <= elapsed <= expected + 0.4
    assert most_in_any_window(sent_at, 1.0) <= limit.requests
    # without pacing all 32 would go out in the first window
    assert most_in_any_window(sent_at, 1.0) < n


def test_every_matching_pacer_is_waited_for(
    mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # time passes without waiting for it
        waits.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(time, "sleep", sleep)
    mocked.get(f"{BASE_URL}/search", json=[])
    overall = RateLimit(1, 10.0, headroom=1.0)
    search = RateLimit(1, 30.0, path_pattern="/search", headroom=1.0)
    session = ConnectorSession("demo", BASE_URL, rate_limits=[overall, search])

    session.get(f"{BASE_URL}/search")
    session.get(f"{BASE_URL}/search")

    # the second request: 10 s for the overall pacer, then the rest of the search pacer's 30 s
    assert waits == pytest.approx([10.0, 20.0])
    assert clock[0] == pytest.approx(30.0)
