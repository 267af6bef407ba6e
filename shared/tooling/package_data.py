"""The catalog's own files, found wherever the package runs from.

`catalog.yml`, `cassettes/` and `templates/` live at the repository's top level, where a
contributor edits them. A wheel carries copies as package data of this package
(`shared/tooling/_data/`, made by the build step in `setup.py`), so that `connectors
list`, `show`, `demo` and `new` work after `pip install` as they do in a checkout.
"""

from __future__ import annotations

import json
from importlib import metadata
from importlib.resources import files
from pathlib import Path
from urllib.parse import unquote, urlparse

#: the folder of this package that holds an installed wheel's copies
DATA_FOLDER = "_data"
#: the distribution's name (pyproject.toml's `project.name`)
DISTRIBUTION = "dlt-connector-catalog"


def _package() -> Path:
    return Path(str(files(__package__ or "shared.tooling")))


def checkout_root() -> Path | None:
    """The repository this package runs from (a checkout or an editable install); None
    when it is installed from a wheel."""
    package = _package()
    return None if (package / DATA_FOLDER).is_dir() else package.parents[1]


def package_data(name: str) -> Path:
    """`catalog.yml`, `cassettes` or `templates`: the checkout's, or the installed copy.

    Args:
        name: the file or folder's name at the repository's top level.
    """
    return (checkout_root() or _package() / DATA_FOLDER) / name


def install_source() -> str:
    """What `pip install` takes to install this catalog again elsewhere (e.g. into Dango's
    environment): the checkout it runs from; else the local wheel or folder pip installed
    it from (pip records it in the distribution's `direct_url.json`) while that still
    exists; else the requirement `dlt-connector-catalog==<version>`."""
    root = checkout_root()
    if root is not None:
        return str(root)
    try:
        distribution = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # imported from a copied tree, not installed
        return DISTRIBUTION
    origin = json.loads(distribution.read_text("direct_url.json") or "{}").get("url", "")
    parsed = urlparse(origin)
    if parsed.scheme == "file" and Path(unquote(parsed.path)).exists():
        return unquote(parsed.path)
    return f"{DISTRIBUTION}=={distribution.version}"
