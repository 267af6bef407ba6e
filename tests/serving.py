"""`connectors serve` in a process of its own, and what a sync against it loaded: the
end-to-end tests of the sandbox (tests/test_cli_serve.py, and tests/test_wheel.py with
the installed wheel)."""

from __future__ import annotations

import shlex
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb

#: generous: a cold interpreter importing dlt on a busy machine
SECONDS = 300


@contextmanager
def serving(
    command: Sequence[str], cwd: Path, env: dict[str, str], settings: int
) -> Iterator[tuple[subprocess.Popen[str], str, dict[str, str]]]:
    """Start `command` (a `connectors serve NAME`); yield the process, the base URL of its
    `base_url=` line and the `settings` `NAME=value` lines after it, as a dict (values
    unquoted, as a shell reads them). Killed on exit if it still runs."""
    server = subprocess.Popen(
        list(command), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        key, _, base_url = server.stdout.readline().strip().partition("=")
        assert key == "base_url", f"not a base_url line: {key}"
        lines = [server.stdout.readline().strip() for _ in range(settings)]
        yield server, base_url, dict(unquoted(line) for line in lines)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=SECONDS)


def unquoted(line: str) -> tuple[str, str]:
    """`NAME=value` as `serve` prints it (the value quoted for a shell) -> (NAME, value)."""
    name, _, quoted = line.partition("=")
    (value,) = shlex.split(quoted)
    return name, value


def stop(server: subprocess.Popen[str]) -> str:
    """Ctrl-C (SIGINT) to the server; its stderr once it has exited."""
    server.send_signal(signal.SIGINT)
    _, stderr = server.communicate(timeout=SECONDS)
    return stderr


def row_counts(database: Path, dataset: str, tables: Sequence[str]) -> dict[str, int]:
    """Rows per table of `dataset` in the DuckDB file `database`."""
    with duckdb.connect(str(database), read_only=True) as connection:
        return {
            table: connection.execute(f"SELECT COUNT(*) FROM {dataset}.{table}").fetchone()[0]
            for table in tables
        }
