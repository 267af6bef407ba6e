"""A test runs the `connectors` command as a new user would: in an empty folder (the
current one), with dlt's pipelines and state under it (`DLT_DATA_DIR`) and no
`SOURCES__...` credentials or settings inherited from the environment. The `empty_folder`
fixture (tests/conftest.py) does this for one test; a module-scoped fixture calls
`use_empty_folder` with a `pytest.MonkeyPatch.context()` of its own, and runs the
command with `run_cli` (capsys is per test)."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from connectors.cli import main


def use_empty_folder(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Work in `folder`, with dlt's state there and no `SOURCES__...` variable set."""
    monkeypatch.chdir(folder)
    monkeypatch.setenv("DLT_DATA_DIR", str(folder / "dlt-data"))
    for key in list(os.environ):
        if key.startswith("SOURCES__"):
            monkeypatch.delenv(key)


def run_cli(*argv: str) -> tuple[int, str, str]:
    """Run `connectors <argv>` in this process: its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()
