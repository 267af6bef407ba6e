"""`make bench` (`python -m bench`): every connector's default path against a raw loop,
its memory at two sizes, the paced sync and the fan-out, each against its targets and
baselines in the same run; prints the report and writes bench/results/BENCHMARKS.md
(untracked; `make bench-publish` rewrites the tracked BENCHMARKS.md).

Every variant runs in its own process (`bench.measure`, `bench.variants`), the fake
servers in others (`bench.serve`, `bench.servers`). The scenarios:

1. per connector (`bench.cases`), its largest resource into DuckDB: the default path
   (pacing off) against a plain requests/json/pyarrow/DuckDB loop paging the same way,
   medians of interleaved runs at 100,000 rows, then the default path alone at
   1,000,000 rows for its memory;
2. pacing by the budget the server reports: a small crm sync (about 90 requests) with
   3,999 of 4,000 an hour left, at the default pacing against pacing off
   (`bench.budget_sync`); a crm sync of 1,000+ requests against a fake that enforces and
   reports 200 per 10 s (`bench.paced_sync`);
3. the peer: crm `parties` through the source as shipped against dlt's own
   `rest_api_source` configured from the vendor's docs, same server (`bench.variants`);
4. fan-out: `project_tracker` `epics_comments`, one request per epic, against a fake with
   20 ms latency that answers 429 above its rate (`bench.fanout`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import figures
from bench.cases import CASES
from bench.measure import ROOT, Measurement, VariantFailed, run_variant, serving
from bench.report import (
    ConnectorResult,
    Fanout,
    Peer,
    Settings,
    SmallSync,
    median_run,
    render,
)

FANOUT_LATENCY = 0.02
FANOUT_REQUESTS_PER_MINUTE = 18_000
FANOUT_WORKERS = 10
#: what `bench.paced_sync.measure` returns
PACED_KEYS = ("requests", "429s", "seconds", "bound_seconds", "ratio", "budget", "description")
#: the real crm API's budget (contract, "Rate limit"), served to the small sync and the peer
CRM_BUDGET = ("4000", "3600")
#: `--quick`: every section at small sizes, to try the harness
QUICK = {"rows": 2_000, "large_rows": 10_000, "repeat": 1, "epics": 100, "peer_rows": 2_000}


def variant(
    connector: str, name: str, base_url: str, env: dict[str, str] | None = None
) -> Measurement:
    with tempfile.TemporaryDirectory(prefix="bench_") as workdir:
        argv = ["-m", "bench.variants", connector, name, "--base-url", base_url]
        return run_variant(f"{connector} {name}", [*argv, "--workdir", workdir], env=env)


def checked(measurement: Measurement, rows: int) -> Measurement:
    """`measurement`, if it loaded every row the server holds."""
    if measurement.rows != rows:
        raise VariantFailed(
            f"{measurement.name} loaded {measurement.rows:,} rows of {rows:,}: "
            f"{measurement.result.get('tables')}"
        )
    return _progress(measurement)


def measure_throughput(result: ConnectorResult, repeat: int, env: dict[str, str]) -> None:
    """The default path, the raw loop and the default path through dlt's staging merge
    (`merged`) at `result.rows`, `repeat` times each, interleaved so that background load
    hits them alike."""
    print(f"{result.connector}: {result.rows:,} {result.resource}, {repeat} runs each", flush=True)
    defaults: list[Measurement] = []
    raws: list[Measurement] = []
    merges: list[Measurement] = []
    variants = (("raw", raws, None), ("default", defaults, env), ("merged", merges, env))
    with serving(result.connector, "--rows", str(result.rows), "--keep") as served:
        for _ in range(repeat):
            for name, runs, variant_env in variants:
                try:
                    run = variant(result.connector, name, served.base_url, variant_env)
                    runs.append(checked(run, result.rows))
                except VariantFailed as error:
                    result.errors.append(_one_line(error))
                    print(f"  {_one_line(error)}", flush=True)
    result.default = median_run(defaults) if defaults else None
    result.raw = median_run(raws) if raws else None
    result.merged = median_run(merges) if merges else None


def measure_large(result: ConnectorResult, env: dict[str, str]) -> None:
    print(f"{result.connector}: {result.large_rows:,} {result.resource}, default path", flush=True)
    with serving(result.connector, "--rows", str(result.large_rows)) as served:
        try:
            run = variant(result.connector, "default", served.base_url, env)
            result.large = checked(run, result.large_rows)
        except VariantFailed as error:
            result.errors.append(_one_line(error))
            print(f"  {_one_line(error)}", flush=True)


def measure_small_sync(repeat: int) -> SmallSync | str:
    """The whole crm at its default pacing and unpaced, `repeat` times each, interleaved;
    a fresh server for each run, so each starts with 3,999 of 4,000 left."""
    limit, seconds = CRM_BUDGET
    print(f"small sync: the whole crm, {limit} requests per {seconds} s reported", flush=True)
    runs: dict[str, list[Measurement]] = {"paced": [], "unpaced": []}
    counted, limited = set(), 0
    for _ in range(repeat):
        for mode, runs_of_mode in runs.items():
            with (
                serving("crm_full", "--budget", limit, "--budget-seconds", seconds) as served,
                tempfile.TemporaryDirectory(prefix="bench_") as workdir,
            ):
                argv = ["-m", "bench.budget_sync", "--base-url", served.base_url]
                argv += ["--workdir", workdir] + (["--unpaced"] if mode == "unpaced" else [])
                try:
                    runs_of_mode.append(_progress(run_variant(f"crm {mode}", argv)))
                except VariantFailed as error:
                    return f"Failed: {_one_line(error)}"
            counted.add(served.stats["requests"])
            limited += served.stats["rate_limited"]
    return SmallSync(
        paced=median_run(runs["paced"]),
        unpaced=median_run(runs["unpaced"]),
        requests=max(counted),
        rate_limited=limited,
        budget=f"{int(limit):,} requests per {int(seconds):,} s",
    )


def measure_peer(rows: int, repeat: int) -> Peer | str:
    """crm parties through the source as shipped and through dlt's `rest_api_source`,
    `repeat` times each, interleaved, against one server reporting the real budget."""
    limit, seconds = CRM_BUDGET
    print(f"peer: {rows:,} crm parties, as shipped and with dlt's rest_api_source", flush=True)
    runs: dict[str, list[Measurement]] = {"as_shipped": [], "dlt_rest_api": []}
    with serving(
        "crm", "--rows", str(rows), "--keep", "--budget", limit, "--budget-seconds", seconds
    ) as served:
        for _ in range(repeat):
            for name, runs_of_variant in runs.items():
                try:
                    runs_of_variant.append(checked(variant("crm", name, served.base_url), rows))
                except VariantFailed as error:
                    return f"Failed: {_one_line(error)}"
    return Peer(
        ours=median_run(runs["as_shipped"]),
        peer=median_run(runs["dlt_rest_api"]),
        resource=CASES["crm"].resource,
        budget=f"{int(limit):,} requests per {int(seconds):,} s",
    )


def measure_paced() -> dict[str, Any] | str:
    """`bench.paced_sync.measure`'s result, or why there is none."""
    try:
        from bench import paced_sync  # type: ignore[attr-defined,unused-ignore]
    except ImportError as error:
        return f"Not run: `bench/paced_sync.py` is missing ({error})."
    print("paced sync", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_") as workdir:
        try:
            result: dict[str, Any] = paced_sync.measure(Path(workdir))
        except Exception as error:  # one failed section must not lose the others
            return f"Failed: {type(error).__name__}: {_one_line(error)}"
    missing = [key for key in PACED_KEYS if key not in result]
    if missing:
        return f"Failed: `bench.paced_sync.measure` returned no {', '.join(missing)}: {result}"
    print(
        f"  {result['requests']:,} requests, {result['429s']} 429s, {result['seconds']:.2f} s "
        f"= {result['ratio']:.2f}x the bound",
        flush=True,
    )
    return result


def measure_fanout(epics: int) -> Fanout | str:
    print(f"fan-out: {epics:,} child requests, {FANOUT_LATENCY * 1000:.0f} ms latency", flush=True)
    runs: dict[str, tuple[Measurement, dict[str, int]]] = {}
    for mode in ("concurrent", "sequential"):
        limit = FANOUT_REQUESTS_PER_MINUTE // 60
        server_args = ["--epics", str(epics), "--latency", str(FANOUT_LATENCY)]
        server_args += ["--limit", str(limit), "--per-seconds", "1"]
        with (
            serving("fanout", *server_args) as served,
            tempfile.TemporaryDirectory(prefix="bench_") as workdir,
        ):
            argv = ["-m", "bench.fanout", "--base-url", served.base_url, "--workdir", workdir]
            argv += ["--requests-per-minute", str(FANOUT_REQUESTS_PER_MINUTE)]
            if mode == "sequential":
                argv.append("--sequential")
            try:
                measurement = run_variant(mode, argv, env={"EXTRACT__WORKERS": str(FANOUT_WORKERS)})
            except VariantFailed as error:
                return f"Failed: {_one_line(error)}"
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the timed runs")
    parser.add_argument(
        "--large-rows", type=int, default=1_000_000, help="rows of the default path's memory run"
    )
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs of each variant")
    parser.add_argument(
        "--connectors", nargs="+", choices=sorted(CASES), default=list(CASES), metavar="NAME"
    )
    parser.add_argument("--epics", type=int, default=1000, help="fan-out child requests")
    parser.add_argument(
        "--skip",
        nargs="+",
        choices=["large", "small", "paced", "peer", "fanout"],
        default=[],
        help="sections",
    )
    parser.add_argument(
        "--duckdb-memory-limit",
        default="catalog",
        help="DuckDB memory_limit of the default-path runs, e.g. 256MB; `catalog` (the "
        "default): shared.loading's DUCKDB_SETTINGS, as `connectors run` loads; `duckdb`: "
        "DuckDB's own defaults (80%% of RAM)",
    )
    parser.add_argument(
        "--peer-rows",
        type=int,
        default=10_000,
        help="crm parties loaded as shipped and with dlt's rest_api_source (the peer)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, to try the harness: "
        + ", ".join(f"{key}={value:,}" for key, value in QUICK.items()),
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "bench" / "results" / "BENCHMARKS.md",
        help="where to write the report (untracked; `make bench-publish` writes BENCHMARKS.md)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # a SIGTERM unwinds like Ctrl-C, so every server and variant started is stopped
    signal.signal(signal.SIGTERM, _interrupted)
    limit = None if args.duckdb_memory_limit.lower() == "catalog" else args.duckdb_memory_limit
    env = {}
    if limit:
        # configured DuckDB settings replace the catalog's (`shared.loading`); {} is DuckDB's own
        duckdb_settings = {} if limit.lower() == "duckdb" else {"memory_limit": limit}
        env["DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG"] = json.dumps(duckdb_settings)

    started = time.monotonic()
    host = machine()
    results = [
        ConnectorResult(name, CASES[name].resource, CASES[name].shape, args.rows, args.large_rows)
        for name in args.connectors
    ]
    for result in results:
        measure_throughput(result, args.repeat, env)
    settings = Settings(repeat=args.repeat, duckdb_memory_limit=limit)
    small = "Not run (`--skip small`)." if "small" in args.skip else measure_small_sync(args.repeat)
    paced = "Not run (`--skip paced`)." if "paced" in args.skip else measure_paced()
    peer = (
        "Not run (`--skip peer`)."
        if "peer" in args.skip
        else measure_peer(args.peer_rows, args.repeat)
    )
    fanout = "Not run (`--skip fanout`)." if "fanout" in args.skip else measure_fanout(args.epics)
    if "large" not in args.skip:
        for result in results:
            measure_large(result, env)
    host["bench wall time"] = f"{time.monotonic() - started:.0f} s"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    try:
        drawn = figures.draw(figures.series(results, peer), args.output)
    except ImportError as missing:  # matplotlib: the `bench` extra, which `make bench` installs
        print(f"figures not drawn: {missing} (pip install -e '.[bench]')")
        drawn = []
    shown = figures.markdown(args.output) if drawn else []
    text = render(host, settings, results, paced, fanout, small, peer, figures=shown)
    print()
    print(text)
    args.output.write_text(text)
    print(f"wrote {args.output}" + "".join(f", {path}" for path in drawn))
    return 0


def _one_line(error: BaseException) -> str:
    """The error on one line: a failed variant's first line (its name and exit code) and
    the last error its standard error names."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    named = [line for line in lines[1:] if "Error" in line or "Exception" in line]
    return lines[0] if len(lines) == 1 else f"{lines[0]} {(named or lines)[-1]}"


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _progress(measurement: Measurement) -> Measurement:
    print(
        f"  {measurement.name:<28} {measurement.rows:>9,} rows {measurement.seconds:7.2f} s "
        f"{measurement.rows_per_second:9,.0f} rows/s  peak RSS {measurement.peak_rss_mb:6.0f} MB",
        flush=True,
    )
    return measurement


if __name__ == "__main__":
    raise SystemExit(main())
