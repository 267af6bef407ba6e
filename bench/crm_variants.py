"""The ways of loading the CRM fake's `parties` into DuckDB that the benchmark compares.

Run one per process: `python -m bench.crm_variants <variant> --base-url URL --workdir DIR`.
It loads every party, checks the count, and prints one JSON line: rows loaded, seconds
(from the first request to the data committed in DuckDB; imports and start-up excluded)
and the tables it made.

- `catalog_arrow`: this catalog's `crm_source(arrow_pages=True)`, one Arrow table per page.
- `catalog_rows`: this catalog's `crm_source()` as it loads by default (child tables).
- `dlt_rest_api`: dlt's `rest_api_source` with the minimal config a user writes from
  dlt's docs and dlt's defaults (DuckDB's default `insert_values` loader files).
- `raw`: no dlt: a `requests` loop, `json`, `pyarrow` and DuckDB `CREATE TABLE AS`;
  the limit of what this machine can do with these libraries.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import report

TOKEN = "crm-fake-bearer-token-0123456789"  # the fake's token (tests/fakes/crm.py)
PER_PAGE = 100


def catalog_arrow(base_url: str, workdir: Path) -> dict[str, Any]:
    return _catalog(base_url, workdir, arrow_pages=True)


def catalog_rows(base_url: str, workdir: Path) -> dict[str, Any]:
    return _catalog(base_url, workdir, arrow_pages=False)


def _catalog(base_url: str, workdir: Path, arrow_pages: bool) -> dict[str, Any]:
    from connectors.crm import crm_source
    from shared.loading import DEFAULT_LOADER_FILE_FORMAT, duckdb_pipeline

    pipeline = duckdb_pipeline(
        "bench_crm", database=str(workdir / "catalog.duckdb"), pipelines_dir=str(workdir)
    )
    source = crm_source(
        bearer_token=TOKEN,
        base_url=base_url,
        requests_per_minute=10_000_000,  # measure throughput, not the API's pacing
        arrow_pages=arrow_pages,
    ).with_resources("parties")
    started = time.perf_counter()
    # pipeline.run's three steps, so that the memory before the load can be told apart
    pipeline.extract(source, loader_file_format=DEFAULT_LOADER_FILE_FORMAT)
    pipeline.normalize()
    before_load_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pipeline.load()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_before_load_mb": before_load_mb, **_dlt_counts(pipeline)}


def dlt_rest_api(base_url: str, workdir: Path) -> dict[str, Any]:
    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(
        {
            "client": {
                "base_url": base_url,
                "auth": {"type": "bearer", "token": TOKEN},
                "paginator": "header_link",
            },
            "resource_defaults": {
                "primary_key": "id",
                "write_disposition": "merge",
                "endpoint": {"params": {"perPage": PER_PAGE}},
            },
            "resources": [
                {
                    "name": "parties",
                    "endpoint": {"path": "/api/v2/parties", "data_selector": "parties"},
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="bench_dlt",
        destination=dlt.destinations.duckdb(str(workdir / "dlt.duckdb")),
        dataset_name="bench_dlt_data",
        pipelines_dir=str(workdir),
    )
    started = time.perf_counter()
    pipeline.run(source)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, **_dlt_counts(pipeline)}


def raw(base_url: str, workdir: Path) -> dict[str, Any]:
    import duckdb
    import pyarrow as pa
    import requests

    started = time.perf_counter()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    url: str | None = f"{base_url}/api/v2/parties?perPage={PER_PAGE}"
    pages = []
    while url:
        response = session.get(url, timeout=60)
        response.raise_for_status()
        rows = json.loads(response.content)["parties"]
        # every key of the page (pa.Table.from_pylist would only look at the first row)
        keys = dict.fromkeys(key for row in rows for key in row)
        pages.append(pa.table({key: [row.get(key) for row in rows] for key in keys}))
        url = response.links.get("next", {}).get("url")
    parties = pa.concat_tables(pages, promote_options="default")
    del pages
    connection = duckdb.connect(str(workdir / "raw.duckdb"))
    connection.register("fetched", parties)
    connection.execute("CREATE TABLE parties AS SELECT * FROM fetched")
    connection.close()
    seconds = time.perf_counter() - started
    check = duckdb.connect(str(workdir / "raw.duckdb"), read_only=True)
    (rows_loaded,) = check.execute("SELECT COUNT(*) FROM parties").fetchone()
    check.close()
    return {"seconds": seconds, "rows": rows_loaded, "tables": {"parties": rows_loaded}}


def _dlt_counts(pipeline: Any) -> dict[str, Any]:
    from shared.loading import row_counts

    tables = row_counts(pipeline)
    return {"rows": tables["parties"], "tables": tables}


VARIANTS: dict[str, Callable[[str, Path], dict[str, Any]]] = {
    "catalog_arrow": catalog_arrow,
    "catalog_rows": catalog_rows,
    "dlt_rest_api": dlt_rest_api,
    "raw": raw,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--workdir", required=True, type=Path)
    args = parser.parse_args()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    args.workdir.mkdir(parents=True, exist_ok=True)
    report(VARIANTS[args.variant](args.base_url, args.workdir))


if __name__ == "__main__":
    main()
