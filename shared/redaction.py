"""One redactor per source: secrets are removed by *value*, whatever they are called.

Names are not enough: a server may echo a token in an error body, an `X-*` header or a
next-page URL, and an API key may travel under any header or query name. Every secret a
source is given, and every token it obtains, is registered with the source's `Redactor`;
every message, log line, body excerpt and exception chain the project produces passes
through `Redactor.redact` (or `Redactor.scrub_exception`) before anyone can see it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

from shared.errors import exception_chain

MASK = "***"
#: a secret shorter than this is masked only where it stands as a whole token (not
#: inside a longer word): a short password such as `user` must not mask `username` or
#: `users` in every message, and still never shows where it stands alone
WHOLE_TOKEN_BELOW = 8
#: kept for callers of the old name: the length from which a value is masked anywhere
MIN_SECRET_LENGTH = WHOLE_TOKEN_BELOW
#: the loggers that can print a request's URL, headers or body: urllib3's connection
#: pool ("Starting new HTTP connection", "GET /v1/x?api_key=... 200"), its retries, dlt
#: (its REST client logs every request at debug), requests, vcrpy, and ours (shared,
#: connectors). A logger's
#: filters see only records logged on that very logger, not those its children propagate,
#: so each emitting logger gets the filter (children that exist already included).
LIBRARY_LOGGERS = (
    "urllib3",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
    "requests",
    "dlt",
    "vcr",
    "vcr.stubs",
    "vcr.cassette",
    "shared",
    "connectors",
)


class Redactor:
    """The set of secret values of one source, and the means to mask them.

    Thread-safe: sources register tokens from worker threads while other threads redact.
    """

    def __init__(self, secrets: Iterable[object] = ()) -> None:
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()
        self._short: tuple[str, ...] = ()
        self._short_pattern: re.Pattern[str] | None = None
        #: names the credentials travel under (the auth's header or query parameter)
        self.names: frozenset[str] = frozenset()
        self.register(*secrets)

    # a source's redactor is one registry shared by everything that copies the source's
    # configuration (dlt deep-copies its client config, auth included): a copy that
    # registered a token in a registry of its own would leave the original blind to it
    def __copy__(self) -> Redactor:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Redactor:
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def register_name(self, *names: str) -> None:
        """Record the header or query names the credentials travel under (cassettes drop
        them whatever the value, `strip_credentials` removes them on foreign requests)."""
        with self._lock:
            self.names = self.names | {name.lower() for name in names if name}

    def register(self, *secrets: object) -> None:
        """Add secret values, with every encoding they can travel or be echoed in
        (`encoded_forms`). A value shorter than `WHOLE_TOKEN_BELOW` is masked only as a
        whole token."""
        found: set[str] = set()
        short: set[str] = set()
        for secret in secrets:
            if secret is None:
                continue
            for variant in encoded_forms(str(secret)):
                (found if len(variant) >= WHOLE_TOKEN_BELOW else short).add(variant)
        if not found and not short:
            return
        with self._lock:
            # longest first, so a secret that contains another is masked whole
            self._values = tuple(sorted({*self._values, *found}, key=len, reverse=True))
            self._short = tuple(sorted({*self._short, *short}, key=len, reverse=True))
            self._short_pattern = (
                re.compile(
                    r"(?<![A-Za-z0-9])(?:"
                    + "|".join(map(re.escape, self._short))
                    + r")(?![A-Za-z0-9])"
                )
                if self._short
                else None
            )

    @property
    def values(self) -> tuple[str, ...]:
        """Every registered form, short ones (masked as whole tokens only) included."""
        return self._values + self._short

    def redact(self, text: object, mask: str = MASK) -> str:
        """`text` as a string with every registered secret replaced by `mask`."""
        result = str(text)
        for value in self._values:
            if value in result:
                result = result.replace(value, mask)
        if self._short_pattern is not None:
            result = self._short_pattern.sub(mask, result)
        return result

    @property
    def longest(self) -> int:
        """The length of the longest registered form (0 with none)."""
        return max((len(value) for value in self.values), default=0)

    def excerpt(self, text: object, limit: int) -> str:
        """`text` on one line, at most `limit` characters (then `…`), secrets masked.

        Masked first: a secret that the cut or the folding of white space would split
        could no longer be matched, and its first characters would show."""
        folded = " ".join(self.redact(text).split())
        return folded[:limit] + ("…" if len(folded) > limit else "")

    def contains_secret(self, text: object) -> bool:
        result = str(text)
        if any(value in result for value in self._values):
            return True
        return self._short_pattern is not None and self._short_pattern.search(result) is not None

    def scrub_exception(self, exc: BaseException) -> BaseException:
        """Mask secrets in `exc` and in every exception of its `__cause__`/`__context__`
        chain, in place (dlt stores the whole chain in its trace), and return `exc`."""
        for current in exception_chain(exc):
            self._scrub_args(current)
            self._scrub_notes(current)
        return exc

    def _scrub_args(self, exc: BaseException) -> None:
        if not self._values:
            return
        try:
            args = exc.args
        except Exception:  # pragma: no cover - exotic exceptions
            return
        if any(self.contains_secret(arg) for arg in args):
            with contextlib.suppress(Exception):  # an exception type with read-only args
                exc.args = tuple(
                    self.redact(arg) if self.contains_secret(arg) else arg for arg in args
                )
        # text attributes too (urllib3's `MaxRetryError.url` keeps the URL, query key
        # included); objects (a request still in use by a retry) are left alone
        names = {"msg", "message", "reason", "strerror", *getattr(exc, "__dict__", {})}
        for attr in names:
            value = getattr(exc, attr, None)
            if isinstance(value, str) and self.contains_secret(value):
                with contextlib.suppress(Exception):  # a read-only attribute
                    setattr(exc, attr, self.redact(value))

    def _scrub_notes(self, exc: BaseException) -> None:
        notes = getattr(exc, "__notes__", None)
        if isinstance(notes, list) and any(self.contains_secret(note) for note in notes):
            notes[:] = [self.redact(note) for note in notes]

    def activate(self) -> None:
        """Mask this redactor's secrets in the library loggers (`LIBRARY_LOGGERS`) for as
        long as it lives (a source's sessions keep it alive while the source runs). When
        the last active redactor is gone, the filters leave those loggers again."""
        with _ACTIVE_LOCK:
            # active before the filters go on: a redactor collected meanwhile sees this
            # one alive and leaves them
            if self not in _ACTIVE:
                _ACTIVE.add(self)
                weakref.finalize(self, _remove_library_filters_if_idle)
            for watcher in _WATCHERS:
                if self not in watcher:
                    watcher.append(self)
        _install_library_filters()


def encoded_forms(secret: str) -> set[str]:
    """The forms a secret can travel or be echoed in: as given and stripped; URL-encoded
    (`quote`, `quote_plus`); JSON-escaped, with and without `\\u` escapes for non-ASCII
    and with `/` written `\\/` (as many servers escape it); Python-escaped (`\\r\\n`,
    as `http.client` prints a header value it refuses); base64 (basic auth), with and
    without padding. Empty forms are dropped."""
    stripped = secret.strip()
    if not stripped:
        return set()
    forms = {secret, stripped, quote(stripped, safe=""), quote_plus(stripped)}
    for ensure_ascii in (True, False):
        escaped = json.dumps(stripped, ensure_ascii=ensure_ascii)[1:-1]
        forms.update({escaped, escaped.replace("/", "\\/")})
    forms.add(repr(stripped)[1:-1])
    encoded = base64.b64encode(stripped.encode()).decode("ascii")
    forms.update({encoded, encoded.rstrip("=")})
    return {form for form in forms if form}


_ACTIVE: weakref.WeakSet[Redactor] = weakref.WeakSet()
#: reentrant: a redactor collected while this thread holds it runs its finalizer here
_ACTIVE_LOCK = threading.RLock()
_WATCHERS: list[list[Redactor]] = []
_INSTALLED: set[str] = set()


def active_redactors() -> tuple[Redactor, ...]:
    """The redactors of the sources alive in this process."""
    with _ACTIVE_LOCK:
        return tuple(_ACTIVE)


@contextlib.contextmanager
def watching_redactors() -> Iterator[list[Redactor]]:
    """Collect the redactors activated inside the block (a recording uses them to scrub
    the tokens its sources obtain, which no one knows beforehand)."""
    seen: list[Redactor] = []
    with _ACTIVE_LOCK:
        _WATCHERS.append(seen)
    try:
        yield seen
    finally:
        with _ACTIVE_LOCK:
            _WATCHERS.remove(seen)


def _install_library_filters() -> None:
    """Attach one value-masking filter (over every live redactor) to each library logger
    that can print a URL or a header, and to the children of those that exist already."""
    names = set(LIBRARY_LOGGERS)
    prefixes = tuple(f"{name}." for name in LIBRARY_LOGGERS)
    names.update(
        name
        for name in list(logging.Logger.manager.loggerDict)
        if isinstance(name, str) and name.startswith(prefixes)
    )
    with _ACTIVE_LOCK:
        missing = names - _INSTALLED
        _INSTALLED.update(missing)
    for name in missing:
        logging.getLogger(name).addFilter(_LIBRARY_FILTER)


def _remove_library_filters_if_idle() -> None:
    """Take the value-masking filter off the library loggers once no redactor is active
    (the process goes back to the logging it had before any source ran)."""
    with _ACTIVE_LOCK:
        if any(True for _ in _ACTIVE):  # iterating skips the redactor being collected
            return
        installed = list(_INSTALLED)
        _INSTALLED.clear()
    for name in installed:
        logging.getLogger(name).removeFilter(_LIBRARY_FILTER)


class _RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, its exception and its stack text."""

    def __init__(self, redactors: Any) -> None:
        super().__init__()
        self.redactors = redactors  # a callable returning the redactors to apply

    def filter(self, record: logging.LogRecord) -> bool:
        redactors = [r for r in self.redactors() if r.values]
        if not redactors:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error report
            return True
        redacted = message
        for redactor in redactors:
            redacted = redactor.redact(redacted)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            for redactor in redactors:
                redactor.scrub_exception(record.exc_info[1])
        for attr in ("exc_text", "stack_info"):
            text = getattr(record, attr, None)
            if text:
                for redactor in redactors:
                    text = redactor.redact(text)
                setattr(record, attr, text)
        return True


_LIBRARY_FILTER = _RedactingFilter(active_redactors)
