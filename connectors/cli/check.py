"""`connectors check NAME`: are the credentials accepted and the API reachable?

One cheap request through the connector's own source (its auth, origin scoping and
error messages): the first page of the catalog's `check` resource (the account object or
a short list; without one, the source's first resource without a parent), read from a
throwaway state and closed after that page. With OAuth2 client credentials the token
request goes first, so both are checked. Nothing is loaded and no state is written.

The check sends one attempt: no retries (`max_retries=0`) and a `CHECK_DEADLINE`, where
the source takes those settings, so a server that is down says so at once.

Exit 0 with one line naming the request, its status and time:

    crm: ok — GET https://api.capsulecrm.com/api/v2/site?perPage=100 200 in 0.12 s

exit 1 with one line naming the cause: rejected credentials (and which setting to fix),
a host that does not resolve or answer, a server error's status, or a missing setting.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectors.cli.console import FAILED, base_url_problem
from connectors.cli.request_log import RequestLog
from shared.tooling.catalog import ConnectorEntry

#: seconds the check's request may take in all, where the source has a `request_deadline`
CHECK_DEADLINE = 30.0
#: what a check passes to the source, where its function takes the argument
CHECK_ARGUMENTS: dict[str, Any] = {"max_retries": 0, "request_deadline": CHECK_DEADLINE}


@dataclass(frozen=True)
class CheckResult:
    """The check's verdict and its one line."""

    ok: bool
    line: str


def check_resource(entry: ConnectorEntry, source: Any) -> str:
    """The resource whose first page the check reads: the catalog's `check`, when the
    source (as configured) has it; else its first resource without a parent."""
    selected = source.selected_resources
    if entry.check in selected:
        return entry.check
    return next(
        (name for name, resource in selected.items() if not resource.is_transformer),
        next(iter(selected)),
    )


def build_check_source(entry: ConnectorEntry, replay: bool, base_url: str | None) -> Any:
    """The connector's source as `run` builds it, with one attempt per request, and only
    the check's resource selected, limited to its first page (dlt's `add_limit`)."""
    import inspect

    from connectors.cli.runner import source_arguments

    factory = entry.source_factory()
    arguments = source_arguments(entry, factory, replay, base_url)
    parameters = inspect.signature(factory).parameters
    arguments.update({k: v for k, v in CHECK_ARGUMENTS.items() if k in parameters})
    source = factory(**arguments)
    name = check_resource(entry, source)
    source.resources[name].add_limit(1)
    return source.with_resources(name)


def read(source: Any) -> None:
    """Iterate the source outside any pipeline, from a throwaway state."""
    from shared._dlt_compat import iterate_with_origin

    for _ in iterate_with_origin(source, state={}):
        pass


def check(
    entry: ConnectorEntry,
    replay: bool = False,
    base_url: str | None = None,
    traceback: bool = False,
) -> CheckResult:
    """Send the check's request (see the module) and say how it went, in one line
    (`traceback`: raise what failed instead)."""
    from connectors.cli import runner
    from shared.tooling.cassettes import replaying

    with RequestLog() as log:
        try:
            source = build_check_source(entry, replay, base_url)
            if replay:
                scrubber = runner.replay_scrubber(entry)
                with replaying(entry.cassette_path(), scrubber, require_all_played=False):
                    read(source)
            else:
                read(source)
        except Exception as exc:
            said = cause(entry, exc, log, traceback)
            return CheckResult(False, f"{entry.name}: failed — {said}")
    if not log.answers:
        return CheckResult(False, f"{entry.name}: failed — the source sent no request to check")
    line = f"{entry.name}: ok — " + ", then ".join(str(answer) for answer in log.answers)
    if replay:
        line += f" (replayed from cassettes/{entry.name}/{entry.replay.cassette}.yaml)"
    return CheckResult(True, line)


def cause(entry: ConnectorEntry, exc: BaseException, log: RequestLog, traceback: bool) -> str:
    """Why the check failed, in the words a user acts on (never a secret: URLs are the
    session's redacted ones, messages the connector's own); `traceback`: raise it."""
    import requests

    from connectors.cli.explain import explained
    from shared.errors import AuthenticationError, exception_chain

    said = explained(exc, entry, traceback)
    chain = list(exception_chain(exc))
    answer = log.answers[-1] if log.answers else None
    if any(isinstance(error, AuthenticationError) for error in chain):
        refused = f"{answer}: " if answer is not None else ""
        return f"{refused}the credentials were rejected; check {credential_hint(entry)}"
    if answer is not None and answer.status >= 400:
        return f"{answer}: {status_cause(answer.status)}"
    transport = next((e for e in chain if isinstance(e, requests.RequestException)), None)
    if transport is not None and log.last_request is not None:
        method, url = log.last_request
        host = urlsplit(url).netloc
        return (
            f"{method} {url}: no answer from {host} ({type(transport).__name__}); check that "
            f"the API is up and base_url is right (`sources.{entry.name}.base_url` or --base-url)"
        )
    return said.removeprefix(f"{entry.name}: ")


def status_cause(status: int) -> str:
    """What an error status means for a check."""
    if status >= 500:
        return f"the API failed with {status} (a server error); try again later"
    if status == 429:
        return "the API is rate limiting this client (429); try again later"
    if status == 404:
        return "no such endpoint (404); is base_url the API's root?"
    return f"the API refused the request with {status}"


def credential_hint(entry: ConnectorEntry) -> str:
    """Where the credentials the check used are set: the settings of the auth mode that
    is configured (the first whose secrets are all set; else the default mode)."""
    from connectors.cli.runner import config_section, configured_auth_mode
    from shared.errors import secret_hint

    section = config_section(entry, entry.source_factory())
    return secret_hint(section, configured_auth_mode(entry, section).secrets)


def absolute_url(value: str) -> str:
    """`--base-url`: an absolute http(s) URL, or argparse's usage error (exit 2)."""
    problem = base_url_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def cmd_check(args: argparse.Namespace) -> int:
    from connectors.declarative.entry import entry_for

    entry = entry_for(args.name)  # a catalog connector, or a spec path
    result = check(entry, replay=args.replay, base_url=args.base_url, traceback=args.traceback)
    print(result.line, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else FAILED


def add_parser(commands: Any) -> None:
    """Register `check` on the CLI's subcommands."""
    parser = commands.add_parser(
        "check", help="one request: are the credentials accepted and the API reachable?"
    )
    parser.add_argument("name")
    parser.add_argument(
        "--base-url",
        type=absolute_url,
        help="the API's base URL (default: dlt config, then catalog)",
    )
    parser.add_argument("--replay", action="store_true", help="check against the cassette, offline")
    parser.set_defaults(handler=cmd_check)
