"""Shared fixtures. The suite is offline: cassettes replay, fakes listen on loopback."""

from __future__ import annotations

import os

os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"

import socket  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import dlt  # noqa: E402
import pytest  # noqa: E402

from shared.loading import duckdb_pipeline  # noqa: E402
from tests.empty_folder import use_empty_folder  # noqa: E402


@pytest.fixture
def pipeline(tmp_path: Path) -> dlt.Pipeline:
    """A fresh pipeline into a DuckDB file in the test's temporary folder."""
    return duckdb_pipeline(
        "test", database=str(tmp_path / "test.duckdb"), pipelines_dir=str(tmp_path)
    )


@pytest.fixture
def empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test in an empty folder, with dlt's state there and no credentials in the
    environment (`tests/empty_folder.py`)."""
    use_empty_folder(monkeypatch, tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any connection to a non-loopback address: the suite never touches the internet."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (
            host.startswith("127.") or host in ("localhost", "::1") or self.family == socket.AF_UNIX
        ):
            raise OSError(f"test tried to reach {host}: the suite is offline")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield
