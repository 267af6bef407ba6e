"""Catalog connectors as Dagster assets: one asset per table, through `dagster-dlt`.

    # definitions.py, loaded by `dagster dev -f definitions.py`
    from orchestration.dagster_assets import catalog_definitions

    defs = catalog_definitions(["crm", "project_tracker"])

Each connector becomes one `@dlt_assets` multi-asset, `dlt_<source>_<resource>` per table,
materialisable whole or in any subset. The definitions load with no secret set: Dagster
needs only the table list, which comes from the source built with stand-in credentials
(`orchestration.outline_source`, never run). The real source is built in each run, from
dlt's configuration in force then, so a materialization needs the connector's secrets
(`SOURCES__CRM__BEARER_TOKEN`, ...; `python -m connectors show <name>` names them).
Secrets never pass through Dagster's run config.
"""

# no `from __future__ import annotations`: Dagster reads the asset function's annotations
# as objects (`context: AssetExecutionContext`)
from collections.abc import Iterator, Sequence
from typing import Any

from dagster import AssetExecutionContext, AssetsDefinition, Definitions
from dagster_dlt import DagsterDltResource, dlt_assets

from connectors.cli.runner import make_pipeline
from orchestration import build_source, catalog_entry, outline_source
from shared.tooling.catalog import Catalog, load_catalog


def connector_assets(
    name: str,
    pipeline: Any = None,
    catalog: Catalog | None = None,
    group_name: str | None = None,
) -> AssetsDefinition:
    """The Dagster assets of catalog connector `name`, one per table.

    Args:
        name: the connector's catalog name (`crm`, ...).
        pipeline: the dlt pipeline to load with; by default the CLI's (`<name>` into the
            DuckDB file `<name>.duckdb`, dataset `<name>_data`).
        catalog: the catalog to look the connector up in (default: `catalog.yml`).
        group_name: the Dagster asset group (default: the connector's name).

    The assets need a `DagsterDltResource` under the resource key `dlt`.
    """
    entry = catalog_entry(name, catalog)
    pipeline = pipeline or make_pipeline(entry)

    @dlt_assets(
        dlt_source=outline_source(entry),
        dlt_pipeline=pipeline,
        name=f"{name}_dlt_assets",
        group_name=group_name or name,
    )
    def assets(context: AssetExecutionContext, dlt: DagsterDltResource) -> Iterator[Any]:
        # a fresh source per run: fresh sessions, pacers and the configuration of now
        yield from dlt.run(context=context, dlt_source=build_source(entry))

    return assets


def catalog_definitions(
    names: Sequence[str] | None = None, catalog: Catalog | None = None
) -> Definitions:
    """Dagster `Definitions` with the assets of the named connectors (default: all of them)
    and the `dlt` resource they run with. They load with no secret set; each connector's
    secrets are read from dlt's config or environment when its assets materialize."""
    catalog = catalog or load_catalog()
    chosen = list(names) if names is not None else catalog.names
    return Definitions(
        assets=[connector_assets(name, catalog=catalog) for name in chosen],
        resources={"dlt": DagsterDltResource()},
    )
