"""A failed run in one line: what went wrong and, where the user can fix it, what to set.

dlt wraps a failure in its step exceptions, a library's message may span paragraphs or
repeat a URL, and a missing setting is reported by its field name alone; `explain`
walks the whole chain of causes and says it in the catalog's words (the config key and
environment variable to set, the driver to install, the destinations that exist).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from shared.errors import ConnectorError, exception_chain, redact_url
from shared.tooling.catalog import ConnectorEntry

#: the message of a connection error `shared.http.session` re-raised with the URL redacted
OUR_CONNECTION_ERROR = re.compile(r"^[a-z][a-z0-9_]*: could not reach ")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it wraps, outermost first: dlt's step failures, causes, and
    contexts unless suppressed (`raise ... from None` hides a library message, e.g. one
    repeating a URL with its credentials)."""
    return exception_chain(exc, honour_suppressed_context=True)


def explain(
    exc: BaseException, entry: ConnectorEntry | None = None, destination: str | None = None
) -> str:
    """One line saying what went wrong and, where the user can fix it, what to set.

    Our own words come before a library's: missing config (the destination's, e.g.
    `destination.postgres.credentials`, told apart from the source's), a config value
    dlt cannot parse, a destination driver to install, then the outermost
    `ConnectorError` or message naming the connector, then a connection error our
    session re-raised with its URL redacted; only then the innermost exception.
    """
    from dlt.common.configuration.exceptions import (
        ConfigFieldMissingException,
        ConfigValueCannotBeCoercedException,
    )
    from dlt.common.destination.exceptions import UnknownDestinationModule

    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, ConfigFieldMissingException):
            kind = _destination_kind(cause)
            if kind:  # the destination's own settings, not the source's
                return _missing_destination_config(str(kind), list(cause.fields))
            if entry is not None:
                return _missing_config(entry, list(cause.fields))
        if isinstance(cause, ConfigValueCannotBeCoercedException) and entry is not None:
            return _bad_config_value(entry, cause)
        if isinstance(cause, UnknownDestinationModule):
            return _unknown_destination(cause)
        if isinstance(cause, ModuleNotFoundError) and destination not in (None, "duckdb"):
            return _missing_driver(str(destination), cause)
    own_prefix = f"{entry.name}: " if entry is not None else None
    for cause in causes:
        if isinstance(cause, ConnectorError) or (
            own_prefix is not None and str(cause).startswith(own_prefix)
        ):
            return first_line(cause)
    for cause in causes:
        if OUR_CONNECTION_ERROR.match(str(cause)):
            return first_line(cause)
    root = causes[-1]
    prefix = f"{entry.name}: " if entry is not None else ""
    return f"{prefix}{type(root).__name__}: {first_line(root)}"


def explained(
    exc: BaseException,
    entry: ConnectorEntry | None = None,
    traceback: bool = False,
    destination: str | None = None,
) -> str:
    """A command's failure as `explain` says it. A Ctrl-C inside it (dlt wraps one in its
    step errors) is raised as `KeyboardInterrupt`; with `traceback` (`--traceback`) the
    failure itself is raised."""
    if any(isinstance(cause, KeyboardInterrupt) for cause in exception_chain(exc)):
        raise KeyboardInterrupt from exc
    if traceback:
        raise exc
    return explain(exc, entry, destination)


def known_destinations() -> list[str]:
    """The destinations dlt ships, duckdb (the default) first."""
    import dlt.destinations

    shipped = sorted(name for name in dlt.destinations.__all__ if name != "destination")
    return sorted(shipped, key=lambda name: name != "duckdb")


def _unknown_destination(exc: Any) -> str:
    """dlt's multi-paragraph message about an unknown destination, in one line."""
    known = ", ".join(known_destinations())
    if getattr(exc, "destination_type", None):
        return (
            f"destination `{redact_url(str(exc.ref))}` has the unknown destination type "
            f"`{exc.destination_type}`; try {known}"
        )
    return f"unknown destination `{redact_url(str(exc.ref))}`; try {known}"


def is_usage_error(exc: BaseException) -> bool:
    """A failed run the user fixes on the command line (e.g. `--destination nope`)."""
    from dlt.common.destination.exceptions import UnknownDestinationModule

    return any(isinstance(cause, UnknownDestinationModule) for cause in _causes(exc))


def first_line(exc: BaseException) -> str:
    """The first line of `exc`'s message (its type's name when it has none): errors are
    one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _missing_config(entry: ConnectorEntry, fields: list[str]) -> str:
    from connectors.cli.snippets import source_settings

    settings = source_settings(entry)
    wanted = [
        f"`sources.{settings.section}.{field}` in .dlt/"
        f"{'secrets' if field in settings.secrets else 'config'}.toml "
        f"(or env {settings.env_var(field)})"
        for field in fields
    ]
    return f"{entry.name}: missing {', '.join(fields)}; set " + " and ".join(wanted)


def _destination_kind(exc: Any) -> str | None:
    """The destination type (`postgres`) whose configuration `exc` (dlt's missing-field
    error) is about, or None when it is not a destination's: the configuration object's
    `destination_type`, else the `destination.<type>` section dlt looked under."""
    kind = getattr(getattr(exc, "config", None), "destination_type", None)
    if kind:
        return str(kind)
    for traces in (getattr(exc, "traces", None) or {}).values():
        for trace in traces:
            sections = list(getattr(trace, "sections", None) or ())
            if len(sections) >= 2 and sections[0] == "destination":
                return str(sections[1])
    return None


def _missing_destination_config(kind: str, fields: list[str]) -> str:
    """A destination's missing settings: they live under `destination.<type>`, not under
    the connector's `sources.<name>`."""
    wanted = [
        f"`destination.{kind}.{field}` in .dlt/secrets.toml "
        f"(or env DESTINATION__{kind.upper()}__{field.upper()})"
        for field in fields
    ]
    return f"destination {kind}: missing {', '.join(fields)}; set " + " and ".join(wanted)


def _missing_driver(kind: str, exc: ModuleNotFoundError) -> str:
    """A destination whose client library is not installed: dlt's extra installs it."""
    module = exc.name or first_line(exc)
    return (
        f"destination {kind}: its driver `{module}` is not installed; "
        f'run: pip install "dlt[{kind}]"'
    )


def _bad_config_value(entry: ConnectorEntry, exc: Any) -> str:
    """A setting dlt found but cannot read as its type (bad JSON in an env variable),
    named by its key; the value itself is not repeated (it may be a secret)."""
    import inspect

    from connectors.cli.snippets import source_settings

    settings = source_settings(entry)
    field = str(exc.field_name)
    hint = getattr(exc.hint, "__name__", None) or str(exc.hint)
    # the parser's own words quote the value (`invalid literal for int(): 'abc'`): only
    # its kind is named
    reason = f" ({type(exc.__cause__).__name__})" if exc.__cause__ is not None else ""
    if field in inspect.signature(entry.source_factory()).parameters:
        where = f"`sources.{settings.section}.{field}` (env {settings.env_var(field)})"
    else:  # not the source's: a destination's or dlt's own setting
        where = f"the setting `{field}`"
    return (
        f"{entry.name}: {where} is not a valid {hint}{reason}; "
        "a list or mapping in an environment variable is JSON"
    )
