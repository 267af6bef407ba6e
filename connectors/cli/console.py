"""How every command answers: its exit statuses, the one-line usage error, and a table
on stdout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.errors import ConnectorError

#: exit status of a usage error (unknown connector, resource or destination, taken name)
USAGE = 2
#: exit status of a run that failed (missing credentials, rejected token, API errors)
FAILED = 1
#: exit status after Ctrl-C (128 + SIGINT), as a shell reports it
INTERRUPTED = 130


class UsageError(ConnectorError):
    """A command-line value that cannot work (a relative `--base-url`, a `--database` in
    a missing folder): said in one line, exit status `USAGE`."""


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], indent: str = "") -> None:
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(indent + line.rstrip())
