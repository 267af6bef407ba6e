"""One way of loading one connector's largest resource into DuckDB, run in its own process.

`python -m bench.variants <connector> <variant> --base-url URL --workdir DIR` loads every
record the bench server (`bench.serve`) holds and prints one JSON line: the rows in the
resource's table, the seconds from the first request to the data committed in DuckDB
(imports and start-up excluded), every table it made with its rows, and the peak memory
before the load step.

- `default`: what a user's `pipeline.run(<name>_source(...).with_resources(<resource>))`
  does (`bench.cases`: the source's defaults, pacing off), into `shared.loading`'s
  `duckdb_pipeline` (the catalog's DuckDB settings), run as `pipeline.run`'s three steps
  (extract, normalize, load) so that the memory and seconds before the load can be told
  apart.
- `as_shipped`: `default` with the source's pacing on, as a user runs it (crm: by the
  budget the server reports, at full speed above its reserve).
- `merged`: `default` through dlt's staging merge although the tables are new
  (`shared.arrow.first_sync.merge_every_sync`): what `default` did before a first sync
  appended.
- `raw`: no dlt: `requests`, `json`, one `pyarrow` table per page, DuckDB `CREATE TABLE
  AS`; paged as the connector pages (`bench.cases`).
- `dlt_rest_api` (crm only), the peer: dlt's own `rest_api_source` with the config a
  user writes from the vendor's docs (bearer token, `Link`-header paging at the largest
  page, merge on `id`, the `since` cursor on `updatedAt`) and dlt's defaults otherwise
  (DuckDB's `insert_values` loader files): what they would pick instead of the catalog.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import report

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")


def peak_rss_mb() -> float:
    from bench.measure import own_peak_rss_mb

    return own_peak_rss_mb()


def default(
    connector: str, base_url: str, workdir: Path, paced: bool = False, merge: bool = False
) -> dict[str, Any]:
    from bench.cases import CASES
    from shared.arrow.first_sync import merge_every_sync
    from shared.loading import duckdb_pipeline

    case = CASES[connector]
    pipeline = duckdb_pipeline(
        f"bench_{connector}", database=str(workdir / "default.duckdb"), pipelines_dir=str(workdir)
    )
    source = case.source(base_url, paced)
    if merge:
        merge_every_sync(source)
    started = time.perf_counter()
    pipeline.extract(source)
    extracted = time.perf_counter()
    pipeline.normalize()
    before_load_mb = peak_rss_mb()
    loading = time.perf_counter()
    pipeline.load()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "extract_seconds": extracted - started,
        # dlt's load step: parquet copied into the tables (a first sync: `shared.arrow.first_sync`)
        "load_seconds": started + seconds - loading,
        "peak_rss_before_load_mb": before_load_mb,
        "pacing": {} if paced else case.unpaced(),
        **_dlt_counts(pipeline, case.resource),
    }


def as_shipped(connector: str, base_url: str, workdir: Path) -> dict[str, Any]:
    return default(connector, base_url, workdir, paced=True)


def merged(connector: str, base_url: str, workdir: Path) -> dict[str, Any]:
    return default(connector, base_url, workdir, merge=True)


def raw(connector: str, base_url: str, workdir: Path) -> dict[str, Any]:
    import duckdb
    import pyarrow as pa
    import requests

    from bench.cases import CASES

    case = CASES[connector]
    database = str(workdir / "raw.duckdb")
    started = time.perf_counter()
    session = requests.Session()
    session.headers.update(case.raw_headers)
    session.params = dict(case.raw_params)
    tables = []
    for rows in case.raw_pages(session, base_url):
        # every key of the page (pa.Table.from_pylist would only look at the first row)
        keys = dict.fromkeys(key for row in rows for key in row)
        tables.append(pa.table({key: [row.get(key) for row in rows] for key in keys}))
    loaded = pa.concat_tables(tables, promote_options="permissive")
    del tables
    connection = duckdb.connect(database)
    connection.register("fetched", loaded)
    connection.execute(f"CREATE TABLE {case.resource} AS SELECT * FROM fetched")
    connection.close()
    seconds = time.perf_counter() - started
    check = duckdb.connect(database, read_only=True)
    row = check.execute(f"SELECT COUNT(*) FROM {case.resource}").fetchone()
    check.close()
    assert row is not None
    return {"seconds": seconds, "rows": row[0], "tables": {case.resource: row[0]}}


def dlt_rest_api(connector: str, base_url: str, workdir: Path) -> dict[str, Any]:
    if connector != "crm":
        raise SystemExit("dlt_rest_api: only for crm")
    import dlt
    from dlt.sources.rest_api import rest_api_source

    from connectors.sandbox.crm import TOKEN

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
                "endpoint": {"params": {"perPage": 100}},
            },
            "resources": [
                {
                    "name": "parties",
                    "endpoint": {
                        "path": "/api/v2/parties",
                        "data_selector": "parties",
                        "params": {
                            "since": {
                                "type": "incremental",
                                "cursor_path": "updatedAt",
                                "initial_value": "1970-01-01T00:00:00Z",
                            }
                        },
                    },
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
    return {"seconds": seconds, **_dlt_counts(pipeline, "parties")}


def _dlt_counts(pipeline: Any, table: str) -> dict[str, Any]:
    from shared.loading import row_counts

    tables = row_counts(pipeline)
    return {"rows": tables.get(table, 0), "tables": tables}


VARIANTS: dict[str, Callable[[str, str, Path], dict[str, Any]]] = {
    "default": default,
    "as_shipped": as_shipped,
    "merged": merged,
    "raw": raw,
    "dlt_rest_api": dlt_rest_api,
}


def main() -> None:
    from bench.cases import CASES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("connector", choices=sorted(CASES))
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--workdir", required=True, type=Path)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    report(VARIANTS[args.variant](args.connector, args.base_url, args.workdir))


if __name__ == "__main__":
    main()
