"""`connectors serve NAME [--port P]`: a connector's sandbox API on 127.0.0.1, to try the
connector without a vendor account.

It serves the fake of `connectors/sandbox/<name>.py` with its realistic data until
Ctrl-C, and prints what a sync against it needs: a line `base_url=...`, then one
`SOURCES__<NAME>__<KEY>=<value>` line per setting (the base URL, the credentials the fake
accepts, any configuration the connector requires), ready to export:

    $ connectors serve crm --port 8765
    base_url=http://127.0.0.1:8765
    SOURCES__CRM__BASE_URL=http://127.0.0.1:8765
    SOURCES__CRM__BEARER_TOKEN=...

An unknown connector, one without a sandbox, or a port in use is one line and exit
status 2; Ctrl-C (or SIGTERM) stops the server with one line and exit status 0.
"""

from __future__ import annotations

import argparse
import errno
import json
import shlex
import signal
import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.errors import ConnectorError, env_var
from shared.tooling.catalog import ConnectorEntry, load_catalog

if TYPE_CHECKING:
    from shared.tooling.recordings import Recording

#: exit status when the sandbox cannot start (no sandbox, a port in use)
CANNOT_SERVE = 2


class SandboxError(ConnectorError):
    """The sandbox cannot start: said in one line, exit status `CANNOT_SERVE`."""


def environment(section: str, settings: Mapping[str, Any]) -> dict[str, str]:
    """`SOURCES__<SECTION>__<KEY>` -> value for each setting, as dlt reads it from the
    environment (a value that is not a string as JSON, which dlt parses back)."""
    return {
        env_var(section, key): value if isinstance(value, str) else json.dumps(value)
        for key, value in settings.items()
    }


def sandbox_environment(
    entry: ConnectorEntry, recording: Recording, base_url: str
) -> dict[str, str]:
    """What a sync against `recording`'s fake at `base_url` needs, as environment
    variables: the base URL, the credentials the fake accepts, required configuration."""
    from connectors.cli.snippets import source_settings

    settings = {"base_url": base_url, **recording.sandbox_arguments()}
    return environment(source_settings(entry).section, settings)


def start_sandbox(name: str, port: int) -> tuple[Any, dict[str, str]]:
    """Start connector `name`'s fake on 127.0.0.1:`port` (0: any free port); return it
    and the environment a sync against it needs.

    Raises:
        UnknownConnectorError: the catalog has no connector `name`.
        SandboxError: the connector has no sandbox module, or the port is in use.
    """
    from connectors.sandbox import load_recording

    entry = load_catalog().get(name)
    try:
        recording = load_recording(entry.name)
    except ModuleNotFoundError as exc:
        if exc.name != f"connectors.sandbox.{entry.name}":
            raise
        raise SandboxError(
            f"connector `{entry.name}` has no sandbox (connectors/sandbox/{entry.name}.py)"
        ) from None
    fake = recording.fake()
    try:
        fake.start(port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SandboxError(
                f"port {port} on 127.0.0.1 is in use; choose another with --port "
                "(or leave it out for any free port)"
            ) from None
        raise SandboxError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror}") from None
    return fake, sandbox_environment(entry, recording, fake.base_url)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        fake, variables = start_sandbox(args.name, args.port)
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return CANNOT_SERVE
    # Ctrl-C stops it even when a shell started it in the background (SIGINT ignored),
    # and so does `kill` (SIGTERM): the server always stops the same way
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.default_int_handler)
    try:
        print(f"base_url={fake.base_url}")
        for variable, value in variables.items():
            print(f"{variable}={shlex.quote(value)}")
        sys.stdout.flush()  # the settings first: a reader may wait for them
        print(
            f"{args.name}: serving its sandbox API on {fake.base_url}; export the lines "
            f"above and run `connectors run {args.name}` in another shell; Ctrl-C stops it",
            file=sys.stderr,
        )
        threading.Event().wait()  # until Ctrl-C
    except KeyboardInterrupt:
        for stop in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C changes nothing
            signal.signal(stop, signal.SIG_IGN)
    finally:
        fake.stop()
    print(f"{args.name}: sandbox stopped", file=sys.stderr)
    return 0


def port(value: str) -> int:
    """`--port`: a TCP port number, 0 for any free one."""
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"`{value}` is not a port (0 to 65535)")
    return number


def add_parser(commands: Any) -> None:
    """Register `serve` on the CLI's subcommands."""
    parser = commands.add_parser(
        "serve", help="serve a connector's sandbox API on 127.0.0.1 until Ctrl-C"
    )
    parser.add_argument("name")
    parser.add_argument(
        "--port", type=port, default=0, help="the port to listen on (default: any free port)"
    )
    parser.set_defaults(handler=cmd_serve)
