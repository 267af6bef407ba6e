"""shared.http.session: what the session does around every request (origin, hooks, pacing)."""

from __future__ import annotations

import http.client
import json
import logging
import pickle
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import responses
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.base import FakeServer, Fault
from shared.errors import (
    ConfigurationError,
    ForeignOriginError,
    RequestDeadlineExceeded,
    RequestFailedError,
    ResponseTooLargeError,
    UnrecoverableRequestError,
)
from shared.http.auth import api_key_query, bearer_token
from shared.http.rate_limit import RateLimit
from shared.http.retries import RetryPolicy
from shared.http.session import DEFAULT_TIMEOUT, ConnectorSession
from shared.http.watchdog import DeadlineWatchdog
from shared.rest.builder import SourceHttp, build_resources
from shared.rest.paginators import HeaderLinkPaginator
from tests.failures import root_cause

BASE_URL = "https://api.example.com"
FOREIGN = "https://cdn.elsewhere.example"
TOKEN = "tok-1c2d3e4f"


def paged_items(mocked: responses.RequestsMock, next_page: str) -> list:
    """Page 1 on the API, whose Link header points at `next_page`; page 2 there."""
    mocked.get(
        f"{BASE_URL}/items",
        json=[{"id": 1}, {"id": 2}],
        headers={"Link": f'<{next_page}>; rel="next"'},
    )
    mocked.get(next_page, json=[{"id": 3}])
    return [{"name": "items", "endpoint": {"path": "/items", "paginator": HeaderLinkPaginator()}}]


def test_next_page_link_to_another_origin_is_refused_before_it_is_sent(
    mocked: responses.RequestsMock,
) -> None:
    table = paged_items(mocked, f"{FOREIGN}/items?page=2")
    http = SourceHttp("demo", BASE_URL, auth=bearer_token(TOKEN))
    (items,) = build_resources(http, table)

    with pytest.raises(Exception) as raised:
        list(items)

    assert isinstance(root_cause(raised.value, ForeignOriginError), ForeignOriginError)
    assert [call.request.url for call in mocked.calls] == [f"{BASE_URL}/items"]


def test_next_page_link_to_another_origin_is_followed_without_credentials_when_allowed(
    mocked: responses.RequestsMock,
) -> None:
    table = paged_items(mocked, f"{FOREIGN}/items?page=2")
    http = SourceHttp(
        "demo", BASE_URL, auth=bearer_token(TOKEN), foreign_links="follow_without_credentials"
    )
    (items,) = build_resources(http, table)

    assert [row["id"] for row in items] == [1, 2, 3]
    first, second = (call.request for call in mocked.calls)
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert second.url == f"{FOREIGN}/items?page=2"
    assert "Authorization" not in second.headers


def test_next_page_link_on_the_same_origin_keeps_its_credentials(
    mocked: responses.RequestsMock,
) -> None:
    table = paged_items(mocked, f"{BASE_URL}/items?page=2")
    (items,) = build_resources(SourceHttp("demo", BASE_URL, auth=bearer_token(TOKEN)), table)

    assert [row["id"] for row in items] == [1, 2, 3]
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in mocked.calls)


def test_credential_headers_set_by_the_caller_are_stripped_for_a_foreign_origin(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(f"{FOREIGN}/file", body="x")
    session = ConnectorSession("demo", BASE_URL, foreign_links="follow_without_credentials")

    session.get(
        f"{FOREIGN}/file",
        headers={"Authorization": "x", "Proxy-Authorization": "y", "Cookie": "z", "Accept": "*/*"},
    )

    headers = mocked.calls[0].request.headers
    assert not {"Authorization", "Proxy-Authorization", "Cookie"} & set(headers)
    assert headers["Accept"] == "*/*"


def test_netrc_credentials_are_never_picked_up(
    mocked: responses.RequestsMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine cdn.elsewhere.example login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    mocked.get(f"{FOREIGN}/file", body="x")
    # a plain session would read the netrc: proof that the file is in effect
    requests.Session().get(f"{FOREIGN}/file")
    assert "Authorization" in mocked.calls[0].request.headers

    ConnectorSession("demo", BASE_URL, foreign_links="follow_without_credentials").get(
        f"{FOREIGN}/file"
    )

    assert "Authorization" not in mocked.calls[1].request.headers


def test_response_hooks_see_only_the_final_response_after_retries(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(f"{BASE_URL}/items", status=429, headers={"Retry-After": "1"})
    mocked.get(f"{BASE_URL}/items", status=503)
    mocked.get(f"{BASE_URL}/items", json=[])
    seen: list[int] = []
    session = ConnectorSession("demo", BASE_URL, retry_policy=RetryPolicy(backoff_factor=0))

    session.get(f"{BASE_URL}/items", hooks={"response": lambda r, **_: seen.append(r.status_code)})

    assert seen == [200]
    assert len(mocked.calls) == 3


def test_every_request_gets_the_default_timeout_unless_given_one(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(f"{BASE_URL}/items", json=[])
    session = ConnectorSession("demo", BASE_URL)

    session.get(f"{BASE_URL}/items")
    session.get(f"{BASE_URL}/items", timeout=5)

    timeouts = [call.request.req_kwargs["timeout"] for call in mocked.calls]  # type: ignore[attr-defined]
    assert timeouts == [DEFAULT_TIMEOUT, 5]


def test_pacers_wait_only_for_requests_matching_their_path_pattern(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.get(f"{BASE_URL}/search", json=[])
    mocked.get(f"{BASE_URL}/items", json=[])
    search_limit = RateLimit(1, 9.0, path_pattern=r"^/search", headroom=1.0)
    session = ConnectorSession("demo", BASE_URL, rate_limits=[search_limit])

    for path in ("/search", "/items", "/items", "/search"):
        session.get(f"{BASE_URL}{path}")

    (wait,) = sleeps  # the second search waits for its slot; items never wait
    assert 8.5 < wait <= 9.0
    assert len(mocked.calls) == 4


def test_retry_log_lines_redact_a_query_api_key_whatever_its_name(
    mocked: responses.RequestsMock, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    mocked.get(f"{BASE_URL}/items", status=503)
    mocked.get(f"{BASE_URL}/items", json=[])
    session = ConnectorSession("demo", BASE_URL, auth=api_key_query(TOKEN, param="user_key"))

    with caplog.at_level(logging.WARNING, logger="shared.http.session"):
        session.get(f"{BASE_URL}/items")

    (line,) = [record.getMessage() for record in caplog.records]
    assert "503" in line and "user_key=***" in line
    assert TOKEN not in caplog.text


def test_follow_without_credentials_drops_credential_query_params_echoed_into_a_foreign_link(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get("https://elsewhere.example/v1/items", json={"data": []})
    session = ConnectorSession(
        "demo",
        "https://api.example.com",
        auth=api_key_query("KEY-0123456789", param="user_key"),
        foreign_links="follow_without_credentials",
    )

    session.get("https://elsewhere.example/v1/items?page=2&user_key=KEY-0123456789&api_key=x")

    (call,) = mocked.calls
    assert "KEY-0123456789" not in call.request.url
    assert "api_key" not in call.request.url and "page=2" in call.request.url


# -- transport faults ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead(5 bytes)"),
        requests.exceptions.ContentDecodingError("Received response with content-encoding"),
        urllib3.exceptions.ProtocolError("Connection broken", ConnectionResetError(104, "reset")),
        http.client.IncompleteRead(b"{", 120),
        ConnectionResetError(104, "Connection reset by peer"),
        requests.ConnectionError("Connection aborted."),
    ],
    ids=lambda fault: type(fault).__name__,
)
def test_cut_off_bodies_and_connection_resets_are_retried_like_connection_errors(
    mocked: responses.RequestsMock, sleeps: list[float], fault: BaseException
) -> None:
    mocked.get(f"{BASE_URL}/items", body=fault)
    mocked.get(f"{BASE_URL}/items", json={"data": [1]})
    session = ConnectorSession("demo", BASE_URL, retry_policy=RetryPolicy(backoff_factor=0.5))

    response = session.get(f"{BASE_URL}/items")

    assert response.json() == {"data": [1]}
    assert len(mocked.calls) == 2
    assert sleeps == [0.5]  # the policy's backoff, as for a connection error


def test_a_cut_off_body_that_persists_fails_with_a_one_line_redacted_requests_error(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    url = f"{BASE_URL}/items?api_key={TOKEN}"
    fault = urllib3.exceptions.ProtocolError(f"Connection broken at {url}", None)
    mocked.get(f"{BASE_URL}/items", body=fault)
    session = ConnectorSession(
        "demo",
        BASE_URL,
        auth=api_key_query(TOKEN, param="api_key"),
        retry_policy=RetryPolicy(max_retries=2, backoff_factor=0),
    )

    with pytest.raises(requests.exceptions.ChunkedEncodingError) as raised:
        session.get(f"{BASE_URL}/items")

    message = str(raised.value)
    assert message.startswith(
        f"demo: the answer from {BASE_URL}/items?api_key=*** was cut off or garbled"
    )
    assert "ProtocolError" in message and "\n" not in message
    assert len(mocked.calls) == 3
    assert_chain_free_of(raised.value, TOKEN)


def assert_chain_free_of(error: BaseException, secret: str) -> None:
    """No exception of `error`'s cause/context chain mentions `secret` (dlt pickles it)."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        assert secret not in str(current) and secret not in repr(current.args)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    assert len(seen) >= 2  # the chain really was walked


def test_connection_errors_leave_no_secret_anywhere_in_the_exception_chain(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    inner = requests.ConnectionError(
        f"HTTPSConnectionPool: Max retries exceeded with url: /items?api_key={TOKEN}"
    )
    mocked.get(f"{BASE_URL}/items", body=inner)
    session = ConnectorSession(
        "demo",
        BASE_URL,
        auth=api_key_query(TOKEN, param="api_key"),
        retry_policy=RetryPolicy(max_retries=0),
    )

    with pytest.raises(requests.ConnectionError) as raised:
        session.get(f"{BASE_URL}/items")

    assert str(raised.value) == (
        f"demo: could not reach {BASE_URL}/items?api_key=*** (ConnectionError)"
    )
    assert_chain_free_of(raised.value, TOKEN)


def test_error_bodies_echoing_the_credential_are_masked_in_the_failure(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(f"{BASE_URL}/items", status=400, body=f"bad request: credential was Bearer {TOKEN}")
    http_config = SourceHttp("demo", BASE_URL, auth=bearer_token(TOKEN))
    (items,) = build_resources(http_config, [{"name": "items", "endpoint": "/items"}])

    with pytest.raises(Exception) as raised:
        list(items)

    error = root_cause(raised.value, RequestFailedError)
    assert "credential was Bearer ***" in str(error)
    assert TOKEN not in str(error)
    assert_chain_free_of(raised.value, TOKEN)


def test_a_host_name_that_does_not_resolve_fails_at_once_saying_so(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    lookups: list[str] = []

    def getaddrinfo(host: str, *args: object, **kwargs: object) -> list[object]:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    session = ConnectorSession("demo", "https://api.nowhere.example")

    with pytest.raises(UnrecoverableRequestError) as raised:
        session.get("https://api.nowhere.example/items")

    assert str(raised.value) == (
        "demo: the host name 'api.nowhere.example' of https://api.nowhere.example/items does "
        "not resolve (DNS); retrying cannot help: check base_url (`sources.demo.base_url`) "
        "and the network's name resolution"
    )
    assert lookups == ["api.nowhere.example"]  # not retried
    assert sleeps == []


def test_a_temporary_name_resolution_failure_is_retried(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    lookups: list[str] = []

    def getaddrinfo(host: str, *args: object, **kwargs: object) -> list[object]:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    session = ConnectorSession(
        "demo", "https://api.nowhere.example", retry_policy=RetryPolicy(max_retries=2)
    )

    with pytest.raises(requests.ConnectionError):
        session.get("https://api.nowhere.example/items")

    assert len(lookups) == 3


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://api.example.com:99999999/items", "is not a valid host or port"),
        ("https://api.example.com:0/items", "port 0"),
    ],
)
def test_a_malformed_url_fails_at_once_saying_so(
    mocked: responses.RequestsMock, url: str, problem: str
) -> None:
    session = ConnectorSession("demo", BASE_URL)
    request = requests.Request("GET", f"{BASE_URL}/items").prepare()
    request.url = url  # a next-page link the API sent

    with pytest.raises(UnrecoverableRequestError) as raised:
        session.send(request)

    assert str(raised.value).startswith(f"demo: {url} is not a valid URL (")
    assert problem in str(raised.value) and "retrying cannot help" in str(raised.value)
    assert len(mocked.calls) == 0


def test_a_malformed_base_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as raised:
        SourceHttp("demo", "https://api example.com").session()

    assert str(raised.value) == (
        "demo: base_url 'https://api example.com' is not a valid URL (the host "
        "'api example.com' contains the invalid character ' '); set `sources.demo.base_url`"
    )


# -- the request deadline, over loopback ---------------------------------------------------


class SlowFake(FakeServer):
    """One endpoint, `/items`, answering `{"data": [...]}`; faults make it slow."""

    def rules(self) -> list[Rule]:
        return [Rule("/items", endpoint="items")]

    def items(self, request: Request) -> Response:
        return self.json_response({"data": [{"id": i, "pad": "x" * 20} for i in range(5)]})


@pytest.mark.parametrize("transport", ["stall", "drip"])
def test_a_server_that_never_answers_or_drips_fails_within_the_deadline(transport: str) -> None:
    with SlowFake() as fake:
        fake.inject(
            Fault(transport=transport, seconds=30 if transport == "stall" else 0.05, times=3)
        )
        session = ConnectorSession(
            "demo",
            fake.base_url,
            retry_policy=RetryPolicy(max_retries=1, backoff_factor=0),
            request_deadline=1.0,
        )
        started = time.monotonic()
        url = f"{fake.base_url}/items"

        with pytest.raises(requests.Timeout) as raised:
            session.get(url)

        elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 6.0  # two attempts of about one second each, not the 30 s stall
    assert len(fake.requests_to("/items")) == 2
    # stalled (nothing arrives) or dripping its body: the deadline ends the request
    assert isinstance(raised.value, RequestDeadlineExceeded)
    assert str(raised.value) == (
        f"demo: {url} did not answer in full within the request deadline "
        "of 1 s (the server is stalling or sending very slowly)"
    )


def test_a_read_timeout_shorter_than_the_deadline_ends_a_stalled_request_first() -> None:
    with SlowFake() as fake:
        fake.inject(Fault(transport="stall", seconds=30, times=2))
        session = ConnectorSession(
            "demo",
            fake.base_url,
            retry_policy=RetryPolicy(max_retries=1, backoff_factor=0),
            request_deadline=20.0,
        )
        url = f"{fake.base_url}/items"
        started = time.monotonic()

        with pytest.raises(requests.exceptions.ReadTimeout) as raised:
            session.get(url, timeout=(1, 0.5))

        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0  # two reads of half a second each
    assert not isinstance(raised.value, RequestDeadlineExceeded)
    assert str(raised.value) == f"demo: could not reach {url} (ReadTimeout)"


def test_a_slow_answer_within_the_deadline_is_read_whole() -> None:
    with SlowFake() as fake:
        fake.inject(Fault(transport="drip", seconds=0.001))
        session = ConnectorSession("demo", fake.base_url, request_deadline=10.0)

        response = session.get(f"{fake.base_url}/items")

    assert [row["id"] for row in response.json()["data"]] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("transport", ["cut_off", "reset"])
def test_a_real_cut_off_or_reset_is_retried_and_the_next_answer_read(transport: str) -> None:
    with SlowFake() as fake:
        fake.inject(Fault(transport=transport))
        session = ConnectorSession(
            "demo", fake.base_url, retry_policy=RetryPolicy(backoff_factor=0)
        )

        response = session.get(f"{fake.base_url}/items")

    assert len(response.json()["data"]) == 5
    assert len(fake.requests_to("/items")) == 2


class HeaderDripServer:
    """A loopback server that answers every connection with a status line and then one
    byte of header every `interval` seconds, for ever: each read gets a byte well within
    the per-read timeout, so only a bound on the whole request can stop it."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.connections = 0
        self.closed_by_client = 0
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def __enter__(self) -> HeaderDripServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop = True
        self.thread.join()
        self.listener.close()

    def serve(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self.drip, args=(conn,), daemon=True).start()

    def drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(None)  # not the listener's accept timeout: wait for the request
            conn.recv(65536)  # the request
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self.stop:
                    conn.sendall(b"X-Slow: " + b"a" * 1 + b"\r\n")
                    time.sleep(self.interval)
            except OSError:  # the client shut the connection down
                self.closed_by_client += 1


def test_a_server_dripping_its_header_lines_fails_at_the_deadline_not_the_read_timeout() -> None:
    with HeaderDripServer() as server:
        session = ConnectorSession(
            "demo",
            server.base_url,
            retry_policy=RetryPolicy(max_retries=1, backoff_factor=0),
            request_deadline=1.0,
        )
        url = f"{server.base_url}/items"
        started = time.monotonic()

        with pytest.raises(RequestDeadlineExceeded) as raised:
            session.get(url, timeout=(5, 5))

        elapsed = time.monotonic() - started
        time.sleep(0.3)  # the server notices the shut-down connections
        assert server.connections == 2  # the first attempt and its one retry
        assert server.closed_by_client == 2
    assert 2.0 <= elapsed < 6.0  # two attempts of about one second each, not endless
    assert str(raised.value) == (
        f"demo: {url} did not answer in full within the request deadline "
        "of 1 s (the server is stalling or sending very slowly)"
    )


def test_a_watch_ended_under_a_faked_clock_does_not_delay_the_next_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    watchdog = DeadlineWatchdog()
    monkeypatch.setattr(time, "monotonic", lambda: 0.0)  # as the pacers' tests do
    with watchdog.watch(300):
        time.sleep(0.1)  # in flight while the watchdog reads its clock
    monkeypatch.undo()

    with watchdog.watch(0.2) as watch:
        time.sleep(0.6)

    assert watch.fired


class UsersAdapter(HTTPAdapter):
    """An adapter a user mounts (their own retries, TLS settings, ...)."""


def rebuilt(session: ConnectorSession) -> None:
    session.adapters["http://"].init_poolmanager(4, 4)  # type: ignore[attr-defined]


def users_adapter_mounted(session: ConnectorSession) -> None:
    session.mount("http://", UsersAdapter(max_retries=0))


def users_adapter_unpickled(session: ConnectorSession) -> None:
    users_adapter_mounted(session)
    session.mount("http://", pickle.loads(pickle.dumps(session.adapters["http://"])))


@pytest.mark.parametrize("change", [rebuilt, users_adapter_mounted, users_adapter_unpickled])
def test_an_adapter_rebuilt_or_mounted_later_still_ends_dripped_headers_at_the_deadline(
    change: Callable[[ConnectorSession], None],
) -> None:
    raised: list[BaseException] = []

    def get(url: str) -> None:
        try:
            session.get(url, timeout=(5, 5))
        except BaseException as error:  # noqa: BLE001 - the test reads what was raised
            raised.append(error)

    with HeaderDripServer() as server:
        session = ConnectorSession(
            "demo", server.base_url, retry_policy=RetryPolicy(max_retries=0), request_deadline=0.3
        )
        change(session)
        request = threading.Thread(target=get, args=[f"{server.base_url}/items"])
        started = time.monotonic()
        request.start()
        request.join(3)  # unwatched, the headers would drip until the server stops
        elapsed = time.monotonic() - started
    request.join(5)
    assert elapsed < 3
    assert [type(error) for error in raised] == [RequestDeadlineExceeded]


def test_a_request_done_within_its_deadline_leaves_its_pooled_connection_usable() -> None:
    with SlowFake() as fake:
        session = ConnectorSession("demo", fake.base_url, request_deadline=0.5)
        first = session.get(f"{fake.base_url}/items")
        time.sleep(0.8)  # past the first request's deadline: the watchdog must not fire
        second = session.get(f"{fake.base_url}/items")

    assert first.json() == second.json()
    assert len(fake.requests_to("/items")) == 2


class BigPages(FakeServer):
    """`/items`: a page of `rows` rows; `/stream`: the same body sent in chunks with no
    Content-Length (what a cap must count as it reads)."""

    rows = 2_000

    def rules(self) -> list[Rule]:
        return [Rule("/items", endpoint="items"), Rule("/stream", endpoint="stream")]

    def page(self) -> bytes:
        return json.dumps({"data": [{"id": i, "pad": "x" * 40} for i in range(self.rows)]}).encode()

    def items(self, request: Request) -> Response:
        return Response(self.page(), content_type="application/json")

    def stream(self, request: Request) -> Response:
        body = self.page()
        chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
        return Response(chunks, content_type="application/json", direct_passthrough=True)


@pytest.mark.parametrize("path", ["/items", "/stream"])
def test_a_body_over_the_cap_fails_at_once_naming_resource_and_size(path: str) -> None:
    """A 100 MB page once took the process to 1.1 GB: past `max_body_bytes` the request
    stops reading, is not retried, and the sync fails with one line."""
    with BigPages() as fake:
        http = SourceHttp(
            "demo",
            fake.base_url,
            retry_policy=RetryPolicy(max_retries=3, backoff_factor=0),
            max_body_bytes=20_000,
        )
        (resource,) = build_resources(
            http,
            [
                {
                    "name": "items",
                    "endpoint": {"path": path, "data_selector": "data", "paginator": "single_page"},
                }
            ],
            file_format=None,
        )

        with pytest.raises(Exception) as raised:
            list(resource)

        assert len(fake.requests_to(path)) == 1  # never retried
        url = f"{fake.base_url}{path}"
    error = root_cause(raised.value, ResponseTooLargeError)
    message = str(error)
    assert message.startswith(f"demo: resource `items`: {url} answered a body ")
    assert "over the cap of 20,000 bytes (max_body_bytes)" in message
    assert ("declares" in message) == (path == "/items")
    assert "\n" not in message


def test_a_body_within_the_cap_is_read_whole() -> None:
    with BigPages() as fake:
        session = ConnectorSession("demo", fake.base_url, max_body_bytes=len(BigPages().page()))
        assert len(session.get(f"{fake.base_url}/stream").json()["data"]) == BigPages.rows
