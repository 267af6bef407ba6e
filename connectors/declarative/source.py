"""`declarative_source(spec, **values)`: a spec built into a dlt source by the catalog's
own builder (`shared.rest.builder.build_resources`), so it gets what the catalog's
connectors get: checked pages, guarded cursors, newest-copy-wins merges, origin-scoped
credentials, redaction by value, pacing from the server's budget, deletions.

The spec's keys become the builder's: `client.auth` an authenticator of
`shared.http.auth`, `rate_limit` a `RateLimit` (with `BudgetHeaders`), a resource's
`deletions` mapping a `DeletionFeed`, a cursor's `convert` name a function of
`shared.timestamps`, a path's `{resources.<parent>.<field>}` the builder's `parent`
(its `where` mapping a row filter), paginator names dlt's paginators.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import dlt
from dlt.sources import DltResource, DltSource
from dlt.sources.rest_api.config_setup import create_paginator

from connectors.declarative.spec import (
    PLACEHOLDER,
    Spec,
    SpecError,
    fill,
    load_spec,
    placeholders,
)
from shared.http.auth import (
    api_key_header,
    api_key_query,
    bearer_token,
    http_basic,
    oauth2_client_credentials,
)
from shared.http.rate_limit import DEFAULT_BUDGET_RESERVE, BudgetHeaders, RateLimit
from shared.http.retries import RetryPolicy
from shared.http.session import DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_DEADLINE
from shared.incremental.deletions import DeletionFeed, deletion_mode
from shared.redaction import Redactor
from shared.rest.builder import SourceHttp, build_resources
from shared.timestamps import epoch_millis, iso_utc_seconds

#: a cursor's `convert`: how its value is sent as a query parameter
CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "iso_utc_seconds": iso_utc_seconds,
    "epoch_millis": epoch_millis,
}
#: the keyword arguments every declarative source takes besides its spec's values (the
#: same names and meaning as the catalog's Python sources'); also read from
#: `sources.<name>.<key>`
SETTINGS: dict[str, Any] = {
    "base_url": None,
    "requests_per_minute": None,
    "budget_reserve": DEFAULT_BUDGET_RESERVE,
    "max_retries": 5,
    "backoff_factor": 1.0,
    "max_rate_limit_wait": None,
    "request_deadline": DEFAULT_REQUEST_DEADLINE,
    "rate_limit_backend": None,
    "max_body_bytes": DEFAULT_MAX_BODY_BYTES,
    "deletions": "soft",
    "reconcile": False,
    "arrow_pages": False,
}
#: settings that may hold a credential (a Redis URL's password): read as secrets
SECRET_SETTINGS = ("rate_limit_backend",)


def declarative_source(spec: str | Path | Mapping[str, Any] | Spec, **values: Any) -> DltSource:
    """The dlt source a spec describes.

    Args:
        spec: the path of a YAML spec, or the same structure as a dict.
        values: the spec's `${NAME}` values, and the settings every source takes
            (`base_url`, `requests_per_minute`, `max_retries`, `backoff_factor`,
            `deletions`, `reconcile`, `arrow_pages`, ...: `SETTINGS`, as the catalog's
            Python sources take them); what is not passed is read from dlt config and
            secrets under `sources.<name>.<NAME>`. A name that is neither is refused.
    """
    loaded = load_spec(spec)
    name = loaded.name

    @dlt.source(name=name, section=name)
    def source() -> list[DltResource]:
        return build(loaded, values, lookup)

    return source()  # type: ignore[no-any-return]


def lookup(key: str, secret: bool) -> Any:
    """A value from dlt's config providers; through `dlt.secrets` when `secret` (its
    value then stays out of dlt's trace)."""
    accessor = dlt.secrets if secret else dlt.config
    return accessor.get(key)


def build(spec: Spec, values: Mapping[str, Any], look: Any) -> list[DltResource]:
    """The spec's resources, through the catalog's builder."""
    unknown = sorted(set(values) - set(SETTINGS) - {key for _, key, _ in placeholders(spec.data)})
    if unknown:
        raise SpecError(
            f"{spec.where(())}: `{unknown[0]}` is neither a `${{{unknown[0]}}}` of the spec "
            f"nor a setting of every source ({', '.join(SETTINGS)})"
        )
    filled = fill(spec, values, look)
    data = filled.data
    name = spec.name
    settings = {
        key: _setting(name, key, values, default, look) for key, default in SETTINGS.items()
    }
    client = data["client"]
    base_url = settings["base_url"] or client["base_url"]
    mode = deletion_mode(settings["deletions"], name)
    redactor = Redactor(filled.secrets)
    rate = data.get("rate_limit") or {}
    budget = rate.get("budget_headers") or {}
    http = SourceHttp(
        connector=name,
        base_url=base_url,
        auth=_auth(client.get("auth"), base_url, name),
        secret_keys=filled.secret_keys,
        retry_policy=RetryPolicy(
            max_retries=int(settings["max_retries"]),
            backoff_factor=float(settings["backoff_factor"]),
            retry_after_header=rate.get("retry_after_header", "Retry-After"),
            reset_header=budget.get("reset"),
            max_rate_limit_wait=_number(settings["max_rate_limit_wait"])
            or rate.get("max_wait_for_reset"),
        ),
        rate_limits=_pace(rate, settings["requests_per_minute"]),
        redactor=redactor,
        request_deadline=float(settings["request_deadline"]),
        rate_limit_backend=settings["rate_limit_backend"],
        budget_reserve=float(settings["budget_reserve"]),
        max_body_bytes=int(settings["max_body_bytes"]),
    )
    defaults = _resource(dict(data.get("resource_defaults") or {}), name)
    if client.get("paginator") is not None:
        endpoint = defaults.setdefault("endpoint", {})
        endpoint.setdefault("paginator", _paginator(client["paginator"], name))
    if client.get("headers"):
        endpoint = defaults.setdefault("endpoint", {})
        endpoint["headers"] = {**client["headers"], **endpoint.get("headers", {})}
    table = [_resource(dict(resource), name) for resource in data["resources"]]
    fast = [resource["name"] for resource in table] if settings["arrow_pages"] else []
    return build_resources(
        http,
        table,
        defaults,
        arrow_pages=fast,
        deletions=mode,
        reconcile=bool(settings["reconcile"]),
    )


def _setting(name: str, key: str, values: Mapping[str, Any], default: Any, look: Any) -> Any:
    value = values.get(key)
    if value is None:
        value = look(f"sources.{name}.{key}", key in SECRET_SETTINGS)
    if value is None:
        return default
    if isinstance(default, bool) and isinstance(value, str):  # from the environment
        return value.strip().lower() in ("true", "1", "yes")
    return value


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _auth(auth: Mapping[str, Any] | None, base_url: str, name: str) -> Any:
    if not auth:
        return None
    kind = auth["type"]
    if kind == "bearer":
        return bearer_token(_required(auth, "token", name))
    if kind == "api_key":
        key = _required(auth, "api_key", name)
        if auth.get("location") == "query":
            return api_key_query(key, param=auth.get("name") or "api_key")
        return api_key_header(
            key, header=auth.get("name") or "Authorization", scheme=auth.get("scheme")
        )
    if kind == "http_basic":
        return http_basic(_required(auth, "username", name), _required(auth, "password", name))
    return oauth2_client_credentials(
        urljoin(base_url.rstrip("/") + "/", str(auth["access_token_url"])),
        _required(auth, "client_id", name),
        _required(auth, "client_secret", name),
        connector=name,
    )


def _required(auth: Mapping[str, Any], key: str, name: str) -> str:
    value = auth.get(key)
    if value is None or not str(value).strip():
        raise SpecError(f"{name}: client.auth.{key} is empty; set the value it names")
    return str(value)


def _pace(rate: Mapping[str, Any], requests_per_minute: int | None) -> list[RateLimit]:
    """The spec's pace; an explicit `requests_per_minute` replaces it (no budget)."""
    if requests_per_minute is not None:
        return [RateLimit(int(requests_per_minute), 60)]
    if not rate:
        return []
    headers = rate.get("budget_headers")
    budget = BudgetHeaders(**headers) if headers else None
    return [RateLimit(rate["requests"], rate["per_seconds"], budget=budget)]


def _resource(resource: dict[str, Any], name: str) -> dict[str, Any]:
    """A spec's resource (or `resource_defaults`) as a row of the builder's table."""
    endpoint = resource.get("endpoint")
    if isinstance(endpoint, dict):
        endpoint = resource["endpoint"] = dict(endpoint)
        if "paginator" in endpoint:
            endpoint["paginator"] = _paginator(endpoint["paginator"], name)
        params = endpoint.get("params")
        if params:
            endpoint["params"] = {key: _cursor(value) for key, value in params.items()}
        if endpoint.get("incremental"):
            endpoint["incremental"] = _cursor(endpoint["incremental"])
        path = endpoint.get("path") or ""
        parents = [m for m in _parent_placeholders(path)]
        if parents:
            resource = _child(resource, endpoint, parents, name)
    deletions = resource.get("deletions")
    if isinstance(deletions, dict):
        resource["deletions"] = _feed(deletions, name)
    return resource


def _cursor(value: Any) -> Any:
    if isinstance(value, dict) and ("cursor_path" in value):
        value = dict(value)
        if isinstance(value.get("convert"), str):
            value["convert"] = CONVERTERS[value["convert"]]
        if value.get("initial_value") == "":
            value["initial_value"] = None
    return value


def _parent_placeholders(path: str) -> list[tuple[str, str, str]]:
    """`(placeholder, parent, field)` for each `{resources.<parent>.<field>}` in `path`."""
    import re

    return [
        (match.group(0), match.group(1), match.group(2))
        for match in re.finditer(r"\{resources\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\}", path)
        if not PLACEHOLDER.fullmatch(match.group(0))
    ]


def _child(
    resource: dict[str, Any],
    endpoint: dict[str, Any],
    parents: list[tuple[str, str, str]],
    name: str,
) -> dict[str, Any]:
    """A child in dlt's notation (`{resources.parties.id}` in its path) as the builder's
    `parent`: the parent's field lands in `parent.column` (dlt's `_parties_id` when not
    given), and `parent.where` picks the parent rows that have children."""
    if len(parents) > 1 or resource.get("for_each"):
        raise SpecError(
            f"{name}: `{resource['name']}`: a path names one parent placeholder, and no "
            "for_each with it"
        )
    ((placeholder, parent, parent_field),) = parents
    extra = dict(resource.get("parent") or {})
    column = extra.get("column") or f"_{parent}_{parent_field}"
    endpoint["path"] = endpoint["path"].replace(placeholder, "{" + column + "}")
    link: dict[str, Any] = {"resource": parent, "field": parent_field, "column": column}
    where = extra.get("where")
    if where:
        link["where"] = _matching(dict(where))
    return {**resource, "endpoint": endpoint, "parent": link}


def _matching(where: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    def matches(row: dict[str, Any]) -> bool:
        return all(row.get(key) == value for key, value in where.items())

    return matches


def _paginator(config: Any, name: str) -> Any:
    """dlt's paginator named by `config` (a name, or a mapping with `type` and its
    arguments); one line when its arguments are missing or unknown."""
    try:
        return create_paginator(config)
    except (TypeError, ValueError) as exc:
        kind = config.get("type") if isinstance(config, dict) else config
        raise SpecError(
            f"{name}: paginator `{kind}` cannot be made from {config!r}: "
            f"{' '.join(str(exc).split())}"
        ) from None


def _feed(feed: dict[str, Any], name: str) -> DeletionFeed:
    return DeletionFeed(
        path=feed["path"],
        data_selector=feed["data_selector"],
        deleted_at=feed.get("deleted_at"),
        key=feed.get("key", "id"),
        params=dict(feed.get("params") or {}),
        paginator=_paginator(feed["paginator"], name) if "paginator" in feed else None,
        since_param=feed.get("since_param"),
        initial_since=feed.get("initial_since") or None,
        since_lag_seconds=float(feed.get("lag", 0)),
    )
