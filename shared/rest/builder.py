"""From a declarative resource table to dlt `rest_api` resources.

A connector states its resources as a list of dlt `rest_api` resource dicts (name,
endpoint path, data selector, paginator, primary key, write disposition, incremental)
and hands them, with a `SourceHttp`, to `build_resources`. The builder:

- sends every request through one `ConnectorSession` (auth scoped to `base_url`'s
  origin, the source's retry policy and rate limits);
- installs a per-resource error hook (clear 401/403/5xx errors, optional 404 skip);
- runs child requests concurrently (dlt's `parallelized` transformers), paced by the
  session's shared rate limiter;
- makes parquet the table's file format, so DuckDB loads skip `insert_values`;
- understands seven extra keys that dlt's config cannot say directly:

  `parent`: `{"resource": "parties", "field": "id", "column": "organisation_id",
  "where": callable}`. The child's path names `{column}`; one request chain per parent
  row (for which `where(row)` is true, if given); each child row carries the parent's
  `field` in `column`.

  `for_each`: `{"entity": ["parties", "kases"]}`. The path names `{entity}`; one
  request chain per listed value; rows carry it in an `entity` column.

  `skip_missing_parent`: `True` makes a 404 on a child request log a warning and skip
  that parent instead of failing the sync.

  `single_object`: `True` for a resource whose data selector finds one object (the API
  documents one: crm `site`), not a list of them.

  `deletions`: how the resource learns that records were deleted at the source
  (`shared.incremental.deletions`): `FULL_LIST` (it lists every record each run: a key
  missing from a finished listing was deleted), a `DeletionFeed` (an endpoint listing
  deleted records, read after the list every run), or `NEVER` (a listing that is never
  complete, e.g. a capped search: not even `reconciled` reads it as a full list). Only
  for resources that page by themselves. Every resource with a primary key gets the
  `_deleted_at` column, whatever it learns; the source's `deletions` mode ("soft" or
  "hard") decides what a deletion does.

  `reconciled`: set by `reconciled` on a resource a reconciling run reads in full.

  `large_pages`: `True` for a child whose pages are large (hundreds of rows a request,
  e.g. offset-paged 1,000 at a time): it loads as Arrow tables too (below), and its
  pages stream one after another instead of running concurrently per parent: dlt's
  parallelized child holds all of a parent's pages in memory before handing any on
  (2.7 GB for a million project_tracker stories under three groups).

Every resource's tables nest at most `MAX_TABLE_NESTING` levels (dlt's `max_table_nesting`;
a spec's own `max_table_nesting` key wins): deeper values stay in their parent's row as
JSON, so one record nested hundreds of levels deep loads instead of failing the sync
(`File name too long`: dlt names a load file after its table, and each level adds to
the name). The Arrow path keeps the same bound (`shared.arrow.tables`).

Every resource's pages are checked (`shared.http.pages.PageCheck`): the data selector must
find a list of objects (or the one object), or the answer is retried like a 5xx and
then fails the sync with an `InvalidResponseError`.

Every resource that pages by itself, and every child marked `large_pages`, loads as Arrow
tables split into dlt's own tables (`shared.arrow.tables`: the same tables, child tables
included, as dlt's row normalizer makes, several times faster); other children (a small
page per parent row) stay rows, which dlt's normalizer handles faster than its work per
Arrow item. Resources named in `arrow_pages` instead yield Arrow tables with nested
values as JSON columns (`shared.arrow.pages`). Children still receive rows.

`finish_resources` takes every resource through those last steps (nesting bound,
deletions, file format, Arrow, guarded cursors, first sync) in one order, wherever it was
built: here, in `shared.rest.client_incremental`, `shared.rest.fan_in`, or by hand in a
connector (hubspot_contacts).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any, cast

import dlt
from dlt.common.jsonpath import compile_path
from dlt.common.typing import TLoaderFileFormat
from dlt.extract.items import DataItemWithMeta
from dlt.extract.resource import DltResource
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.rest_api import rest_api_resources
from dlt.sources.rest_api.typing import ClientConfig, EndpointResource, RESTAPIConfig

from shared._dlt_compat import make_parent_key_name, require_page_check_reachable
from shared.arrow.first_sync import skip_merge_on_first_sync
from shared.arrow.pages import yield_arrow_pages
from shared.arrow.tables import load_as_arrow_tables, rows_of
from shared.errors import ConfigurationError, redact_url, secret_hint
from shared.http.credentials import credentials_in_url, require_base_url
from shared.http.pages import PageCheck
from shared.http.rate_limit import DEFAULT_BUDGET_RESERVE, RateLimit
from shared.http.responses import error_hook
from shared.http.retries import RetryPolicy
from shared.http.session import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_REQUEST_DEADLINE,
    ConnectorSession,
    ForeignLinks,
    query_credential_names,
    url_problem,
)
from shared.incremental.cursors import guard_cursors
from shared.incremental.deletions import (
    DELETED_AT,
    DeletionFeed,
    DeletionMode,
    deletion_columns,
    track_deletions,
)
from shared.redaction import Redactor
from shared.rest.keyset import KeysetPaginator

EXTENSION_KEYS = (
    "parent",
    "for_each",
    "skip_missing_parent",
    "single_object",
    "large_pages",
    "deletions",
    "reconciled",
)
#: the `deletions` key of a resource that lists every record each run
FULL_LIST = "full_list"
#: the `deletions` key of a resource whose listing is never complete (a capped search):
#: not even a reconciling run infers deletions from it
NEVER = "never"
DEFAULT_FILE_FORMAT: TLoaderFileFormat = "parquet"
#: how many levels a resource's tables nest (dicts and lists alike) before deeper values
#: stay in their parent's row as JSON; the catalog's data nests 4 at most
MAX_TABLE_NESTING = 8


@dataclass
class SourceHttp:
    """Everything about how one source talks HTTP.

    Args:
        connector: the connector's name (the dlt config section, used in messages).
        base_url: the API's base URL; None (nothing configured for a connector without a
            default) is refused in one line naming the setting.
        auth: an authenticator from `shared.http.auth`; scoped to the origin of `base_url`.
        secret_keys: the config keys of the credentials, named when they are rejected.
        retry_policy: the source's retry policy.
        rate_limits: the source's rate limits, paced across all its threads.
        foreign_links: `"refuse"` or `"follow_without_credentials"`.
        sensitive_params: query parameter names to redact in logs and errors.
        redactor: the source's redactor: every secret value, masked wherever it appears.
        request_deadline: seconds one attempt of a request may take in all (connect,
            headers and the whole body), besides the per-read timeout.
        rate_limit_backend: None to pace in this process, or a shared backend URL
            (`sources.<name>.rate_limit_backend`, see `shared.http.rate_limit`).
        max_body_bytes: the largest response body one request may read (64 MiB by
            default); a larger one fails the sync with one line naming the resource.
        budget_reserve: the share of a budget the API reports kept in reserve
            (`sources.<name>.budget_reserve`): above it requests go at full speed, from
            it on what is left is spread to the reset (`shared.http.rate_limit`).
    """

    connector: str
    base_url: str
    auth: Any = None
    secret_keys: Sequence[str] = ()
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limits: Sequence[RateLimit] = ()
    foreign_links: ForeignLinks = "refuse"
    sensitive_params: Sequence[str] = ()
    redactor: Redactor = field(default_factory=Redactor)
    request_deadline: float = DEFAULT_REQUEST_DEADLINE
    rate_limit_backend: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    budget_reserve: float = DEFAULT_BUDGET_RESERVE

    def __post_init__(self) -> None:
        # an API key sent in the query is redacted from errors whatever its parameter name
        extra = [n for n in query_credential_names(self.auth) if n not in self.sensitive_params]
        self.sensitive_params = (*self.sensitive_params, *extra)

    def session(self) -> ConnectorSession:
        require_base_url(self.base_url, self.connector)
        carried = credentials_in_url(str(self.base_url or ""), self.sensitive_params)
        if carried:
            raise ConfigurationError(
                f"{self.connector}: base_url carries {carried}; credentials belong in the "
                f"source's secrets ({secret_hint(self.connector, self.secret_keys)}), never "
                "in a URL, which dlt keeps in its trace and logs (the URL is not shown)"
            )
        if not self.base_url or not str(self.base_url).startswith(("http://", "https://")):
            raise ConfigurationError(
                f"{self.connector}: base_url must be an absolute http(s) URL, got "
                f"{redact_url(str(self.base_url))!r}; set `sources.{self.connector}.base_url`"
            )
        problem = url_problem(str(self.base_url))
        if problem:
            raise ConfigurationError(
                self.redactor.redact(
                    f"{self.connector}: base_url {self.base_url!r} is not a valid URL "
                    f"({problem}); set `sources.{self.connector}.base_url`"
                )
            )
        return ConnectorSession(
            connector=self.connector,
            base_url=self.base_url,
            auth=self.auth,
            retry_policy=self.retry_policy,
            rate_limits=self.rate_limits,
            foreign_links=self.foreign_links,
            sensitive_params=self.sensitive_params,
            redactor=self.redactor,
            request_deadline=self.request_deadline,
            rate_limit_backend=self.rate_limit_backend,
            max_body_bytes=self.max_body_bytes,
            budget_reserve=self.budget_reserve,
        )

    def page_check(
        self,
        resource: str,
        data_selector: Any = None,
        single_object: bool = False,
    ) -> PageCheck:
        """The check of `resource`'s pages (see `shared.http.pages`); a response hook."""
        return PageCheck(
            connector=self.connector,
            resource=resource,
            data_selector=data_selector,
            single_object=single_object,
            sensitive_params=tuple(self.sensitive_params),
            redactor=self.redactor,
        )


def build_resources(
    http: SourceHttp,
    resources: Sequence[dict[str, Any]],
    defaults: dict[str, Any] | None = None,
    *,
    session: ConnectorSession | None = None,
    parallel_children: bool = True,
    file_format: TLoaderFileFormat | None = DEFAULT_FILE_FORMAT,
    arrow_pages: Collection[str] = (),
    parents: Mapping[str, DltResource] | None = None,
    arrow_tables: bool = True,
    deletions: DeletionMode = "soft",
    reconcile: bool = False,
) -> list[DltResource]:
    """Build dlt resources from a connector's resource table.

    Args:
        http: how the source talks HTTP.
        resources: dlt `rest_api` resource dicts, plus the keys described in this module.
        defaults: dlt `resource_defaults` (primary key, write disposition, paginator, ...).
        session: a session to reuse (e.g. one the connector also uses for custom resources).
        parallel_children: fetch child requests concurrently.
        file_format: the file format hint for every table (`None` leaves dlt's default).
        arrow_pages: names of resources that yield Arrow tables (batches of pages)
            instead of rows: much faster on large syncs; nested arrays land as `json`
            columns instead of child tables (see `shared.arrow.pages`).
        parents: resources built elsewhere (`shared.rest.fan_in`'s unions) that specs may name
            as `parent`; they are extracted only to feed their children.
        arrow_tables: load the other resources that page by themselves, and children
            marked `large_pages`, as Arrow tables split into dlt's own tables
            (`shared.arrow.tables`); False leaves rows to dlt's normalizer.
        deletions: what a deletion learned at the source does: `"soft"` sets the row's
            `_deleted_at`, `"hard"` deletes the row and its child-table rows.
        reconcile: read every incremental resource in full, without its cursor (see
            `reconciled`).

    Returns:
        The resources in the order of `resources`.
    """
    require_page_check_reachable(PageCheck)
    if reconcile:
        resources = reconciled(resources, defaults)
    session = session or http.session()
    client: ClientConfig = {"base_url": http.base_url, "session": session}
    #: the configs built in each pass: a child whose parent's rows reach it through a
    #: proxy is built one pass after its parent (the proxy needs the parent built)
    passes: dict[int, list[dict[str, Any]]] = {0: []}
    level: dict[str, int] = {}
    proxy_level: dict[str, int] = {}
    hidden: list[DltResource] = []
    renames: dict[str, tuple[str, str]] = {}
    filtered_parents: dict[str, Callable[[dict[str, Any]], bool]] = {}
    keyset_paged: set[str] = set()  # their lists cannot shift; they re-read ties on purpose

    names = [resource["name"] for resource in resources]
    # resources that page by themselves, and children with large pages: with
    # `arrow_tables`, they yield Arrow tables
    large_pages = {r["name"] for r in resources if r.get("large_pages")}
    yields_tables = large_pages | {
        r["name"] for r in resources if not (r.get("parent") or r.get("for_each"))
    }
    external = dict(parents or {})
    for spec in resources:
        config = _to_rest_api_config(spec, http, defaults, parallel_children)
        name = config["name"]
        default_endpoint = (defaults or {}).get("endpoint") or {}
        paginator = config["endpoint"].get("paginator") or default_endpoint.get("paginator")
        if isinstance(paginator, KeysetPaginator):
            keyset_paged.add(name)
        selector = config["endpoint"].get("data_selector")
        if isinstance(selector, str):
            # dlt (and the page check) would parse a string selector again on every page
            selector = config["endpoint"]["data_selector"] = compile_path(selector)
        config["endpoint"]["response_actions"].append(
            http.page_check(table_of(name), selector, single_object=bool(spec.get("single_object")))
        )
        parent = spec.get("parent")
        for_each = spec.get("for_each")
        if parent and for_each:
            raise ConfigurationError(f"{http.connector}: `{name}` has both parent and for_each")
        if parent:
            parent_name = parent["resource"]
            if parent_name not in names and parent_name not in external:
                raise ConfigurationError(
                    f"{http.connector}: `{name}` names unknown parent `{parent_name}`; "
                    f"the parent must be one of the resources: {', '.join(names)}"
                )
            level[name] = level.get(parent_name, 0)
            if _proxied(parent, arrow_pages, arrow_tables and parent_name in yields_tables):
                # a proxy hands the child rows (filtered, and as dicts from Arrow tables)
                proxy = f"{parent_name}__for_{name}"
                filtered_parents[proxy] = parent.get("where") or _every_row
                parent_name = proxy
                level[name] += 1
                proxy_level[proxy] = level[name]
            _bind_parent(config, parent_name, parent["field"], parent["column"], renames)
        elif for_each:
            ((column, values),) = for_each.items()
            hidden_name = f"{name}__{column}_values"
            hidden.append(_static_rows(hidden_name, column, list(values)))
            _bind_parent(config, hidden_name, column, column, renames)
        passes.setdefault(level.setdefault(name, 0), []).append(config)

    built: dict[str, DltResource] = {}
    first = rest_api_resources(_rest_api_config(client, [*hidden, *external.values(), *passes[0]]))
    built.update({resource.name: resource for resource in first})
    for number in sorted(passes)[1:]:
        proxies = [
            _filtered(proxy, built[proxy.split("__for_")[0]], where)
            for proxy, where in filtered_parents.items()
            if proxy_level[proxy] == number
        ]
        later = rest_api_resources(
            _rest_api_config(client, [*proxies, *_refs(passes[number], built), *passes[number]])
        )
        built.update({resource.name: resource for resource in later})

    result = [built[name] for name in names]
    for resource in result:
        if resource.name in renames:
            resource.add_map(_renamer(*renames[resource.name]))
    return finish_resources(
        result,
        http,
        session,
        specs={spec["name"]: spec for spec in resources},
        deletions=deletions,
        shifting=[name for name in names if name not in keyset_paged],
        file_format=file_format,
        arrow_pages=arrow_pages,
        arrow_tables=arrow_tables,
        large_pages=large_pages,
    )


def finish_resources(
    resources: Sequence[DltResource],
    http: SourceHttp,
    session: ConnectorSession,
    *,
    specs: Mapping[str, Mapping[str, Any]] | None = None,
    deletions: DeletionMode = "soft",
    shifting: Collection[str] = (),
    file_format: TLoaderFileFormat | None = DEFAULT_FILE_FORMAT,
    arrow_pages: Collection[str] = (),
    arrow_tables: bool = True,
    large_pages: Collection[str] = (),
    append_first_sync: bool = True,
) -> list[DltResource]:
    """Finish the resources that load a source's tables, however they were built (by
    `build_resources` here, `shared.rest.client_incremental`, `shared.rest.fan_in`, or by
    hand in a connector), in place. Every connector goes through here, so the steps come
    in one order:

    1. each table nests at most `MAX_TABLE_NESTING` levels (a resource's own
       `max_table_nesting` wins);
    2. each table with a primary key gets the `_deleted_at` column, and learns deletions
       as its spec's `deletions` (and `reconciled`) keys say (`learn_deletions`);
    3. the file format hint;
    4. the resources named in `arrow_pages` yield Arrow tables (`shared.arrow.pages`);
    5. every cursor is checked, capped at the server's clock, and the newest copy of a key
       wins (`shared.incremental.cursors`);
    6. with `arrow_tables`, the other resources that page by themselves, and those named
       in `large_pages`, load as Arrow tables split into dlt's tables
       (`shared.arrow.tables`), which also lets their first sync append;
    7. with `append_first_sync`, every table's first sync may append instead of merging,
       where that loads the same rows (`shared.arrow.first_sync`).

    Args:
        resources: the resources, each loading a table (hidden helpers may be among them).
        http: how the source talks HTTP (a deletion feed requests through it).
        session: the source's session: its server clock caps the cursors.
        specs: each resource's spec by resource name (a resource table's row); a resource
            without one learns no deletions but still gets the `_deleted_at` column.
        deletions: what a deletion learned at the source does: `"soft"` or `"hard"`.
        shifting: names of resources whose lists can shift between pages (anything but
            keyset paging, `shared.rest.keyset`): a key seen twice holds their cursor.
        file_format: the file format hint for every table (`None` leaves dlt's default).
        arrow_pages: names of resources that yield Arrow tables with nested values as JSON.
        arrow_tables: load as Arrow tables split into dlt's tables (step 6).
        large_pages: names of transformers that load as Arrow tables too.
        append_first_sync: mark every table for step 7; False leaves it to step 6 (tables
            whose rows dlt's normalizer writes then merge on their first sync too).

    Returns:
        `resources`, as a list.
    """
    result = list(resources)
    specs = specs or {}
    for resource in result:
        if resource.max_table_nesting is None:
            resource.max_table_nesting = MAX_TABLE_NESTING
        learn_deletions(resource, specs.get(resource.name) or {}, http, session, deletions)
        if file_format:
            resource.apply_hints(file_format=file_format)
        if resource.name in arrow_pages:
            yield_arrow_pages(resource)
    guard_cursors(result, http.connector, session.server_clock, session.redactor, shifting)
    if arrow_tables:
        load_as_arrow_tables(
            [r for r in result if r.name not in arrow_pages], http.connector, large_pages
        )
    if append_first_sync:
        skip_merge_on_first_sync(result)
    return result


def reconciled(
    resources: Sequence[dict[str, Any]], defaults: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The resource table of a reconciling run: each top-level resource with a cursor is
    read in full, and so learns deletions from its full list (besides any feed).

    The cursor goes: a request parameter bound to it is sent with the cursor's initial
    value (through its `convert`), or not at all when it has none; a client-side cursor
    filters nothing. The stored cursors are neither read nor moved: the next normal run
    starts where the last one ended.
    """
    result = []
    for spec in resources:
        if (
            spec.get("parent")
            or spec.get("for_each")
            or spec.get("single_object")
            or spec.get("deletions") == NEVER
        ):
            result.append(spec)
            continue
        merged = _merge(defaults or {}, spec)
        endpoint = dict(merged["endpoint"])
        params = dict(endpoint.get("params") or {})
        cursors = {k: v for k, v in params.items() if _is_cursor_param(v)}
        if not cursors and not endpoint.get("incremental"):
            result.append(spec)
            continue
        for name, cursor in cursors.items():
            initial = cursor.get("initial_value")
            convert = cursor.get("convert")
            if initial is None:
                del params[name]
            else:
                params[name] = convert(initial) if convert else initial
        endpoint["params"] = params
        endpoint["incremental"] = None
        result.append({**spec, "endpoint": endpoint, "reconciled": True})
    return result


def _is_cursor_param(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "incremental"


def learn_deletions(
    resource: DltResource,
    spec: Mapping[str, Any],
    http: SourceHttp,
    session: ConnectorSession,
    mode: DeletionMode,
) -> None:
    """The `_deleted_at` column on a table with a primary key, and the spec's way of
    learning deletions (`shared.incremental.deletions`). A resource loading the rows of a
    hidden listing (`shared.rest.client_incremental`) learns them too: the listing sends
    it the end of each listing."""
    if resource.compute_table_schema().get("columns") is None or not _has_key(resource):
        return
    resource.apply_hints(columns=deletion_columns(mode))
    how = spec.get("deletions")
    if how == NEVER:
        return
    full_list = how == FULL_LIST or bool(spec.get("reconciled"))
    if how is None and not full_list:
        return
    if spec.get("parent") or spec.get("for_each") or spec.get("single_object"):
        raise ConfigurationError(
            f"{http.connector}: `{resource.name}`: `deletions` is for resources that list "
            "their records by themselves"
        )
    if how in (FULL_LIST, None):
        track_deletions(resource, http.connector, mode, full_list=True)
        return
    if not isinstance(how, DeletionFeed):
        raise ConfigurationError(
            f"{http.connector}: `{resource.name}`: `deletions` must be FULL_LIST or a "
            f"DeletionFeed, got {how!r}"
        )
    table = table_of(resource.name)
    hooks = {
        "response": [
            error_hook(
                http.connector,
                table,
                http.secret_keys,
                sensitive_params=http.sensitive_params,
                redactor=http.redactor,
            ),
            http.page_check(table, compile_path(how.data_selector)),
        ]
    }
    client = RESTClient(base_url=http.base_url, session=session)
    track_deletions(
        resource, http.connector, mode, full_list=full_list, feed=how, client=client, hooks=hooks
    )


def _has_key(resource: DltResource) -> bool:
    columns = resource.compute_table_schema().get("columns", {})
    return any(column.get("primary_key") for column in columns.values())


def table_of(resource_name: str) -> str:
    """The table a resource loads, for messages: a hidden helper resource that does the
    HTTP for a table (`epics__listing`, see `shared.rest.client_incremental`) is named after
    it. A `__` never occurs in a table's own name: dlt reserves it for nested tables."""
    return resource_name.split("__", 1)[0]


def _rest_api_config(
    client: ClientConfig, resources: list[DltResource | dict[str, Any]]
) -> RESTAPIConfig:
    # the resource dicts are assembled key by key from the connector's table, so they are
    # plain dicts here; `rest_api_resources` validates them against `EndpointResource`
    endpoint_resources = cast("list[str | EndpointResource | DltResource]", resources)
    return {"client": client, "resources": endpoint_resources}


def _to_rest_api_config(
    spec: dict[str, Any],
    http: SourceHttp,
    defaults: dict[str, Any] | None,
    parallel_children: bool,
) -> dict[str, Any]:
    merged = _merge(defaults or {}, spec)
    config = {key: value for key, value in merged.items() if key not in EXTENSION_KEYS}
    config["endpoint"] = dict(config.get("endpoint") or {})
    name = config["name"]
    is_child = bool(spec.get("parent") or spec.get("for_each"))
    hook = error_hook(
        http.connector,
        table_of(name),
        http.secret_keys,
        skip_missing=bool(spec.get("skip_missing_parent")),
        sensitive_params=http.sensitive_params,
        redactor=http.redactor,
    )
    config["endpoint"]["response_actions"] = [
        *config["endpoint"].get("response_actions", []),
        hook,
    ]
    # dlt's parallelized child gathers all of a parent's pages into one list before
    # handing them on: a child with large pages streams them instead, page by page
    if is_child and parallel_children and not spec.get("large_pages"):
        config.setdefault("parallelized", True)
    return config


def _merge(defaults: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    merged = deepcopy({k: v for k, v in defaults.items() if k != "endpoint"})
    merged.update({k: v for k, v in spec.items() if k != "endpoint"})
    endpoint = deepcopy(defaults.get("endpoint") or {})
    spec_endpoint = spec.get("endpoint") or {}
    if isinstance(spec_endpoint, str):
        spec_endpoint = {"path": spec_endpoint}
    for key, value in spec_endpoint.items():
        if key == "params":
            endpoint["params"] = {**endpoint.get("params", {}), **value}
        else:
            endpoint[key] = value
    merged["endpoint"] = endpoint
    return merged


def _bind_parent(
    config: dict[str, Any],
    parent_name: str,
    parent_field: str,
    column: str,
    renames: dict[str, tuple[str, str]],
) -> None:
    endpoint = config["endpoint"]
    placeholder = "{" + column + "}"
    if placeholder not in endpoint["path"]:
        raise ConfigurationError(f"`{config['name']}`: path must contain {placeholder}")
    endpoint["path"] = endpoint["path"].replace(
        placeholder, "{resources." + parent_name + "." + parent_field + "}"
    )
    config["include_from_parent"] = [parent_field]
    renames[config["name"]] = (make_parent_key_name(parent_name, parent_field), column)


def _renamer(source_key: str, column: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def rename(row: dict[str, Any]) -> dict[str, Any]:
        if source_key in row:
            row[column] = row.pop(source_key)
        return row

    return rename


def _static_rows(name: str, column: str, values: list[Any]) -> DltResource:
    def rows() -> Iterator[list[dict[str, Any]]]:
        yield [{column: value} for value in values]

    return dlt.resource(rows, name=name, selected=False)


def _proxied(parent: dict[str, Any], arrow_pages: Collection[str], arrow_parent: bool) -> bool:
    """Whether a child gets its parent's rows through a proxy: when they are filtered, or
    the parent yields Arrow tables (`arrow_parent`, or named in `arrow_pages`)."""
    return bool(parent.get("where") or arrow_parent or parent["resource"] in arrow_pages)


def _every_row(row: dict[str, Any]) -> bool:
    return True


def _filtered(
    name: str, parent: DltResource, where: Callable[[dict[str, Any]], bool]
) -> DltResource:
    def keep(page: Any, meta: Any = None) -> Iterator[Any]:
        rows = rows_of(page, meta) or []
        # a row marked deleted (`shared.incremental.deletions`) has no children to fetch
        kept = [row for row in rows if not row.get(DELETED_AT) and where(row)]
        if kept:
            # without the parent's table meta: the child's rows are the child's table
            yield DataItemWithMeta(None, kept)

    return dlt.transformer(keep, data_from=parent, name=name, selected=False)


def _refs(deferred: list[dict[str, Any]], built: dict[str, DltResource]) -> list[DltResource]:
    """Resources of earlier passes that `deferred` (a later pass) name as parents."""
    wanted = set()
    for config in deferred:
        path = config["endpoint"]["path"]
        for name in built:
            if "{resources." + name + "." in path:
                wanted.add(name)
    return [built[name] for name in sorted(wanted)]
