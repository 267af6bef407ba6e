"""One worker process of the multi-process pacing test: a CRM sync of its own, paced by
the backend it is given, started together with the others at a barrier."""

from __future__ import annotations

import os
from typing import Any

os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"

#: the CRM tables every worker loads: parties (3 pages) and the employees of each of its
#: 65 organisations (65 requests, fetched concurrently by dlt's thread pool)
RESOURCES = ["parties", "employees"]


def sync(
    worker: int,
    base_url: str,
    token: str,
    requests_per_minute: int,
    backend: str | None,
    workdir: str,
    barrier: Any,
    results: Any,
) -> None:
    """Load the CRM into `workdir/worker<N>.duckdb`; put (worker, rows or error) on `results`."""
    from connectors.crm import crm_source
    from shared.loading import duckdb_pipeline, row_counts, run_source

    try:
        source = crm_source(
            bearer_token=token,
            base_url=base_url,
            requests_per_minute=requests_per_minute,
            max_retries=0,  # a 429 fails the sync: the test counts them at the fake
            rate_limit_backend=backend,
        ).with_resources(*RESOURCES)
        pipeline = duckdb_pipeline(
            f"worker{worker}",
            database=os.path.join(workdir, f"worker{worker}.duckdb"),
            pipelines_dir=os.path.join(workdir, f"pipelines{worker}"),
        )
        barrier.wait(timeout=60)
        run_source(pipeline, source)
        results.put((worker, row_counts(pipeline)))
    except Exception as exc:
        results.put((worker, f"{type(exc).__name__}: {exc}"))
