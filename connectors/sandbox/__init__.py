"""The sandbox: fake vendor servers, one per connector, serving each API over
real HTTP on 127.0.0.1 with deterministic, realistic data (werkzeug).

- `base`: what every fake shares: the server in a thread, the request log, injected
  faults, latency and rate-limit windows.
- `<name>`: connector `<name>`'s API, and its `RECORDING` (the credentials the fake
  accepts, the steps that record the connector's cassettes).

`connectors serve NAME` runs one until Ctrl-C; the tests, the bench and
`make record-connector` start them in-process. No connector imports the sandbox.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.tooling.recordings import Recording


def load_recording(connector: str) -> Recording:
    """The `RECORDING` of `connectors/sandbox/<connector>.py`.

    Raises:
        ModuleNotFoundError: the connector has no sandbox module (its `name` is the
            module's).
    """
    recording: Recording = importlib.import_module(f"{__name__}.{connector}").RECORDING
    return recording
