"""Replay a connector's cassettes in its tests, and `make record-connector` (`main`).

Recording itself (`record`) lives in `shared.tooling.recordings`, which `connectors new`
also uses. Each sandbox module (`connectors/sandbox/<name>.py`) exports a `RECORDING`
(`shared/tooling/recordings.py`): the source function, how to start its fake, fake
credentials, the canonical base URL and the steps (one cassette each; a step may change
the fake's data first, e.g. for a second incremental run, or inject faults and record
their answers on a pipeline of its own, failing where it `fails_with`:
tests/test_recorded_errors.py replays those). `make record-connector NAME=x`
records them; tests replay them.

Credentials: the fake's (`credentials`) are used when recording from the fake and when
replaying; under LIVE=1 only the environment variables named by `live_credentials` are
passed. A step may carry its own pair of both (steps differing in auth mode), used
instead of the Recording's.

Cassettes are scrubbed by name and by value: every credential value the recording uses
(fake or live), every token its sources obtain (through their redactors), and the
header or query names their authenticators put credentials in.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dlt

from connectors.sandbox import load_recording
from shared.loading import run_source
from shared.tooling.cassettes import cassette_path, replaying
from shared.tooling.recordings import Recording, live_step_credentials, record

__all__ = ["live_step_credentials", "main", "record", "replay"]


def replay(
    rec: Recording,
    pipeline: dlt.Pipeline,
    steps: Sequence[str] | None = None,
    root: Path | None = None,
) -> list[Any]:
    """Replay the named steps (default: all) offline into `pipeline`; return the
    played cassettes (their `.requests` are what the connector sent)."""
    played = []
    scrubber = rec.scrubber(rec.canonical_base_url)
    for step in rec.steps:
        if steps is not None and step.cassette not in steps:
            continue
        source = rec.source(
            base_url=rec.canonical_base_url,
            **rec.step_credentials(step),
            **rec.offline_kwargs,
            **step.source_kwargs,
        )
        with replaying(cassette_path(rec.connector, step.cassette, root), scrubber) as cassette:
            run_source(pipeline, source)
        played.append(cassette)
    return played


def replayed_once(
    rec: Recording, folder: Path, steps: Sequence[str] = ("full_sync",)
) -> tuple[dlt.Pipeline, list[Any]]:
    """A fresh pipeline in `folder` with `steps` replayed into it, and the played
    cassettes: for a module-scoped fixture whose tests only read what one replay loaded
    (each replay is a whole sync)."""
    from shared.loading import duckdb_pipeline

    pipeline = duckdb_pipeline(
        "test", database=str(folder / "test.duckdb"), pipelines_dir=str(folder)
    )
    return pipeline, replay(rec, pipeline, steps=list(steps))


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Record a connector's cassettes.")
    parser.add_argument("connector")
    args = parser.parse_args(argv)
    try:
        rec = load_recording(args.connector)
    except ModuleNotFoundError as exc:
        if exc.name != f"connectors.sandbox.{args.connector}":
            raise
        print(
            f"no fake server for connector `{args.connector}` "
            f"(connectors/sandbox/{args.connector}.py)"
        )
        return 2
    live = os.environ.get("LIVE") == "1"
    for path in record(rec, live=live):
        print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0
