"""A catalog connector pointed at its fake through dlt's configuration (environment
variables), the way a deployment configures it: nothing passed in code."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.cli.serve import environment
from connectors.sandbox import load_recording as recording

CONNECTORS = ["crm", "incident_analytics", "project_tracker", "hubspot_contacts", "analytics"]

__all__ = ["CONNECTORS", "configure", "environment", "recording", "source_settings"]


def source_settings(name: str, base_url: str) -> dict[str, Any]:
    """The first recorded step's credentials and arguments (what `connectors serve`
    prints), the offline arguments, and `base_url`."""
    rec = recording(name)
    return {**rec.sandbox_arguments(), **rec.offline_kwargs, "base_url": base_url}


def configure(monkeypatch: pytest.MonkeyPatch, name: str, settings: dict[str, Any]) -> None:
    """Set `environment(name, settings)` for the test."""
    for variable, value in environment(name, settings).items():
        monkeypatch.setenv(variable, value)
