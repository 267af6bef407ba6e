"""What recording a connector's cassettes takes, declared once per connector.

Each sandbox module (`connectors/sandbox/<name>.py`) exports a `RECORDING`: the source
function, its fake server, the credentials the fake accepts, the canonical base URL and
the steps (one cassette each; a step may change the fake's data first, e.g. for a second
incremental run). `record` runs them and writes the cassettes (`make record-connector
NAME=x`, and `connectors new` for the connector it makes), the replay tests play them,
and `connectors serve` prints the credentials to sync against the running fake.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.loading import duckdb_pipeline, run_source
from shared.redaction import watching_redactors
from shared.tooling.cassettes import Scrubber, cassette_path, recording


@dataclass
class Step:
    """One pipeline run, recorded into `cassettes/<connector>/<cassette>.yaml`."""

    cassette: str
    prepare: Callable[[Any], Any] | None = None
    #: further source arguments (never credentials: those go in the two fields below)
    source_kwargs: dict[str, Any] = field(default_factory=dict)
    #: this step's fake credentials (recording from the fake, replaying), instead of the
    #: Recording's; for steps that differ in auth mode. Never sent in LIVE mode.
    credentials: dict[str, str] | None = None
    #: source argument -> environment variable for LIVE=1, instead of the Recording's
    live_credentials: dict[str, str] | None = None
    #: run on a pipeline of its own (a first sync, whatever the steps before it loaded),
    #: so that a test replays it alone: a step whose answers include faults
    own_pipeline: bool = False
    #: the sync fails, with an error whose message contains this (a 4xx its `prepare`
    #: makes the fake answer); recorded like any other step, on a pipeline of its own
    fails_with: str | None = None


@dataclass
class Recording:
    """How one connector's cassettes are recorded from its fake (or from the real API
    under LIVE=1) and replayed, and the credentials the fake accepts."""

    connector: str
    source: Callable[..., Any]
    fake: Callable[[], Any]
    credentials: dict[str, str]
    canonical_base_url: str
    steps: Sequence[Step]
    #: source argument -> environment variable, for LIVE=1 recording against the real API
    live_credentials: dict[str, str] = field(default_factory=dict)
    live_base_url_env: str = ""
    secret_headers: Sequence[str] = ()
    secret_fields: Sequence[str] = ()
    volatile_headers: Sequence[str] = ()
    #: as `Scrubber.kept_headers` and `Scrubber.countdown_headers`
    kept_headers: Sequence[str] = ()
    countdown_headers: dict[str, str] = field(default_factory=dict)
    #: source arguments for offline runs, recording from the fake and replaying (e.g. no pacing)
    offline_kwargs: dict[str, Any] = field(default_factory=dict)

    def step_credentials(self, step: Step) -> dict[str, str]:
        """The fake credentials `step` runs with: its own, else the Recording's."""
        return self.credentials if step.credentials is None else step.credentials

    def step_live_credentials(self, step: Step) -> dict[str, str]:
        """Source argument -> environment variable for `step` under LIVE=1."""
        return self.live_credentials if step.live_credentials is None else step.live_credentials

    def fake_secrets(self) -> list[str]:
        """Every fake credential value of every step (URLs such as a token URL are not
        secrets)."""
        mappings = [self.credentials, *(step.credentials or {} for step in self.steps)]
        return [
            value
            for mapping in mappings
            for name, value in mapping.items()
            if isinstance(value, str) and value and not name.endswith("_url")
        ]

    def scrubber(self, recorded_origin: str, secrets: Sequence[str] = ()) -> Scrubber:
        """The scrubber: credential names, and by value the fake credentials plus
        `secrets` (the live ones when recording live)."""
        # every credential argument's name is scrubbed, whichever step passes it
        names = dict.fromkeys(
            [*self.credentials, *(name for step in self.steps for name in step.credentials or {})]
        )
        return Scrubber(
            recorded_origin=recorded_origin,
            canonical_origin=self.canonical_base_url,
            headers=self.secret_headers,
            fields=[*self.secret_fields, *names],
            volatile_headers=self.volatile_headers,
            kept_headers=self.kept_headers,
            countdown_headers=self.countdown_headers,
            secrets=[*self.fake_secrets(), *secrets],
        )

    def sandbox_arguments(self) -> dict[str, Any]:
        """What a sync against the running fake needs besides its `base_url`: the first
        step's credentials and source arguments (one auth mode; configuration such as
        analytics' `resources`)."""
        first = self.steps[0]
        return {**self.step_credentials(first), **first.source_kwargs}


def live_step_credentials(rec: Recording) -> list[dict[str, str]]:
    """Each step's credentials read from the environment for LIVE=1 (never the fake's);
    a SystemExit naming every missing variable before anything runs."""
    wanted = [rec.step_live_credentials(step) for step in rec.steps]
    missing = list(
        dict.fromkeys(
            env for mapping in wanted for env in mapping.values() if not os.environ.get(env)
        )
    )
    if missing:
        raise SystemExit(f"LIVE=1 needs these environment variables: {', '.join(missing)}")
    return [{arg: os.environ[env] for arg, env in mapping.items()} for mapping in wanted]


def _own_pipeline(rec: Recording, step: Step, workdir: str) -> Any:
    return duckdb_pipeline(
        f"record_{rec.connector}_{step.cassette}",
        database=f"{workdir}/{step.cassette}.duckdb",
        pipelines_dir=workdir,
    )


def _run_step(step: Step, pipeline: Any, source: Any, live: bool) -> None:
    """Run the step's sync; one that `fails_with` must fail so against the fake (its
    cassette is kept). The real API answers no fault on cue: under LIVE=1 it just runs."""
    if step.fails_with is None or live:
        run_source(pipeline, source)
        return
    try:
        run_source(pipeline, source)
    except Exception as exc:  # noqa: BLE001 - whatever the sync raises, its message counts
        if step.fails_with in str(exc):
            return
        raise
    raise RuntimeError(f"step {step.cassette} was to fail with {step.fails_with!r}; it passed")


def record(rec: Recording, live: bool = False, root: Path | None = None) -> list[Path]:
    """Run every step against the fake (or the real API when `live`) and write cassettes.

    Args:
        rec: the connector's recording.
        live: record the real API, with the credentials from the environment variables
            `rec` names (`live_step_credentials`).
        root: the cassettes folder to write `<connector>/<step>.yaml` into (default: the
            repository's `cassettes/`).
    """
    written = []
    live_credentials = live_step_credentials(rec) if live else []
    with tempfile.TemporaryDirectory() as workdir:
        pipeline = duckdb_pipeline(
            f"record_{rec.connector}", database=f"{workdir}/record.duckdb", pipelines_dir=workdir
        )
        fake = None if live else rec.fake().start()
        try:
            if fake is None:
                base_url = os.environ.get(rec.live_base_url_env) or rec.canonical_base_url
                extra: dict[str, Any] = {}
            else:
                base_url, extra = fake.base_url, rec.offline_kwargs
            live_values = [value for mapping in live_credentials for value in mapping.values()]
            scrubber = rec.scrubber(base_url, secrets=live_values)
            for index, step in enumerate(rec.steps):
                if step.prepare and fake is not None:
                    step.prepare(fake)
                credentials = live_credentials[index] if live else rec.step_credentials(step)
                path = cassette_path(rec.connector, step.cassette, root)
                # the source's redactor (its secrets, the tokens it obtains, its
                # authenticator's header name) is consulted for every interaction
                with watching_redactors() as redactors:
                    scrubber.redactors = redactors
                    source = rec.source(
                        base_url=base_url, **credentials, **extra, **step.source_kwargs
                    )
                    alone = step.own_pipeline or step.fails_with is not None
                    target = _own_pipeline(rec, step, workdir) if alone else pipeline
                    with recording(path, scrubber):
                        _run_step(step, target, source, live)
                written.append(path)
        finally:
            if fake is not None:
                fake.stop()
    return written
