"""Run catalog connectors on an orchestrator: Dagster assets (`orchestration.dagster_assets`)
or an Airflow DAG (`orchestration.airflow_dag`).

Both build the connector's source the way `python -m connectors run` does: credentials and
settings come from dlt (`.dlt/secrets.toml`, `.dlt/config.toml`, environment variables
such as `SOURCES__CRM__BEARER_TOKEN`), never from orchestrator config that its UI shows.
When several workers sync one API, set `sources.<name>.rate_limit_backend` so their pacers
share one budget (`shared.http.rate_limit`). Install with the `[dagster]` or `[airflow]` extra.
"""

from __future__ import annotations

from typing import Any

from connectors.cli.runner import source_arguments
from shared.tooling.catalog import Catalog, ConnectorEntry, load_catalog


def catalog_entry(name: str, catalog: Catalog | None = None) -> ConnectorEntry:
    """The catalog's entry for connector `name` (`UnknownConnectorError` names the others)."""
    return (catalog or load_catalog()).get(name)


def build_source(entry: ConnectorEntry) -> Any:
    """The connector's source with its configuration resolved by dlt now; `base_url`
    falls back to the source's default (the vendor's URL) when none is configured, and a
    connector without a default stops with one line naming the setting."""
    factory = entry.source_factory()
    return factory(**source_arguments(entry, factory, replay=False, base_url=None))
