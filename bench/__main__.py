"""`make bench` (`python -m bench`): throughput, fan-out and memory, each against its
baselines in the same run; prints the tables and writes bench/results/BENCHMARKS.md
(untracked; `make bench-publish` rewrites the tracked BENCHMARKS.md).

Every variant runs in its own process (`bench.measure`), the fake servers in others
(`bench.serve`). The scenarios:

1. throughput: `crm` `parties` (nested arrays, 100 per page) into DuckDB with
   `crm_source(arrow_pages=True)`, against dlt's `rest_api_source` with its defaults and
   against a plain requests/json/pyarrow/DuckDB loop (`bench.crm_variants`);
2. fan-out: `project_tracker` `epics_comments`, one request per epic, against a fake with
   20 ms latency that answers 429 above its rate (`bench.fanout`);
3. memory: `crm` `parties` at 100,000 and 1,000,000 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from bench.measure import ROOT, Measurement, run_variant, serving
from bench.report import Fanout, Memory, Throughput, render

#: DuckDB's buffer manager takes up to 80% of RAM by default and keeps what it reads; a
#: small limit makes it spill the merge's dedup to disk instead (BENCHMARKS.md, memory)
DUCKDB_MEMORY_LIMIT = "64MB"
FAST_PATH_ENV = {
    "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG": json.dumps(
        {"memory_limit": DUCKDB_MEMORY_LIMIT}
    )
}
FANOUT_LATENCY = 0.02
FANOUT_REQUESTS_PER_MINUTE = 18_000
FANOUT_WORKERS = 10


def crm_variant(variant: str, base_url: str, env: dict[str, str] | None = None) -> Measurement:
    with tempfile.TemporaryDirectory(prefix="bench_") as workdir:
        argv = ["-m", "bench.crm_variants", variant, "--base-url", base_url, "--workdir", workdir]
        return run_variant(variant, argv, env=env)


def measure_throughput(rows: int, baseline_rows: int, repeat: int) -> Throughput:
    print(f"throughput: {rows:,} parties, {repeat} runs each of raw and catalog_arrow", flush=True)
    raw: list[Measurement] = []
    fast: list[Measurement] = []
    with serving("crm", "--parties", str(rows), "--pregenerate-per-page", "100") as served:
        for _ in range(repeat):  # interleaved, so background load hits both alike
            raw.append(_progress(crm_variant("raw", served.base_url)))
            fast.append(_progress(crm_variant("catalog_arrow", served.base_url, FAST_PATH_ENV)))
    print(f"throughput baselines: {baseline_rows:,} parties", flush=True)
    with serving("crm", "--parties", str(baseline_rows), "--pregenerate-per-page", "100") as served:
        dlt_default = _progress(crm_variant("dlt_rest_api", served.base_url))
        catalog_rows = _progress(crm_variant("catalog_rows", served.base_url, FAST_PATH_ENV))
    return Throughput(
        raw=_median(raw), fast=_median(fast), dlt_default=dlt_default, catalog_rows=catalog_rows
    )


def measure_fanout(epics: int) -> Fanout | str:
    try:
        import connectors.project_tracker  # noqa: F401
        import tests.fakes.project_tracker  # noqa: F401
    except ImportError as error:
        return f"not run: the project_tracker connector or its fake is missing ({error})"
    print(f"fan-out: {epics:,} child requests, {FANOUT_LATENCY * 1000:.0f} ms latency", flush=True)
    runs: dict[str, tuple[Measurement, dict[str, int]]] = {}
    for mode in ("concurrent", "sequential"):
        limit = FANOUT_REQUESTS_PER_MINUTE // 60
        with (
            serving(
                "project_tracker",
                "--epics",
                str(epics),
                "--latency",
                str(FANOUT_LATENCY),
                "--limit",
                str(limit),
                "--per-seconds",
                "1",
            ) as served,
            tempfile.TemporaryDirectory(prefix="bench_") as workdir,
        ):
            argv = [
                "-m",
                "bench.fanout",
                "--base-url",
                served.base_url,
                "--workdir",
                workdir,
                "--requests-per-minute",
                str(FANOUT_REQUESTS_PER_MINUTE),
            ]
            if mode == "sequential":
                argv.append("--sequential")
            measurement = run_variant(mode, argv, env={"EXTRACT__WORKERS": str(FANOUT_WORKERS)})
        runs[mode] = (_progress(measurement), served.stats)
    return Fanout(
        concurrent=runs["concurrent"][0],
        concurrent_server=runs["concurrent"][1],
        sequential=runs["sequential"][0],
        sequential_server=runs["sequential"][1],
        latency=FANOUT_LATENCY,
        requests_per_minute=FANOUT_REQUESTS_PER_MINUTE,
        workers=FANOUT_WORKERS,
    )


def measure_memory(sizes: Sequence[int], duckdb_defaults_too: bool) -> Memory:
    limited: dict[int, Measurement] = {}
    defaults: dict[int, Measurement] = {}
    for rows in sizes:
        print(f"memory: {rows:,} parties", flush=True)
        with serving("crm", "--parties", str(rows)) as served:
            limited[rows] = _progress(crm_variant("catalog_arrow", served.base_url, FAST_PATH_ENV))
            if duckdb_defaults_too:
                defaults[rows] = _progress(crm_variant("catalog_arrow", served.base_url))
    return Memory(limited=limited, duckdb_defaults=defaults, memory_limit=DUCKDB_MEMORY_LIMIT)


def machine() -> dict[str, str]:
    with open("/proc/meminfo") as meminfo:
        total_kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    return {
        "cores": str(os.cpu_count()),
        "memory": f"{total_kib / 1024 / 1024:.1f} GiB",
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "versions": ", ".join(
            f"{name} {version(name)}" for name in ("dlt", "duckdb", "pyarrow", "requests")
        ),
        "load average at start": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="throughput parties")
    parser.add_argument(
        "--baseline-rows",
        type=int,
        default=25_000,
        help="parties for dlt's default path, which needs ~0.1 MB of RAM per row",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of raw and catalog_arrow")
    parser.add_argument("--epics", type=int, default=1000, help="fan-out child requests")
    parser.add_argument("--memory-rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help="skip the DuckDB-defaults memory runs")
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "bench" / "results" / "BENCHMARKS.md",
        help="where to write the report (untracked; `make bench-publish` writes BENCHMARKS.md)",
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    host = machine()
    throughput = measure_throughput(args.rows, args.baseline_rows, args.repeat)
    fanout = measure_fanout(args.epics)
    memory = measure_memory(args.memory_rows, duckdb_defaults_too=not args.quick)
    host["bench wall time"] = f"{time.monotonic() - started:.0f} s"
    text = render(host, throughput, fanout, memory)
    print()
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


def _median(runs: list[Measurement]) -> Measurement:
    ordered = sorted(runs, key=lambda run: run.seconds)
    middle = ordered[len(ordered) // 2]
    # peak memory is the worst run's, not the median run's
    peak = max(run.peak_rss_mb for run in runs)
    seconds = statistics.median(run.seconds for run in runs)
    return Measurement(middle.name, {**middle.result, "seconds": seconds, "runs": len(runs)}, peak)


def _progress(measurement: Measurement) -> Measurement:
    print(
        f"  {measurement.name:<14} {measurement.rows:>9,} rows {measurement.seconds:7.2f} s "
        f"{measurement.rows_per_second:9,.0f} rows/s  peak RSS {measurement.peak_rss_mb:6.0f} MB",
        flush=True,
    )
    return measurement


if __name__ == "__main__":
    raise SystemExit(main())
