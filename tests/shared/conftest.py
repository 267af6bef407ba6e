"""Fixtures of the shared helpers' unit tests: a `responses` mock and recorded waits."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import responses


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """Every `requests` call inside the test is answered by `responses` (nothing is sent)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the seconds the retry loop (tenacity) and the pacers ask to sleep, instead of
    sleeping."""
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    return waits
