"""The connector catalog (`catalog.yml`): loading, validation and typed access.

`catalog.yml` lists every connector with what a user needs to choose and run it: its
module and source function, the real API it speaks, auth and secret names, default base
URL, resources (API path, primary key, write disposition, incremental cursor, parent),
rate limit, maturity, and how to replay it offline (a cassette and extra source
arguments). The file is validated against
`catalog.schema.json` (JSON Schema) before anything reads it, so the CLI, the README
table and the tests all see the same, checked data.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from shared.errors import ConnectorError
from shared.tooling.cassettes import cassette_path
from shared.tooling.package_data import package_data

#: the repository (this file is shared/tooling/catalog.py)
ROOT = Path(__file__).resolve().parents[2]
#: the checkout's `catalog.yml`, or the copy an installed wheel carries
CATALOG_PATH = package_data("catalog.yml")
SCHEMA_PATH = Path(__file__).resolve().parent / "catalog.schema.json"


class CatalogError(ConnectorError):
    """`catalog.yml` is malformed, or an entry does not match the code."""


class UnknownConnectorError(ConnectorError):
    """A connector (or a connector's resource) that the catalog does not list."""


@dataclass(frozen=True)
class Resource:
    """One resource (table) of a connector."""

    name: str
    primary_key: tuple[str, ...]
    write_disposition: str
    incremental: str | None = None
    parent: str | None = None
    #: the API path the table is read from (`{placeholder}`: a parent's value)
    path: str | None = None

    @property
    def incremental_column(self) -> str | None:
        """The column the incremental cursor field loads into, by dlt's default naming:
        `updatedAt` -> `updated_at`, a nested `a.b` -> `a__b`."""
        if self.incremental is None:
            return None
        from dlt.common.normalizers.naming.snake_case import NamingConvention

        naming = NamingConvention()
        return "__".join(naming.normalize_identifier(part) for part in self.incremental.split("."))

    #: how a sync learns deletions: "feed", "full_list", "reconcile" or "none"
    deletions: str = "none"


@dataclass(frozen=True)
class Auth:
    """How a connector authenticates: the default mode's type, secret arguments and
    config arguments (e.g. a token URL), and the other modes it accepts instead.

    Args:
        type: the mode, e.g. `api_key` or `oauth2_client_credentials`.
        secrets: the source's secret arguments this mode needs.
        config: the (not secret) config arguments this mode needs.
        alternatives: modes accepted instead of this one (the user configures one).
    """

    type: str
    secrets: tuple[str, ...]
    config: tuple[str, ...] = ()
    alternatives: tuple[Auth, ...] = ()

    @property
    def modes(self) -> tuple[Auth, ...]:
        """Every accepted mode, the default first, each without alternatives."""
        return (replace(self, alternatives=()), *self.alternatives)

    @property
    def all_secrets(self) -> tuple[str, ...]:
        """The secret arguments of every mode, the default's first."""
        names = [secret for mode in self.modes for secret in mode.secrets]
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class RateLimitInfo:
    """A rate limit the API documents: `requests` per `per_seconds`."""

    requests: int
    per_seconds: float
    path: str | None = None


@dataclass(frozen=True)
class Api:
    """The real API a connector speaks.

    Args:
        name: the API as its vendor names it (`Capsule CRM API v2`), or, for an API no
            vendor publishes, what kind of API it is.
        as_published: the connector speaks the API exactly as published, so its
            `base_url` defaults to the vendor's URL; otherwise `base_url` is required.
        differences: how the HTTP the connector speaks differs from the published API.
        reference: the vendor's API reference, when there is one.
    """

    name: str
    as_published: bool
    differences: str
    reference: str | None = None


@dataclass(frozen=True)
class Replay:
    """How to run a connector offline: the cassette to play, the origin it was recorded
    under (the `base_url` a replay passes) and extra source arguments."""

    cassette: str
    base_url: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectorEntry:
    """One connector of the catalog."""

    name: str
    title: str
    description: str
    category: str
    module: str
    source_function: str
    api: Api
    maturity: str
    #: the source's default base URL; None when it has none and one must be configured
    base_url: str | None
    auth: Auth
    rate_limits: tuple[RateLimitInfo, ...]
    replay: Replay
    resources: tuple[Resource, ...]
    notes: tuple[str, ...] = ()
    #: the resources are the source's configuration (listed: the replay configuration's)
    configurable_resources: bool = False
    #: the resource whose first page `connectors check` requests (None: the first one
    #: without a parent)
    check: str | None = None

    @property
    def resource_names(self) -> list[str]:
        return [resource.name for resource in self.resources]

    def resource(self, name: str) -> Resource:
        """The resource called `name`; `UnknownConnectorError` naming the existing ones."""
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise UnknownConnectorError(
            f"{self.name} has no resource `{name}`; it has: {', '.join(self.resource_names)}"
        )

    def cassette_path(self, root: Path | None = None) -> Path:
        """The cassette `run --replay` and the demo play: cassettes/<name>/<cassette>.yaml
        (under the repository at `root`, default this one)."""
        cassettes = root / "cassettes" if root is not None else None
        return cassette_path(self.name, self.replay.cassette, cassettes)

    def source_factory(self) -> Any:
        """Import `module` and return its source function (a dlt source factory)."""
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            raise CatalogError(
                f"{self.name}: module `{self.module}` does not import: {exc}"
            ) from exc
        factory = getattr(module, self.source_function, None)
        if factory is None:
            raise CatalogError(
                f"{self.name}: `{self.module}` has no source function `{self.source_function}`"
            )
        return factory


@dataclass(frozen=True)
class Catalog:
    """Every connector of the catalog, in file order."""

    connectors: tuple[ConnectorEntry, ...]
    path: Path = CATALOG_PATH
    #: the declarative connectors' specs, relative to the catalog's folder
    specs: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[ConnectorEntry]:
        return iter(self.connectors)

    def __len__(self) -> int:
        return len(self.connectors)

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self.connectors]

    def get(self, name: str) -> ConnectorEntry:
        """The connector called `name`; `UnknownConnectorError` naming the existing ones."""
        for entry in self.connectors:
            if entry.name == name:
                return entry
        raise UnknownConnectorError(
            f"unknown connector `{name}`; the catalog has: {', '.join(self.names)}"
        )


@cache
def schema() -> dict[str, Any]:
    """The JSON schema of `catalog.yml`."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate(data: Any) -> None:
    """Raise `CatalogError` listing every way `data` (a parsed catalog) is invalid.

    Beyond the JSON schema: connector and resource names are unique, a resource's
    `parent` is another resource of the same connector, `base_url` is null exactly when
    the API is not spoken as published, and a replay without a `base_url` has its own.
    """
    validator = jsonschema.Draft202012Validator(schema())
    problems = [
        f"{'/'.join(str(part) for part in error.absolute_path) or '(top)'}: {error.message}"
        for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    ]
    if not problems:
        problems = _cross_reference_problems(data["connectors"])
    if problems:
        raise CatalogError("catalog.yml is invalid:\n  " + "\n  ".join(problems))


def _cross_reference_problems(connectors: list[dict[str, Any]]) -> list[str]:
    problems = []
    seen: set[str] = set()
    for entry in connectors:
        name = entry["name"]
        if name in seen:
            problems.append(f"connector `{name}` is listed twice")
        seen.add(name)
        if entry["module"] != f"connectors.{name}":
            problems.append(f"{name}: module must be `connectors.{name}`")
        modes = [entry["auth"]["type"], *(m["type"] for m in entry["auth"].get("alternatives", []))]
        for duplicate in sorted({mode for mode in modes if modes.count(mode) > 1}):
            problems.append(f"{name}: auth mode `{duplicate}` is listed twice")
        if (entry["base_url"] is None) == entry["api"]["as_published"]:
            problems.append(
                f"{name}: base_url must be the vendor's URL when api.as_published is true, "
                "and null when it is false"
            )
        if entry["base_url"] is None and "base_url" not in entry["replay"]:
            problems.append(f"{name}: replay.base_url is required when base_url is null")
        resources = [resource["name"] for resource in entry["resources"]]
        for duplicate in sorted({r for r in resources if resources.count(r) > 1}):
            problems.append(f"{name}: resource `{duplicate}` is listed twice")
        for resource in entry["resources"]:
            parent = resource.get("parent")
            if parent is not None and parent not in resources:
                problems.append(
                    f"{name}: resource `{resource['name']}` names unknown parent `{parent}`"
                )
        check = entry.get("check")
        parents = {resource["name"]: resource.get("parent") for resource in entry["resources"]}
        if check is not None and (check not in parents or parents[check] is not None):
            problems.append(f"{name}: `check` names `{check}`, not a resource without a parent")
    return problems


def parse(data: Any, path: Path = CATALOG_PATH) -> Catalog:
    """Validate a parsed catalog and return it typed."""
    validate(data)
    specs = tuple(spec["path"] for spec in data.get("specs", []))
    return Catalog(tuple(_entry(raw) for raw in data["connectors"]), path, specs)


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Read, validate and return `catalog.yml` (default: the repository's)."""
    default = path is None
    path = Path(path) if path is not None else CATALOG_PATH
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if default:  # a wheel carries it (setup.py); an install without it is broken
            raise CatalogError(
                f"no catalog at {path}: this installation lacks the catalog's files; "
                "reinstall the package (pip install --force-reinstall), or run from a "
                "checkout: pip install -e ."
            ) from None
        raise CatalogError(f"no catalog at {path}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path.name} is not valid YAML: {exc}") from None
    return parse(data, path)


def _entry(raw: dict[str, Any]) -> ConnectorEntry:
    limits = raw["rate_limit"] or []
    if isinstance(limits, dict):
        limits = [limits]
    return ConnectorEntry(
        name=raw["name"],
        title=raw["title"],
        description=" ".join(raw["description"].split()),
        category=raw["category"],
        module=raw["module"],
        source_function=raw["source_function"],
        api=Api(
            name=raw["api"]["name"],
            as_published=raw["api"]["as_published"],
            differences=" ".join(raw["api"]["differences"].split()),
            reference=raw["api"].get("reference"),
        ),
        maturity=raw["maturity"],
        base_url=raw["base_url"],
        auth=_auth(raw["auth"]),
        rate_limits=tuple(
            RateLimitInfo(limit["requests"], limit["per_seconds"], limit.get("path"))
            for limit in limits
        ),
        replay=Replay(
            cassette=raw["replay"]["cassette"],
            base_url=raw["replay"].get("base_url") or raw["base_url"],
            kwargs=dict(raw["replay"]["kwargs"]),
        ),
        resources=tuple(
            Resource(
                name=resource["name"],
                primary_key=tuple(resource["primary_key"]),
                write_disposition=resource["write_disposition"],
                incremental=resource.get("incremental"),
                parent=resource.get("parent"),
                deletions=resource.get("deletions", "none"),
                path=resource.get("path"),
            )
            for resource in raw["resources"]
        ),
        notes=tuple(" ".join(note.split()) for note in raw.get("notes", [])),
        configurable_resources=raw.get("configurable_resources", False),
        check=raw.get("check"),
    )


def _auth(raw: dict[str, Any]) -> Auth:
    return Auth(
        type=raw["type"],
        secrets=tuple(raw["secrets"]),
        config=tuple(raw.get("config", [])),
        alternatives=tuple(_auth(mode) for mode in raw.get("alternatives", [])),
    )
