"""shared.http.rate_limit: proactive pacing, shared by every thread of a source."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest
import requests
import responses

from connectors.crm import crm_source
from shared.errors import ConfigurationError
from shared.http.rate_limit import (
    DEFAULT_BUDGET_RESERVE,
    Budget,
    BudgetHeaders,
    RateLimit,
    Reading,
    RequestPacer,
    SharedPacer,
    Unbelievable,
    pacers_for,
    read_budget,
)
from shared.http.session import ConnectorSession

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
    monkeypatch.setattr(time, "sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))
    pacer = RequestPacer(RateLimit(10, 1.0, headroom=1.0))

    waits = [pacer.wait() for _ in range(4)]
    assert now[0] == pytest.approx(100.3)  # sent at 100.0, 100.1, 100.2 and 100.3
    now[0] = 105.0  # idle for a while: no debt carried over, the next caller goes at once
    waits.append(pacer.wait())

    assert waits == pytest.approx([0.0, 0.1, 0.1, 0.1, 0.0])


def test_a_caller_woken_late_pushes_the_next_slot_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # a busy machine wakes a sleeper late: the next request must still keep one interval
    # from the late one, or two would reach the API almost together
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(time, "sleep", lambda seconds: now.__setitem__(0, now[0] + seconds + 0.07))
    pacer = RequestPacer(RateLimit(10, 1.0, headroom=1.0))

    sent = []
    for _ in range(4):
        pacer.wait()
        sent.append(now[0])

    gaps = [later - earlier for earlier, later in pairwise(sent)]
    assert gaps == pytest.approx([0.17, 0.17, 0.17])
    assert min(gaps) >= 0.1


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
    # never faster than the pace; slower only by what a loaded machine adds (not double)
    assert expected - 0.05 <= elapsed <= expected * 2
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


# -- shared backends (sources.<name>.rate_limit_backend) ----------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_without_a_backend_each_session_paces_in_its_own_process() -> None:
    pacers = pacers_for("demo", [RateLimit(20, 1.0)], backend=None)

    assert [type(pacer) for pacer in pacers] == [RequestPacer]


def test_sessions_on_one_sqlite_backend_share_one_even_spacing(
    mocked: responses.RequestsMock, tmp_path: Path
) -> None:
    sent_at: list[float] = []
    lock = threading.Lock()

    def record(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        with lock:
            sent_at.append(time.monotonic())
        return 200, {}, "[]"

    mocked.add_callback("GET", f"{BASE_URL}/items", callback=record)
    limit = RateLimit(20, 1.0)  # one request every 1/18 s, across both sessions
    backend = f"sqlite:///{tmp_path / 'pacing.db'}"
    # two sessions, each with its own connection to the file: as two processes would have
    sessions = [
        ConnectorSession("demo", BASE_URL, rate_limits=[limit], rate_limit_backend=backend)
        for _ in range(2)
    ]
    assert all(isinstance(s.pacers[0], SharedPacer) for s in sessions)

    def worker(session: ConnectorSession) -> None:
        for _ in range(3):
            session.get(f"{BASE_URL}/items")

    pool = [threading.Thread(target=worker, args=(s,)) for s in sessions for _ in range(2)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    moments = sorted(sent_at)
    gaps = sorted(later - earlier for earlier, later in zip(moments, moments[1:], strict=False))
    assert len(moments) == 12
    # one spacing for all 12: each session pacing alone would send its 6 in 5 intervals
    assert moments[-1] - moments[0] >= 11 * limit.interval - 0.02
    assert gaps[len(gaps) // 2] >= limit.interval - 0.002


def test_unreachable_redis_fails_in_one_line_naming_the_setting() -> None:
    port = free_port()  # nothing listens there

    with pytest.raises(ConfigurationError) as raised:
        pacers_for("demo", [RateLimit(20, 1.0)], f"redis://:hunter2pw@127.0.0.1:{port}/0")

    message = str(raised.value)
    assert message.startswith(
        f"demo: cannot use the rate-limit backend redis://:***@127.0.0.1:{port}/0 set in "
        "`sources.demo.rate_limit_backend` ("
    )
    assert "Connection refused" in message
    assert message.endswith(
        "); start it, fix the setting, or remove it to pace in this process only"
    )
    assert "\n" not in message
    assert "hunter2pw" not in message


def test_unknown_backend_scheme_names_the_setting_and_the_choices() -> None:
    with pytest.raises(ConfigurationError) as raised:
        pacers_for("demo", [RateLimit(20, 1.0)], "memcached://127.0.0.1:11211")

    assert str(raised.value) == (
        "demo: unsupported rate-limit backend 'memcached://127.0.0.1:11211' in "
        "`sources.demo.rate_limit_backend`: use redis://host:port/db, "
        "sqlite:///path/to/file.db, or leave it unset to pace in this process only"
    )


def test_sqlite_backend_without_a_file_names_the_form_it_takes() -> None:
    with pytest.raises(ConfigurationError) as raised:
        pacers_for("demo", [RateLimit(20, 1.0)], "sqlite://")

    assert str(raised.value) == (
        "demo: `sources.demo.rate_limit_backend` = 'sqlite://' names no file: use "
        "sqlite:///relative/path.db or sqlite:////absolute/path.db"
    )


def test_source_reads_its_backend_from_dlt_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    monkeypatch.setenv("SOURCES__CRM__RATE_LIMIT_BACKEND", f"redis://127.0.0.1:{port}/0")

    with pytest.raises(ConfigurationError, match=r"^crm: cannot use the rate-limit backend"):
        crm_source(bearer_token="t0ken-for-the-test", base_url=BASE_URL)


# -- pacing by the budget the API reports ---------------------------------------------------

CRM_HEADERS = BudgetHeaders(
    limit="X-RateLimit-Limit", remaining="X-RateLimit-Remaining", reset="X-RateLimit-Reset"
)
ROLLING_HEADERS = BudgetHeaders(
    limit="X-HubSpot-RateLimit-Max",
    remaining="X-HubSpot-RateLimit-Remaining",
    window_ms="X-HubSpot-RateLimit-Interval-Milliseconds",
    max_window=60,
)
SERVER_NOW = 1_700_000_000.0


class FixedClock:
    """A server clock standing still at `now` (epoch seconds)."""

    def __init__(self, now: float = SERVER_NOW) -> None:
        self.now = now

    def surely_now(self) -> float:
        return self.now


def reported(limit: object, remaining: object, reset: object) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }


def test_a_fixed_window_lasts_until_its_reset_second_has_surely_passed() -> None:
    reading = read_budget(CRM_HEADERS, reported(4000, 1200, int(SERVER_NOW) + 600), SERVER_NOW)

    # the header has whole seconds and a server may round down: one second more
    assert reading == Reading(limit=4000, remaining=1200, seconds=601.0, rolling=False)


def test_a_rolling_window_is_read_in_seconds() -> None:
    sent = {
        "X-HubSpot-RateLimit-Max": "190",
        "X-HubSpot-RateLimit-Remaining": "150",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }

    assert read_budget(ROLLING_HEADERS, sent, SERVER_NOW) == Reading(190, 150, 10.0, True)


def test_no_budget_headers_report_nothing() -> None:
    assert read_budget(CRM_HEADERS, {"Content-Type": "application/json"}, SERVER_NOW) is None


def test_a_reset_a_moment_past_is_a_window_resetting_now_and_teaches_nothing() -> None:
    # clocks a moment apart: neither a budget to spend nor a header to distrust
    assert read_budget(CRM_HEADERS, reported(100, 0, int(SERVER_NOW) - 3), SERVER_NOW) is None


@pytest.mark.parametrize(
    ("limit", "remaining", "reset", "why"),
    [
        (100, -5, 60, "X-RateLimit-Remaining '-5' is not a count of requests"),
        ("lots", 5, 60, "X-RateLimit-Limit 'lots' is not a count of requests"),
        (100, "5.5", 60, "X-RateLimit-Remaining '5.5' is not a count of requests"),
        (10**15, 5, 60, f"X-RateLimit-Limit '{10**15}' is not a credible count of requests"),
        (100, 500, 60, "X-RateLimit-Remaining 500 is more than X-RateLimit-Limit 100"),
        (0, 0, 60, "X-RateLimit-Limit 0 allows nothing"),
        (100, 5, "soon", "X-RateLimit-Reset 'soon' is not a number"),
        (100, 5, "nan", "X-RateLimit-Reset 'nan' is not a number of 0 or more"),
        (100, 5, -3600, "is in the past"),
        (100, 5, 10**12, "is more than 3600 s away"),
    ],
)
def test_budget_headers_that_cannot_be_believed_say_why(
    limit: object, remaining: object, reset: object, why: str
) -> None:
    # `reset` is relative to the server's now, unless far out of range
    at = reset if not isinstance(reset, int) or abs(reset) > 10**6 else int(SERVER_NOW) + reset

    with pytest.raises(Unbelievable) as raised:
        read_budget(CRM_HEADERS, reported(limit, remaining, at), SERVER_NOW)

    assert why in str(raised.value)


def test_budget_headers_with_one_missing_cannot_be_believed() -> None:
    sent = reported(100, 5, int(SERVER_NOW) + 60)
    del sent["X-RateLimit-Reset"]

    with pytest.raises(Unbelievable, match="^X-RateLimit-Reset missing$"):
        read_budget(CRM_HEADERS, sent, SERVER_NOW)


def budget_of(
    headers: BudgetHeaders = CRM_HEADERS, reserve: float = DEFAULT_BUDGET_RESERVE
) -> tuple[Budget, list[str]]:
    notices: list[str] = []
    return Budget(RateLimit(66, 60, budget=headers), reserve, notices.append), notices


def wait_asked_at(budget: Budget, moment: float) -> float | None:
    """The wait the budget asks of a request at `moment`; None: no budget, the default pace.

    Tests ask at a moment taken before the budget read its headers (`before`): the budget
    counts its window from when it read them, some moment in the `took` that reading
    needed (longer on a busy machine), so the wait asked at `before` is the expected one
    plus at most `took`.
    """
    due = budget.due(moment, last_left=moment)
    return None if due is None else max(0.0, due - moment)


def test_above_the_reserve_requests_go_at_full_speed() -> None:
    budget, notices = budget_of()
    budget.issue()  # the request whose response reports the budget
    budget.observe(reported(4000, 3999, int(SERVER_NOW) + 3599), FixedClock())
    now = time.monotonic()

    # a sync that needs less than the 3,199 above the reserve (800, 20%) never waits
    assert budget.due(now, last_left=now) == now
    assert len(notices) == 1 and "reports 3,999 of 4,000 requests left until" in notices[0]
    assert "full speed while more than 800 remain (20% in reserve)" in notices[0]


def test_at_the_reserve_what_remains_is_spread_evenly_until_the_reset() -> None:
    budget, notices = budget_of()
    before = time.monotonic()
    budget.issue()
    budget.observe(reported(200, 40, int(SERVER_NOW) + 9), FixedClock())
    took = time.monotonic() - before

    # 40 requests left (the reserve), spread until the middle of the reset's second, 9.5 s away
    assert wait_asked_at(budget, before) == pytest.approx(9.5 / 40, abs=0.005 + took)
    assert (
        notices
        == [
            notices[0]  # one notice of the change, naming what was reported
        ]
        and "reports 40 of 200 requests left until" in notices[0]
        and "spreading them evenly until the reset" in notices[0]
    )


def test_requests_let_through_at_full_speed_bring_the_reserve_closer() -> None:
    budget, notices = budget_of()
    before = time.monotonic()
    budget.issue()
    budget.observe(reported(200, 45, int(SERVER_NOW) + 9), FixedClock())
    took = time.monotonic() - before
    assert wait_asked_at(budget, before) == 0.0

    for _ in range(5):
        budget.issue()  # sent, not yet answered: 40 left, the reserve

    assert wait_asked_at(budget, before) == pytest.approx(9.5 / 40, abs=0.005 + took)


def test_requests_still_unanswered_from_before_the_reporting_one_are_taken_off() -> None:
    budget, _ = budget_of()
    earlier_sent = threading.Event()

    def earlier_request() -> None:
        budget.issue()  # request 1: sent, its answer still to come
        earlier_sent.set()

    thread = threading.Thread(target=earlier_request)
    thread.start()
    earlier_sent.wait(5)
    before = time.monotonic()
    budget.issue()  # request 2, answered first: the server may not have counted request 1
    budget.observe(reported(200, 41, int(SERVER_NOW) + 9), FixedClock())
    took = time.monotonic() - before
    thread.join()

    # 41 - 1 = 40 left: the reserve, spread over the 9.5 s
    assert wait_asked_at(budget, before) == pytest.approx(9.5 / 40, abs=0.005 + took)


def test_reaching_the_reserve_is_announced_once_a_window() -> None:
    budget, notices = budget_of()
    for remaining in (150, 40, 30):
        budget.issue()
        budget.observe(reported(200, remaining, int(SERVER_NOW) + 9), FixedClock())

    assert len(notices) == 2
    assert "full speed while more than 40 remain" in notices[0]
    assert notices[1].startswith("the API reports 40 of 200 requests left until ")
    assert "the reserve (20% of the limit): spreading them evenly until the reset" in notices[1]


@pytest.mark.parametrize(
    ("reserve", "remaining", "interval"),
    [(0.0, 1, 0.0), (0.0, 0, 10.0), (1.0, 199, 9.5 / 199), (0.5, 101, 0.0), (0.5, 100, 0.095)],
)
def test_the_reserve_is_the_share_of_the_limit_the_source_chooses(
    reserve: float, remaining: int, interval: float
) -> None:
    budget, _ = budget_of(reserve=reserve)
    before = time.monotonic()
    budget.issue()
    budget.observe(reported(200, remaining, int(SERVER_NOW) + 9), FixedClock())
    took = time.monotonic() - before

    assert wait_asked_at(budget, before) == pytest.approx(interval, abs=0.005 + took)


@pytest.mark.parametrize("reserve", [-0.1, 1.5, float("nan")])
def test_a_reserve_that_is_no_share_of_the_limit_fails_naming_the_setting(reserve: float) -> None:
    with pytest.raises(ConfigurationError) as raised:
        crm_source(bearer_token="t0ken-for-the-test", base_url=BASE_URL, budget_reserve=reserve)

    assert str(raised.value) == (
        "crm: `sources.crm.budget_reserve` must be a share of the reported limit from 0 to 1 "
        f"(0.2 keeps 20% in reserve), got {reserve!r}"
    )


def test_requests_sent_since_the_reporting_one_are_taken_off_what_remains() -> None:
    budget, _ = budget_of()
    budget.issue()  # request 1, in this thread

    def others() -> None:
        for _ in range(5):
            budget.issue()  # requests 2-6, left before 1's answer came: not counted in it

    thread = threading.Thread(target=others)
    thread.start()
    thread.join()
    before = time.monotonic()
    budget.observe(reported(200, 10, int(SERVER_NOW) + 9), FixedClock())
    took = time.monotonic() - before

    # 10 - 5 = 5 left for the 9.5 s until the middle of the reset's second
    assert wait_asked_at(budget, before) == pytest.approx(9.5 / 5, abs=0.05 + took)


def test_with_nothing_left_requests_wait_until_the_window_has_surely_reset() -> None:
    budget, _ = budget_of()
    before = time.monotonic()
    budget.issue()
    budget.observe(reported(200, 0, int(SERVER_NOW) + 29), FixedClock())
    took = time.monotonic() - before

    assert wait_asked_at(budget, before) == pytest.approx(30.0, abs=0.05 + took)


def test_an_answer_overtaken_by_a_later_one_is_ignored() -> None:
    budget, _ = budget_of()
    clock = FixedClock()
    results: dict[str, threading.Event] = {}

    def older_request() -> None:
        budget.issue()  # request 1
        results["issued"].set()
        results["newer_seen"].wait(5)
        # its answer arrives after request 2's: it knew less
        budget.observe(reported(200, 199, int(SERVER_NOW) + 9), clock)

    results["issued"], results["newer_seen"] = threading.Event(), threading.Event()
    thread = threading.Thread(target=older_request)
    thread.start()
    results["issued"].wait(5)
    before = time.monotonic()
    budget.issue()  # request 2, in this thread
    budget.observe(reported(200, 20, int(SERVER_NOW) + 9), clock)
    took = time.monotonic() - before
    results["newer_seen"].set()
    thread.join()

    # 20 in 9.5 s: request 1's answer (199 left) changed nothing
    assert wait_asked_at(budget, before) == pytest.approx(9.5 / 20, abs=0.005 + took)


def test_however_large_a_spread_budget_requests_go_at_most_100_times_the_default_pace() -> None:
    budget, _ = budget_of(reserve=1.0)  # default: 66 a minute with headroom, 0.91 s apart
    budget.issue()
    budget.observe(reported(10_000_000, 9_000_000, int(SERVER_NOW) + 9), FixedClock())

    assert wait_asked_at(budget, time.monotonic()) == pytest.approx(60 / (66 * 0.9) / 100)


def test_once_the_window_has_reset_one_request_goes_at_once_then_the_default_pace() -> None:
    budget, _ = budget_of()
    before = time.monotonic()
    budget.issue()
    budget.observe(reported(200, 0, int(SERVER_NOW) + 9), FixedClock())
    took = time.monotonic() - before
    later = before + 11  # the window has surely reset (10 s, counted from within `took`)

    # nothing left: wait for the reset; after it, the first request goes at once
    first = budget.due(later, last_left=before)
    assert first is not None and first <= later
    assert first - before == pytest.approx(10, abs=0.05 + took)
    # its answer would tell the new window's budget; until one comes, the default pace
    assert budget.due(later + 0.1, last_left=later) is None


def test_unbelievable_headers_restore_the_default_pace_and_are_said_once() -> None:
    budget, notices = budget_of()
    budget.issue()
    budget.observe(reported(200, 100, int(SERVER_NOW) + 9), FixedClock())
    for remaining in (-1, -2):
        budget.issue()
        budget.observe(reported(200, remaining, int(SERVER_NOW) + 9), FixedClock())

    assert budget.due(time.monotonic(), last_left=0.0) is None
    assert notices[1:] == [
        "ignoring the rate-limit headers of the API (X-RateLimit-Remaining '-1' is not a "
        "count of requests); pacing at the default 66 requests per 60 s instead"
    ]


def test_a_rolling_budget_spaces_requests_at_its_maximum_with_headroom() -> None:
    budget, notices = budget_of(ROLLING_HEADERS)
    before = time.monotonic()
    budget.issue()
    sent = {
        "X-HubSpot-RateLimit-Max": "50",
        "X-HubSpot-RateLimit-Remaining": "10",  # the reserve
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    budget.observe(sent, FixedClock())
    took = time.monotonic() - before

    # waits count from moments within `took` (longer on a busy machine): asked at `before`,
    # each is its value plus at most that much
    assert wait_asked_at(budget, before) == pytest.approx(10 / 45, abs=0.01 + took)
    assert "budget of 50 requests per 10 s" in notices[0]
    full_speed = "full speed while more than 10 remain (20% in reserve), never more than 45"
    assert full_speed in notices[0]

    budget.issue()
    budget.observe({**sent, "X-HubSpot-RateLimit-Remaining": "0"}, FixedClock())
    took = time.monotonic() - before
    # someone else spent the window: wait until it has rolled past
    assert wait_asked_at(budget, before) == pytest.approx(10.0, abs=0.05 + took)


def test_a_rolling_burst_stops_at_the_windows_allowance_even_with_no_reserve() -> None:
    budget, _ = budget_of(ROLLING_HEADERS, reserve=0.0)
    sent = {
        "X-HubSpot-RateLimit-Max": "50",
        "X-HubSpot-RateLimit-Remaining": "50",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    start = time.monotonic()
    budget.issue(start)
    budget.observe(sent, FixedClock())
    for i in range(1, 45):
        budget.issue(start + i * 0.01)  # 45 sent in 0.44 s: the allowance (50 with headroom)

    # 6 left by the report, but no 46th inside the window: it waits for the first to roll out
    assert budget.due(start + 0.5, last_left=start + 0.44) == pytest.approx(start + 10.0)
    # once the first has rolled out of the window (the other 44 still in it), one more goes
    due = budget.due(start + 10.005, last_left=start + 0.44)
    assert due is not None and due <= start + 10.005


def test_a_session_paces_by_the_budget_its_responses_report(
    mocked: responses.RequestsMock,
) -> None:
    reset = int(time.time()) + 2  # 2 to 3 s from now
    mocked.get(f"{BASE_URL}/items", json=[], headers=reported(100, 20, reset))
    limit = RateLimit(54, 60, budget=CRM_HEADERS)  # by default (with headroom) one a second
    session = ConnectorSession("demo", BASE_URL, rate_limits=[limit])

    started = time.monotonic()
    for _ in range(6):
        session.get(f"{BASE_URL}/items")
    elapsed = time.monotonic() - started

    # each answer: 20 left (the reserve) over 1.5 to 2.5 s, 0.075 to 0.125 s apart; by
    # default 5 s in all
    assert 0.2 <= elapsed <= 2.0


def test_on_a_shared_backend_a_larger_budget_does_not_speed_a_process_up(
    mocked: responses.RequestsMock, tmp_path: Path
) -> None:
    sent_at: list[float] = []

    def record(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        sent_at.append(time.monotonic())
        return 200, reported(10_000, 9_999, int(time.time()) + 60), "[]"

    mocked.add_callback("GET", f"{BASE_URL}/items", callback=record)
    limit = RateLimit(20, 1.0, budget=CRM_HEADERS)  # default: one request every 1/18 s
    backend = f"sqlite:///{tmp_path / 'pacing.db'}"
    session = ConnectorSession("demo", BASE_URL, rate_limits=[limit], rate_limit_backend=backend)

    for _ in range(6):
        session.get(f"{BASE_URL}/items")

    # the shared bucket's spacing still holds: five intervals between the first and the
    # last (the budget alone would allow 9,999 in 60 s, i.e. all six at once). Measured
    # over the whole run, not gap by gap: on a loaded machine a request may reach the
    # server a moment after its slot, making the next gap that much shorter.
    assert sent_at[-1] - sent_at[0] >= 5 * limit.interval * 0.8


def test_on_a_shared_backend_a_spent_budget_still_holds_a_process_back(
    mocked: responses.RequestsMock, tmp_path: Path
) -> None:
    sent_at: list[float] = []
    reset = int(time.time()) + 1  # surely reset in at most 2 s

    def record(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        sent_at.append(time.time())
        remaining = 0 if len(sent_at) == 1 else 50
        return 200, reported(100, remaining, reset), "[]"

    mocked.add_callback("GET", f"{BASE_URL}/items", callback=record)
    limit = RateLimit(600, 60, budget=CRM_HEADERS)
    backend = f"sqlite:///{tmp_path / 'pacing.db'}"
    session = ConnectorSession("demo", BASE_URL, rate_limits=[limit], rate_limit_backend=backend)

    session.get(f"{BASE_URL}/items")
    session.get(f"{BASE_URL}/items")

    # the second waited for the reset second to have passed, not the default 0.11 s
    assert sent_at[1] >= reset + 1.0 - 0.05


def test_session_logs_unbelievable_headers_once_through_its_redactor(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr3t-token-value-0123"
    mocked.get(f"{BASE_URL}/items", json=[], headers=reported(100, secret, 10))
    limit = RateLimit(6000, 60, budget=CRM_HEADERS)
    session = ConnectorSession("demo", BASE_URL, rate_limits=[limit])
    session.redactor.register(secret)

    with caplog.at_level(logging.INFO, logger="shared.http.session"):
        for _ in range(3):
            session.get(f"{BASE_URL}/items")

    lines = [r.getMessage() for r in caplog.records if "rate-limit headers" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("demo: ignoring the rate-limit headers of the API (")
    assert secret not in lines[0]


def test_a_long_wait_for_a_spent_budget_is_announced_before_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shared.http.rate_limit as rate_limit

    monkeypatch.setattr(rate_limit, "ANNOUNCED_WAIT_SECONDS", 0.5)  # instead of 10 s
    notices: list[str] = []
    pacer = RequestPacer(RateLimit(6000, 60, budget=CRM_HEADERS), notices.append)
    clock = FixedClock(time.time())
    pacer.wait()
    pacer.observe(reported(100, 0, int(clock.now) + 1), clock)  # none left: 1 to 2 s

    waited = pacer.wait()

    assert 0.9 <= waited <= 2.1
    assert re.fullmatch(
        r"waiting [12] s \(until \d\d:\d\d:\d\d UTC\) for the budget the API reports "
        r"\(X-RateLimit-Remaining, X-RateLimit-Reset\): it has little or nothing left",
        notices[-1],
    )
