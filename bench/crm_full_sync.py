"""Rows per second of a full `crm` sync (all 16 resources, child tables, the default
path) against its fake server on loopback, into DuckDB.

`scale` multiplies the fake's list sizes (users, parties, tasks, projects,
opportunities); pacing is off (`requests_per_minute` far above what the run sends), so
the number is the connector's own speed: HTTP, JSON, dlt's extract, normalize (parquet)
and load.

Run: `python -m bench.crm_full_sync [--scale 40]`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

from connectors.crm import crm_source  # noqa: E402
from connectors.sandbox.crm import TOKEN, CrmFake  # noqa: E402
from shared.loading import duckdb_pipeline, row_counts, run_source  # noqa: E402


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=40)
    args = parser.parse_args(argv)
    with CrmFake(scale=args.scale) as fake, tempfile.TemporaryDirectory() as workdir:
        pipeline = duckdb_pipeline("crm_bench", f"{workdir}/crm.duckdb", pipelines_dir=workdir)
        source = crm_source(bearer_token=TOKEN, base_url=fake.base_url, requests_per_minute=10**7)
        started = time.perf_counter()
        run_source(pipeline, source)
        seconds = time.perf_counter() - started
        counts = row_counts(pipeline)
    resource_tables = {table: n for table, n in counts.items() if "__" not in table}
    top_level = sum(resource_tables.values())
    everything = sum(counts.values())
    print(f"crm full sync, scale {args.scale}: {len(fake.requests)} requests, {seconds:.2f} s")
    print(
        f"  {top_level:,} rows in the {len(resource_tables)} resource tables"
        f" ({top_level / seconds:,.0f} rows/s)"
    )
    print(
        f"  {everything:,} rows counting the {len(counts) - len(resource_tables)} child tables"
        f" ({everything / seconds:,.0f} rows/s)"
    )


if __name__ == "__main__":
    main()
