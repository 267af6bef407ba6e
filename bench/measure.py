"""Run one benchmark variant in its own process and measure it.

Every variant runs in a fresh interpreter, so one variant's memory never counts toward
another's, and the fake server runs in yet another process, so serving the data does not
count toward the client either. Peak memory is the child's maximum resident set size as
its own memory map reports it (`VmHWM`), else as the kernel reports it to `os.wait4`.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Measurement:
    """What one variant reported (its own timing and counts) and its peak memory."""

    name: str
    result: dict[str, Any]
    peak_rss_mb: float

    @property
    def seconds(self) -> float:
        return float(self.result["seconds"])

    @property
    def rows(self) -> int:
        return int(self.result["rows"])

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


class VariantFailed(RuntimeError):
    pass


def run_variant(
    name: str, argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 900
) -> Measurement:
    """Run `python <argv>` from the repository root; it must print one JSON object last."""
    child_env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, *argv], cwd=ROOT, env=child_env, stdout=stdout, stderr=stderr
        )
        try:
            status, usage = _wait_with_usage(process, timeout, name)
        except BaseException:  # interrupted: the variant must not outlive the benchmark
            if process.returncode is None:
                process.kill()
                os.wait4(process.pid, 0)
            raise
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read(), stderr.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise VariantFailed(f"{name} exited with {code}:\n{err[-3000:]}")
    lines = [line for line in out.splitlines() if line.strip()]
    result = json.loads(lines[-1])
    # the variant's own high-water mark (`report`); the kernel's ru_maxrss (KiB on Linux)
    # also counts this process's memory at the fork that started the child
    peak = result.get("peak_rss_mb") or usage.ru_maxrss / 1024
    return Measurement(name, result, float(peak))


def _wait_with_usage(
    process: subprocess.Popen[Any], timeout: float, name: str
) -> tuple[int, resource.struct_rusage]:
    """Reap the child ourselves: `os.wait4` gives its own resource usage, which
    `Popen.wait` would discard."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return status, usage
        if time.monotonic() > deadline:
            process.kill()
            os.wait4(process.pid, 0)
            process.returncode = -9
            raise VariantFailed(f"{name}: no result within {timeout:.0f}s")
        time.sleep(0.05)


@dataclass
class Served:
    """A fake server running in its own process (`bench.serve`)."""

    base_url: str
    #: what the server reported when it stopped: requests answered, 429s among them
    stats: dict[str, int] = field(default_factory=dict)


@contextmanager
def serving(fake: str, *args: str) -> Iterator[Served]:
    """Start `python -m bench.serve <fake> <args>` and yield it; stop it on exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.serve", fake, *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise VariantFailed(f"the {fake} fake did not start: {base_url!r}")
        served = Served(base_url)
        yield served
        process.stdin.close()
        served.stats = json.loads(process.stdout.readline())
    finally:
        if not process.stdin.closed:
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def report(result: dict[str, Any]) -> None:
    """What a variant prints last: its result as one JSON line, with its peak memory."""
    print(json.dumps({**result, "peak_rss_mb": own_peak_rss_mb()}), flush=True)


def own_peak_rss_mb() -> float:
    """This process's peak resident memory since it started its program, in MB.

    Linux keeps `getrusage`'s `ru_maxrss` across `fork` and `execve`, so a variant started
    from the benchmark's own process would report at least that process's memory at the
    fork (about 230 MB by the end of a run); `VmHWM` belongs to the program's own memory
    map, made new at `execve`."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
