"""`connectors run NAME --json`: the run's outcome as one JSON object on stdout, for a
scheduler or a script; progress and logs stay on stderr.

    {"connector": "crm", "status": "ok", "error": null,
     "pipeline": "connectors_crm", "destination": "duckdb",
     "database": "/home/me/crm.duckdb", "dataset": "crm_data",
     "replay": false, "full_refresh": false,
     "seconds": 1.52, "requests": 41, "retries": 0, "rate_limited": 0,
     "tables": {"parties": 260, "users": 0, ...}}

`tables`: the rows this run loaded per table, child tables included, and 0 for every
table of the selected resources that received nothing new. `requests`: every request
sent (retries and token requests included), `retries`: the requests sent again after a
failed attempt, `rate_limited`: the answers that were a 429. `status` is `"failed"` when
the run failed; `error` then says why in one line (the line `run` prints on stderr), and
`tables` is empty.
"""

from __future__ import annotations

import json
import time
from typing import Any

from connectors.cli.request_log import RequestLog
from shared.tooling.catalog import ConnectorEntry


class RunReport:
    """The JSON object of one run (see the module), timed from when it is made.

    Args:
        entry: the connector's catalog entry.
        destination: the dlt destination's name.
        database: the DuckDB file, None for other destinations.
        replay: whether the run replays the cassette.
        full_refresh: whether the run drops the tables and state first.
    """

    def __init__(
        self,
        entry: ConnectorEntry,
        destination: str,
        database: str | None,
        replay: bool = False,
        full_refresh: bool = False,
    ) -> None:
        self.entry = entry
        self.destination = destination
        self.database = database
        self.replay = replay
        self.full_refresh = full_refresh
        self.started = time.monotonic()

    def as_dict(
        self,
        log: RequestLog,
        pipeline: Any = None,
        rows: dict[str, int] | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        """The report: `pipeline` None when the run failed before it had one; `rows` the
        rows loaded per table; `error` the line saying why the run failed."""
        return {
            "connector": self.entry.name,
            "status": "failed" if error is not None else "ok",
            "error": error,
            "pipeline": getattr(pipeline, "pipeline_name", None),
            "destination": self.destination,
            "database": self.database,
            "dataset": getattr(pipeline, "dataset_name", None),
            "replay": self.replay,
            "full_refresh": self.full_refresh,
            "seconds": round(time.monotonic() - self.started, 2),
            "requests": log.requests,
            "retries": log.retries,
            "rate_limited": log.rate_limited,
            "tables": dict(sorted((rows or {}).items())),
        }

    def print(
        self,
        log: RequestLog,
        pipeline: Any = None,
        rows: dict[str, int] | None = None,
        error: str | None = None,
    ) -> None:
        """The report as one line of JSON on stdout."""
        print(json.dumps(self.as_dict(log, pipeline, rows, error)))
