"""A spec as a catalog entry, so every command that takes a connector name takes a spec
path too (`connectors run path/to/spec.yml`, `show`, `check`, `schema`, `verify`).

What the catalog states by hand for a Python connector is read off the spec: the auth
type and its secrets (the `${NAME}`s of `client.auth`), the rate limit, every resource's
path, key, write disposition, cursor, parent and deletions. `replay` (optional) names the
cassette `--replay` plays: a bare name is `cassettes/<name>/<cassette>.yaml`, as for the
catalog's connectors; a path is relative to the spec.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from connectors.declarative.spec import PLACEHOLDER, Spec, load_spec, placeholders
from shared.tooling.catalog import Api, Auth, ConnectorEntry, RateLimitInfo, Replay, Resource

MODULE = "connectors.declarative"
FUNCTION = "declarative_source"


@dataclass(frozen=True)
class SpecEntry(ConnectorEntry):
    """A catalog entry read off a spec; its source function is `declarative_source`
    bound to the spec."""

    spec_path: Path = Path()

    def source_factory(self) -> Any:
        return spec_factory(self.spec_path)

    def cassette_path(self, root: Path | None = None) -> Path:
        cassette = self.replay.cassette
        if "/" in cassette or cassette.endswith((".yaml", ".yml")):
            return (self.spec_path.parent / cassette).resolve()
        return super().cassette_path(root)


def spec_factory(path: Path) -> Callable[..., Any]:
    """`declarative_source` bound to the spec at `path`, with the arguments the CLI passes
    (`base_url`, `deletions`, `reconcile`) named, as a Python source names them."""
    from connectors.declarative.source import declarative_source

    @functools.wraps(declarative_source)
    def factory(
        base_url: str | None = None,
        deletions: str | None = None,
        reconcile: bool = False,
        **values: Any,
    ) -> Any:
        settings = {"base_url": base_url, "deletions": deletions, "reconcile": reconcile}
        return declarative_source(path, **settings, **values)

    del factory.__wrapped__  # its own signature, not declarative_source's
    # where dlt looks its settings up (`sources.<name>`), as a dlt source factory says it
    factory.ref = SimpleNamespace(section=load_spec(path).name)  # type: ignore[attr-defined]
    return factory


def spec_entry(path: str | Path) -> SpecEntry:
    """The catalog entry of the spec at `path` (validated; `SpecError` in one line)."""
    spec_path = Path(path).expanduser().resolve()
    spec = load_spec(spec_path)
    data = spec.data
    client = data["client"]
    base_url = client["base_url"] if not PLACEHOLDER.search(client["base_url"]) else None
    title = data.get("title") or spec.name
    replay = data.get("replay") or {}
    rate = data.get("rate_limit")
    return SpecEntry(
        name=spec.name,
        title=title,
        description=" ".join(str(data.get("description") or f"declared in {path}").split()),
        category="declarative",
        module=MODULE,
        source_function=FUNCTION,
        api=Api(
            name=title,
            as_published=False,
            differences=f"declared in the spec {spec_path.name}",
        ),
        maturity="spec",
        base_url=base_url,
        auth=_auth(spec),
        rate_limits=(RateLimitInfo(rate["requests"], rate["per_seconds"]),) if rate else (),
        replay=Replay(
            cassette=replay.get("cassette", "full_sync"),
            base_url=replay.get("base_url") or base_url or "",
            kwargs=dict(replay.get("values") or {}),
        ),
        resources=tuple(_resources(spec)),
        spec_path=spec_path,
    )


#: a spec's `deletions` as the catalog says it
_DELETIONS = {None: "none", "never": "none", "full_list": "full_list"}


def entry_for(name: str) -> ConnectorEntry:
    """The catalog's connector called `name`, or the spec at `name` (a path: it ends in
    .yml or .yaml, or names a folder), from the current folder or, for a spec the catalog
    lists (`connectors/crm/crm.yml`), from the catalog's."""
    from connectors.declarative.spec import is_spec_path
    from shared.tooling.catalog import ROOT, load_catalog

    if not is_spec_path(name):
        return load_catalog().get(name)
    path = Path(name).expanduser()
    if not path.exists() and name in load_catalog().specs:
        path = ROOT / name
    return spec_entry(path)


def _auth(spec: Spec) -> Auth:
    auth = spec.data["client"].get("auth")
    if not auth:
        return Auth(type="none", secrets=())
    names = [key for _, key, _ in placeholders(auth)]
    return Auth(type=auth["type"], secrets=tuple(dict.fromkeys(names)))


def _resources(spec: Spec) -> Iterator[Resource]:
    defaults = spec.data.get("resource_defaults") or {}
    for raw in spec.data["resources"]:
        merged = {**defaults, **raw}
        endpoint = raw["endpoint"] if isinstance(raw["endpoint"], dict) else {}
        path = raw["endpoint"] if isinstance(raw["endpoint"], str) else endpoint.get("path")
        key = merged.get("primary_key") or ()
        cursors = [
            value["cursor_path"]
            for value in (endpoint.get("params") or {}).values()
            if isinstance(value, dict) and value.get("type") == "incremental"
        ]
        if endpoint.get("incremental"):
            cursors.append(endpoint["incremental"]["cursor_path"])
        deletions = raw.get("deletions")
        parent = None
        if path and "{resources." in path:
            parent = path.split("{resources.", 1)[1].split(".", 1)[0]
        yield Resource(
            name=raw["name"],
            primary_key=(key,) if isinstance(key, str) else tuple(key),
            write_disposition=merged.get("write_disposition", "append"),
            incremental=cursors[0] if cursors else None,
            parent=parent,
            path=path,
            deletions="feed" if isinstance(deletions, dict) else _DELETIONS[deletions],
        )
