"""Recording and replaying HTTP cassettes with vcrpy.

Recording rewrites the recorded origin (a fake server on loopback, or the real API) to
the origin the connector's cassettes are recorded under, scrubs every credential before
anything is written, by name (credential headers, query parameters, form and JSON
fields, and the names the source's authenticator uses) and by value (any header,
parameter, field or substring of a URL or body that holds a known secret or a token
obtained during the recording, whatever it is called), drops volatile headers, and
writes interactions sorted by request, so re-recording unchanged data gives
byte-identical files. A recording whose epoch headers (`X-RateLimit-Reset`) are read
against the server's clock keeps `Date`: a replay then reads the server's clock as it was
when recorded (`shared.http.server_clock`), and with it the reset as far away as it was.
Replaying runs offline: record mode `none`, and every recorded
interaction must be played; a cassette that is missing, or lacks the answer to a request
the connector sends, fails in one line saying how to record it (`MissingRecording`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dlt.sources.helpers.rest_client.redaction import SENSITIVE_PARAMS
from requests import PreparedRequest, Response
from requests.adapters import BaseAdapter

from shared.errors import ConnectorError, exception_chain, redact_url
from shared.http.session import ConnectorSession
from shared.redaction import Redactor
from shared.tooling.package_data import package_data

REDACTED = "REDACTED"
CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api_key",
        "api-key",
    }
)
CREDENTIAL_FIELDS = frozenset(
    {*SENSITIVE_PARAMS, "client_id", "client_secret", "refresh_token", "id_token", "hapikey"}
)
VOLATILE_HEADERS = frozenset({"date", "server", "x-request-id", "connection", "keep-alive"})
#: the checkout's `cassettes/`, or the copy an installed wheel carries
CASSETTES_DIR = package_data("cassettes")


class MissingRecording(ConnectorError):
    """A replay needs what its connector's cassettes do not hold: the cassette file, or
    the recorded answer to a request the connector sends (the code or the fake changed
    since the recording). Recording again fixes it; the message says how."""


def record_command(path: Path) -> str:
    """What records the cassette at `path` (`cassettes/<connector>/<name>.yaml`)."""
    return f"make record-connector NAME={path.parent.name}"


@dataclass
class Scrubber:
    """What to remove or rewrite before an interaction is written.

    Args:
        recorded_origin: the origin actually called (e.g. `http://127.0.0.1:54321`).
        canonical_origin: the origin written instead (e.g. `https://api.example.com`).
        headers: further request header names that carry credentials.
        fields: further query/body field names that carry credentials.
        volatile_headers: further response header names whose values change every run.
        kept_headers: volatile headers kept all the same: `Date`, where a response's
            epoch seconds (`X-RateLimit-Reset`) are read against it; the recording's
            clock must then be one that re-records the same values.
        countdown_headers: a count that falls with every request (`X-RateLimit-Remaining`)
            -> the header naming the window it counts in (`X-RateLimit-Reset`): which of
            concurrent requests arrived first changes from run to run, so the counts of
            one window are dealt out again, highest first, in the cassette's order.
        secrets: secret values (the credentials the recording uses) replaced wherever
            they appear, whatever they are called.
        redactors: source redactors consulted at each interaction: their secrets (tokens
            obtained mid-recording included) are replaced by value, and the header and
            query names their authenticators use are scrubbed by name.
    """

    recorded_origin: str
    canonical_origin: str
    headers: Iterable[str] = ()
    fields: Iterable[str] = ()
    volatile_headers: Iterable[str] = ()
    kept_headers: Iterable[str] = ()
    countdown_headers: Mapping[str, str] = field(default_factory=dict)
    secrets: Iterable[str] = ()
    redactors: list[Redactor] = field(default_factory=list)
    _headers: frozenset[str] = field(init=False)
    _fields: frozenset[str] = field(init=False)
    _volatile: frozenset[str] = field(init=False)
    _known: Redactor = field(init=False)

    def __post_init__(self) -> None:
        self.recorded_origin = self.recorded_origin.rstrip("/")
        self.canonical_origin = self.canonical_origin.rstrip("/")
        self._headers = CREDENTIAL_HEADERS | {h.lower() for h in self.headers}
        self._fields = frozenset(f.lower() for f in CREDENTIAL_FIELDS | set(self.fields))
        kept = {h.lower() for h in self.kept_headers}
        self._volatile = (VOLATILE_HEADERS | {h.lower() for h in self.volatile_headers}) - kept
        self._known = Redactor(self.secrets)

    def rewrite(self, text: str) -> str:
        return text.replace(self.recorded_origin, self.canonical_origin)

    def mask(self, text: str) -> str:
        """`text` with every known secret value replaced by `REDACTED`."""
        for redactor in (self._known, *self.redactors):
            text = redactor.redact(text, REDACTED)
        return text

    def holds_secret(self, text: str) -> bool:
        return any(r.contains_secret(text) for r in (self._known, *self.redactors))

    def secret_header(self, name: str, values: Any) -> bool:
        """A header to drop: a credential name, the auth's own name, or a secret value."""
        lowered = name.lower()
        auth_names = {n for r in self.redactors for n in r.names}
        texts = values if isinstance(values, list) else [values]
        return (
            lowered in self._headers
            or lowered in auth_names
            or any(self.holds_secret(str(v)) for v in texts)
        )

    def _fields_now(self) -> frozenset[str]:
        return self._fields | {n for r in self.redactors for n in r.names}

    def url(self, url: str) -> str:
        fields = self._fields_now()
        parts = urlsplit(self.mask(self.rewrite(url)))
        query = [
            (k, REDACTED if k.lower() in fields else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        return urlunsplit(parts._replace(query=urlencode(query, safe=",:*")))

    def body(self, body: Any) -> Any:
        if not body:
            return body
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        # masked on the raw text, then on the parsed structure (a secret the server wrote
        # with `\/` or `\uXXXX` escapes is plain text once parsed), then on the text
        # written: no form of a secret survives the re-dump
        text = self.mask(self.rewrite(text))
        try:
            scrubbed = self._scrub_json(json.loads(text))
            text = self.mask(json.dumps(scrubbed, separators=(",", ":")))
        except ValueError:
            if "=" in text and "{" not in text:  # a form body
                fields = self._fields_now()
                pairs = parse_qsl(text, keep_blank_values=True)
                text = urlencode([(k, REDACTED if k.lower() in fields else v) for k, v in pairs])
        return text.encode("utf-8") if isinstance(body, bytes) else text

    def _scrub_json(self, value: Any) -> Any:
        if isinstance(value, dict):
            fields = self._fields_now()
            return {
                self.mask(k): (REDACTED if k.lower() in fields else self._scrub_json(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._scrub_json(v) for v in value]
        if isinstance(value, str):
            return self.mask(value)
        return value

    # -- vcrpy hooks ---------------------------------------------------------------------
    def request(self, request: Any) -> Any:
        request.uri = self.url(request.uri)
        for name in list(request.headers):
            if self.secret_header(name, request.headers[name]) or name.lower() in self._volatile:
                del request.headers[name]
        request.body = self.body(request.body)
        return request

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        headers = response.get("headers", {})
        for name in list(headers):
            lowered = name.lower()
            if lowered in self._headers or lowered in self._volatile:
                del headers[name]
            else:
                # a response header that echoes a secret keeps its place, not its value
                headers[name] = [self.mask(self.rewrite(v)) for v in headers[name]]
        body = response.get("body", {})
        if body.get("string"):
            body["string"] = self.body(body["string"])
        return response


class SortedYamlPersister:
    """vcrpy persister writing interactions sorted by request (stable for repeats), so
    concurrent child requests record to the same bytes every time; `countdowns` as
    `Scrubber.countdown_headers` (`counting_persister`)."""

    @staticmethod
    def load_cassette(cassette_path: str, serializer: Any) -> Any:
        from vcr.persisters.filesystem import FilesystemPersister

        return FilesystemPersister.load_cassette(cassette_path, serializer)

    @staticmethod
    def save_cassette(
        cassette_path: str,
        cassette_dict: dict[str, Any],
        serializer: Any,
        countdowns: Mapping[str, str] | None = None,
    ) -> None:
        from vcr.persisters.filesystem import FilesystemPersister

        pairs = list(zip(cassette_dict["requests"], cassette_dict["responses"], strict=False))
        pairs.sort(key=lambda pair: (pair[0].uri, pair[0].method, str(pair[0].body or "")))
        for _, response in pairs:
            response["headers"] = dict(sorted(response.get("headers", {}).items()))
        responses = [response for _, response in pairs]
        for count, window in (countdowns or {}).items():
            deal_countdown(responses, count, window)
        sorted_dict = {"requests": [request for request, _ in pairs], "responses": responses}
        FilesystemPersister.save_cassette(cassette_path, sorted_dict, serializer)


def counting_persister(countdowns: Mapping[str, str]) -> Any:
    """`SortedYamlPersister` dealing out the `countdowns` headers when it saves."""
    return SimpleNamespace(
        load_cassette=SortedYamlPersister.load_cassette,
        save_cassette=partial(SortedYamlPersister.save_cassette, countdowns=countdowns),
    )


def _header(response: dict[str, Any], name: str) -> str | None:
    """The first value of response header `name` (case-insensitive), or None."""
    for key, values in response.get("headers", {}).items():
        if key.lower() == name.lower() and values:
            return str(values[0])
    return None


def _set_header(response: dict[str, Any], name: str, value: str) -> None:
    headers = response["headers"]
    key = next(k for k in headers if k.lower() == name.lower())
    headers[key] = [value]


def deal_countdown(responses: list[dict[str, Any]], count: str, window: str) -> None:
    """Deal the values of header `count` of each window (the responses with the same
    `window` header) out again, highest first, in the order of `responses`."""
    windows: dict[str | None, list[dict[str, Any]]] = {}
    for response in responses:
        value = _header(response, count)
        if value is not None and value.strip().isdigit():
            windows.setdefault(_header(response, window), []).append(response)
    for members in windows.values():
        counts = sorted((int(str(_header(r, count))) for r in members), reverse=True)
        for response, dealt in zip(members, counts, strict=True):
            _set_header(response, count, str(dealt))


class _OneAtATime(BaseAdapter):
    """An adapter's exchanges, one at a time under `lock` (the rest of a request, its
    retries, pacing and hooks, runs concurrently)."""

    def __init__(self, adapter: BaseAdapter, lock: threading.Lock) -> None:
        super().__init__()
        self.adapter = adapter
        self.lock = lock

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        with self.lock:
            return self.adapter.send(request, *args, **kwargs)

    def close(self) -> None:
        self.adapter.close()


@contextmanager
def serialized_http() -> Iterator[None]:
    """vcrpy is not thread-safe: concurrent requests inside one cassette lose interactions.
    While a cassette is open, the sessions it serves, the catalog's (`ConnectorSession`:
    every connector's data and token requests), make one HTTP exchange at a time, through
    their adapters; callers still run concurrently, and any other session in the process
    (a user's, a test's) is left alone."""
    lock = threading.Lock()
    original = ConnectorSession.get_adapter

    def get_adapter(self: ConnectorSession, url: str) -> BaseAdapter:
        return _OneAtATime(original(self, url), lock)

    ConnectorSession.get_adapter = get_adapter  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        ConnectorSession.get_adapter = original  # type: ignore[method-assign]


def cassette_path(connector: str, name: str, root: Path | None = None) -> Path:
    return (root or CASSETTES_DIR) / connector / f"{name}.yaml"


def _vcr(persister: Any = SortedYamlPersister, **kwargs: Any) -> Any:
    try:
        import vcr
    except ImportError as exc:  # pragma: no cover - vcrpy is a dev dependency
        raise RuntimeError("cassettes need vcrpy: pip install -e '.[dev]'") from exc
    instance = vcr.VCR(
        match_on=("method", "scheme", "host", "port", "path", "query", "body"),
        decode_compressed_response=True,
        **kwargs,
    )
    instance.register_persister(persister)
    return instance


@contextmanager
def recording(path: Path, scrubber: Scrubber) -> Iterator[Any]:
    """Record every HTTP interaction inside the block into `path` (overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    recorder = _vcr(
        counting_persister(scrubber.countdown_headers),
        record_mode="all",
        before_record_request=scrubber.request,
        before_record_response=scrubber.response,
    )
    with serialized_http(), recorder.use_cassette(str(path)) as cassette:
        yield cassette


@contextmanager
def replaying(
    path: Path, scrubber: Scrubber | None = None, require_all_played: bool = True
) -> Iterator[Any]:
    """Replay `path` offline. A request with no recorded answer fails, and so does
    leaving the block with recorded interactions unplayed, unless `require_all_played`
    is False (a run of only some of the recorded resources).

    Raises:
        MissingRecording: the cassette does not exist, or a request inside the block has
            no recorded answer; one line naming the command that records it.
    """
    connector, shown = path.parent.name, f"cassettes/{path.parent.name}/{path.name}"
    if not path.exists():
        raise MissingRecording(f"{connector}: no cassette {shown}; run {record_command(path)}")
    kwargs: dict[str, Any] = {"record_mode": "none"}
    if scrubber is not None:
        # requests are scrubbed the same way before matching, so credentials sent now
        # match the redacted ones on file
        kwargs["before_record_request"] = scrubber.request
    with (
        serialized_http(),
        _vcr(**kwargs).use_cassette(str(path), allow_playback_repeats=False) as cassette,
    ):
        try:
            yield cassette
        except Exception as exc:
            request = _unrecorded_request(exc, scrubber)
            if request is None:
                raise
            raise MissingRecording(
                f"{connector}: {shown} has no recorded answer to {request}; the cassette is "
                f"out of date: run {record_command(path)}"
            ) from exc
        unplayed = len(cassette.data) - cassette.play_count
        if unplayed and require_all_played:
            raise AssertionError(f"{path.name}: {unplayed} recorded interaction(s) never played")


def _unrecorded_request(exc: BaseException, scrubber: Scrubber | None = None) -> str | None:
    """`GET <url>` of the request vcrpy found no recorded answer for, somewhere in `exc`'s
    chain (dlt wraps it in its step failure), with its credentials redacted (by name,
    and by value as `scrubber` knows them); None when `exc` is about something else."""
    from vcr.errors import CannotOverwriteExistingCassetteException

    for cause in exception_chain(exc):
        if isinstance(cause, CannotOverwriteExistingCassetteException):
            request = cause.failed_request
            uri = scrubber.url(request.uri) if scrubber is not None else str(request.uri)
            return f"{request.method} {redact_url(uri)}"
    return None
