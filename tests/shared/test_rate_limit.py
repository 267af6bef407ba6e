"""shared.rate_limit: proactive pacing, shared by every thread of a source."""

from __future__ import annotations

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
from shared.rate_limit import RateLimit, RequestPacer, SharedPacer, pacers_for
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
