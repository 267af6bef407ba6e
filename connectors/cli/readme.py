"""The README's connector table, generated from `catalog.yml`.

The table sits between `<!-- catalog:start -->` and `<!-- catalog:end -->`;
`python -m connectors readme` rewrites it and `--check` fails when it has drifted.
"""

from __future__ import annotations

from pathlib import Path

from shared.errors import ConnectorError
from shared.tooling.catalog import ROOT, Auth, Catalog, ConnectorEntry

README_PATH = ROOT / "README.md"
START = "<!-- catalog:start -->"
END = "<!-- catalog:end -->"


def connector_readme(entry: ConnectorEntry) -> str:
    """The connector's own README, relative to the repository root (and so to README.md):
    what it loads, auth and secrets, config, tables, incremental behaviour, limits."""
    return f"connectors/{entry.name}/README.md"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (`<name>` is not an HTML tag)."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _auth(mode: Auth) -> str:
    needs = ", ".join(f"`{secret}`" for secret in mode.secrets) or "none"
    if mode.config:
        needs += "; config " + ", ".join(f"`{key}`" for key in mode.config)
    return f"{mode.type} ({needs})"


def _row(entry: ConnectorEntry) -> str:
    incremental = [r.name for r in entry.resources if r.incremental]
    tables = ", ".join(
        f"{r.name} (incremental)" if r.name in incremental else r.name for r in entry.resources
    )
    if entry.configurable_resources:
        tables = f"configured; the replay loads {tables}"
    origin = f"[{entry.name}/README.md]({connector_readme(entry)}), seed {entry.seed}"
    cells = [
        f"`{entry.name}`",
        f"**{entry.title}**: {entry.description}",
        " or ".join(_auth(mode) for mode in entry.auth.modes),
        tables,
        entry.maturity,
        origin,
    ]
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def catalog_table(catalog: Catalog) -> str:
    """The markdown table of every connector, in catalog order."""
    header = [
        "| connector | what it loads | auth (secrets) | tables | maturity | docs |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join([*header, *(_row(entry) for entry in catalog)])


def render(readme: str, catalog: Catalog) -> str:
    """`readme` with the text between the catalog markers replaced by the table."""
    if (
        readme.count(START) != 1
        or readme.count(END) != 1
        or readme.index(START) > readme.index(END)
    ):
        raise ConnectorError(f"README.md needs one `{START}` ... `{END}` block for the table")
    before, rest = readme.split(START)
    _, after = rest.split(END)
    return f"{before}{START}\n{catalog_table(catalog)}\n{END}{after}"


def update_readme(catalog: Catalog, path: Path = README_PATH, check: bool = False) -> bool:
    """Regenerate the table in `path`; with `check`, only compare. True when the README
    was (or, with `check`, is) up to date."""
    current = path.read_text(encoding="utf-8")
    expected = render(current, catalog)
    if current == expected:
        return True
    if not check:
        path.write_text(expected, encoding="utf-8")
    return False
