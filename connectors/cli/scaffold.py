"""Start a new connector: from the template, or as a copy of an existing one.

`make new-connector NAME=foo` copies `templates/my_api/` (the connector, its sandbox
server, tests and catalog entry) renamed to `foo`, with the auth and paging chosen
(`AUTH=`, `PAGING=`: `template.py`), and records its cassettes from its fake;
`FROM=crm` copies the `crm` connector the same way (cassettes byte for byte: the origin
they were recorded under stays). Either way the catalog entry goes into `catalog.yml`
and the READMEs' generated parts are regenerated (README.md's table, the connector's
own), so the new connector passes `make test-connector NAME=foo`, `ruff` and the
repository's whole suite before anyone edits it.

In a checkout the new connector goes into the repository; from an installed package
(`pip install` of a wheel) into the current folder, with a `catalog.yml` of its own.

Every check (the name, the choices, existing files, the new catalog entry against the
schema) runs before anything is written, so a refused name leaves the repository
untouched; so does a failure while recording or regenerating the READMEs.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connectors.cli.connector_names import SANDBOX, ScaffoldError, check_name, taken_names
from connectors.cli.renamer import Renamer, title_of
from connectors.cli.template import (
    CHOICES_FILE,
    OPTIONS,
    TEMPLATE_ENTRY,
    TEMPLATE_NAME,
    Choice,
    load_choices,
    template_folder,
)
from shared.tooling.catalog import load_catalog, validate
from shared.tooling.package_data import checkout_root

#: folders whose files are copied byte for byte, never renamed inside
VERBATIM_DIRS = ("cassettes",)


@dataclass(frozen=True)
class PlannedFile:
    """One file of the new connector: copied from `source` to `target` (relative to the
    repository), renamed inside unless it is a recording; `text` is the source's text
    as the chosen auth and paging have it (None: the source's as it is)."""

    source: Path
    target: Path
    verbatim: bool
    text: str | None = None


@dataclass(frozen=True)
class Plan:
    """Everything a new connector consists of, decided before anything is written;
    `record`: its cassettes are recorded from its fake once it is written (a connector
    from the template), not copied."""

    files: list[PlannedFile]
    entry: dict[str, Any]
    renamer: Renamer
    record: bool = False


def connector_files(name: str, root: Path, catalog_names: list[str]) -> list[Path]:
    """The files of connector `name` in the tree at `root`, relative to it: its package,
    fake server, tests (with its pinned column types) and cassettes (never those of a
    connector named `<name>_...`)."""
    others = [other for other in catalog_names if other != name and other.startswith(f"{name}_")]

    def own(stem: str) -> bool:
        return not any(stem == o or stem.startswith(f"{o}_") for o in others)

    files: list[Path] = []
    for folder in (root / "connectors" / name, root / "cassettes" / name):
        files += [path for path in folder.rglob("*") if path.is_file()]
    sandbox = root / SANDBOX
    files += [p for p in sandbox.glob(f"{name}.py")]
    files += [p for p in sandbox.glob(f"{name}_*.py") if own(p.stem)]
    if (sandbox / name).is_dir():
        files += [path for path in (sandbox / name).rglob("*") if path.is_file()]
    tests = root / "tests" / "connectors"
    files += [p for p in tests.glob(f"test_{name}.py")]
    files += [p for p in tests.glob(f"test_{name}_*.py") if own(p.stem[len("test_") :])]
    files += [p for p in (tests / "columns").glob(f"{name}.yaml")]  # its pinned column types
    return sorted(
        path.relative_to(root)
        for path in files
        if "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def project_root() -> Path:
    """Where `connectors new` writes: the checkout this package runs from, or the current
    folder when the package is installed from a wheel."""
    return checkout_root() or Path.cwd()


def _raw_entries(root: Path) -> list[dict[str, Any]]:
    """The entries of `root`'s catalog.yml (none before the first connector of a folder)."""
    path = root / "catalog.yml"
    if not path.exists():
        return []
    return yaml.safe_load(path.read_text(encoding="utf-8"))["connectors"]


def template_choices(root: Path | None = None) -> dict[str, list[str]]:
    """What `--auth` and `--paging` offer: each option's choices, the template's own
    first."""
    choices = load_choices(template_folder(root or project_root()))
    return {option: choices.names(option) for option in OPTIONS}


def plan_template(
    name: str, root: Path, auth: str | None = None, paging: str | None = None
) -> Plan:
    """The files and catalog entry of a new connector made from the template, with the
    chosen auth and paging (None: the template's own)."""
    template = template_folder(root)
    choices = load_choices(template)
    chosen: list[Choice] = []
    for option, wanted in zip(OPTIONS, (auth, paging), strict=True):
        names = choices.names(option)
        if wanted is not None and wanted not in names:
            raise ScaffoldError(
                f"unknown --{option} `{wanted}`; the template offers: {', '.join(names)}"
            )
        chosen.append(choices.options[option][wanted or names[0]])
    entry_text = choices.rewrite(
        TEMPLATE_ENTRY, (template / TEMPLATE_ENTRY).read_text(encoding="utf-8"), chosen
    )
    entry = yaml.safe_load(entry_text)
    entry["description"] = choices.describe(entry["description"], chosen)
    renamer = Renamer(TEMPLATE_NAME, name, entry["title"], title_of(name))
    not_copied = (TEMPLATE_ENTRY, CHOICES_FILE)
    files = [
        PlannedFile(
            template / relative,
            renamer.path(relative),
            verbatim=False,
            text=choices.rewrite(
                relative.as_posix(), (template / relative).read_text(encoding="utf-8"), chosen
            ),
        )
        for relative in sorted(
            path.relative_to(template)
            for path in template.rglob("*")
            if path.is_file() and path.name not in not_copied and "__pycache__" not in path.parts
        )
    ]
    return Plan(files, _renamed_entry(entry, renamer, entry["description"]), renamer, record=True)


def plan_clone(name: str, original: str, root: Path, catalog_names: list[str]) -> Plan:
    """The files and catalog entry of a new connector copied from connector `original`."""
    if original not in catalog_names:
        raise ScaffoldError(
            f"unknown connector `{original}` to copy; the catalog has: {', '.join(catalog_names)}"
        )
    entries = [raw for raw in _raw_entries(root) if raw["name"] == original]
    if not entries:  # an installed connector: the wheel carries no tests to copy
        raise ScaffoldError(
            f"--from copies `{original}`'s package, fake, tests and cassettes from a checkout "
            f"of the catalog, and {root} is not one: run it in a clone of the repository, or "
            f"`connectors new {name}` here for the template"
        )
    (entry,) = entries
    renamer = Renamer(original, name, entry["title"], title_of(name))
    files = [
        PlannedFile(
            root / relative,
            renamer.path(relative),
            verbatim=relative.parts[0] in VERBATIM_DIRS,
        )
        for relative in connector_files(original, root, catalog_names)
    ]
    if not any(file.target.parts[:2] == ("connectors", name) for file in files):
        raise ScaffoldError(
            f"connector `{original}` has no package connectors/{original}/ in {root}; "
            "--from copies a connector's files from a checkout of the catalog"
        )
    description = f"A copy of `{original}`: {' '.join(entry['description'].split())}"
    return Plan(files, _renamed_entry(entry, renamer, description), renamer)


def _renamed_entry(entry: dict[str, Any], renamer: Renamer, description: str) -> dict[str, Any]:
    renamed = dict(entry)
    renamed.update(
        name=renamer.new,
        title=renamer.new_title,
        description=description,
        module=f"connectors.{renamer.new}",
        source_function=renamer.text(entry["source_function"]),
        maturity="alpha",
    )
    return renamed


def entry_yaml(entry: dict[str, Any]) -> str:
    """A catalog entry as YAML in the catalog's own layout (one flow-style line per
    resource), to append to `catalog.yml`."""
    lines = [f"  - name: {_flow(entry['name'])}"]
    for key, value in entry.items():
        if key == "name":
            continue
        if key == "description":
            lines.append("    description: >-")
            # a folded scalar joins lines with a space: never break after a hyphen
            words = " ".join(value.split())
            lines += [f"      {line}" for line in textwrap.wrap(words, 84, break_on_hyphens=False)]
        elif key == "resources":
            lines.append("    resources:")
            lines += [f"      - {_flow(resource)}" for resource in value]
        elif key == "auth":
            lines.append("    auth:")
            lines += [f"      {k}: {_flow(v)}" for k, v in value.items()]
        else:
            lines.append(f"    {key}: {_flow(value)}")
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    dumped = yaml.safe_dump([value], default_flow_style=True, sort_keys=False, width=1 << 20)
    return dumped.strip()[1:-1]


def create_connector(
    name: str,
    original: str | None = None,
    root: Path | None = None,
    auth: str | None = None,
    paging: str | None = None,
) -> list[Path]:
    """Create connector `name` from the template (with the chosen `auth` and `paging`;
    None: the template's own) or as a copy of `original`, in the repository at `root`
    (default: `project_root()`); add its catalog entry, record its cassettes (from the
    template) and regenerate the READMEs' generated parts. Return the files written or
    changed (relative to `root`).

    Raises:
        ScaffoldError: the name is invalid or taken, `original` is unknown, or a choice
            is unknown or given with `original`; nothing has been written.
    """
    root = root if root is not None else project_root()
    catalog_names = taken_names(root)
    check_name(name, root, catalog_names)
    if original is None:
        plan = plan_template(name, root, auth, paging)
    elif auth is not None or paging is not None:
        raise ScaffoldError(
            f"--auth and --paging shape a connector made from the template; a copy of "
            f"`{original}` authenticates and pages as `{original}` does"
        )
    else:
        plan = plan_clone(name, original, root, catalog_names)
    entry_text = entry_yaml(plan.entry)
    if yaml.safe_load("connectors:\n" + entry_text)["connectors"] != [plan.entry]:
        raise ScaffoldError(f"{name}: the catalog entry does not survive a YAML round trip")
    validate({"connectors": [*_raw_entries(root), plan.entry]})

    shared_files = [root / "catalog.yml", root / "README.md"]
    before = {path: path.read_bytes() for path in shared_files if path.exists()}
    written: list[Path] = []
    try:
        for file in plan.files:
            target = root / file.target
            target.parent.mkdir(parents=True, exist_ok=True)
            if file.verbatim:
                shutil.copyfile(file.source, target)
            else:
                text = file.text if file.text is not None else file.source.read_text("utf-8")
                target.write_text(plan.renamer.text(text), encoding="utf-8")
            written.append(file.target)
        _append_to_catalog(root / "catalog.yml", entry_text)
        _tidy(root, written)
        with importable(root, name):
            if plan.record:
                written += _record(name, root)
            changed = _update_readmes(name, root)
    except BaseException:
        _remove(root, written)
        # check_name saw no cassettes/<name>/: a recording cut short leaves none either
        shutil.rmtree(root / "cassettes" / name, ignore_errors=True)
        for path in shared_files:
            if path in before:
                path.write_bytes(before[path])
            else:
                path.unlink(missing_ok=True)
        raise
    return [*written, Path("catalog.yml"), *changed]


@contextmanager
def importable(root: Path, name: str) -> Iterator[None]:
    """Connector `name`, written under `root`, importable as `connectors.<name>` and
    `connectors.sandbox.<name>` inside the block, also when the `connectors` package
    this runs from is another (an installed wheel writing into the current folder), and
    forgotten afterwards: a later import finds it where it lives."""
    import connectors
    import connectors.sandbox

    added = [
        (package, str(root / folder))
        for package, folder in ((connectors, "connectors"), (connectors.sandbox, SANDBOX))
        if str(root / folder) not in package.__path__
    ]
    for package, folder in added:
        package.__path__.append(folder)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for package, folder in added:
            package.__path__.remove(folder)
        own = (f"connectors.{name}", f"connectors.sandbox.{name}")
        for module in [m for m in sys.modules if m in own or m.startswith(f"{own[0]}.")]:
            del sys.modules[module]


def _record(name: str, root: Path) -> list[Path]:
    """Record the new connector's cassettes from its fake, as `make record-connector`
    does; the files written, relative to `root`."""
    from connectors.sandbox import load_recording
    from shared.tooling.recordings import record

    written = record(load_recording(name), root=root / "cassettes")
    return [path.relative_to(root) for path in written]


def _update_readmes(name: str, root: Path) -> list[Path]:
    """Regenerate the new connector's README and README.md's table (when `root` has
    one: a checkout); the files that changed, relative to `root`."""
    from connectors.cli.readme import update_connector_readme, update_readme

    catalog = load_catalog(root / "catalog.yml")
    changed: list[Path] = []
    if (root / "README.md").exists() and not update_readme(catalog, root / "README.md"):
        changed.append(Path("README.md"))
    update_connector_readme(catalog.get(name), root)
    return changed


def _append_to_catalog(path: Path, entry_text: str) -> None:
    current = path.read_text(encoding="utf-8") if path.exists() else "connectors:\n"
    separator = "" if current.endswith("\n") else "\n"
    if not path.exists():
        path.write_text(current, encoding="utf-8")
    with path.open("a", encoding="utf-8") as catalog:
        catalog.write(separator + entry_text)


def _remove(root: Path, written: list[Path]) -> None:
    for relative in written:
        (root / relative).unlink(missing_ok=True)
    for relative in sorted({p.parent for p in written}, key=lambda p: -len(p.parts)):
        folder = root / relative
        while folder != root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


def _tidy(root: Path, files: list[Path]) -> None:
    """Format the new files with ruff: a longer name can push a line past the limit (in
    the code, and in a README's Python examples). Code is re-wrapped; a docstring or
    comment line that is still too long gets a `# noqa: E501` rather than a reworded
    sentence; imports a choice no longer uses go."""
    formatted = [str(path) for path in files if path.suffix in (".py", ".md")]
    python = [str(path) for path in files if path.suffix == ".py"]
    if not formatted:
        return
    commands = (
        ["format", "--quiet", *formatted],
        ["check", "--fix", "--quiet", *python],
        ["check", "--add-noqa", "--select", "E501", "--quiet", *python],
    )
    for command in commands:
        try:
            subprocess.run(
                [sys.executable, "-m", "ruff", *command],
                cwd=root,
                check=False,
                capture_output=True,
            )
        except OSError:  # pragma: no cover - ruff is a dev dependency
            return
