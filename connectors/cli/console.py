"""How every command answers: its exit statuses, the one-line usage error, and a table
on stdout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

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


def base_url_problem(value: str) -> str | None:
    """Why `value`, given as `--base-url`, cannot be an API's base URL (it is not an
    absolute http(s) URL), or None."""
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return None
    return (
        f"`{value}` is not an absolute http(s) URL; "
        "give scheme and host, e.g. --base-url https://api.example.com"
    )


def check_base_url(value: str | None, error: type[Exception] = UsageError) -> None:
    """Refuse a `--base-url` that is not an absolute http(s) URL, blaming the flag (dlt
    would otherwise report a bad `sources.<name>.base_url`), as `error`."""
    problem = base_url_problem(value) if value is not None else None
    if problem:
        raise error(f"--base-url {problem}")


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], indent: str = "") -> None:
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(indent + line.rstrip())
