"""`connectors list` and `connectors show NAME`: the catalog as a table, and one
connector's resources, auth and ready-to-paste config."""

from __future__ import annotations

import argparse
from typing import Any

from connectors.cli.console import print_table
from shared.tooling.catalog import Auth, ConnectorEntry, load_catalog


def cmd_list(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    rows = [
        (
            e.name,
            e.title,
            e.category,
            " or ".join(mode.type for mode in e.auth.modes),
            len(e.resources),
            e.maturity,
        )
        for e in catalog
    ]
    print_table(rows, ("NAME", "TITLE", "CATEGORY", "AUTH", "RESOURCES", "MATURITY"))
    print(f"\n{len(catalog)} connectors. Details: python -m connectors show NAME")
    if catalog.specs:
        from connectors.declarative.entry import entry_for

        print("\nDeclarative connectors (specs; run, show, ... take the path):\n")
        specs = [entry_for(path) for path in catalog.specs]
        rows = [
            (path, e.name, e.title, e.auth.type, len(e.resources))
            for path, e in zip(catalog.specs, specs, strict=True)
        ]
        print_table(rows, ("PATH", "NAME", "TITLE", "AUTH", "RESOURCES"))
    return 0


def _rate_limits(entry: ConnectorEntry) -> str:
    if not entry.rate_limits:
        return "none documented"
    return ", ".join(
        f"{limit.requests} requests / {limit.per_seconds:g} s"
        + (f" on {limit.path}" if limit.path else "")
        for limit in entry.rate_limits
    )


def _auth_mode(mode: Auth) -> str:
    needs = ", ".join(mode.secrets) or "no secrets"
    if mode.config:
        needs += f"; config {', '.join(mode.config)}"
    return f"{mode.type} ({needs})"


def _auth_summary(entry: ConnectorEntry) -> str:
    modes = [_auth_mode(mode) for mode in entry.auth.modes]
    return modes[0] if len(modes) == 1 else "either " + " or ".join(modes)


def _print_secrets(entry: ConnectorEntry, settings: Any) -> None:
    """The `.dlt/secrets.toml` snippet, one per auth mode when there are several."""
    from connectors.cli import snippets

    modes = entry.auth.modes
    for number, mode in enumerate(modes):
        if len(modes) == 1:
            print("\n.dlt/secrets.toml:\n")
            snippet, keys = snippets.secrets_toml(settings), settings.secrets
        else:
            lead = "\n.dlt/secrets.toml (one auth mode only), either" if number == 0 else "or"
            print(f"{lead} {mode.type}:\n")
            snippet = snippets.auth_mode_toml(entry, settings, mode)
            keys = snippets.auth_mode_keys(entry, settings, mode)
        print(snippet)
        envs = [settings.env_var(key) for key in keys]
        if envs:
            noun = "variable" if len(envs) == 1 else "variables"
            print(f"(or the environment {noun} {', '.join(envs)})\n")


def loaded_column(cursor: str) -> str:
    """The column dlt loads an API field into: `updatedAt` -> `updated_at` (dlt's
    snake_case naming; a nested path `a.b` lands as `a__b`)."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    naming = NamingConvention()
    return "__".join(naming.normalize_identifier(part) for part in cursor.split("."))


def _cursor(cursor: str | None) -> str:
    """The incremental cursor as the API field and the loaded column, when they differ."""
    if not cursor:
        return "-"
    column = loaded_column(cursor)
    return cursor if column == cursor else f"{cursor} -> {column}"


def cmd_show(args: argparse.Namespace) -> int:
    from connectors.cli import dango, snippets
    from connectors.cli.readme import api_lines, connector_readme
    from connectors.declarative.entry import entry_for

    entry = entry_for(args.name)  # a catalog connector, or a spec path
    settings = snippets.source_settings(entry)
    print(f"{entry.name}: {entry.title} ({entry.category}, {entry.maturity})")
    print(f"  {entry.description}\n")
    for note in entry.notes:
        print(f"  note: {note}\n")
    print(f"source:      from {entry.module} import {entry.source_function}")
    print(*api_lines(entry), sep="\n")
    print(f"auth:        {_auth_summary(entry)}")
    print(f"rate limit:  {_rate_limits(entry)}")
    print(f"replay:      cassettes/{entry.name}/{entry.replay.cassette}.yaml")
    print(f"docs:        {connector_readme(entry)}\n")
    if entry.configurable_resources:
        print(
            f"resources (configured by `sources.{settings.section}.resources`; "
            "these are the replay configuration's):"
        )
    else:
        print("resources:")
    rows = [
        (
            r.name,
            ", ".join(r.primary_key) or "-",
            r.write_disposition,
            _cursor(r.incremental),
            r.parent or "-",
        )
        for r in entry.resources
    ]
    print_table(
        rows, ("NAME", "PRIMARY KEY", "WRITE", "INCREMENTAL (API -> COLUMN)", "PARENT"), indent="  "
    )
    _print_secrets(entry, settings)
    print(".dlt/config.toml (plain dlt):\n")
    print(snippets.config_toml(entry, settings))
    print(dango.show_text(entry, settings))
    print("plain dlt:\n")
    print(snippets.python_usage(entry))
    print(f"run it:  python -m connectors run {args.name}    (offline: --replay)")
    return 0
