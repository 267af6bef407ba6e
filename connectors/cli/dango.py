"""A catalog connector as a Dango `dlt_native` source: what `connectors show` prints for
a Dango user, and what `make test-dango` pastes into a real Dango project.

How Dango (the `getdango` package) runs such a source: it imports `source_module`,
calls `source_function(**function_kwargs)` and prints those kwargs to its console, so
secrets stay in the project's `.dlt/secrets.toml`, never in `function_kwargs`. It treats
a source in which any resource replaces its table as a full refresh, and then refuses a
run in which a table that has rows receives none (its "empty-replace protection").
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml

from connectors.cli.snippets import SourceSettings, config_values
from shared.tooling.catalog import ConnectorEntry
from shared.tooling.package_data import install_source

#: the Dango release `make test-dango` syncs every connector with
DANGO_REQUIREMENT = "getdango==1.0.13"
#: makes a blank Dango project in the current directory
INIT_COMMAND = ("dango", "init", "--skip-wizard")
#: the comment marking the `base_url` a user replaces with their API's
BASE_URL_MARK = "# replace with your API's base URL"
#: the first line of the printed entry, naming the file it goes in
HEADER = "# .dango/sources.yml"


class _IndentedDumper(yaml.SafeDumper):
    """Indents list items under their key (`sources:` / `  - name: ...`), as Dango's
    documentation writes them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def install_command(checkout: Path | None = None) -> str:
    """The pip command that makes Dango's environment: getdango and this catalog together
    (pip resolves dlt and duckdb for both); the catalog from `checkout`, by default from
    wherever this one was installed from (its checkout, its wheel file, its version)."""
    return f"pip install {DANGO_REQUIREMENT} {checkout or install_source()}"


def sync_command(name: str) -> list[str]:
    """Syncs one source of a Dango project without asking (`-y`)."""
    return ["dango", "sync", name, "-y"]


def full_refresh_resources(entry: ConnectorEntry) -> list[str]:
    """The resources that replace their table on every run (Dango then treats the whole
    source as a full refresh)."""
    return [r.name for r in entry.resources if r.write_disposition == "replace"]


def function_kwargs(entry: ConnectorEntry, settings: SourceSettings) -> dict[str, Any]:
    """The source arguments Dango passes: the required config (a placeholder `base_url`
    where the source has no default, the replay configuration's values), never a secret
    (Dango prints them)."""
    values = config_values(entry, settings)
    # a declarative connector's source function takes its spec (connectors.declarative)
    spec = getattr(entry, "spec_path", None)
    # what has a default (the vendor's base_url) stays out: a user sets it in
    # `.dlt/config.toml` only to point the source elsewhere
    return ({"spec": str(spec)} if spec else {}) | {
        key: value
        for key, value in values.items()
        if key in settings.required_config and key not in settings.secrets
    }


def source_entry(entry: ConnectorEntry, settings: SourceSettings) -> dict[str, Any]:
    """The connector's `.dango/sources.yml` entry as data."""
    source: dict[str, Any] = {"name": entry.name, "type": "dlt_native", "enabled": True}
    if full_refresh_resources(entry):
        # a full-refresh table is reloaded in full on every run; without this, a run in
        # which an incremental table has nothing new is refused as "would truncate"
        source["empty_sync_policy"] = "allow"
    source["dlt_native"] = {
        "source_module": entry.module,
        "source_function": entry.source_function,
        "function_kwargs": function_kwargs(entry, settings),
    }
    return source


def sources_yml(entry: ConnectorEntry, settings: SourceSettings) -> str:
    """The entry to paste into `.dango/sources.yml`, its `base_url` marked as the value to
    replace (absent when the source has a default one)."""
    text = yaml.dump(
        {"sources": [source_entry(entry, settings)]},
        Dumper=_IndentedDumper,
        sort_keys=False,
        default_flow_style=False,
    )
    lines = [
        f"{line}  {BASE_URL_MARK}" if line.strip().startswith("base_url: ") else line
        for line in text.splitlines()
    ]
    return "\n".join([HEADER, *lines]) + "\n"


def dango_notes(entry: ConnectorEntry) -> list[str]:
    """What a Dango user of this connector sees and sets, beyond the entry."""
    notes = [
        "secrets go in the Dango project's .dlt/secrets.toml, as for plain dlt (above), "
        "never in function_kwargs: Dango prints those on every sync."
    ]
    replacing = full_refresh_resources(entry)
    if replacing:
        notes.append(
            f"{', '.join(replacing)} reload in full on every run (write disposition "
            "replace), so Dango runs this source as a full refresh and refuses a run in "
            "which a table that has rows receives none, e.g. an incremental table with "
            'nothing new: "Sync would truncate 1 table(s) with existing data". The '
            "entry's `empty_sync_policy: allow` lets those runs through (a full-refresh "
            "table the API returns empty is then emptied too). To keep Dango's protection "
            "instead, drop that line and give each full-refresh resource as a mapping "
            "with `write_disposition: merge` (or an `incremental` cursor)."
        )
    return notes


def show_text(entry: ConnectorEntry, settings: SourceSettings) -> str:
    """The Dango part of `connectors show <name>`."""
    notes = [
        textwrap.fill(note, width=88, initial_indent="  dango: ", subsequent_indent="    ")
        for note in dango_notes(entry)
    ]
    return "\n".join(
        [
            "Dango (a dlt_native source):\n",
            f"  in Dango's environment:  {install_command()}\n",
            sources_yml(entry, settings),
            *notes,
            "",
        ]
    )
