"""The configured resource list, as dlt `rest_api` resource dicts.

The resources are configuration, not a fixed table: a plain name `"events"`
means `/v1/events`, primary key `id`, full refresh; a mapping may set `name`, `path`,
`primary_key`, `data_selector`, `write_disposition` and
`incremental: {cursor_path, param, initial_value}`, which makes it merge on its key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from connectors.analytics.settings import DEFAULT_PATH_TEMPLATE
from shared.errors import ConfigurationError
from shared.rest.builder import FULL_LIST

CONNECTOR = "analytics"
RESOURCE_KEYS = frozenset(
    {"name", "path", "primary_key", "data_selector", "write_disposition", "incremental"}
)
INCREMENTAL_KEYS = frozenset({"cursor_path", "param", "initial_value"})
WRITE_DISPOSITIONS = ("replace", "append", "merge")
EXAMPLE = (
    '["events", {"name": "users", "incremental": '
    '{"cursor_path": "updated_at", "param": "updated_since"}}]'
)


def resource_table(resources: Any) -> list[dict[str, Any]]:
    """Translate the `resources` setting into `rest_api` resource dicts.

    Raises:
        ConfigurationError: naming the bad entry and what is wrong with it.
    """
    if isinstance(resources, (str, bytes)) or not isinstance(resources, Sequence):
        _fail(
            f"must be a list of resource names or mappings, got {type(resources).__name__}; "
            f"e.g. {EXAMPLE}"
        )
    if not resources:
        _fail(f"is empty; list the resources to load, e.g. {EXAMPLE}")
    table = [_resource(entry, position) for position, entry in enumerate(resources)]
    names = [resource["name"] for resource in table]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        _fail(f"names {', '.join(repr(name) for name in duplicates)} more than once")
    return table


def _resource(entry: Any, position: int) -> dict[str, Any]:
    where = f"entry {position}"
    if isinstance(entry, str):
        return {
            "name": _name(entry, where),
            "endpoint": {"path": _default_path(entry)},
            "deletions": FULL_LIST,
        }
    if not isinstance(entry, Mapping):
        _fail(f"{where} must be a resource name or a mapping, got {type(entry).__name__}")
    unknown = sorted(set(entry) - RESOURCE_KEYS)
    if unknown:
        _fail(f"{where} has unknown key(s) {unknown}; allowed: {sorted(RESOURCE_KEYS)}")
    name = _name(entry.get("name"), where)
    where = f"resource {name!r}"
    path = _text(entry.get("path", _default_path(name)), where, "path")
    endpoint: dict[str, Any] = {"path": path}
    resource: dict[str, Any] = {"name": name, "endpoint": endpoint}
    if "data_selector" in entry:
        endpoint["data_selector"] = _text(entry["data_selector"], where, "data_selector")
    if "primary_key" in entry:
        resource["primary_key"] = _primary_key(entry["primary_key"], where)
    incremental = entry.get("incremental")
    if incremental is not None:
        param, cursor = _incremental(incremental, where)
        endpoint["params"] = {param: cursor}
        resource["write_disposition"] = "merge"
    if "write_disposition" in entry:
        disposition = entry["write_disposition"]
        if disposition not in WRITE_DISPOSITIONS:
            _fail(
                f"{where}: write_disposition must be one of {WRITE_DISPOSITIONS}, "
                f"got {disposition!r}"
            )
        resource["write_disposition"] = disposition
    if incremental is None and resource.get("write_disposition", "replace") != "append":
        # read in full every run: a record missing from the list was deleted
        resource["deletions"] = FULL_LIST
    return resource


def _incremental(incremental: Any, where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(incremental, Mapping):
        _fail(f"{where}: incremental must be a mapping with cursor_path, param and initial_value")
    unknown = sorted(set(incremental) - INCREMENTAL_KEYS)
    if unknown:
        _fail(
            f"{where}: incremental has unknown key(s) {unknown}; "
            f"allowed: {sorted(INCREMENTAL_KEYS)}"
        )
    cursor_path = _text(incremental.get("cursor_path"), where, "incremental.cursor_path")
    param = _text(incremental.get("param"), where, "incremental.param")
    cursor = {
        "type": "incremental",
        "cursor_path": cursor_path,
        "initial_value": incremental.get("initial_value"),
    }
    return param, cursor


def _name(value: Any, where: str) -> str:
    return _text(value, where, "name")


def _text(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(f"{where}: `{key}` must be a non-empty string, got {value!r}")
    return value


def _primary_key(value: Any, where: str) -> str | list[str]:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return value
    _fail(f"{where}: primary_key must be a column name or a list of them, got {value!r}")


def _default_path(name: str) -> str:
    return DEFAULT_PATH_TEMPLATE.format(name=name)


def _fail(problem: str) -> NoReturn:
    raise ConfigurationError(f"{CONNECTOR}: `sources.{CONNECTOR}.resources` {problem}")
