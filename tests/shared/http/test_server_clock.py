"""shared.http.server_clock: the server's time from the first `Date` header a session sees."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests
import responses

from shared.http.server_clock import ServerClock
from shared.http.session import ConnectorSession

LOCAL = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()


def response_dated(date: str | None) -> requests.Response:
    response = requests.Response()
    if date is not None:
        response.headers["Date"] = date
    return response


def test_the_first_date_header_sets_the_offset_and_later_ones_do_not() -> None:
    clock = ServerClock(local_clock=lambda: LOCAL)

    clock.observe(response_dated("Wed, 01 Jan 2025 11:00:00 GMT"))
    clock.observe(response_dated("Wed, 01 Jan 2025 12:30:00 GMT"))

    assert clock.offset == -3600
    assert clock.to_server_time(LOCAL) == datetime(2025, 1, 1, 11, 0, 0, tzinfo=timezone.utc)
    assert clock.to_server_time(LOCAL + 60) == datetime(2025, 1, 1, 11, 1, tzinfo=timezone.utc)


def test_without_a_usable_date_header_the_local_clock_stands_in() -> None:
    clock = ServerClock(local_clock=lambda: LOCAL)

    clock.observe(response_dated(None))
    clock.observe(response_dated("not a date"))

    assert clock.offset is None
    assert clock.to_server_time(LOCAL) == datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def test_a_session_learns_the_offset_from_its_responses(mocked: responses.RequestsMock) -> None:
    mocked.get(
        "https://api.example.com/items", json=[], headers={"Date": "Mon, 01 Jan 2001 00:00:00 GMT"}
    )
    session = ConnectorSession("demo", "https://api.example.com")

    session.get("https://api.example.com/items")

    clock = session.server_clock
    assert clock.to_server_time(clock.local_clock()).year == 2001


def test_the_least_offset_tightens_with_every_date_and_never_runs_ahead() -> None:
    local = [LOCAL + 0.9]  # the server is 0.4 s ahead: its clock reads 12:00:01.3
    clock = ServerClock(local_clock=lambda: local[0])

    clock.observe(response_dated("Wed, 01 Jan 2025 12:00:01 GMT"))  # 0.3 s into the second
    first = clock.least_offset
    local[0] = LOCAL + 1.65  # the server reads 12:00:02.05: a new second just began
    clock.observe(response_dated("Wed, 01 Jan 2025 12:00:02 GMT"))

    assert first == pytest.approx(0.1)  # rounded down by the whole-second header
    assert clock.least_offset == pytest.approx(0.35)  # within 0.05 s of the true 0.4
    assert clock.offset == pytest.approx(0.1)  # cursors keep reading the first one
    assert clock.surely_now() == pytest.approx(LOCAL + 2.0)
