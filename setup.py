"""The one build step pyproject.toml cannot declare: a wheel carries copies of the
catalog's top-level files (`catalog.yml`, `cassettes/`, `templates/`) as package data of
`shared.tooling`, in `shared/tooling/_data/`, where `shared/tooling/package_data.py`
finds them once installed. In the repository they stay at the top level, where a
contributor edits them; an editable install reads them there."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

#: what the wheel carries, from the repository's top level
PROJECT_FILES = ("catalog.yml", "cassettes", "templates")
#: where, inside the built packages (package_data.py's DATA_FOLDER)
DATA_FOLDER = Path("shared", "tooling", "_data")
#: what is never copied: caches, compiled files, local databases
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ruff_cache", "*.duckdb*")


class BuildWithProjectFiles(build_py):
    """`build_py`, then the project files copied into the built `shared/tooling/_data/`."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads them from the checkout
            return
        root = Path(__file__).resolve().parent
        target = Path(self.build_lib) / DATA_FOLDER
        shutil.rmtree(target, ignore_errors=True)  # no stale copy from an earlier build
        target.mkdir(parents=True)
        for name in PROJECT_FILES:
            source = root / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=IGNORED)
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithProjectFiles})
