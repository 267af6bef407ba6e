"""Importing the project changes nothing in the host process: a user's Dagster or Airflow
worker keeps its environment (dlt's telemetry setting included) and its logging as they
were. Redaction filters go on library loggers only when a source's session starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: run in a fresh interpreter: import every module of the project, report what changed
IMPORT_EVERYTHING = """
import importlib, json, logging, os, pkgutil, sys
before_env = dict(os.environ)
def filters():
    loggers = [logging.getLogger()] + [
        l for l in logging.Logger.manager.loggerDict.values() if isinstance(l, logging.Logger)
    ]
    return {l.name: [type(f).__name__ for f in l.filters] for l in loggers if l.filters}
before_filters = filters()
imported = []
for package in ("shared", "connectors", "orchestration"):
    module = importlib.import_module(package)
    imported.append(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as error:  # an orchestrator not installed here (Airflow, Dagster)
            if "airflow" in str(error).lower() or "dagster" in str(error).lower():
                continue
            raise
        imported.append(info.name)
after_env = dict(os.environ)
print(json.dumps({
    "imported": imported,
    "env_changed": sorted(
        k for k in {*before_env, *after_env} if before_env.get(k) != after_env.get(k)
    ),
    "filters_added": {k: v for k, v in filters().items() if before_filters.get(k) != v},
}))
"""


def test_importing_every_module_leaves_the_environment_and_logging_alone() -> None:
    env = {k: v for k, v in os.environ.items() if k != "RUNTIME__DLTHUB_TELEMETRY"}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert {"shared.loading", "connectors.cli.commands", "connectors.crm"} <= set(
        report["imported"]
    )
    assert report["env_changed"] == []
    assert report["filters_added"] == {}
