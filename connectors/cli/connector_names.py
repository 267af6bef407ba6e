"""Which names a new connector may take: a lowercase Python identifier that is not
taken (by the catalog, a file of the connector's, the tooling's packages) and shadows no
importable module."""

from __future__ import annotations

import keyword
import re
import sys
from pathlib import Path

from shared.errors import ConnectorError
from shared.tooling.catalog import load_catalog

VALID_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: a connector's test files are tests/connectors/test_<name><suffix>.py, one per suffix
#: (the Makefile's `test-connector` runs the same list)
TEST_SUFFIXES = ("", "_loopback", "_fast_path", "_deletions")
#: this repository's own top-level packages and folders a connector must not be named after
PROJECT_NAMES = ("connectors", "shared", "tests", "bench", "templates", "cassettes")
#: the packages in connectors/ that are not connectors (every other one is in catalog.yml)
TOOLING_PACKAGES = ("cli", "declarative", "sandbox")
#: where a connector's fake server lives: connectors/sandbox/<name>.py
SANDBOX = Path("connectors", "sandbox")
#: the sandbox's own modules, which no connector may be named after
SANDBOX_MODULES = ("base",)


class ScaffoldError(ConnectorError):
    """A new connector cannot be created (bad or taken name, unknown source connector)."""


def shadowed_module(name: str) -> str | None:
    """What importable module `name` is, if any: a standard-library module (`json`), an
    installed library's (`dlt`, `requests`), or one of this repository's packages
    (`shared`). A connector of that name would shadow it; None when the name is free."""
    import importlib.metadata

    if name in PROJECT_NAMES:
        return f"this repository's `{name}` package"
    if name in sys.stdlib_module_names:
        return f"a Python standard-library module (`{name}`)"
    distributions = importlib.metadata.packages_distributions().get(name)
    if distributions:
        return f"a module of the installed library {distributions[0]} (`{name}`)"
    return None


def check_name(name: str, root: Path, catalog_names: list[str]) -> None:
    """Refuse a name that is not a lowercase Python identifier or is already taken."""
    if not VALID_NAME.match(name) or keyword.iskeyword(name):
        raise ScaffoldError(
            f"invalid connector name `{name}`: use a lowercase Python identifier "
            "(letters, digits, underscores, starting with a letter), e.g. my_shop"
        )
    if name in catalog_names:
        raise ScaffoldError(f"connector `{name}` already exists in catalog.yml")
    if name in TOOLING_PACKAGES:
        raise ScaffoldError(
            f"connector name `{name}` is refused: connectors/{name}/ is the catalog's "
            f"tooling, not a connector; choose another, e.g. {name}_api"
        )
    if name in SANDBOX_MODULES:
        raise ScaffoldError(
            f"connector name `{name}` is refused: {(SANDBOX / name).as_posix()}.py is what "
            f"every fake server shares; choose another, e.g. {name}_api"
        )
    shadowed = shadowed_module(name)
    if shadowed:
        raise ScaffoldError(
            f"connector name `{name}` is refused: it is the name of {shadowed}, and the "
            f"connector's modules (connectors/{name}/, connectors/sandbox/{name}.py) would shadow "
            f"`import {name}`; choose another, e.g. {name}_api"
        )
    taken = [
        root / "connectors" / name,
        root / "connectors" / f"{name}.py",
        root / SANDBOX / f"{name}.py",
        *(root / "tests" / "connectors" / f"test_{name}{suffix}.py" for suffix in TEST_SUFFIXES),
        root / "cassettes" / name,
    ]
    existing = [path for path in taken if path.exists()]
    if existing:
        raise ScaffoldError(
            f"connector `{name}` already exists: {existing[0].relative_to(root).as_posix()}"
        )


def taken_names(root: Path) -> list[str]:
    """The connectors a new one must not be named after: `root`'s and the catalog's this
    command reads (the installed one, when writing into a folder of one's own)."""
    names = load_catalog().names
    if (root / "catalog.yml").exists():
        names += load_catalog(root / "catalog.yml").names
    return list(dict.fromkeys(names))
