"""The generated parts of the READMEs, so that they cannot drift from the code.

README.md's connector table comes from `catalog.yml`. Each connector's own README has
three generated parts: the real API it speaks (the catalog's `api`), its parameters (the
source function's signature and the `Args:` of its docstring) and its tables (the
catalog's resources); so does the template's, from the template's source and catalog
entry, so that a connector made from it starts consistent. Each part sits between
`<!-- NAME:start -->` and `<!-- NAME:end -->`; `make readme` (`python -m connectors
readme`) rewrites them all and `--check` names every file that has drifted. The prose
around them is written by hand.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from shared.errors import ConnectorError, env_var
from shared.tooling.catalog import (
    ROOT,
    Api,
    Auth,
    Catalog,
    ConnectorEntry,
    Resource,
    load_catalog,
    parse,
)

README_PATH = ROOT / "README.md"
START = "<!-- catalog:start -->"
END = "<!-- catalog:end -->"
#: what regenerates every generated part (the checks' messages name it)
REGENERATE = "make readme (python -m connectors readme)"
#: the generated parts of a connector's README, in the order they appear
CONNECTOR_BLOCKS = ("api", "parameters", "tables")
#: markdown text is wrapped at this width, as the hand-written prose is
WIDTH = 88


def connector_readme(entry: ConnectorEntry) -> str:
    """The connector's own README, relative to the repository root (and so to README.md):
    what it loads, auth and secrets, config, tables, incremental behaviour, limits. A
    declarative connector's is its spec."""
    spec = getattr(entry, "spec_path", None)
    return str(spec) if spec else f"connectors/{entry.name}/README.md"


def markers(name: str) -> tuple[str, str]:
    """The comments around the generated part `name`."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_block(text: str, name: str, content: str, document: str) -> str:
    """`text` with the part between `name`'s markers replaced by `content`; a
    `ConnectorError` naming `document` when the markers are missing or out of order."""
    start, end = markers(name)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ConnectorError(f"{document} needs one `{start}` ... `{end}` block")
    before, rest = text.split(start)
    _, after = rest.split(end)
    return f"{before}{start}\n{content}\n{end}{after}"


def _escape(text: str) -> str:
    """Markdown text in which `<name>` is not an HTML tag (a code span shows it as
    written already)."""
    spans = text.split("`")
    return "`".join(
        span if index % 2 else span.replace("<", "&lt;").replace(">", "&gt;")
        for index, span in enumerate(spans)
    )


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell: one line, `|` escaped, no HTML tags."""
    return _escape(text.replace("\n", " ").replace("|", "\\|"))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _paragraph(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), WIDTH, break_on_hyphens=False)


# -- the real API ----------------------------------------------------------------------


def api_summary(api: Api) -> str:
    """The API in a few words: `Capsule CRM API v2, as published`, `shaped like Shortcut
    REST API v3, not as published`, or the name of an API no vendor publishes."""
    if api.as_published:
        return f"{api.name}, as published"
    if api.reference:
        return f"shaped like {api.name}, not as published"
    return api.name


def base_url_setting(entry: ConnectorEntry) -> str:
    """Where `base_url` comes from: the vendor's URL by default, or, for a source without
    a default, every place it can be set."""
    key = f"sources.{entry.name}.base_url"
    if entry.base_url:
        return f"defaults to `{entry.base_url}`; set `{key}` to point the source elsewhere"
    return (
        f"has no default: set `{key}` in `.dlt/config.toml` (or the environment variable "
        f"`{env_var(entry.name, 'base_url')}`), pass `base_url=` to "
        f"`{entry.source_function}(...)`, or `--base-url` to "
        f"`python -m connectors run {entry.name}`; without it the source stops with one "
        "line saying so"
    )


def api_section(entry: ConnectorEntry) -> str:
    """The connector's API: its name and reference, how the connector's HTTP differs from
    it, and where `base_url` comes from."""
    api = entry.api
    if api.as_published:
        lead = f"Speaks the **{api.name}** as its vendor publishes it"
    elif api.reference:
        lead = f"Shaped like the **{api.name}**, but not as its vendor publishes it"
    else:
        lead = f"Speaks the **{api.name}**"
    if api.reference:
        lead += f" (reference: <{api.reference}>)"
    return "\n\n".join(
        [
            _paragraph(f"{lead}. {_escape(api.differences)}"),
            _paragraph(f"`base_url` {base_url_setting(entry)}."),
        ]
    )


def api_lines(entry: ConnectorEntry) -> list[str]:
    """The API and base URL lines of `connectors show`."""
    api = entry.api
    indent = " " * len("base URL:    ")
    reference = f" ({api.reference})" if api.reference else ""
    differences = textwrap.wrap(api.differences, WIDTH - len(indent), break_on_hyphens=False)
    if entry.base_url:
        base_url = f"{entry.base_url} (the default; sources.{entry.name}.base_url overrides it)"
    else:
        base_url = (
            f"none by default, required: set sources.{entry.name}.base_url in "
            f".dlt/config.toml (env {env_var(entry.name, 'base_url')}), or run with --base-url"
        )
    return [
        f"API:         {api_summary(api)}{reference}",
        *(indent + line for line in differences),
        f"base URL:    {base_url}",
    ]


# -- parameters ------------------------------------------------------------------------


def docstring_args(docstring: str) -> dict[str, str]:
    """The `Args:` of a Google-style docstring: parameter -> its text on one line."""
    lines = inspect.cleandoc(docstring).splitlines()
    if "Args:" not in lines:
        return {}
    args: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines[lines.index("Args:") + 1 :]:
        if line and not line.startswith(" "):
            break  # the next section (`Returns:`) or the end of the arguments
        entry = re.match(r"^ {4}(\*{0,2}\w+)(?: \([^)]*\))?: ?(.*)$", line)
        if entry:
            current = args.setdefault(entry.group(1), [])
            current.append(entry.group(2))
        elif current is not None and line.strip():
            current.append(line.strip())
    return {name: " ".join(" ".join(text).split()) for name, text in args.items()}


def _optional(annotation: Any) -> bool:
    return "None" in str(annotation) or "Optional" in str(annotation)


def default_text(parameter: inspect.Parameter) -> str:
    """A parameter's default as the table shows it: `required` for config dlt must find,
    `secret` for a dlt secret, else the value as Python writes it."""
    import dlt

    default = parameter.default
    if default is dlt.secrets.value:
        return "secret" if _optional(parameter.annotation) else "required secret"
    if default is dlt.config.value:
        return "required"
    if default is None:
        return "none (secret)" if "TSecretStrValue" in str(parameter.annotation) else "none"
    return f"`{default!r}`".replace("'", '"')


def parameters_section(entry: ConnectorEntry, factory: Any | None = None) -> str:
    """The source's parameters, as a table: name, default, meaning (from the docstring).

    Raises:
        ConnectorError: a parameter the docstring's `Args:` does not describe.
    """
    factory = factory if factory is not None else entry.source_factory()
    described = docstring_args(inspect.getdoc(factory) or "")
    parameters = list(inspect.signature(factory).parameters.values())
    missing = [p.name for p in parameters if p.name not in described]
    if missing:
        raise ConnectorError(
            f"{entry.name}: the docstring of {entry.source_function} describes no "
            f"{', '.join(missing)}; add them under `Args:`"
        )
    section = entry.name
    lead = _paragraph(
        f"Every parameter of `{entry.source_function}(...)`. Pass it as an argument, or set "
        f"it under `[sources.{section}]` in `.dlt/config.toml` (a secret in "
        f"`.dlt/secrets.toml`) or as the environment variable "
        f"`{env_var(section, '<KEY>')}`:"
    )
    rows = [[f"`{p.name}`", default_text(p), described[p.name]] for p in parameters]
    return f"{lead}\n\n{_table(['key', 'default', 'what it is for'], rows)}"


# -- tables ----------------------------------------------------------------------------


def _cursor(resource: Resource) -> str:
    cursor, column = resource.incremental, resource.incremental_column
    if not cursor:
        return ""
    return f"`{cursor}`" if column == cursor else f"`{cursor}` (column `{column}`)"


def tables_section(entry: ConnectorEntry) -> str:
    """The tables the source loads, from the catalog: path, key, write disposition,
    incremental cursor and parent."""
    rows = [
        [
            f"`{r.name}`",
            f"`{r.path}`" if r.path else "",
            ", ".join(f"`{column}`" for column in r.primary_key) or "none",
            r.write_disposition,
            _cursor(r),
            f"`{r.parent}`" if r.parent else "",
        ]
        for r in entry.resources
    ]
    table = _table(["table", "API path", "primary key", "write", "incremental", "parent"], rows)
    if not entry.configurable_resources:
        return table
    lead = _paragraph(
        f"The tables are the resources you configure (`sources.{entry.name}.resources`), one "
        "table each; the replay configuration loads these:"
    )
    return f"{lead}\n\n{table}"


def connector_sections(entry: ConnectorEntry, factory: Any | None = None) -> dict[str, str]:
    """The generated parts of the connector's README, by marker name."""
    return {
        "api": api_section(entry),
        "parameters": parameters_section(entry, factory),
        "tables": tables_section(entry),
    }


def render_connector(
    readme: str, entry: ConnectorEntry, factory: Any | None = None, document: str = ""
) -> str:
    """`readme` (a connector's README) with its generated parts rewritten."""
    document = document or connector_readme(entry)
    for name, content in connector_sections(entry, factory).items():
        readme = replace_block(readme, name, content, document)
    return readme


def render_connector_readme(name: str, catalog: Catalog | None = None, root: Path = ROOT) -> str:
    """What `connectors/<name>/README.md` should read: its current text with the
    generated parts rewritten from the code and the catalog."""
    catalog = catalog if catalog is not None else load_catalog(root / "catalog.yml")
    entry = catalog.get(name)
    path = root / connector_readme(entry)
    return render_connector(path.read_text(encoding="utf-8"), entry)


def rewrite(path: Path, render: Callable[[str], str], check: bool = False) -> bool:
    """Rewrite `path` with `render` of its text; with `check`, only compare. True when it
    was (or, with `check`, is) up to date."""
    current = path.read_text(encoding="utf-8")
    expected = render(current)
    if current == expected:
        return True
    if not check:
        path.write_text(expected, encoding="utf-8")
    return False


def update_connector_readme(entry: ConnectorEntry, root: Path = ROOT, check: bool = False) -> bool:
    """Regenerate the generated parts of the connector's README; with `check`, only
    compare. True when it was (or, with `check`, is) up to date."""
    path = root / connector_readme(entry)
    return rewrite(path, lambda text: render_connector(text, entry), check)


def write_connector_readme(name: str, catalog: Catalog | None = None, root: Path = ROOT) -> bool:
    """Rewrite the generated parts of `connectors/<name>/README.md` (e.g. after
    `connectors new`); True when the file changed."""
    catalog = catalog if catalog is not None else load_catalog(root / "catalog.yml")
    return not update_connector_readme(catalog.get(name), root)


# -- the template's README -----------------------------------------------------------


def template_readme(root: Path = ROOT) -> Path:
    """The README a connector made from the template starts with."""
    from connectors.cli.template import TEMPLATE_NAME, TEMPLATES_DIR

    return root / TEMPLATES_DIR / TEMPLATE_NAME / "connectors" / TEMPLATE_NAME / "README.md"


def template_source(root: Path = ROOT) -> tuple[ConnectorEntry, Any]:
    """The template's catalog entry and source function. The source is imported from
    `templates/` as the package a connector made from it becomes (`connectors.my_api`),
    and removed from `sys.modules` again."""
    from connectors.cli.template import TEMPLATE_ENTRY, TEMPLATE_NAME, TEMPLATES_DIR

    template = root / TEMPLATES_DIR / TEMPLATE_NAME
    raw = yaml.safe_load((template / TEMPLATE_ENTRY).read_text(encoding="utf-8"))
    (entry,) = parse({"connectors": [raw]}, template / TEMPLATE_ENTRY)
    package = template / "connectors" / TEMPLATE_NAME
    names = [entry.module, f"{entry.module}.settings"]
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    try:
        spec = importlib.util.spec_from_file_location(
            entry.module, package / "__init__.py", submodule_search_locations=[str(package)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[entry.module] = module
        spec.loader.exec_module(module)
        return entry, getattr(module, entry.source_function)
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def update_template_readme(root: Path = ROOT, check: bool = False) -> bool:
    """Regenerate the generated parts of the template's README; with `check`, only
    compare. True when it was (or, with `check`, is) up to date."""
    path = template_readme(root)
    entry, factory = template_source(root)
    document = path.relative_to(root).as_posix()
    return rewrite(path, lambda text: render_connector(text, entry, factory, document), check)


# -- README.md's table -----------------------------------------------------------------


def _auth(mode: Auth) -> str:
    needs = ", ".join(f"`{secret}`" for secret in mode.secrets) or "none"
    if mode.config:
        needs += "; config " + ", ".join(f"`{key}`" for key in mode.config)
    return f"{mode.type} ({needs})"


def _row(entry: ConnectorEntry) -> list[str]:
    incremental = [r.name for r in entry.resources if r.incremental]
    tables = ", ".join(
        f"{r.name} (incremental)" if r.name in incremental else r.name for r in entry.resources
    )
    if entry.configurable_resources:
        tables = f"configured; the replay loads {tables}"
    api = api_summary(entry.api)
    if not entry.base_url:
        api += "; base_url required"
    return [
        f"`{entry.name}`",
        f"**{entry.title}**: {entry.description}",
        api,
        " or ".join(_auth(mode) for mode in entry.auth.modes),
        tables,
        entry.maturity,
        f"[{entry.name}/README.md]({connector_readme(entry)})",
    ]


def catalog_table(catalog: Catalog) -> str:
    """The markdown table of every connector, in catalog order."""
    headers = ["connector", "what it loads", "API", "auth (secrets)", "tables", "maturity", "docs"]
    return _table(headers, [_row(entry) for entry in catalog])


def render(readme: str, catalog: Catalog) -> str:
    """`readme` with the text between the catalog markers replaced by the table."""
    return replace_block(readme, "catalog", catalog_table(catalog), "README.md")


def update_readme(catalog: Catalog, path: Path = README_PATH, check: bool = False) -> bool:
    """Regenerate the table in `path`; with `check`, only compare. True when the README
    was (or, with `check`, is) up to date."""
    return rewrite(path, lambda text: render(text, catalog), check)


def update_readmes(catalog: Catalog, root: Path = ROOT, check: bool = False) -> list[str]:
    """Regenerate README.md's table and every connector README's generated parts (with
    `check`, only compare); the files that were (or, with `check`, are) out of date,
    relative to `root`."""
    stale = [] if update_readme(catalog, root / "README.md", check) else ["README.md"]
    stale += [
        connector_readme(entry)
        for entry in catalog
        if not update_connector_readme(entry, root, check)
    ]
    if not update_template_readme(root, check):
        stale.append(template_readme(root).relative_to(root).as_posix())
    return stale
