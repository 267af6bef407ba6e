"""Fixtures of the connectors' replay tests."""

from __future__ import annotations

from typing import Any

import dlt
import pytest

from tests.recording import replayed_once


@pytest.fixture(scope="module")
def full_sync(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dlt.Pipeline, list[Any]]:
    """One replay of the test module's `RECORDING` full sync and its played cassettes,
    shared by the module's tests that only read what it loaded (each replay is a sync)."""
    return replayed_once(request.module.RECORDING, tmp_path_factory.mktemp("full_sync"))
