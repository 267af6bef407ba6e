"""Declarative connectors: a REST API in one YAML file, built by the catalog's builder.

    from connectors.declarative import declarative_source
    source = declarative_source("connectors/crm/crm.yml", bearer_token="...")

The spec follows dlt's `rest_api` config plus the catalog's keys (`spec.schema.json`,
docs/declarative.md); it is validated before anything runs (`spec`), and built by
`shared.rest.builder` with every guarantee of the catalog's Python connectors (`source`).
"""

from connectors.declarative.source import declarative_source
from connectors.declarative.spec import SpecError, load_spec

__all__ = ["SpecError", "declarative_source", "load_spec"]
