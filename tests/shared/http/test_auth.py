"""shared.http.auth: every kind of credential, sent only to the origin it belongs to."""

from __future__ import annotations

import base64
import copy
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from requests.auth import AuthBase

import shared.http.auth
from shared.errors import (
    AuthenticationError,
    ConfigurationError,
    ForeignOriginError,
    RequestFailedError,
)
from shared.http.auth import (
    OriginScopedAuth,
    api_key_header,
    api_key_query,
    bearer_token,
    http_basic,
    oauth2_client_credentials,
    require_secret,
)
from shared.http.session import ConnectorSession

BASE_URL = "https://api.example.com/v1"
FOREIGN_PAGE = "https://cdn.elsewhere.example/v1/items?page=2"
TOKEN_URL = "https://auth.example.com/oauth/token"
SECRET = "s3cr3t-value-42"
BASIC = "Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode()

AUTHS: dict[str, Callable[[], AuthBase]] = {
    "bearer": lambda: bearer_token(SECRET),
    "api_key_header": lambda: api_key_header(SECRET, header="X-Api-Key"),
    "api_key_header_scheme": lambda: api_key_header(SECRET, "Authorization", scheme="GenieKey"),
    "api_key_query": lambda: api_key_query(SECRET, param="apikey"),
    "http_basic": lambda: http_basic("user", SECRET),
}


def sent_credentials(request: requests.PreparedRequest) -> bool:
    """True when the request carries any of the test's credentials, in any place."""
    return (
        "Authorization" in request.headers
        or any(SECRET in value for value in request.headers.values())
        or SECRET in (request.url or "")
    )


def session_with(auth: AuthBase, **kwargs: object) -> ConnectorSession:
    return ConnectorSession("demo", BASE_URL, auth=auth, **kwargs)  # type: ignore[arg-type]


def test_bearer_token_sends_authorization_bearer_to_the_base_url_origin(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(f"{BASE_URL}/items", json=[])

    session_with(bearer_token(SECRET)).get(f"{BASE_URL}/items")

    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {SECRET}"


def test_api_key_header_is_sent_in_any_named_header(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE_URL}/items", json=[])

    session_with(api_key_header(SECRET, header="api_key")).get(f"{BASE_URL}/items")

    headers = mocked.calls[0].request.headers
    assert headers["api_key"] == SECRET
    assert "Authorization" not in headers


def test_api_key_header_scheme_word_prefixes_the_key(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE_URL}/items", json=[])

    session_with(api_key_header(SECRET, "Authorization", scheme="GenieKey")).get(
        f"{BASE_URL}/items"
    )

    assert mocked.calls[0].request.headers["Authorization"] == f"GenieKey {SECRET}"


def test_api_key_query_adds_the_key_as_a_query_parameter_next_to_the_others(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(f"{BASE_URL}/items", json=[])

    session_with(api_key_query(SECRET, param="hapikey")).get(
        f"{BASE_URL}/items", params={"limit": 10}
    )

    request = mocked.calls[0].request
    assert parse_qs(urlsplit(request.url).query) == {"limit": ["10"], "hapikey": [SECRET]}
    assert "Authorization" not in request.headers


def test_http_basic_sends_basic_authorization(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE_URL}/items", json=[])

    session_with(http_basic("user", SECRET)).get(f"{BASE_URL}/items")

    assert mocked.calls[0].request.headers["Authorization"] == BASIC


@pytest.mark.parametrize("kind", sorted(AUTHS))
def test_request_to_another_origin_is_refused_before_anything_is_sent(
    kind: str, mocked: responses.RequestsMock
) -> None:
    mocked.get(FOREIGN_PAGE, json=[])
    session = session_with(AUTHS[kind]())

    with pytest.raises(ForeignOriginError) as raised:
        session.get(FOREIGN_PAGE)

    assert len(mocked.calls) == 0
    assert session.attempts == 0
    message = str(raised.value)
    assert "demo" in message and "cdn.elsewhere.example" in message
    assert "follow_without_credentials" in message
    assert SECRET not in message


@pytest.mark.parametrize("kind", sorted(AUTHS))
def test_follow_without_credentials_sends_the_foreign_request_with_no_credentials(
    kind: str, mocked: responses.RequestsMock
) -> None:
    mocked.get(f"{BASE_URL}/items", json=[])
    mocked.get(FOREIGN_PAGE, json=[])
    session = session_with(AUTHS[kind](), foreign_links="follow_without_credentials")

    session.get(f"{BASE_URL}/items")
    session.get(FOREIGN_PAGE)

    own, foreign = (call.request for call in mocked.calls)
    assert sent_credentials(own)
    assert not sent_credentials(foreign)
    assert parse_qs(urlsplit(foreign.url).query) == {"page": ["2"]}


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com/v1/items",  # https downgraded to http
        "https://api.example.com:8443/v1/items",
        "https://api.example.com.evil.example/v1/items",
        "https://api.example.com@evil.example/v1/items",
    ],
)
@pytest.mark.parametrize("kind", sorted(AUTHS))
def test_origin_scoped_auth_attaches_nothing_outside_the_base_url_origin(
    kind: str, url: str
) -> None:
    scoped = OriginScopedAuth(AUTHS[kind](), BASE_URL)
    own = scoped(requests.Request("GET", f"{BASE_URL}/items").prepare())
    foreign = scoped(requests.Request("GET", url).prepare())

    assert sent_credentials(own)
    assert not sent_credentials(foreign)


# -- OAuth2 client credentials ---------------------------------------------------------


def token_answers(mocked: responses.RequestsMock, *tokens: str, expires_in: int = 3600) -> None:
    for token in tokens:
        mocked.post(TOKEN_URL, json={"access_token": token, "expires_in": expires_in})


def token_calls(mocked: responses.RequestsMock) -> list[requests.PreparedRequest]:
    return [call.request for call in mocked.calls if call.request.url == TOKEN_URL]


def data_calls(mocked: responses.RequestsMock) -> list[requests.PreparedRequest]:
    return [call.request for call in mocked.calls if call.request.url != TOKEN_URL]


def oauth_session(**kwargs: object) -> ConnectorSession:
    auth = oauth2_client_credentials(TOKEN_URL, "client-1", SECRET, connector="demo")
    return session_with(auth, **kwargs)


def test_oauth2_posts_client_credentials_to_the_token_url_and_sends_the_bearer_token(
    mocked: responses.RequestsMock,
) -> None:
    token_answers(mocked, "at-1")
    mocked.get(f"{BASE_URL}/items", json=[])

    oauth_session().get(f"{BASE_URL}/items")

    (token_request,) = token_calls(mocked)
    form = parse_qs(token_request.body)  # type: ignore[arg-type]
    assert form == {
        "client_id": ["client-1"],
        "client_secret": [SECRET],
        "grant_type": ["client_credentials"],
    }
    (data_request,) = data_calls(mocked)
    assert data_request.headers["Authorization"] == "Bearer at-1"
    assert SECRET not in str(data_request.headers) and SECRET not in data_request.url


def test_oauth2_token_is_reused_until_shortly_before_it_expires(
    mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(shared.http.auth, "time", SimpleNamespace(monotonic=lambda: now[0]))
    token_answers(mocked, "at-1", "at-2", expires_in=100)
    mocked.get(f"{BASE_URL}/items", json=[])
    session = oauth_session()  # expiry margin 30 s: renew from 70 s after issue

    for moment in (1000.0, 1030.0, 1069.0, 1070.0, 1100.0):
        now[0] = moment
        session.get(f"{BASE_URL}/items")

    assert len(token_calls(mocked)) == 2
    assert [r.headers["Authorization"] for r in data_calls(mocked)] == [
        "Bearer at-1",
        "Bearer at-1",
        "Bearer at-1",
        "Bearer at-2",
        "Bearer at-2",
    ]


def test_oauth2_token_is_fetched_again_once_on_a_401_and_the_request_resent(
    mocked: responses.RequestsMock,
) -> None:
    token_answers(mocked, "at-1", "at-2")
    # the resend reuses the request object, so read the header as it goes out
    sent: list[str] = []

    def revoke_first_token(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        sent.append(request.headers["Authorization"])
        return (401, {}, "{}") if len(sent) == 1 else (200, {}, '[{"id": 1}]')

    mocked.add_callback("GET", f"{BASE_URL}/items", callback=revoke_first_token)

    response = oauth_session().get(f"{BASE_URL}/items")

    assert response.status_code == 200
    assert response.json() == [{"id": 1}]
    assert len(token_calls(mocked)) == 2
    assert sent == ["Bearer at-1", "Bearer at-2"]


def test_oauth2_persistent_401_renews_only_once_then_hands_back_the_401(
    mocked: responses.RequestsMock,
) -> None:
    token_answers(mocked, "at-1", "at-2", "at-3")
    mocked.get(f"{BASE_URL}/items", status=401, json={"message": "no"})

    response = oauth_session().get(f"{BASE_URL}/items")

    assert response.status_code == 401
    assert len(token_calls(mocked)) == 2
    assert len(data_calls(mocked)) == 2


def test_oauth2_fetches_no_token_for_a_foreign_request_and_sends_none(
    mocked: responses.RequestsMock,
) -> None:
    token_answers(mocked, "at-1")
    mocked.get(FOREIGN_PAGE, json=[])

    oauth_session(foreign_links="follow_without_credentials").get(FOREIGN_PAGE)

    assert token_calls(mocked) == []
    assert not sent_credentials(data_calls(mocked)[0])


@pytest.mark.parametrize("status", [400, 401, 403])
def test_oauth2_rejected_client_credentials_raise_authentication_error_naming_the_keys(
    status: int, mocked: responses.RequestsMock
) -> None:
    mocked.post(TOKEN_URL, status=status, json={"error": "invalid_client"})
    mocked.get(f"{BASE_URL}/items", json=[])

    with pytest.raises(AuthenticationError) as raised:
        oauth_session().get(f"{BASE_URL}/items")

    message = str(raised.value)
    assert message.startswith("demo:")
    assert str(status) in message and "client_secret" in message
    assert SECRET not in message
    assert data_calls(mocked) == []


def test_oauth2_token_answer_without_access_token_is_an_authentication_error(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(TOKEN_URL, json={"token_type": "bearer"})

    with pytest.raises(AuthenticationError, match="no access_token"):
        oauth_session().get(f"{BASE_URL}/items")


@pytest.mark.parametrize(
    ("token", "refused"), [("tok-AbC/123\r\nX-Injected: 1", True), ("tok-AbC/123\n", False)]
)
def test_an_obtained_token_gets_the_checks_a_configured_secret_gets(
    mocked: responses.RequestsMock, token: str, refused: bool
) -> None:
    """A token with a line break inside is refused with one line that never shows it; a
    trailing line break is stripped, as it is from a configured secret."""
    mocked.post(TOKEN_URL, json={"access_token": token, "expires_in": 3600})
    mocked.get(f"{BASE_URL}/items", json=[])
    session = oauth_session()

    if refused:
        with pytest.raises(AuthenticationError) as raised:
            session.get(f"{BASE_URL}/items")
        chain = "".join(traceback.format_exception(raised.value))
        assert "control character" in str(raised.value)
        assert "tok-AbC" not in chain and "X-Injected" not in chain
        assert [call.request.url for call in mocked.calls] == [TOKEN_URL]
    else:
        session.get(f"{BASE_URL}/items")
        assert mocked.calls[-1].request.headers["Authorization"] == "Bearer tok-AbC/123"


def test_oauth2_token_request_is_retried_on_503_then_succeeds(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.post(TOKEN_URL, status=503, json={"error": "busy"}, headers={"Retry-After": "1"})
    mocked.post(TOKEN_URL, json={"access_token": "fresh-token", "expires_in": 3600})
    mocked.get(f"{BASE_URL}/items", json=[])

    oauth_session().get(f"{BASE_URL}/items")

    token_calls = [c for c in mocked.calls if c.request.url == TOKEN_URL]
    assert [c.response.status_code for c in token_calls] == [503, 200]
    assert sleeps == [1.0]
    (data_call,) = data_calls(mocked)
    assert data_call.headers["Authorization"] == "Bearer fresh-token"


def test_oauth2_token_answer_that_is_not_json_is_a_clear_error(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(TOKEN_URL, body="<html>gateway</html>", status=200)

    with pytest.raises(RequestFailedError, match="not JSON") as raised:
        oauth_session().get(f"{BASE_URL}/items")
    assert SECRET not in str(raised.value)
    assert data_calls(mocked) == []


# -- require_secret ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   "])
def test_require_secret_rejects_a_missing_secret_naming_the_config_key_and_env_var(
    value: str | None,
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        require_secret(value, "demo", "api_key")

    message = str(raised.value)
    assert "sources.demo.api_key" in message and "SOURCES__DEMO__API_KEY" in message


def test_require_secret_returns_a_present_secret_unchanged() -> None:
    assert require_secret(SECRET, "demo", "api_key") == SECRET


# -- secrets are clean or refused; tokens go to the source's redactor --------------------


@pytest.mark.parametrize("configured", [f"{SECRET}\n", f"  {SECRET}\r\n", f"\t{SECRET} "])
@pytest.mark.parametrize("name", sorted(AUTHS))
def test_surrounding_whitespace_and_line_breaks_are_stripped_from_every_kind_of_secret(
    name: str, configured: str, mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    mocked.get(f"{BASE_URL}/items", json=[])
    monkeypatch.setattr(sys.modules[__name__], "SECRET", configured)  # AUTHS read SECRET
    auth = AUTHS[name]()
    monkeypatch.undo()

    session_with(auth).get(f"{BASE_URL}/items")

    (call,) = mocked.calls
    sent = [*call.request.headers.values(), call.request.url or ""]
    expected = BASIC[len("Basic ") :] if name == "http_basic" else SECRET
    assert any(expected in value for value in sent)
    assert not any(configured in value for value in sent)
    assert not any(ch in value for value in sent for ch in "\r\n\t")


@pytest.mark.parametrize("inner", ["\n", "\r", "\x00", "\x7f"])
def test_a_control_character_inside_a_secret_is_refused_without_printing_it(inner: str) -> None:
    configured = f"{SECRET}{inner}second-line"
    with pytest.raises(ConfigurationError) as raised:
        require_secret(configured, "demo", "api_key")
    assert str(raised.value) == (
        "demo: `sources.demo.api_key` contains a line break or another control character "
        "inside it, which cannot be sent in a header or URL; set it again as a single line "
        "(the value is not shown)"
    )
    for build in (
        lambda: bearer_token(configured),
        lambda: api_key_header(configured),
        lambda: api_key_query(configured),
        lambda: http_basic("user", configured),
        lambda: oauth2_client_credentials(TOKEN_URL, "client-1", configured),
    ):
        with pytest.raises(ConfigurationError) as refused:
            build()
        assert SECRET not in str(refused.value) and "second-line" not in str(refused.value)


def test_require_secret_strips_a_trailing_line_break() -> None:
    assert require_secret(f"{SECRET}\n", "demo", "api_key") == SECRET


def test_the_oauth2_token_is_registered_with_the_sessions_redactor_before_use(
    mocked: responses.RequestsMock,
) -> None:
    token_answers(mocked, "obtained-token-123")
    mocked.get(f"{BASE_URL}/items", json=[])
    session = oauth_session()
    # dlt deep-copies its client config: a copied auth still registers with this redactor
    session.auth = copy.deepcopy(session.auth)

    session.get(f"{BASE_URL}/items")

    redactor = session.redactor
    assert redactor.redact("Bearer obtained-token-123 and " + SECRET) == "Bearer *** and ***"
    assert redactor.redact("client-1") == "***"
    assert "authorization" in redactor.names
    # the token request's own session masks with the same redactor
    inner = session.auth.inner
    assert inner.session.redactor is redactor


def test_a_token_url_failure_carries_no_secret_anywhere_in_its_chain(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    leaky = requests.ConnectionError(f"cannot reach {TOKEN_URL}?client_secret={SECRET}")
    mocked.post(TOKEN_URL, body=leaky)

    with pytest.raises(RequestFailedError) as raised:
        oauth_session().get(f"{BASE_URL}/items")

    assert str(raised.value) == (
        f"demo: could not reach the token URL {TOKEN_URL}: ConnectionError"
    )
    current: BaseException | None = raised.value
    seen = 0
    while current is not None:
        seen += 1
        assert SECRET not in str(current) and SECRET not in repr(current.args)
        current = current.__cause__ or current.__context__
    assert seen >= 2  # the library's error is still there, masked


def test_attach_redactor_registers_the_key_and_the_name_it_travels_under() -> None:
    from shared.redaction import Redactor

    redactor = Redactor()
    shared.http.auth.attach_redactor(
        api_key_header(SECRET, "X-Team-Key", scheme="GenieKey"), redactor
    )
    assert redactor.redact(f"GenieKey {SECRET}") == "***"
    assert redactor.names == {"x-team-key"}


def test_concurrent_401s_fetch_one_new_token_not_one_each(mocked: responses.RequestsMock) -> None:
    """Eight threads hold the revoked token `at-1` and all get a 401: the first renews,
    the others find the token already replaced and keep it (a renew that dropped
    whatever token was current threw away fresh ones and asked again and again)."""
    token_answers(mocked, "at-1", *(f"at-{n}" for n in range(2, 12)))
    arrived = threading.Barrier(8, timeout=10)
    sent: list[str] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        sent.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer at-1":
            arrived.wait()  # every thread sent the old token before any renews
            return (401, {}, "{}")
        return (200, {}, "[]")

    mocked.add_callback("GET", f"{BASE_URL}/items", callback=answer)
    session = oauth_session()
    session.auth(requests.Request("GET", f"{BASE_URL}/items").prepare())  # obtains at-1

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: session.get(f"{BASE_URL}/items").status_code, range(8)))

    assert statuses == [200] * 8
    assert len(token_calls(mocked)) == 2  # at-1, then one renewal
    assert sorted(sent) == ["Bearer at-1"] * 8 + ["Bearer at-2"] * 8
    assert session.attempts == 16  # every thread counted, none lost
