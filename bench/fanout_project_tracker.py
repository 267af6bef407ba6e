"""Wall time of a child fan-out, sequential versus concurrent, for `project_tracker`.

`epics_comments` asks `/v1/epics/{epic_id}/comments` once per epic. Against the fake with
a fixed latency per response, this times the extract step of that fan-out:

- sequential: `concurrent_children=False` (one child request after another);
- concurrent: the builder's parallelized children, for each dlt `extract.workers` count
  (dlt's extract thread pool; its default is 5).

`requests_per_minute` is set far above what the run can send, so pacing never waits and
the numbers show the fan-out alone. The fake runs in this process (a thread per request);
with 20 ms of latency per response the server's own work is small beside the wait.

Run: `python -m bench.fanout_project_tracker [--children 500] [--latency 0.02]
[--workers 5 10 20]`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

from connectors.project_tracker import project_tracker_source  # noqa: E402
from connectors.sandbox.project_tracker import API_KEY, ProjectTrackerFake  # noqa: E402
from shared.loading import duckdb_pipeline  # noqa: E402

UNPACED = 1_000_000


def time_fan_out(fake: ProjectTrackerFake, concurrent: bool, workers: int) -> tuple[float, int]:
    """Seconds to extract `epics_comments` (one child request per epic), and the requests
    the fake answered."""
    os.environ["EXTRACT__WORKERS"] = str(workers)
    fake.requests.clear()
    with tempfile.TemporaryDirectory() as workdir:
        pipeline = duckdb_pipeline(
            "fanout", database=f"{workdir}/fanout.duckdb", pipelines_dir=workdir
        )
        source = project_tracker_source(
            api_key=API_KEY,
            base_url=fake.base_url,
            requests_per_minute=UNPACED,
            concurrent_children=concurrent,
        ).with_resources("epics_comments")
        started = time.perf_counter()
        pipeline.extract(source)
        elapsed = time.perf_counter() - started
    return elapsed, len(fake.requests)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=500, help="child requests (epics)")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per response")
    parser.add_argument("--workers", type=int, nargs="+", default=[5, 10, 20])
    args = parser.parse_args(argv)

    with ProjectTrackerFake(epics=args.children, stories_per_epic=0, latency=args.latency) as fake:
        runs = [("sequential", False, 5)] + [
            (f"concurrent, {n} workers", True, n) for n in args.workers
        ]
        print(f"{args.children} child requests, {args.latency * 1000:.0f} ms latency each")
        print(f"{'mode':<26}{'requests':>10}{'seconds':>10}{'req/s':>10}{'speed-up':>10}")
        baseline = None
        for label, concurrent, workers in runs:
            seconds, sent = time_fan_out(fake, concurrent, workers)
            baseline = baseline or seconds
            print(
                f"{label:<26}{sent:>10}{seconds:>10.2f}{sent / seconds:>10.1f}"
                f"{baseline / seconds:>9.1f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
