"""One `project_tracker` child fan-out, for the benchmark: `epics_comments`, one request
per epic, against a fake with latency and a rate limit (`bench.serve fanout`).

Run one per process: `python -m bench.fanout --base-url URL --workdir DIR
--requests-per-minute R [--sequential]`. It times the extract step (the requests; the
few comment rows load in well under a second) and prints one JSON line.
Concurrency is dlt's extract thread pool, `EXTRACT__WORKERS` (default 5).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.measure import report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--requests-per-minute", type=int, required=True)
    parser.add_argument("--sequential", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

    from connectors.project_tracker import project_tracker_source
    from connectors.sandbox.project_tracker import API_KEY
    from shared.loading import duckdb_pipeline, row_counts

    pipeline = duckdb_pipeline(
        "bench_fanout",
        database=str(args.workdir / "fanout.duckdb"),
        pipelines_dir=str(args.workdir),
    )
    source = project_tracker_source(
        api_key=API_KEY,
        base_url=args.base_url,
        requests_per_minute=args.requests_per_minute,
        concurrent_children=not args.sequential,
    ).with_resources("epics_comments")
    started = time.perf_counter()
    pipeline.extract(source)
    seconds = time.perf_counter() - started
    pipeline.normalize()
    pipeline.load()
    report({"seconds": seconds, "rows": row_counts(pipeline)["epics_comments"]})


if __name__ == "__main__":
    main()
