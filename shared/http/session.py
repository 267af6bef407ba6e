"""The `requests.Session` every connector's requests go through.

For each request it:

1. refuses (or strips credentials from) a URL outside the origin of `base_url`;
2. waits for the source's rate-limit pacers (and tells them the budget each answer
   reports, `shared.http.rate_limit`);
3. sends against an overall deadline (`request_deadline`: connect, status line, headers
   and the whole body) besides the per-read timeout, so a server that accepts and never
   answers, or drips its headers or body, cannot hold a request for long (the body is
   read here against it; `shared.http.watchdog` bounds what `http.client` reads);
4. checks a 2xx answer against the resource's `PageCheck` (`shared.http.pages`), if the
   request's hooks carry one: the body must be JSON holding the resource's records;
5. retries per the source's `RetryPolicy` (statuses, pages that are not data, connection
   errors, bodies cut off mid-transfer, deadlines; `Retry-After` / reset / period
   headers, exponential backoff, bounded waits); errors retrying cannot cure (a host name
   that does not resolve, a malformed URL) fail at once;
6. on a `401`, renews a renewable credential (OAuth2) once and sends again;
7. only then runs the response hooks (dlt's and the connector's error handling), so a
   429 that a retry cures never reaches them.

Every exception leaving `send` has its whole `__cause__`/`__context__` chain scrubbed of
the source's secrets (dlt pickles the chain into its trace).
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

import requests
import tenacity
import urllib3.exceptions
import urllib3.response
import urllib3.util
from dlt.sources.helpers.rest_client.auth import APIKeyAuth
from dlt.sources.helpers.rest_client.redaction import SENSITIVE_PARAMS
from requests import PreparedRequest, Response
from requests.adapters import BaseAdapter
from requests.hooks import default_hooks, dispatch_hook

from shared.errors import (
    ForeignOriginError,
    RequestDeadlineExceeded,
    ResponseTooLargeError,
    UnrecoverableRequestError,
    exception_chain,
    redact_query_values,
    redact_url,
)
from shared.http.credentials import OriginScopedAuth, attach_redactor
from shared.http.origins import origin_of
from shared.http.pages import PROBLEM, PageCheck, find_page_check
from shared.http.rate_limit import DEFAULT_BUDGET_RESERVE, RateLimit, pacers_for
from shared.http.retries import RetryPolicy
from shared.http.server_clock import ServerClock
from shared.http.watchdog import WATCHDOG, watched
from shared.redaction import Redactor

logger = logging.getLogger(__name__)
#: DEBUG records of the traffic, for progress displays and run reports to count: one per
#: request sent (retries included), one per answer, one per retry; the URL in them is
#: redacted. Written only while a handler asks for DEBUG; the logger does not propagate,
#: so they never reach the user's own log handlers
request_logger = logging.getLogger(f"{__name__}.requests")
request_logger.propagate = False
#: arguments: connector, method, redacted URL
REQUEST_SENT = "%s: request sent: %s %s"
#: arguments: connector, method, redacted URL, status, seconds the attempt took
ANSWER_RECEIVED = "%s: answer: %s %s %d in %.3f s"
#: arguments: connector, what is retried (a status, or an exception's type name)
RETRY_SCHEDULED = "%s: retrying after %s"

ForeignLinks = Literal["refuse", "follow_without_credentials"]
#: seconds one read (or the connect) may take, unless the caller gives a timeout
DEFAULT_TIMEOUT = 60.0
#: seconds a whole request may take: connect, headers and the entire body
DEFAULT_REQUEST_DEADLINE = 300.0
#: a wait before a retry this long (seconds) is announced as a warning of its own
LONG_WAIT_SECONDS = 60.0
#: the most bytes one read of a body takes; a read returns whatever has arrived
BODY_CHUNK = 256 * 1024
#: the largest response body a request may read (a source may set its own): one page of
#: a sync is a few MB; a body past this is a broken or hostile server, and reading it
#: whole would take the process's memory (and then DuckDB's)
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024

#: the connection failed, or the body was cut off mid-transfer: retried
TRANSIENT_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
#: what reading a body can raise besides requests' own errors (urllib3 and http.client
#: errors, a reset socket): all mean the transfer broke off, and are retried
BODY_READ_ERRORS: tuple[type[BaseException], ...] = (
    *TRANSIENT_TRANSPORT_ERRORS,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
)
#: what a request the deadline watchdog cut short can raise (`shared.http.watchdog`)
WATCHED_ERRORS: tuple[type[BaseException], ...] = (requests.RequestException, *BODY_READ_ERRORS)
#: a URL no retry can make valid
MALFORMED_URL_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.URLRequired,
    urllib3.exceptions.LocationValueError,
)


class ConnectorSession(requests.Session):
    """A session bound to one source: its origin, auth, retry policy and rate limits.

    Args:
        connector: the connector's name, used in messages.
        base_url: the API's base URL; credentials go only to its origin.
        auth: the authenticator (wrapped in `OriginScopedAuth` if it is not already).
        retry_policy: which responses to retry and how long to wait.
        rate_limits: limits to pace requests under, shared by all threads using this session.
        foreign_links: what to do with a request outside the origin of `base_url`:
            `"refuse"` (default) raises `ForeignOriginError` before anything is sent;
            `"follow_without_credentials"` sends it with no credentials attached.
        sensitive_params: query parameter names to redact in logs and messages.
        redactor: the source's redactor (secrets by value); one is made from `auth`'s
            secrets when none is given.
        request_deadline: seconds one attempt of a request may take in all (connect,
            headers and the whole body); past it the attempt fails with
            `RequestDeadlineExceeded` and is retried like a timeout.
        rate_limit_backend: where the pacers keep their slots: None for this process
            only, or a shared backend URL (`shared.http.rate_limit.pacers_for`).
        max_body_bytes: the largest response body a request may read; a larger one
            fails the request with `ResponseTooLargeError`, never retried.
        budget_reserve: the share of a budget the API reports that is spread to its
            reset; above it requests go at full speed (`shared.http.rate_limit`).
    """

    def __init__(
        self,
        connector: str,
        base_url: str,
        auth: Any = None,
        retry_policy: RetryPolicy | None = None,
        rate_limits: Sequence[RateLimit] = (),
        foreign_links: ForeignLinks = "refuse",
        sensitive_params: Sequence[str] = (),
        redactor: Redactor | None = None,
        request_deadline: float = DEFAULT_REQUEST_DEADLINE,
        rate_limit_backend: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        budget_reserve: float = DEFAULT_BUDGET_RESERVE,
    ) -> None:
        super().__init__()
        self.max_body_bytes = max_body_bytes
        self.redactor = redactor or Redactor()
        # the auth's secrets and names, and every token it obtains, go to this redactor;
        # while it lives, the library loggers (urllib3, dlt) mask its secrets too
        attach_redactor(auth, self.redactor)
        self.redactor.activate()
        self.connector = connector
        self.base_url = base_url
        self.origin = origin_of(base_url)
        if auth is not None and not isinstance(auth, OriginScopedAuth):
            auth = OriginScopedAuth(auth, base_url)
        self.auth = auth
        self.retry_policy = retry_policy or RetryPolicy()
        self.pacers = pacers_for(
            connector, rate_limits, rate_limit_backend, self._announce, budget_reserve
        )
        self.foreign_links = foreign_links
        self.sensitive_params = (*sensitive_params, *query_credential_names(auth))
        self.request_deadline = request_deadline
        self.attempts = 0  # every request sent, retries included; read by tests and progress
        self._attempts_lock = threading.Lock()
        self.server_clock = ServerClock()  # the server's time: stored cursors never pass it
        # requests' env proxy/netrc lookups are neither wanted nor safe for scoped credentials
        self.trust_env = False

    def mount(self, prefix: str, adapter: BaseAdapter) -> None:
        """Mount `adapter` for URLs starting with `prefix`, its connections watched (the
        request deadline also bounds the status line and headers; `shared.http.watchdog`):
        requests' own adapters, and any a user mounts."""
        super().mount(prefix, watched(adapter))

    def redact(self, url: str) -> str:
        return self.redactor.redact(redact_url(url, self.sensitive_params))

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        try:
            return self._send(request, **kwargs)
        except BaseException as error:
            # dlt stores the whole chain (trace.pickle): no secret may ride in any link
            self.redactor.scrub_exception(error)
            raise

    def _send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        url = request.url or ""
        problem = url_problem(url)
        if problem:
            raise UnrecoverableRequestError(
                f"{self.connector}: {self.redact(url)} is not a valid URL ({problem}); "
                f"retrying cannot help: check base_url (`sources.{self.connector}.base_url`) "
                "or the link the API sent"
            )
        if origin_of(url) != self.origin:
            if self.foreign_links == "refuse":
                raise ForeignOriginError(
                    f"{self.connector}: refusing to request {self.redact(url)}: it is outside "
                    f"the origin of base_url ({self.origin}), and credentials are only sent "
                    "there. A connector that trusts such links builds its SourceHttp with "
                    "foreign_links='follow_without_credentials' to follow them without "
                    "credentials."
                )
            strip_credentials(request, self.sensitive_params, self.redactor)
        if kwargs.get("timeout") is None:  # requests' own get/post pass timeout=None
            kwargs["timeout"] = DEFAULT_TIMEOUT
        hooks, request.hooks = request.hooks, default_hooks()
        check = None if kwargs.get("stream") else find_page_check(hooks)
        try:
            response = self._send_with_retries(request, check, **kwargs)
        except ResponseTooLargeError as error:
            if check is None:
                raise
            raise ResponseTooLargeError(
                f"{self.connector}: resource `{check.resource}`: {error}"
            ) from None
        problem = getattr(response, PROBLEM, None)
        if check is not None and problem is not None:
            raise check.error(response, problem) from None
        self.server_clock.observe(response)
        return dispatch_hook("response", hooks, response, **kwargs)

    def _send_with_retries(
        self, request: PreparedRequest, check: PageCheck | None, **kwargs: Any
    ) -> Response:
        policy = self.retry_policy
        renewed = False
        sent = 0

        def attempt() -> Response:
            nonlocal renewed, sent
            response = self._send_paced(request, **kwargs)
            sent += 1
            if (
                response.status_code == 401
                and not renewed
                and origin_of(request.url or "") == self.origin  # a foreign 401 is not ours
                and self._renew_credentials(str(request.headers.get("Authorization", "")))
            ):
                renewed = True
                logger.info("%s: 401, renewed the credentials and retrying once", self.connector)
                assert isinstance(self.auth, OriginScopedAuth)
                self.auth(request)
                response = self._send_paced(request, **kwargs)
                sent += 1
            # this request's attempts (not the session's), named when it finally fails
            response.attempts = sent  # type: ignore[attr-defined]
            if check is not None and 200 <= response.status_code < 300:
                check.problem(response)
            return response

        def retry_result(response: Response) -> bool:
            return policy.should_retry(response) or getattr(response, PROBLEM, None) is not None

        def wait(state: tenacity.RetryCallState) -> float:
            outcome = state.outcome
            response = None if outcome is None or outcome.failed else outcome.result()
            # a reset header is read on the server's clock (never ahead of it: waits err long)
            return policy.wait_seconds(
                response, state.attempt_number, self.server_clock.surely_now()
            )

        def log_retry(state: tenacity.RetryCallState) -> None:
            # called only when a retry really follows
            outcome = state.outcome
            assert outcome is not None  # tenacity sets it before calling before_sleep
            response = None if outcome.failed else outcome.result()
            if response is None:
                what = type(outcome.exception()).__name__
            elif getattr(response, PROBLEM, None) is not None:
                what = f"{response.status_code} with {getattr(response, PROBLEM)}"
            else:
                what = str(response.status_code)
            sleep = state.next_action.sleep if state.next_action else 0.0
            request_logger.debug(RETRY_SCHEDULED, self.connector, what)
            url = self.redact(request.url or "")
            logger.warning(
                self.redactor.redact(
                    f"{self.connector}: {what} from {url}; retry {state.attempt_number} of "
                    f"{policy.max_retries} in {sleep:.2f}s"
                )
            )
            if sleep >= LONG_WAIT_SECONDS:
                until = datetime.now(timezone.utc) + timedelta(seconds=sleep)
                named = response is not None and policy.reset_wait(response) is not None
                logger.warning(
                    "%s: waiting %.0f s (until %s UTC) before retrying %s: %s",
                    self.connector,
                    sleep,
                    until.strftime("%H:%M:%S"),
                    url,
                    (
                        f"the API's rate-limit window resets then "
                        f"({policy.reset_header}; waits are capped at "
                        f"{policy.rate_limit_cap:.0f} s)"
                        if named
                        else f"the API asked for it (waits are capped at {policy.max_wait:.0f} s)"
                    ),
                )

        retry_on: tenacity.retry_base = tenacity.retry_if_result(retry_result)
        if policy.retry_connection_errors:
            retry_on = retry_on | tenacity.retry_if_exception_type(TRANSIENT_TRANSPORT_ERRORS)
        retrying = tenacity.Retrying(
            retry=retry_on,
            stop=tenacity.stop_after_attempt(policy.max_retries + 1),
            wait=wait,
            before_sleep=log_retry,
            reraise=True,
            # out of retries on a status: hand the last response to the hooks, which
            # turn it into a clear error
            retry_error_callback=lambda state: state.outcome.result(),  # type: ignore[union-attr]
        )
        return retrying(attempt)

    def _send_paced(self, request: PreparedRequest, **kwargs: Any) -> Response:
        path = urlsplit(request.url or "").path
        pacers = [pacer for pacer in self.pacers if pacer.applies_to(path)]
        for pacer in pacers:
            pacer.wait()
        started = time.monotonic()
        response = self._send_watched(request, **kwargs)
        if request_logger.isEnabledFor(logging.DEBUG):
            request_logger.debug(
                ANSWER_RECEIVED,
                self.connector,
                request.method,
                self.redact(request.url or ""),
                response.status_code,
                time.monotonic() - started,
            )
        # every answer, a 429 included, tells the pacers the budget the API reports
        self.server_clock.observe(response)
        for pacer in pacers:
            pacer.observe(response.headers, self.server_clock)
        return response

    def _announce(self, message: str) -> None:
        """Log a notice of the pacers (a pace read from the API's budget headers)."""
        logger.info("%s", self.redactor.redact(f"{self.connector}: {message}"))

    def _send_watched(self, request: PreparedRequest, **kwargs: Any) -> Response:
        with self._attempts_lock:  # dlt's worker threads share the session
            self.attempts += 1
        if request_logger.isEnabledFor(logging.DEBUG):
            request_logger.debug(
                REQUEST_SENT, self.connector, request.method, self.redact(request.url or "")
            )
        # the watchdog bounds the status line and headers (read inside http.client, where
        # only the per-read timeout applies); the body is read here, against `deadline`
        with WATCHDOG.watch(self.request_deadline) as watch:
            try:
                response = self._send_once(request, **kwargs)
            except WATCHED_ERRORS:
                if watch.fired:
                    raise self._deadline_error(request.url or "", request) from None
                raise
            if watch.fired:
                # cut off while its headers arrived, http.client may take the end of the
                # connection for the end of the headers: what it returns is no answer
                response.close()
                raise self._deadline_error(request.url or "", request)
            return response

    def _send_once(self, request: PreparedRequest, **kwargs: Any) -> Response:
        deadline = time.monotonic() + self.request_deadline
        streamed = bool(kwargs.get("stream"))
        # the watchdog ends the request at its deadline; a socket wait a little longer is
        # only the backstop, so a stalled request always ends as "deadline exceeded"
        kwargs["timeout"] = bounded_timeout(kwargs.get("timeout"), self.request_deadline + 1)
        kwargs["stream"] = True  # the body is read here, against the deadline
        try:
            response = super().send(request, **kwargs)
            if not streamed:
                self._read_body(response, deadline)
            return response
        except MALFORMED_URL_ERRORS as exc:
            raise UnrecoverableRequestError(
                f"{self.connector}: {self.redact(request.url or '')} is not a valid URL "
                f"({type(exc).__name__}: {self._detail(exc)}); retrying cannot help: check "
                f"base_url (`sources.{self.connector}.base_url`) or the link the API sent"
            ) from None
        except requests.ConnectionError as exc:
            if name_not_resolved(exc):
                host = urlsplit(request.url or "").hostname or "?"
                raise UnrecoverableRequestError(
                    f"{self.connector}: the host name {host!r} of "
                    f"{self.redact(request.url or '')} does not resolve (DNS); retrying cannot "
                    f"help: check base_url (`sources.{self.connector}.base_url`) and the "
                    "network's name resolution"
                ) from None
            raise self._transport_error(exc, request) from None
        except BODY_READ_ERRORS as exc:
            raise self._transport_error(exc, request) from None

    def _transport_error(
        self, exc: BaseException, request: PreparedRequest
    ) -> requests.RequestException:
        """The same failure as a retryable requests exception whose message names the
        connector and the redacted URL (the library's own message repeats the full URL,
        query credentials included)."""
        url = self.redact(request.url or "")
        kind: type[requests.RequestException]
        if isinstance(exc, requests.RequestException):
            kind = type(exc)
        elif isinstance(exc, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
            kind = requests.exceptions.ReadTimeout
        elif isinstance(exc, urllib3.exceptions.DecodeError):
            kind = requests.exceptions.ContentDecodingError
        elif isinstance(exc, urllib3.exceptions.SSLError):
            kind = requests.exceptions.SSLError
        elif isinstance(exc, (urllib3.exceptions.ProtocolError, http.client.HTTPException)):
            kind = requests.exceptions.ChunkedEncodingError
        else:
            kind = requests.ConnectionError
        if isinstance(exc, RequestDeadlineExceeded):
            message = str(exc)
        elif issubclass(kind, (requests.exceptions.ChunkedEncodingError,)) or isinstance(
            exc, requests.exceptions.ContentDecodingError
        ):
            message = (
                f"{self.connector}: the answer from {url} was cut off or garbled in transfer "
                f"({type(exc).__name__}: {self._detail(exc)})"
            )
        else:
            message = f"{self.connector}: could not reach {url} ({type(exc).__name__})"
        return kind(self.redactor.redact(message), request=request)

    def _read_body(self, response: Response, deadline: float) -> None:
        """Read the whole body into `response.content`, failing with
        `RequestDeadlineExceeded` once `deadline` (monotonic) passes."""
        raw = response.raw
        # urllib3 >= 2: `read1` returns whatever has arrived; others (urllib3 1.x, a
        # cassette player's stand-in) read through requests, in small blocking chunks
        read1 = getattr(raw, "read1", None)
        if not isinstance(raw, urllib3.response.HTTPResponse):
            read1 = None
        chunks: list[bytes] = []
        size = 0
        try:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                raise self._too_large(response, f"declares {int(declared):,} bytes")
            if read1 is None:
                for chunk in response.iter_content(8192):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise self._too_large(response, f"passed {size:,} bytes")
                    self._check_deadline(response, deadline)
            else:
                while True:
                    self._check_deadline(response, deadline)
                    _limit_socket_wait(raw, deadline - time.monotonic())
                    chunk = read1(BODY_CHUNK, decode_content=True)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise self._too_large(response, f"passed {size:,} bytes")
        except BaseException:
            response.close()  # the connection is in an unknown state: never reuse it
            raise
        response._content = b"".join(chunks)
        response._content_consumed = True

    def _too_large(self, response: Response, how: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"{self.redact(response.url or '')} answered a body that {how}, over the cap "
            f"of {self.max_body_bytes:,} bytes (max_body_bytes); nothing of this run was "
            "loaded. Raise the cap only for an API whose pages are really that large"
        )

    def _check_deadline(self, response: Response, deadline: float) -> None:
        if time.monotonic() > deadline:
            raise self._deadline_error(response.url or "", response.request)

    def _deadline_error(self, url: str, request: Any) -> RequestDeadlineExceeded:
        return RequestDeadlineExceeded(
            self.redactor.redact(
                f"{self.connector}: {self.redact(url)} did not answer in full within the "
                f"request deadline of {self.request_deadline:g} s (the server is stalling "
                "or sending very slowly)"
            ),
            request=request,
        )

    def _detail(self, exc: BaseException) -> str:
        return self.redactor.excerpt(redact_query_values(str(exc), self.sensitive_params), 200)

    def _renew_credentials(self, refused: str | None) -> bool:
        return isinstance(self.auth, OriginScopedAuth) and self.auth.renew(refused)


def url_problem(url: str) -> str | None:
    """What makes `url` unusable as a request URL (no host, a bad port, characters a
    host cannot have), or None. Checked here, not left to urllib3, whose checks differ
    between the versions we support."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"the scheme must be http or https, not {parts.scheme!r}"
    netloc = parts.netloc.rpartition("@")[2]
    host = netloc[: netloc.index("]") + 1] if netloc.startswith("[") else netloc.split(":")[0]
    if not host:
        return "it has no host name"
    bad = next((c for c in host if not (c.isalnum() or c in "-._[]:%")), None)
    if bad is not None:
        return f"the host {host!r} contains the invalid character {bad!r}"
    try:
        port = parts.port
        urllib3.util.parse_url(url)
    except ValueError:
        return f"{netloc!r} is not a valid host or port (a port is 1 to 65535)"
    except urllib3.exceptions.LocationParseError as error:
        return " ".join(str(error).split())[:200]
    if port == 0:
        return "port 0"
    return None


def bounded_timeout(timeout: Any, limit: float) -> Any:
    """`timeout` (seconds, `(connect, read)`, or None) with each part at most `limit`:
    no single wait may outlast the request's deadline."""
    if timeout is None:
        return (limit, limit)
    if isinstance(timeout, tuple):
        connect, read = timeout
        return (
            limit if connect is None else min(connect, limit),
            limit if read is None else min(read, limit),
        )
    if isinstance(timeout, (int, float)):
        return min(float(timeout), limit)
    return timeout  # a urllib3 Timeout object: the caller's own


def _limit_socket_wait(raw: Any, remaining: float) -> None:
    """Let the next read of the body wait at most `remaining` seconds (the per-read
    timeout otherwise restarts with every byte a slow server sends)."""
    connection = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    try:
        current = sock.gettimeout()
        limit = max(remaining, 0.001)
        sock.settimeout(limit if current is None else min(current, limit))
    except OSError:  # the socket is already closed: the read will say so
        pass


def name_not_resolved(error: BaseException) -> bool:
    """Whether `error` (a requests `ConnectionError`) comes from a host name that does not
    resolve. `EAI_AGAIN` ("temporary failure in name resolution") is transient and left
    to the retries."""
    for current in exception_chain(error):
        if isinstance(current, socket.gaierror):
            return current.errno != socket.EAI_AGAIN
    return False


def query_credential_names(auth: Any) -> tuple[str, ...]:
    """The query parameter `auth` sends an API key in, if any: it is redacted from every
    log line and error message, whatever the API calls it."""
    inner = auth.inner if isinstance(auth, OriginScopedAuth) else auth
    if isinstance(inner, APIKeyAuth) and inner.location in ("query", "param"):
        return (inner.name,)
    return ()


def strip_credentials(
    request: PreparedRequest,
    sensitive_params: Sequence[str] = (),
    redactor: Redactor | None = None,
) -> None:
    """Remove what carries credentials from a request bound for a foreign origin (a next
    link, or a redirect: requests sends each hop through `ConnectorSession.send`).

    Removed: the standard credential headers; any header or query parameter named in
    `sensitive_params` or by the authenticator (`redactor.names`: a custom key header such
    as `X-Team-Key` included); and any header or query parameter whose value contains a
    secret the redactor knows, whatever its name (an API may echo its key into the
    next-page links it returns)."""
    names = {name.lower() for name in (*SENSITIVE_PARAMS, *sensitive_params)}
    if redactor is not None:
        names |= redactor.names

    def carries_secret(name: str, value: str) -> bool:
        return name.lower() in names or (redactor is not None and redactor.contains_secret(value))

    for header in ("Authorization", "Proxy-Authorization", "Cookie"):
        request.headers.pop(header, None)
    for header, value in list(request.headers.items()):
        if carries_secret(header, str(value)):
            del request.headers[header]
    parts = urlsplit(request.url or "")
    # each parameter is judged as sent and as decoded (`+` may stand for a space or be
    # part of the secret); the ones kept keep their original encoding
    pieces = [piece for piece in parts.query.split("&") if piece]
    kept = []
    for piece in pieces:
        name, _, value = piece.partition("=")
        if not (
            carries_secret(unquote_plus(name), value)
            or carries_secret(unquote_plus(name), unquote_plus(value))
            or carries_secret(unquote(name), unquote(value))
        ):
            kept.append(piece)
    if len(kept) != len(pieces):
        request.url = urlunsplit(parts._replace(query="&".join(kept)))
