"""The machinery every fake vendor server shares: a werkzeug app on 127.0.0.1 in a
thread, a request log, injected faults, optional latency and a rolling-window limit."""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

#: headers every client sends that carry nothing secret (echo mode repeats the others)
PLAIN_HEADERS = frozenset(
    {"host", "user-agent", "accept", "accept-encoding", "connection", "content-length"}
)

#: a fake's own class, so `with CrmFake() as fake` types `fake` as a `CrmFake`
FakeT = TypeVar("FakeT", bound="FakeServer")


RAW_HEADERS = "fake.raw_headers"


class RawHeadersHandler(WSGIRequestHandler):
    """werkzeug's dev server drops request headers whose names contain `_` (WSGI cannot
    tell `api_key` from `api-key`); APIs such as `api_key: <key>` need them, so keep
    the headers exactly as sent (read them with `FakeServer.sent_header`)."""

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ[RAW_HEADERS] = list(self.headers.items())
        return environ

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One log line per request is noise in tests and in `connectors serve`; errors
        are still logged."""

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        # a fault that answered on the socket itself (or a client that left): this
        # connection carries nothing more
        self.close_connection = True


#: how a `Fault` can damage the real answer in transfer
Transport = Literal["cut_off", "stall", "drip", "reset"]


@dataclass
class Fault:
    """A canned response served instead of the real one, or damage done to the real one.

    Args:
        status: the status to answer with.
        body: the JSON body.
        headers: extra headers; values may be callables evaluated when served.
        path: serve only for requests whose path contains this string.
        times: how many requests get the fault.
        after: let this many matching requests through first.
        raw: bytes sent as the body as they are (HTML, truncated JSON, invalid UTF-8),
            instead of `body` as JSON.
        content_type: the Content-Type of a `raw` body.
        transport: damage the real answer instead of replacing it:
            `"cut_off"` declares the full Content-Length, sends half the body and closes;
            `"stall"` accepts the request and answers nothing for `seconds`, then closes;
            `"drip"` sends the answer one byte every `seconds`;
            `"reset"` closes the connection with a TCP reset before answering.
        seconds: the stall's length, or the pause between dripped bytes.
    """

    status: int = 200
    body: Any = None
    headers: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    times: int = 1
    after: int = 0
    raw: bytes | None = None
    content_type: str = "application/json"
    transport: Transport | None = None
    seconds: float = 30.0


#: bodies of the wrong shape or no JSON at all, for faults (`raw` bytes)
HTML_ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>The proxy received an invalid response.</p></body></html>"
)
INVALID_UTF8 = b'{"data": [{"id": 1, "name": "caf\xe9 \xff\xfe"}]}'
TOO_DEEP = b"[" * 100_000 + b"]" * 100_000


class RawReplySent(ConnectionAbortedError):
    """Raised by the app after it wrote (or withheld) the answer on the socket itself:
    werkzeug treats it as a dropped connection and writes nothing more."""


class FixedWindowBudget:
    """`limit` requests per fixed window of `seconds`, as an API that reports its budget
    counts them: a window starts with the first request after the last one ended, and
    `reset` is the epoch second it ends, rounded down (a client must allow for that).

    Args:
        limit: the requests one window allows.
        seconds: the window's length.
        enforce: refuse the requests beyond `limit` (else only count and report them).
        clock: the server's clock in epoch seconds.
    """

    def __init__(
        self,
        limit: int,
        seconds: float,
        enforce: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self.seconds = seconds
        self.enforce = enforce
        self.clock = clock
        self.refused = 0
        self._used = 0
        self._ends = -1.0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Count one request; False when the window has nothing left for it (refused)."""
        with self._lock:
            now = self.clock()
            if now >= self._ends:
                self._ends, self._used = now + self.seconds, 0
            if self.enforce and self._used >= self.limit:
                self.refused += 1
                return False
            self._used += 1
            return True

    def spend(self, until: float) -> None:
        """Spend the whole window, which ends at epoch second `until` (another client of
        the account used it up)."""
        with self._lock:
            self._ends, self._used = until, self.limit

    def report(self) -> tuple[int, int, int]:
        """(limit, remaining, reset epoch second) of the window now."""
        with self._lock:
            if self.clock() >= self._ends:
                return self.limit, self.limit, int(self.clock() + self.seconds)
            return self.limit, max(0, self.limit - self._used), int(self._ends)


@dataclass
class LoggedRequest:
    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    at: float = field(default_factory=time.time)

    @property
    def url_query(self) -> str:
        return "&".join(f"{k}={v}" for k, v in self.args.items())

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class FakeServer:
    """Base class: subclasses add `rules()` (werkzeug `Rule`s with endpoint = method name).

    `echo_secrets = True` (security tests) makes the server repeat what the client sent
    (its non-standard headers, query and body: the credentials wherever they travel) in
    an `X-Echo` header and an `echo` field of every JSON object body, success or error;
    redirect each first request (307) to the same URL with an `echo` parameter; and add
    that parameter to every `Link` next link.
    """

    echo_secrets: bool = False

    #: not a test class, even when a connector's name makes it `TestrailFake`
    __test__ = False

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.requests: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self.window_limit: tuple[int, float] | None = None
        self.limited_responses = 0
        self._window: deque[float] = deque()
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._page_actions: list[tuple[str, int, Callable[[], Any]]] = []
        self._served: dict[str, int] = {}
        self._actions_lock = threading.Lock()
        self.url_map = Map(self.rules())

    # -- lifecycle ---------------------------------------------------------------
    def start(self, port: int = 0) -> FakeServer:
        """Serve on 127.0.0.1:`port` (0: a free port) in a daemon thread.

        Raises:
            OSError: the port is taken (errno EADDRINUSE).
        """
        # bound here, not by werkzeug: on a taken port it prints and exits the process
        listener = socket.create_server(("127.0.0.1", port))
        try:
            self._server = make_server(
                "127.0.0.1",
                port,
                self.wsgi,
                threaded=True,
                request_handler=RawHeadersHandler,
                fd=listener.fileno(),
            )
        finally:
            listener.close()  # werkzeug serves on a duplicate of it
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends stalls and drips
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self: FakeT) -> FakeT:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def base_url(self) -> str:
        return self.origin

    # -- behaviour a test controls ---------------------------------------------------
    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def enforce_window(self, requests: int, seconds: float) -> None:
        """Answer 429 to any request beyond `requests` in a rolling `seconds` window."""
        self.window_limit = (requests, seconds)

    def requests_to(self, path_part: str, method: str | None = None) -> list[LoggedRequest]:
        return [
            r
            for r in self.requests
            if path_part in r.path and (method is None or r.method == method)
        ]

    # -- subclass hooks --------------------------------------------------------------
    def rules(self) -> list[Rule]:
        raise NotImplementedError

    def authorized(self, request: Request) -> bool:
        return True

    @staticmethod
    def sent_header(request: Request, name: str) -> tuple[str, str] | None:
        """The header `name` (case-insensitive, `_` and `-` distinct) as the client sent
        it: `(name as sent, value)`, or None."""
        for sent_name, value in request.environ.get(RAW_HEADERS, []):
            if sent_name.lower() == name.lower():
                return sent_name, value
        return None

    def unauthorized(self) -> Response:
        return self.json_response({"message": "Unauthorized"}, 401)

    def rate_limited(self) -> Response:
        return self.json_response({"message": "Rate limit exceeded"}, 429)

    def common_headers(self) -> dict[str, str]:
        return {}

    # -- plumbing ----------------------------------------------------------------------
    def json_response(
        self, body: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        response = Response(json.dumps(body), status=status, mimetype="application/json")
        for key, value in {**self.common_headers(), **(headers or {})}.items():
            response.headers[key] = value
        return response

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.path and fault.path not in path:
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _over_window(self) -> bool:
        if self.window_limit is None:
            return False
        limit, seconds = self.window_limit
        with self._lock:
            now = time.monotonic()
            while self._window and now - self._window[0] >= seconds:
                self._window.popleft()
            if len(self._window) >= limit:
                self.limited_responses += 1
                return True
            self._window.append(now)
            return False

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        logged = LoggedRequest(
            method=request.method,
            path=request.path,
            args=dict(request.args),
            headers=dict(request.headers),
            body=request.get_data(),
        )
        with self._lock:
            self.requests.append(logged)
        if self.latency:
            time.sleep(self.latency)
        if self.echo_secrets and "echo" not in request.args:
            response = self._echo_redirect(request)
        else:
            response = self._respond(request)
            if self.echo_secrets:
                self._echo(request, response)
        logged.status = response.status_code
        return response(environ, start_response)

    # -- echo mode (security tests) ----------------------------------------------------
    @staticmethod
    def echoed(request: Request) -> str:
        """What the client sent that may hold a credential, on one line."""
        # the raw headers: werkzeug drops names with `_` (`api_key`) from request.headers
        raw = request.environ.get(RAW_HEADERS) or list(request.headers.items())
        sent = [value for name, value in raw if name.lower() not in PLAIN_HEADERS]
        sent += [request.query_string.decode(), request.get_data(as_text=True)[:500]]
        return " ".join(" ".join(sent).split())

    def _echo_redirect(self, request: Request) -> Response:
        separator = "&" if request.query_string else "?"
        location = f"{request.url}{separator}{urlencode({'echo': self.echoed(request)})}"
        return Response("", status=307, headers={"Location": location})

    def _echo(self, request: Request, response: Response) -> None:
        echo = self.echoed(request)

        def with_echo(url: str) -> str:
            return f"{url}{'&' if '?' in url else '?'}{urlencode({'echo': echo})}"

        def echo_links(value: Any) -> Any:  # next links in a JSON body (`paging.next`)
            if isinstance(value, dict):
                return {k: echo_links(v) for k, v in value.items()}
            if isinstance(value, list):
                return [echo_links(v) for v in value]
            if isinstance(value, str) and value.startswith(self.origin):
                return with_echo(value)
            return value

        response.headers["X-Echo"] = echo.encode("utf-8").decode("latin-1")
        if "Link" in response.headers:
            response.headers["Link"] = re.sub(
                r"<([^>]*)>", lambda m: f"<{with_echo(m.group(1))}>", response.headers["Link"]
            )
        if response.mimetype == "application/json":
            try:
                body = json.loads(response.get_data())
            except ValueError:
                return
            if isinstance(body, dict):
                response.set_data(json.dumps({**echo_links(body), "echo": echo}))

    def between_pages(self, path: str, after: int, action: Callable[[], Any]) -> None:
        """Run `action` once, right after the `after`-th successful response to `path` is
        made and before the client can ask for the next page: a record changing mid-sync."""
        with self._actions_lock:
            self._page_actions.append((path, after, action))

    def _respond(self, request: Request) -> Response:
        response = self._answer(request)
        if response.status_code == 200:
            with self._actions_lock:
                served = self._served[request.path] = self._served.get(request.path, 0) + 1
                due = [a for a in self._page_actions if a[0] == request.path and a[1] == served]
                for entry in due:
                    self._page_actions.remove(entry)
            for _, _, action in due:
                action()
        return response

    def _answer(self, request: Request) -> Response:
        if self._over_window():
            return self.rate_limited()
        if not self.authorized(request):
            return self.unauthorized()
        fault = self._take_fault(request.path)
        if fault is not None and fault.transport is not None:
            self._damage(request, fault)
        if fault is not None:
            headers = {k: str(v() if callable(v) else v) for k, v in fault.headers.items()}
            if fault.raw is None:
                return self.json_response(fault.body, fault.status, headers)
            response = Response(fault.raw, status=fault.status, content_type=fault.content_type)
            for key, value in {**self.common_headers(), **headers}.items():
                response.headers[key] = value
            return response
        return self._route(request)

    def _route(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except NotFound:
            return self.json_response({"message": "Could not find resource"}, 404)
        except HTTPException as exc:
            return self.json_response({"message": str(exc)}, exc.code or 400)
        return getattr(self, endpoint)(request, **values)

    # -- transport faults ---------------------------------------------------------------
    def _damage(self, request: Request, fault: Fault) -> None:
        """Answer (or not) on the socket itself, as `fault.transport` says; never returns."""
        sock: socket.socket = request.environ["werkzeug.socket"]
        if fault.transport == "stall":
            self._stopping.wait(fault.seconds)
            raise RawReplySent("stalled")
        if fault.transport == "reset":
            # linger 0: closing sends a TCP RST instead of a FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raise RawReplySent("reset")
        real = self._route(request)
        body = real.get_data()
        head = [f"HTTP/1.1 {real.status}"]
        head += [f"{k}: {v}" for k, v in real.headers.items() if k.lower() != "content-length"]
        head += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
        try:
            sock.sendall("\r\n".join(head).encode("latin-1"))
            if fault.transport == "cut_off":
                sock.sendall(body[: len(body) // 2])
            else:  # drip
                for index in range(len(body)):
                    if self._stopping.wait(fault.seconds):
                        break
                    sock.sendall(body[index : index + 1])
        except OSError:  # the client gave up: that is the point of the fault
            pass
        raise RawReplySent(fault.transport)
