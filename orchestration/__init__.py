"""Run catalog connectors on an orchestrator: Dagster assets (`orchestration.dagster_assets`)
or an Airflow DAG (`orchestration.airflow_dag`).

Both build the connector's source the way `python -m connectors run` does: credentials and
settings come from dlt (`.dlt/secrets.toml`, `.dlt/config.toml`, environment variables
such as `SOURCES__CRM__BEARER_TOKEN`), never from orchestrator config that its UI shows.
When several workers sync one API, set `sources.<name>.rate_limit_backend` so their pacers
share one budget (`shared.http.rate_limit`). Install with the `[dagster]` or `[airflow]` extra.

Dagster's definitions list a connector's tables from `outline_source`, built with
stand-in credentials, so they load with no secret set; each run builds the real source
(`build_source`), and only then needs the secrets.
"""

from __future__ import annotations

import inspect
from typing import Any

from connectors.cli.runner import (
    config_section,
    configured,
    configured_auth_mode,
    source_arguments,
)
from shared.tooling.catalog import Catalog, ConnectorEntry, load_catalog

#: the base URL an outline source gets when none is configured: it never sends a request
STAND_IN_BASE_URL = "https://stand-in.invalid"


def catalog_entry(name: str, catalog: Catalog | None = None) -> ConnectorEntry:
    """The catalog's entry for connector `name` (`UnknownConnectorError` names the others)."""
    return (catalog or load_catalog()).get(name)


def build_source(entry: ConnectorEntry) -> Any:
    """The connector's source with its configuration resolved by dlt now; `base_url`
    falls back to the source's default (the vendor's URL) when none is configured, and a
    connector without a default stops with one line naming the setting."""
    factory = entry.source_factory()
    return factory(**source_arguments(entry, factory, replay=False, base_url=None))


def outline_source(entry: ConnectorEntry) -> Any:
    """The connector's source for knowing its resources and tables, built with no secret
    set: stand-in credentials (of the auth mode that is configured, else the default
    one), and the catalog's replay arguments where dlt's config has no value (a
    configurable source's resources). Building sends no request; it is never run.

    Orchestrators list a connector's tables when they load their definitions, long
    before a run: `build_source` then builds the real one, when it runs."""
    factory = entry.source_factory()
    section = config_section(entry, factory)
    mode = configured_auth_mode(entry, section)
    arguments = source_arguments(entry, factory, replay=False, base_url=None)
    arguments.update({secret: f"stand-in-{secret}" for secret in mode.secrets})
    takes_base_url = "base_url" in inspect.signature(factory).parameters
    if takes_base_url and "base_url" not in arguments and not configured(section, "base_url"):
        arguments["base_url"] = STAND_IN_BASE_URL  # a source without a default URL
    unconfigured = {
        key: value
        for key, value in entry.replay.kwargs.items()
        if key not in entry.auth.all_secrets and not configured(section, key)
    }
    return factory(**{**unconfigured, **arguments})
