"""catalog.yml is valid against its JSON schema and agrees with the code: every connector
package is listed, and every listed source yields exactly the listed resources with their
keys, write dispositions and parents."""

from __future__ import annotations

import copy
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.runner import source_arguments
from connectors.snippets import source_settings
from shared.catalog import (
    CATALOG_PATH,
    CatalogError,
    ConnectorEntry,
    UnknownConnectorError,
    load_catalog,
    parse,
)

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog()
RAW = yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))


def source_packages() -> set[str]:
    """Packages under connectors/ that define a `@dlt.source`."""
    return {
        package.name
        for package in (ROOT / "connectors").iterdir()
        if package.is_dir()
        and any(
            re.search(r"^\s*@dlt\.source\b", path.read_text(encoding="utf-8"), re.MULTILINE)
            for path in package.rglob("*.py")
        )
    }


def instantiate(entry: ConnectorEntry) -> Any:
    """The entry's source as `run --replay` builds it: dummy credentials, the canonical
    base URL, the replay arguments. Building a source sends no request."""
    factory = entry.source_factory()
    return factory(**source_arguments(entry, factory, replay=True, base_url=None))


def primary_key(resource: Any) -> list[str]:
    columns = resource.compute_table_schema()["columns"]
    return [name for name, column in columns.items() if column.get("primary_key")]


def write_disposition(resource: Any) -> str:
    disposition = resource.write_disposition
    return disposition["disposition"] if isinstance(disposition, dict) else disposition


def pipe_ancestors(resource: Any) -> list[str]:
    """The names of the pipes a resource is fed from, nearest first (dlt keeps a
    transformer's parent on its pipe)."""
    ancestors = []
    pipe = resource._pipe.parent
    while pipe is not None:
        ancestors.append(pipe.name)
        pipe = pipe.parent
    return ancestors


def is_fed_from(child: Any, parent: Any, listed: set[str]) -> bool:
    """Whether `child` is fetched per row of `parent`: `parent` is among its ancestors,
    or `parent` is itself loaded from a hidden listing resource that also feeds `child`
    (a connector that reads each list once for the table and its children)."""
    ancestors = pipe_ancestors(child)
    if parent.name in ancestors:
        return True
    feeding = pipe_ancestors(parent)[:1]
    return bool(feeding) and feeding[0] not in listed and feeding[0] in ancestors


def test_catalog_file_is_valid_against_the_schema_and_lists_the_reference_connector() -> None:
    catalog = parse(RAW)

    assert "crm" in catalog.names
    assert catalog.get("crm").resource("parties").incremental == "updatedAt"
    assert len(catalog) == len(RAW["connectors"])


def _crm() -> dict[str, Any]:
    (crm,) = [entry for entry in RAW["connectors"] if entry["name"] == "crm"]
    return copy.deepcopy(crm)


def _without(entry: dict[str, Any], key: str) -> dict[str, Any]:
    entry.pop(key)
    return entry


def _with(entry: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    target: Any = entry
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[last] = value
    return entry


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (lambda: _without(_crm(), "replay"), "'replay' is a required property"),
        (lambda: _with(_crm(), "resources.0.write_disposition", "upsert"), "resources/0"),
        (lambda: _with(_crm(), "seed", "1"), "seed"),
        (lambda: _with(_crm(), "auth.type", "magic"), "auth/type"),
        (lambda: _with(_crm(), "base_url", "api.example.com"), "base_url"),
        (lambda: _with(_crm(), "resources.0.cursor", "id"), "Additional properties"),
        (lambda: _with(_crm(), "module", "connectors.other"), "module must be"),
        (lambda: _with(_crm(), "resources.3.parent", "nobody"), "unknown parent `nobody`"),
        (lambda: _with(_crm(), "resources.1.name", "users"), "`users` is listed twice"),
    ],
    ids=[
        "missing-replay",
        "bad-write-disposition",
        "bad-seed",
        "unknown-auth-type",
        "relative-base-url",
        "unknown-resource-key",
        "module-not-named-after-connector",
        "unknown-parent",
        "duplicate-resource",
    ],
)
def test_schema_and_cross_checks_reject_a_broken_entry_naming_what_is_wrong(
    broken: Any, message: str
) -> None:
    with pytest.raises(CatalogError) as error:
        parse({"connectors": [broken()]})
    assert message in str(error.value)


def test_a_connector_listed_twice_is_rejected() -> None:
    with pytest.raises(CatalogError, match="connector `crm` is listed twice"):
        parse({"connectors": [_crm(), _crm()]})


def test_unknown_connector_and_resource_errors_name_what_exists() -> None:
    with pytest.raises(UnknownConnectorError, match="the catalog has: crm"):
        CATALOG.get("nope")
    with pytest.raises(UnknownConnectorError, match="it has: users, parties"):
        CATALOG.get("crm").resource("nope")


def test_every_connector_package_with_a_dlt_source_is_listed_and_vice_versa() -> None:
    listed = {entry.module.removeprefix("connectors.") for entry in CATALOG}

    assert source_packages() == listed


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_source_yields_exactly_the_listed_resources_keys_and_dispositions(
    entry: ConnectorEntry,
) -> None:
    source = instantiate(entry)

    resources = source.selected_resources
    assert sorted(resources) == sorted(entry.resource_names)
    listed = set(entry.resource_names)
    for listed_resource in entry.resources:
        resource = resources[listed_resource.name]
        assert (listed_resource.name, primary_key(resource)) == (
            listed_resource.name,
            list(listed_resource.primary_key),
        )
        assert (listed_resource.name, write_disposition(resource)) == (
            listed_resource.name,
            listed_resource.write_disposition,
        )
        if listed_resource.parent:
            parent = resources[listed_resource.parent]
            assert is_fed_from(resource, parent, listed), f"{listed_resource.name} <- {parent.name}"
        else:
            assert not listed & set(pipe_ancestors(resource)), listed_resource.name


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_listed_secrets_are_the_sources_secret_arguments(entry: ConnectorEntry) -> None:
    factory = entry.source_factory()
    settings = source_settings(entry, factory)
    parameters = set(inspect.signature(factory).parameters)

    assert set(entry.auth.secrets) <= parameters
    # every argument dlt resolves as a secret is named in the catalog
    assert set(settings.secrets) == set(entry.auth.secrets)


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_replay_cassette_is_recorded(entry: ConnectorEntry) -> None:
    path = entry.cassette_path()

    assert path.is_file(), f"{entry.name}: no cassette {path.relative_to(ROOT)}"
    assert "interactions:" in path.read_text(encoding="utf-8")[:200]
