"""A small `crm` sync on a large budget, in its own process: the whole crm (every
resource of the test fake, about 90 requests) against a server reporting 3,999 of its
4,000 requests an hour left (`bench.serve crm_full --budget 4000`).

`python -m bench.budget_sync --base-url URL --workdir DIR [--unpaced]` loads it at the
source's default pacing (by the reported budget: full speed above its reserve) or with
pacing off (`requests_per_minute` far above what the run sends), and prints one JSON
line: the seconds from the first request to the data committed (imports and start-up
excluded), the rows in the resource tables, and the pacing waits the pacer scheduled.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from bench.measure import report

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")


def sync(base_url: str, workdir: Path, unpaced: bool) -> dict[str, Any]:
    from bench.cases import UNPACED
    from connectors.crm import crm_source
    from connectors.sandbox.crm import TOKEN
    from shared.loading import duckdb_pipeline, row_counts, run_source
    from tests.pacing import recorded_pacing_waits

    pipeline = duckdb_pipeline(
        "bench_crm_budget", database=str(workdir / "crm.duckdb"), pipelines_dir=str(workdir)
    )
    pacing: dict[str, Any] = {"requests_per_minute": UNPACED} if unpaced else {}
    source = crm_source(bearer_token=TOKEN, base_url=base_url, **pacing)
    with recorded_pacing_waits() as recorded:
        started = time.perf_counter()
        run_source(pipeline, source)
        seconds = time.perf_counter() - started
    tables = {name: rows for name, rows in row_counts(pipeline).items() if "__" not in name}
    waits = [wait for _, wait in recorded.waits]
    return {
        "seconds": seconds,
        "rows": sum(tables.values()),
        "tables": tables,
        "pacing": pacing,
        "pacing_waits": len(waits),
        "pacing_wait_seconds": sum(waits),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--unpaced", action="store_true", help="requests_per_minute far above")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    report(sync(args.base_url, args.workdir, args.unpaced))


if __name__ == "__main__":
    main()
