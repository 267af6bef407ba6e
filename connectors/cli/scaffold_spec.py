"""`connectors new NAME --declarative`: a declarative connector from the template
`templates/my_spec/`: its spec (`connectors/<name>/<name>.yml`), a fake server that serves
what the spec reads (`connectors/<name>/fake.py`) and tests that sync it from there
(`tests/declarative/test_<name>.py`), all renamed; the spec is listed under `specs:` in
`catalog.yml`. The name is checked as for any connector, before anything is written; a
failure removes what was written.
"""

from __future__ import annotations

from pathlib import Path

from connectors.cli.connector_names import ScaffoldError, check_name, taken_names
from connectors.cli.renamer import camel
from connectors.cli.scaffold import project_root
from connectors.cli.template import TEMPLATES_DIR
from shared.tooling.package_data import package_data

#: the declarative template's folder under templates/, and the name it is written with
SPEC_TEMPLATE = "my_spec"
#: the line `catalog.yml`'s spec list starts with, and the one its connectors start with
SPECS_KEY = "specs:\n"
CONNECTORS_KEY = "connectors:"


def spec_template(root: Path) -> Path:
    """The template: `root`'s own when it has one (a checkout), else the installed copy."""
    own = root / TEMPLATES_DIR / SPEC_TEMPLATE
    return own if own.is_dir() else package_data(TEMPLATES_DIR) / SPEC_TEMPLATE


def renamed(text: str, name: str) -> str:
    title = name.replace("_", " ")
    return (
        text.replace(SPEC_TEMPLATE, name)
        .replace(camel(SPEC_TEMPLATE), camel(name))
        .replace("My spec", title[:1].upper() + title[1:])
    )


def create_spec_connector(name: str, root: Path | None = None) -> list[Path]:
    """Write declarative connector `name` into the repository at `root` (default:
    `project_root()`); return the files written or changed, relative to it."""
    root = root if root is not None else project_root()
    check_name(name, root, taken_names(root))
    template = spec_template(root)
    files = sorted(path for path in template.rglob("*") if path.is_file())
    targets = [Path(renamed(path.relative_to(template).as_posix(), name)) for path in files]
    existing = [target for target in targets if (root / target).exists()]
    if existing:
        raise ScaffoldError(f"connector `{name}` already exists: {existing[0].as_posix()}")
    catalog = root / "catalog.yml"
    before = catalog.read_text(encoding="utf-8") if catalog.exists() else None
    spec = next(target for target in targets if target.suffix == ".yml")
    written: list[Path] = []
    try:
        for source, target in zip(files, targets, strict=True):
            (root / target).parent.mkdir(parents=True, exist_ok=True)
            (root / target).write_text(renamed(source.read_text("utf-8"), name), "utf-8")
            written.append(target)
        if before is not None:
            catalog.write_text(listed(before, spec.as_posix()), encoding="utf-8")
    except BaseException:
        for target in written:
            (root / target).unlink(missing_ok=True)
        if before is not None:
            catalog.write_text(before, encoding="utf-8")
        raise
    return [*written, *([Path("catalog.yml")] if before is not None else [])]


def listed(catalog: str, spec: str) -> str:
    """`catalog.yml`'s text with `spec` added to its `specs:` list (made before
    `connectors:`, which new Python connectors are appended to, when it has none)."""
    line = f"  - path: {spec}\n"
    if SPECS_KEY in catalog:
        head, _, rest = catalog.partition(SPECS_KEY)
        items = rest.split(CONNECTORS_KEY, 1)[0]
        listing = items.rstrip("\n") + "\n" if items.strip() else ""
        return head + SPECS_KEY + listing + line + rest[len(items) :]
    head, _, rest = catalog.partition(CONNECTORS_KEY)
    return head + SPECS_KEY + line + CONNECTORS_KEY + rest
