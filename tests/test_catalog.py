"""catalog.yml is valid against its JSON schema and agrees with the code: every connector
package is listed, every listed source yields exactly the listed resources with their
keys, write dispositions, incremental cursors and parents, and every auth mode's secrets
and config are arguments of the source."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import re
import typing
from pathlib import Path
from typing import Any

import dlt
import pytest
import yaml
from dlt.common.configuration.specs.base_configuration import is_secret_hint
from dlt.extract.incremental import Incremental, IncrementalResourceWrapper

from connectors.cli.connector_names import TOOLING_PACKAGES
from connectors.cli.runner import source_arguments
from connectors.cli.snippets import source_settings
from shared.incremental.deletions import learns_deletions
from shared.rest.builder import MAX_TABLE_NESTING
from shared.tooling.catalog import (
    CATALOG_PATH,
    CatalogError,
    ConnectorEntry,
    UnknownConnectorError,
    load_catalog,
    parse,
    schema,
)

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog()
RAW = yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))


def source_packages() -> set[str]:
    """Packages under connectors/ that define a `@dlt.source` (declarative/ makes one from
    any spec: it is tooling, not a connector)."""
    return {
        package.name
        for package in (ROOT / "connectors").iterdir()
        if package.is_dir()
        and package.name not in TOOLING_PACKAGES
        and any(
            re.search(r"^\s*@dlt\.source\b", path.read_text(encoding="utf-8"), re.MULTILINE)
            for path in package.rglob("*.py")
        )
    }


def instantiate(entry: ConnectorEntry, reconcile: bool = False) -> Any:
    """The entry's source as `run --replay` builds it: dummy credentials, the canonical
    base URL, the replay arguments. Building a source sends no request."""
    factory = entry.source_factory()
    return factory(
        **source_arguments(entry, factory, replay=True, base_url=None, reconcile=reconcile)
    )


def primary_key(resource: Any) -> list[str]:
    columns = resource.compute_table_schema()["columns"]
    return [name for name, column in columns.items() if column.get("primary_key")]


def write_disposition(resource: Any) -> str:
    disposition = resource.write_disposition
    return disposition["disposition"] if isinstance(disposition, dict) else disposition


def incremental_cursor(resource: Any) -> str | None:
    """The cursor path of the resource's `dlt.sources.incremental`, or None. dlt keeps it
    in one of three places, depending on how the resource was made:

    - applied as a hint (`apply_hints(incremental=...)`, as shared/rest/client_incremental.py
      does on the table half of a split parent): `resource.incremental` is the
      `Incremental` step itself, or the wrapper holding it;
    - a dlt `rest_api` resource: the `incremental_object` argument its function was
      called with (`resource.explicit_args`);
    - a hand-written resource (hubspot_contacts' `contacts`): the default of its
      incremental parameter.
    """
    step = resource.incremental
    if isinstance(step, Incremental):
        return step.cursor_path
    if isinstance(step, IncrementalResourceWrapper) and step.incremental is not None:
        return step.incremental.cursor_path
    try:
        arguments = resource.explicit_args or {}
    except TypeError:  # a resource dlt has not called yet has no arguments
        arguments = {}
    for value in arguments.values():
        if isinstance(value, Incremental):
            return value.cursor_path
    parameter = IncrementalResourceWrapper.get_incremental_arg(
        inspect.signature(resource._pipe.gen)
    )
    if parameter is not None and isinstance(parameter.default, Incremental):
        return parameter.default.cursor_path
    return None


def resource_differences(entry: ConnectorEntry, source: Any) -> str:
    """What a stale catalog entry gets wrong about the source's resources, in words
    ("" when they agree): the code, not the catalog, decides what `run --resources` takes."""
    code = list(source.selected_resources)
    missing = [name for name in code if name not in entry.resource_names]
    ghosts = [name for name in entry.resource_names if name not in code]
    problems = []
    if missing:
        problems.append(f"the source yields {', '.join(missing)}, which catalog.yml does not list")
    if ghosts:
        problems.append(f"catalog.yml lists {', '.join(ghosts)}, which the source does not yield")
    if not problems:
        return ""
    return f"{entry.name}: " + "; ".join(problems) + " (update catalog.yml's resources)"


def cursor_mismatches(entry: ConnectorEntry, source: Any) -> list[str]:
    """Each listed resource whose `incremental` differs from its built resource's cursor."""
    resources = source.selected_resources
    return [
        f"{listed.name}: catalog {listed.incremental!r}, code {code!r}"
        for listed in entry.resources
        if (code := incremental_cursor(resources[listed.name])) != listed.incremental
    ]


def deletion_mismatches(entry: ConnectorEntry, source: Any, reconciling: Any = None) -> list[str]:
    """Each listed resource whose `deletions` differs from how its built resource learns
    them: `reconcile` is a resource that learns none in a normal run (`source`) and
    deletions from its full list in a reconciling one (`reconciling`)."""
    normal = source.selected_resources
    reconciled = reconciling.selected_resources if reconciling is not None else {}

    def code(name: str) -> str:
        learned = learns_deletions(normal[name])
        if (
            learned == "none"
            and name in reconciled
            and learns_deletions(reconciled[name]) == "full_list"
        ):
            return "reconcile"
        return learned

    return [
        f"{listed.name}: catalog {listed.deletions!r}, code {learned!r}"
        for listed in entry.resources
        if (learned := code(listed.name)) != listed.deletions
    ]


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
        (lambda: _with(_crm(), "seed", "001"), "'seed' was unexpected"),
        (lambda: _without(_crm(), "api"), "'api' is a required property"),
        (lambda: _with(_crm(), "api.as_published", "yes"), "api/as_published"),
        (lambda: _with(_crm(), "base_url", None), "null when it is false"),
        (lambda: _with(_crm(), "api.as_published", False), "null when it is false"),
        (
            lambda: _with(
                _with(_with(_crm(), "api.as_published", False), "base_url", None),
                "replay",
                {"cassette": "full_sync", "kwargs": {}},
            ),
            "replay.base_url is required when base_url is null",
        ),
        (lambda: _with(_crm(), "resources.0.path", "api/v2/users"), "resources/0/path"),
        (lambda: _with(_crm(), "auth.type", "magic"), "auth/type"),
        (lambda: _with(_crm(), "base_url", "api.example.com"), "base_url"),
        (lambda: _with(_crm(), "resources.0.cursor", "id"), "Additional properties"),
        (lambda: _with(_crm(), "module", "connectors.other"), "module must be"),
        (lambda: _with(_crm(), "resources.3.parent", "nobody"), "unknown parent `nobody`"),
        (lambda: _with(_crm(), "resources.1.name", "users"), "`users` is listed twice"),
        (
            lambda: _with(_crm(), "auth.alternatives", [{"type": "basic", "secret": ["x"]}]),
            "auth/alternatives/0",
        ),
        (
            lambda: _with(_crm(), "auth.alternatives", [{"type": "bearer", "secrets": ["x"]}]),
            "auth mode `bearer` is listed twice",
        ),
        (lambda: _with(_crm(), "auth.scopes", ["read"]), "'scopes' was unexpected"),
        (lambda: _with(_crm(), "configurable_resources", "yes"), "configurable_resources"),
    ],
    ids=[
        "missing-replay",
        "bad-write-disposition",
        "seed-is-gone",
        "missing-api",
        "non-boolean-as-published",
        "published-api-without-base-url",
        "base-url-of-an-api-not-as-published",
        "no-replay-origin-without-base-url",
        "relative-resource-path",
        "unknown-auth-type",
        "relative-base-url",
        "unknown-resource-key",
        "module-not-named-after-connector",
        "unknown-parent",
        "duplicate-resource",
        "malformed-auth-alternative",
        "auth-alternative-repeats-the-default",
        "unknown-auth-key",
        "non-boolean-configurable-resources",
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
    assert resource_differences(entry, source) == ""
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
def test_listed_deletions_are_how_the_resources_learn_them(entry: ConnectorEntry) -> None:
    source = instantiate(entry)

    assert deletion_mismatches(entry, source, instantiate(entry, reconcile=True)) == []
    # every connector learns some deletions, and a feed or full list marks a keyed table
    assert any(resource.deletions != "none" for resource in entry.resources), entry.name


def test_a_wrong_deletions_entry_in_the_catalog_is_caught() -> None:
    entry = CATALOG.get("crm")
    broken = dataclasses.replace(
        entry,
        resources=tuple(
            dataclasses.replace(listed, deletions="full_list")
            if listed.name == "parties"
            else listed
            for listed in entry.resources
        ),
    )

    assert deletion_mismatches(broken, instantiate(entry)) == [
        "parties: catalog 'full_list', code 'feed'"
    ]


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_listed_incremental_cursors_are_the_resources_cursors(entry: ConnectorEntry) -> None:
    source = instantiate(entry)

    assert cursor_mismatches(entry, source) == []
    # the catalog lists incremental resources for every connector that has them
    assert any(resource.incremental for resource in entry.resources), entry.name


@pytest.mark.parametrize(
    ("connector", "resource", "wrong"),
    [
        ("crm", "parties", "createdAt"),  # rest_api: the incremental_object argument
        ("crm", "users", "updatedAt"),  # a resource with no cursor
        ("project_tracker", "epics", "created_at"),  # client_incremental's hinted table
        ("project_tracker", "search_epics", None),  # rest_api, client-side cursor
        ("hubspot_contacts", "contacts", "updatedAt"),  # custom resource's default
        ("analytics", "users", "created_at"),  # configured (replay.kwargs)
    ],
)
def test_a_wrong_incremental_cursor_in_the_catalog_is_caught(
    connector: str, resource: str, wrong: str | None
) -> None:
    entry = CATALOG.get(connector)
    broken = dataclasses.replace(
        entry,
        resources=tuple(
            dataclasses.replace(listed, incremental=wrong) if listed.name == resource else listed
            for listed in entry.resources
        ),
    )

    (mismatch,) = cursor_mismatches(broken, instantiate(entry))

    assert mismatch == (
        f"{resource}: catalog {wrong!r}, code {entry.resource(resource).incremental!r}"
    )


def _is_secret(factory: Any, name: str) -> bool:
    """Whether dlt resolves argument `name` as a secret: its default is
    `dlt.secrets.value`, or its type is a secret type (`TSecretStrValue`)."""
    parameter = inspect.signature(factory).parameters[name]
    hints = typing.get_type_hints(inspect.unwrap(factory), include_extras=True)
    return parameter.default is dlt.secrets.value or is_secret_hint(hints.get(name))


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_listed_secrets_are_the_sources_secret_arguments(entry: ConnectorEntry) -> None:
    factory = entry.source_factory()
    settings = source_settings(entry, factory)
    parameters = set(inspect.signature(factory).parameters)

    assert set(entry.auth.secrets) <= parameters
    # every argument dlt resolves as a secret is named in the catalog
    assert set(settings.secrets) == set(entry.auth.secrets)
    for mode in entry.auth.modes:  # alternative modes too: secrets secret, config not
        assert set(mode.secrets) | set(mode.config) <= parameters, mode.type
        assert all(_is_secret(factory, name) for name in mode.secrets), mode.type
        assert not any(_is_secret(factory, name) for name in mode.config), mode.type


def test_analytics_lists_its_oauth2_mode_as_an_alternative_to_the_api_key() -> None:
    modes = CATALOG.get("analytics").auth.modes

    assert [(m.type, m.secrets, m.config) for m in modes] == [
        ("api_key", ("api_key",), ()),
        ("oauth2_client_credentials", ("client_id", "client_secret"), ("token_url",)),
    ]


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_configurable_resources_is_set_exactly_for_sources_taking_a_resource_list(
    entry: ConnectorEntry,
) -> None:
    parameters = inspect.signature(entry.source_factory()).parameters

    assert entry.configurable_resources == ("resources" in parameters)


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_replay_cassette_is_recorded(entry: ConnectorEntry) -> None:
    path = entry.cassette_path()

    assert path.is_file(), f"{entry.name}: no cassette {path.relative_to(ROOT)}"
    assert "interactions:" in path.read_text(encoding="utf-8")[:200]


def test_a_stale_catalog_entry_is_reported_naming_the_difference() -> None:
    entry = CATALOG.get("crm")
    stale = dataclasses.replace(
        entry,
        resources=tuple(
            [r for r in entry.resources if r.name != "stages"]
            + [dataclasses.replace(entry.resource("users"), name="ghost")]
        ),
    )

    assert resource_differences(stale, instantiate(entry)) == (
        "crm: the source yields stages, which catalog.yml does not list; catalog.yml lists "
        "ghost, which the source does not yield (update catalog.yml's resources)"
    )


#: what every connector's own README covers (issue 14: in the project's words)
README_SECTIONS = [
    "The API it speaks",
    "Auth and secrets",
    "Config",
    "Tables and keys",
    "Incremental behaviour",
    "Rate limits",
    "Known limits",
]


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_every_connector_has_its_own_readme_covering_auth_config_tables_and_limits(
    entry: ConnectorEntry,
) -> None:
    from connectors.cli.readme import connector_readme

    path = ROOT / connector_readme(entry)
    assert path.is_file(), f"{entry.name}: no {connector_readme(entry)}"
    text = path.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)

    for section in README_SECTIONS:
        assert any(heading.startswith(section) for heading in headings), (entry.name, section)
    for secret in entry.auth.all_secrets:
        assert f"`{secret}`" in text or f"{secret} =" in text, (entry.name, secret)
    for resource in entry.resources:
        assert f"`{resource.name}`" in text, (entry.name, resource.name)
    # where base_url comes from (the API section's text is checked against the catalog by
    # tests/test_readme.py, once `make readme` has written it for a new connector)
    flat = " ".join(text.split())
    assert (entry.base_url or f"`sources.{entry.name}.base_url` in `.dlt/config.toml`") in flat


def _descriptions(node: Any) -> list[str]:
    """Every `description` string in the JSON schema, however deeply nested."""
    if isinstance(node, dict):
        own = [node["description"]] if isinstance(node.get("description"), str) else []
        return own + [text for value in node.values() for text in _descriptions(value)]
    if isinstance(node, list):
        return [text for value in node for text in _descriptions(value)]
    return []


def test_the_schema_names_only_paths_that_exist_in_the_repository() -> None:
    """The schema documents catalog.yml's fields for its readers: a path it names (with
    `<name>` and `<cassette>` standing for each entry's values) is in the checkout, not a
    folder that exists elsewhere."""
    paths = [
        token.rstrip(".,;:")
        for text in _descriptions(schema())
        for token in re.findall(r"[\w.<>*-]+(?:/[\w.<>*-]*)+", text)
    ]

    assert "connectors/<name>/README.md" in paths  # where a connector is documented
    for entry in CATALOG:
        for path in paths:
            concrete = path.replace("<name>", entry.name).replace(
                "<cassette>", entry.replay.cassette
            )
            assert (ROOT / concrete).exists(), f"the schema names {path}: no {concrete}"


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_every_table_a_connector_loads_nests_at_most_the_bound(entry: ConnectorEntry) -> None:
    source = instantiate(entry)

    loading = [resource for resource in source.resources.values() if resource.selected]
    assert loading
    unbounded = [r.name for r in loading if r.max_table_nesting != MAX_TABLE_NESTING]
    assert unbounded == [], f"{entry.name}: tables without the nesting bound"
