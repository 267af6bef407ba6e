"""A catalog connector pointed at its fake through dlt's configuration (environment
variables), the way a deployment configures it: nothing passed in code."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from shared.tooling.recordings import Recording

CONNECTORS = ["crm", "incident_analytics", "project_tracker", "hubspot_contacts", "analytics"]


def recording(name: str) -> Recording:
    """The connector's recording: its fake, fake credentials and offline arguments."""
    return importlib.import_module(f"connectors.sandbox.{name}").RECORDING


def source_settings(name: str, base_url: str) -> dict[str, Any]:
    """The first recorded step's credentials and arguments, and `base_url`."""
    rec = recording(name)
    step = rec.steps[0]
    return {
        **rec.step_credentials(step),
        **rec.offline_kwargs,
        **step.source_kwargs,
        "base_url": base_url,
    }


def environment(name: str, settings: dict[str, Any]) -> dict[str, str]:
    """`sources.<name>.<key>` for each setting, as environment variables."""
    return {
        f"SOURCES__{name.upper()}__{key.upper()}": v if isinstance(v, str) else json.dumps(v)
        for key, v in settings.items()
    }


def configure(monkeypatch: pytest.MonkeyPatch, name: str, settings: dict[str, Any]) -> None:
    """Set `environment(name, settings)` for the test."""
    for variable, value in environment(name, settings).items():
        monkeypatch.setenv(variable, value)
