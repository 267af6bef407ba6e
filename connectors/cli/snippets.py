"""What a user copies to use a catalog connector: secrets, config, a Dango source entry.

Everything here is derived from the catalog entry and the source function's signature:
arguments defaulting to `dlt.secrets.value` are secrets, arguments defaulting to
`dlt.config.value` are required config, and dlt looks both up under
`sources.<section>` (the section is the connector's module name). The snippets always
show `base_url`: the vendor's URL where the source defaults to it (the one config value a
user most often changes: a sandbox, a regional host, a fake server), a placeholder to
replace where the source has no default and requires it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import dlt
import tomlkit

from shared.errors import env_var
from shared.tooling.catalog import Auth, ConnectorEntry

PLACEHOLDER = "..."


@dataclass(frozen=True)
class SourceSettings:
    """Where and under which names dlt looks up a source's secrets and config.

    Args:
        section: the config section: keys live under `sources.<section>`.
        secrets: secret arguments, the catalog's auth secrets first.
        required_config: arguments dlt must find in config (no default).
        config: the config the snippets show: `base_url` (when the source takes it), then
            the required config.
    """

    section: str
    secrets: tuple[str, ...]
    required_config: tuple[str, ...]
    config: tuple[str, ...] = ()

    def env_var(self, key: str) -> str:
        return env_var(self.section, key)


def source_settings(entry: ConnectorEntry, factory: Any | None = None) -> SourceSettings:
    """Read a connector's secret and required config arguments from its source function."""
    factory = factory if factory is not None else entry.source_factory()
    parameters = inspect.signature(factory).parameters.values()
    secrets = [p.name for p in parameters if p.default is dlt.secrets.value]
    config = [p.name for p in parameters if p.default is dlt.config.value]
    shown = [p.name for p in parameters if p.name == "base_url"]
    shown += [name for name in config if name not in shown]
    reference = getattr(factory, "ref", None)
    section = getattr(reference, "section", None) or entry.module.rsplit(".", 1)[-1]
    ordered = [*entry.auth.secrets, *(name for name in secrets if name not in entry.auth.secrets)]
    return SourceSettings(section, tuple(ordered), tuple(config), tuple(shown))


def config_values(entry: ConnectorEntry, settings: SourceSettings) -> dict[str, Any]:
    """Values for the config the snippets show: the default `base_url` (a placeholder when
    the source has none), others from the replay arguments (an example that works against
    the recorded API) or a placeholder."""
    values: dict[str, Any] = {}
    for key in settings.config:
        if key == "base_url":
            values[key] = entry.base_url or PLACEHOLDER
        else:
            values[key] = entry.replay.kwargs.get(key, PLACEHOLDER)
    return values


def secrets_toml(settings: SourceSettings) -> str:
    """The `.dlt/secrets.toml` snippet the connector needs."""
    if not settings.secrets:
        return "# no secrets needed\n"
    return tomlkit.dumps({"sources": {settings.section: dict.fromkeys(settings.secrets, "...")}})


def auth_mode_keys(entry: ConnectorEntry, settings: SourceSettings, mode: Auth) -> tuple[str, ...]:
    """What a user sets for one auth mode: its secrets and config keys (e.g. a token URL),
    and any secret the source takes that no auth mode names."""
    others = [name for name in settings.secrets if name not in entry.auth.all_secrets]
    return tuple(dict.fromkeys([*mode.secrets, *mode.config, *others]))


def auth_mode_toml(entry: ConnectorEntry, settings: SourceSettings, mode: Auth) -> str:
    """The `.dlt/secrets.toml` snippet of one auth mode (a connector accepting several
    modes needs exactly one configured). For the default mode with no config keys, this
    is `secrets_toml(settings)`; dlt reads a mode's config keys from secrets.toml too."""
    keys = auth_mode_keys(entry, settings, mode)
    if not keys:
        return "# no secrets needed\n"
    return tomlkit.dumps({"sources": {settings.section: dict.fromkeys(keys, PLACEHOLDER)}})


def config_toml(entry: ConnectorEntry, settings: SourceSettings) -> str:
    """The `.dlt/config.toml` snippet for plain dlt: `base_url` and the required config."""
    values = config_values(entry, settings)
    if not values:
        return "# no config needed\n"
    return tomlkit.dumps({"sources": {settings.section: values}})


def python_usage(entry: ConnectorEntry) -> str:
    """Loading the connector from plain dlt (secrets and config from `.dlt/`); a spec's
    source takes the spec's path."""
    spec = getattr(entry, "spec_path", None)
    arguments = f'"{spec}"' if spec else ""
    return (
        "import dlt\n"
        f"from {entry.module} import {entry.source_function}\n\n"
        f'pipeline = dlt.pipeline("{entry.name}", destination="duckdb", '
        f'dataset_name="{entry.name}_data")\n'
        f"pipeline.run({entry.source_function}({arguments}))\n"
    )
