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
import logging
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
#: values shorter than this are not registered: masking every `a` or `1` in a message
#: would hide what the message says while protecting nothing
MIN_SECRET_LENGTH = 4


class Redactor:
    """The set of secret values of one source, and the means to mask them.

    Thread-safe: sources register tokens from worker threads while other threads redact.
    """

    def __init__(self, secrets: Iterable[object] = ()) -> None:
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()
        self.register(*secrets)

    def register(self, *secrets: object) -> None:
        """Add secret values (and the encodings they travel in: URL-quoted, stripped)."""
        found: set[str] = set()
        for secret in secrets:
            if secret is None:
                continue
            text = str(secret)
            for variant in (text, text.strip(), quote(text, safe=""), quote_plus(text)):
                if len(variant) >= MIN_SECRET_LENGTH:
                    found.add(variant)
        if not found:
            return
        with self._lock:
            # longest first, so a secret that contains another is masked whole
            self._values = tuple(sorted({*self._values, *found}, key=len, reverse=True))

    def register_basic(self, username: str, password: str) -> None:
        """Register HTTP basic credentials and the base64 form the header carries."""
        pair = f"{username}:{password}".encode()
        self.register(password, base64.b64encode(pair).decode("ascii"))

    @property
    def values(self) -> tuple[str, ...]:
        return self._values

    def redact(self, text: object) -> str:
        """`text` as a string with every registered secret replaced by `***`."""
        result = str(text)
        for value in self._values:
            if value in result:
                result = result.replace(value, MASK)
        return result

    def contains_secret(self, text: object) -> bool:
        result = str(text)
        return any(value in result for value in self._values)

    def scrub_exception(self, exc: BaseException) -> BaseException:
        """Mask secrets in `exc` and in every exception of its `__cause__`/`__context__`
        chain, in place (dlt stores the whole chain in its trace), and return `exc`."""
        seen: set[int] = set()
        current: BaseException | None = exc
        pending: list[BaseException] = []
        while current is not None or pending:
            if current is None:
                current = pending.pop()
            if id(current) in seen:
                current = None
                continue
            seen.add(id(current))
            self._scrub_args(current)
            if current.__cause__ is not None:
                pending.append(current.__cause__)
            current = current.__context__
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
        for attr in ("msg", "message", "reason", "strerror"):
            value = getattr(exc, attr, None)
            if isinstance(value, str) and self.contains_secret(value):
                with contextlib.suppress(Exception):  # a read-only attribute
                    setattr(exc, attr, self.redact(value))

    def logging_filter(self) -> logging.Filter:
        """A filter that masks secrets in every record it sees (message and arguments)."""
        return _RedactingFilter(self)


class _RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redactor.values:
            message = record.getMessage()
            if self.redactor.contains_secret(message):
                record.msg = self.redactor.redact(message)
                record.args = None
        return True
