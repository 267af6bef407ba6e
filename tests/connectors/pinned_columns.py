"""The column types a connector's full sync produces, pinned per table in
`tests/connectors/columns/<connector>.yaml` (`column: type`, `type?` where nullable), so
that a change in what the fake serves or in dlt's inference shows in a diff.

`python -m tests.connectors.pinned_columns NAME` replays the connector's full sync and
rewrites its file; review the diff before committing it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import dlt
import yaml

PINNED_DIR = Path(__file__).parent / "columns"


def column_types(pipeline: dlt.Pipeline) -> dict[str, dict[str, str]]:
    """table -> column -> `type` (`type?` if nullable), dlt's own tables left out."""
    tables: dict[str, dict[str, str]] = {}
    for name, table in sorted(pipeline.default_schema.tables.items()):
        if name.startswith("_dlt"):
            continue
        columns: dict[str, Any] = table.get("columns") or {}
        typed = {
            column: f"{hints['data_type']}{'?' if hints.get('nullable', True) else ''}"
            for column, hints in sorted(columns.items())
            if "data_type" in hints
        }
        if typed:
            tables[name] = typed
    return tables


def pinned(connector: str) -> dict[str, dict[str, str]]:
    return yaml.safe_load((PINNED_DIR / f"{connector}.yaml").read_text())  # type: ignore[no-any-return]


def write(connector: str, tables: dict[str, dict[str, str]]) -> Path:
    path = PINNED_DIR / f"{connector}.yaml"
    header = (
        f"# {connector}: the column types of a full sync, `type?` where nullable\n"
        f"# (rewrite: python -m tests.connectors.pinned_columns {connector})\n"
    )
    path.write_text(header + yaml.safe_dump(tables, sort_keys=True, width=100))
    return path


def main(argv: list[str]) -> int:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    from connectors.sandbox import load_recording
    from tests.recording import replayed_once

    (connector,) = argv
    with tempfile.TemporaryDirectory() as folder:
        pipeline, _ = replayed_once(load_recording(connector), Path(folder))
        print(f"wrote {write(connector, column_types(pipeline))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
