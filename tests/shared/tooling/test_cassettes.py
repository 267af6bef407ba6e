"""shared.tooling.cassettes: scrubbing, deterministic files, strict offline replay."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import requests
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request as VcrRequest
from vcr.serializers import yamlserializer
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.base import FakeServer
from shared.http.auth import oauth2_client_credentials
from shared.http.session import ConnectorSession
from shared.redaction import Redactor
from shared.tooling.cassettes import (
    REDACTED,
    MissingRecording,
    Scrubber,
    SortedYamlPersister,
    cassette_path,
    counting_persister,
    recording,
    replaying,
    serialized_http,
)

RECORDED = "http://127.0.0.1:5123"
CANONICAL = "https://api.example.com"
SECRET = "s3cr3t-0a1b2c"
ACCESS_TOKEN = "at-live-9z8y7x"


def scrubber(**kwargs: Any) -> Scrubber:
    return Scrubber(recorded_origin=RECORDED, canonical_origin=CANONICAL, **kwargs)


def vcr_request(uri: str, body: str | None = None, **headers: str) -> VcrRequest:
    return VcrRequest("POST" if body else "GET", uri, body, headers)


def vcr_response(body: Any, **headers: str) -> dict[str, Any]:
    return {
        "status": {"code": 200, "message": "OK"},
        "headers": {name.replace("_", "-"): [value] for name, value in headers.items()},
        "body": {"string": json.dumps(body).encode()},
    }


# -- Scrubber --------------------------------------------------------------------------


def test_credential_headers_are_removed_from_recorded_requests() -> None:
    request = vcr_request(
        f"{RECORDED}/v1/items",
        Authorization=f"Bearer {SECRET}",
        api_key=SECRET,
        **{"X-Api-Key": SECRET, "X-Genie-Token": SECRET, "Accept": "application/json"},
    )

    scrubbed = scrubber(headers=["X-Genie-Token"]).request(request)

    assert dict(scrubbed.headers) == {"Accept": "application/json"}


def test_credential_query_parameters_are_redacted_and_the_origin_rewritten() -> None:
    request = vcr_request(f"{RECORDED}/v1/items?page=2&api_key={SECRET}&user_key={SECRET}")

    scrubbed = scrubber(fields=["user_key"]).request(request)

    assert scrubbed.uri == (f"{CANONICAL}/v1/items?page=2&api_key={REDACTED}&user_key={REDACTED}")


def test_oauth_form_body_loses_client_id_and_secret_but_keeps_the_grant_type() -> None:
    body = f"grant_type=client_credentials&client_id=cid-1&client_secret={SECRET}"

    scrubbed = scrubber().request(vcr_request(f"{RECORDED}/oauth/token", body))

    assert (
        scrubbed.body
        == (f"grant_type=client_credentials&client_id={REDACTED}&client_secret={REDACTED}").encode()
    )


def test_json_tokens_are_redacted_at_any_depth_and_origins_rewritten_in_bodies() -> None:
    response = vcr_response(
        {
            "access_token": ACCESS_TOKEN,
            "expires_in": 3600,
            "items": [{"id": 1, "refresh_token": SECRET, "href": f"{RECORDED}/v1/items/1"}],
        }
    )

    body = json.loads(scrubber().response(response)["body"]["string"])

    assert body == {
        "access_token": REDACTED,
        "expires_in": 3600,
        "items": [{"id": 1, "refresh_token": REDACTED, "href": f"{CANONICAL}/v1/items/1"}],
    }


def test_response_headers_lose_cookies_and_volatile_values_and_link_is_rewritten() -> None:
    response = vcr_response(
        [],
        Link=f'<{RECORDED}/v1/items?page=2>; rel="next"',
        Set_Cookie=f"session={SECRET}",
        Date="Tue, 01 Oct 2024 10:00:00 GMT",
        Server="Werkzeug/3.0",
        X_Trace="abc",
        Content_Type="application/json",
    )

    headers = scrubber(volatile_headers=["X-Trace"]).response(response)["headers"]

    assert headers == {
        "Link": [f'<{CANONICAL}/v1/items?page=2>; rel="next"'],
        "Content-Type": ["application/json"],
    }


def test_a_kept_date_stays_beside_the_reset_it_is_read_against() -> None:
    response = vcr_response(
        [],
        Date="Tue, 01 Oct 2024 10:00:00 GMT",
        Server="Werkzeug/3.0",
        X_RateLimit_Reset="1727780400",
    )

    headers = scrubber(kept_headers=["date"]).response(response)["headers"]

    assert headers == {
        "Date": ["Tue, 01 Oct 2024 10:00:00 GMT"],
        "X-RateLimit-Reset": ["1727780400"],
    }


def test_a_countdown_is_dealt_out_again_in_the_cassettes_order_within_each_window(
    tmp_path: Path,
) -> None:
    # arrival order: page 3 counted first, then 1, 4, 2; page 4 answered in a new window
    counted = {3: ("9", "100"), 1: ("8", "100"), 4: ("5", "200"), 2: ("7", "100")}
    recorded = interactions(list(counted))
    for response, page in zip(recorded["responses"], counted, strict=True):
        remaining, reset = counted[page]
        response["headers"].update({"X-Left": [remaining], "X-Reset": [reset]})
    path = tmp_path / "counted.yaml"

    counting_persister({"X-Left": "X-Reset"}).save_cassette(
        str(path), recorded, serializer=yamlserializer
    )

    _, responses = SortedYamlPersister.load_cassette(str(path), yamlserializer)
    assert [(r["headers"]["X-Left"], r["headers"]["X-Reset"]) for r in responses] == [
        (["9"], ["100"]),
        (["8"], ["100"]),
        (["7"], ["100"]),
        (["5"], ["200"]),
    ]


def test_a_known_secret_is_scrubbed_by_value_whatever_it_is_called() -> None:
    echoed = f"credential was Bearer {SECRET}"
    request = vcr_request(
        f"{RECORDED}/v1/items?page=2&echo={quote(SECRET, safe='')}&q={quote_plus(SECRET)}",
        json.dumps({"filter": {"owner": SECRET}, "note": echoed}),
        **{"X-Team-Key": SECRET, "X-Custom": f"Token {SECRET}", "Accept": "application/json"},
    )
    response = vcr_response(
        {"error": echoed, "next": f"{RECORDED}/v1/items?p=3&k={SECRET}"},
        X_Echo=echoed,
        Content_Location=f"{RECORDED}/v1/items?k={quote(SECRET, safe='')}",
    )
    scrub = scrubber(secrets=[SECRET])

    sent = scrub.request(request)
    answered = scrub.response(response)

    assert sent.uri == f"{CANONICAL}/v1/items?page=2&echo={REDACTED}&q={REDACTED}"
    assert dict(sent.headers) == {"Accept": "application/json"}
    assert json.loads(sent.body) == {
        "filter": {"owner": REDACTED},
        "note": f"credential was Bearer {REDACTED}",
    }
    assert answered["headers"] == {
        "X-Echo": [f"credential was Bearer {REDACTED}"],
        "Content-Location": [f"{CANONICAL}/v1/items?k={REDACTED}"],
    }
    assert json.loads(answered["body"]["string"]) == {
        "error": f"credential was Bearer {REDACTED}",
        "next": f"{CANONICAL}/v1/items?p=3&k={REDACTED}",
    }


def test_a_sources_redactor_adds_the_tokens_it_obtains_and_its_auths_header_name() -> None:
    source_redactor = Redactor()
    scrub = scrubber(redactors=[source_redactor])
    # registered mid-recording, after the scrubber was made
    source_redactor.register(ACCESS_TOKEN)
    source_redactor.register_name("X-Team-Key", "team_key")

    sent = scrub.request(
        vcr_request(
            f"{RECORDED}/v1/items?team_key=anything&page=1",
            **{"X-Team-Key": "not-a-known-value", "X-Echo": ACCESS_TOKEN, "Accept": "*/*"},
        )
    )
    answered = scrub.response(vcr_response({"seen": f"Bearer {ACCESS_TOKEN}"}))

    assert sent.uri == f"{CANONICAL}/v1/items?team_key={REDACTED}&page=1"
    assert dict(sent.headers) == {"Accept": "*/*"}
    assert json.loads(answered["body"]["string"]) == {"seen": f"Bearer {REDACTED}"}


# -- SortedYamlPersister ----------------------------------------------------------------


def interactions(order: list[int]) -> dict[str, Any]:
    requests_, responses_ = [], []
    for i in order:
        requests_.append(vcr_request(f"{CANONICAL}/v1/items?page={i}"))
        headers = {"X-Page": str(i), "Content-Type": "application/json", "Link": "<x>"}
        if i % 2:  # same headers, another insertion order
            headers = dict(reversed(headers.items()))
        responses_.append(
            {
                "status": {"code": 200, "message": "OK"},
                "headers": {k: [v] for k, v in headers.items()},
                "body": {"string": json.dumps([{"id": i}])},
            }
        )
    return {"requests": requests_, "responses": responses_}


def test_sorted_persister_writes_the_same_bytes_whatever_the_request_order(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"

    SortedYamlPersister.save_cassette(str(first), interactions([3, 1, 4, 2]), yamlserializer)
    SortedYamlPersister.save_cassette(str(second), interactions([2, 4, 1, 3]), yamlserializer)

    assert first.read_bytes() == second.read_bytes()
    text = first.read_text()
    pages = [text.index(f"page={i}") for i in (1, 2, 3, 4)]
    assert pages == sorted(pages)
    loaded_requests, loaded_responses = SortedYamlPersister.load_cassette(
        str(first), yamlserializer
    )
    assert [r.uri[-1] for r in loaded_requests] == ["1", "2", "3", "4"]
    assert [list(r["headers"]) for r in loaded_responses][0] == ["Content-Type", "Link", "X-Page"]


# -- replaying -----------------------------------------------------------------------------


@pytest.fixture
def two_pages(tmp_path: Path) -> Path:
    path = tmp_path / "two_pages.yaml"
    SortedYamlPersister.save_cassette(str(path), interactions([1, 2]), yamlserializer)
    return path


def test_replaying_answers_recorded_requests_offline(two_pages: Path) -> None:
    with replaying(two_pages) as cassette:
        pages = [requests.get(f"{CANONICAL}/v1/items?page={i}").json() for i in (1, 2)]

    assert pages == [[{"id": 1}], [{"id": 2}]]
    assert cassette.play_count == 2


def test_replaying_fails_when_a_recorded_interaction_was_never_played(two_pages: Path) -> None:
    with pytest.raises(AssertionError, match="1 recorded interaction"), replaying(two_pages):
        requests.get(f"{CANONICAL}/v1/items?page=1")


def test_a_request_that_was_not_recorded_fails_in_one_line_saying_to_record_again(
    tmp_path: Path,
) -> None:
    path = cassette_path("demo", "two_pages", root=tmp_path)
    path.parent.mkdir()
    SortedYamlPersister.save_cassette(str(path), interactions([1, 2]), yamlserializer)

    with pytest.raises(MissingRecording) as missed, replaying(path, scrubber()):
        requests.get(f"{CANONICAL}/v1/items?page=3&api_key={SECRET}")

    assert str(missed.value).splitlines() == [
        f"demo: cassettes/demo/two_pages.yaml has no recorded answer to GET "
        f"{CANONICAL}/v1/items?page=3&api_key=***; the cassette is out of date: "
        "run make record-connector NAME=demo"
    ]
    assert isinstance(missed.value.__cause__, CannotOverwriteExistingCassetteException)


def test_replaying_a_missing_cassette_says_in_one_line_how_to_record_it(tmp_path: Path) -> None:
    with (
        pytest.raises(MissingRecording) as missed,
        replaying(cassette_path("demo", "nothing", root=tmp_path)),
    ):
        pass  # pragma: no cover

    assert str(missed.value) == (
        "demo: no cassette cassettes/demo/nothing.yaml; run make record-connector NAME=demo"
    )


# -- a recording, end to end ----------------------------------------------------------------


class TokenApi(FakeServer):
    """An OAuth2 API on loopback: a token endpoint and two pages of items."""

    def rules(self) -> list[Rule]:
        return [
            Rule("/oauth/token", endpoint="token", methods=["POST"]),
            Rule("/v1/items", endpoint="items"),
        ]

    def token(self, request: Request) -> Response:
        return self.json_response({"access_token": ACCESS_TOKEN, "expires_in": 3600})

    def items(self, request: Request) -> Response:
        page = int(request.args.get("page", "1"))
        body = {"items": [{"id": page, "self": f"{self.origin}/v1/items/{page}"}]}
        headers = {"Link": f'<{self.origin}/v1/items?page=2>; rel="next"'} if page == 1 else {}
        return self.json_response(body, headers=headers)


def sync(base_url: str) -> list[Any]:
    auth = oauth2_client_credentials(f"{base_url}/oauth/token", "client-7", SECRET)
    session = ConnectorSession("demo", base_url, auth=auth)
    first = session.get(f"{base_url}/v1/items")
    second = session.get(first.links["next"]["url"])
    return [*first.json()["items"], *second.json()["items"]]


def record_once(path: Path) -> str:
    with TokenApi() as fake, recording(path, Scrubber(fake.origin, CANONICAL)):
        sync(fake.origin)
        assert fake.requests_to("/v1/items")[0].headers["Authorization"] == (
            f"Bearer {ACCESS_TOKEN}"
        )
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_recording_writes_a_scrubbed_canonical_cassette_that_replays(tmp_path: Path) -> None:
    path = cassette_path("demo", "sync", root=tmp_path)

    record_once(path)

    text = path.read_text()
    for secret in (SECRET, ACCESS_TOKEN, "client-7", "127.0.0.1"):
        assert secret not in text
    assert f"<{CANONICAL}/v1/items?page=2>" in text and f"{CANONICAL}/v1/items/1" in text
    with replaying(path, Scrubber(CANONICAL, CANONICAL)) as cassette:
        rows = sync(CANONICAL)
    assert rows == [
        {"id": 1, "self": f"{CANONICAL}/v1/items/1"},
        {"id": 2, "self": f"{CANONICAL}/v1/items/2"},
    ]
    assert cassette.play_count == 3  # token, page 1, page 2


def test_recording_twice_gives_byte_identical_cassettes(tmp_path: Path) -> None:
    first = record_once(tmp_path / "first.yaml")
    second = record_once(tmp_path / "second.yaml")

    assert first == second


#: a secret holding what JSON escapes: `/` (often written `\/`), `"`, `\`, non-ASCII
ESCAPED_SECRET = 'oauth/T0k"en\\é+xyz'


@pytest.mark.parametrize(
    "escape",
    [
        pytest.param(lambda text: text.replace("/", "\\/"), id="slash-escaped"),
        pytest.param(lambda text: text, id="unicode-escaped"),
        pytest.param(lambda text: text.replace("/", "\\/").replace("\\u00e9", "é"), id="utf8"),
    ],
)
def test_a_secret_echoed_json_escaped_never_reaches_the_cassette_in_any_form(escape: Any) -> None:
    """The echo is written as servers write it (`\\/`, `\\u00e9`, `\\"`, `\\\\`); the
    scrubber parses and re-dumps the body, which un-escapes `\\/`: nothing may survive."""
    body = escape(json.dumps({"error": f"token {ESCAPED_SECRET} refused", "ok": "x/y"}))
    assert ESCAPED_SECRET not in body  # only escaped forms are in the body
    scrub = scrubber(secrets=[ESCAPED_SECRET])

    written = scrub.response(vcr_response(None, X_Echo="-") | {"body": {"string": body}})

    text = written["body"]["string"]
    assert json.loads(text) == {"error": f"token {REDACTED} refused", "ok": "x/y"}
    assert not Redactor([ESCAPED_SECRET]).contains_secret(text)
    assert "oauth" not in text and "T0k" not in text


class HoldingFake(FakeServer):
    """`/hold` answers once `release` is set; `/quick` at once."""

    def __init__(self) -> None:
        super().__init__()
        self.held = threading.Event()
        self.release = threading.Event()

    def rules(self) -> list[Rule]:
        return [Rule("/hold", endpoint="hold"), Rule("/quick", endpoint="quick")]

    def hold(self, request: Request) -> Response:
        self.held.set()
        self.release.wait(10)
        return self.json_response({"data": []})

    def quick(self, request: Request) -> Response:
        return self.json_response({"data": []})


def test_serialized_http_holds_the_catalogs_sessions_to_one_exchange_and_no_other() -> None:
    with HoldingFake() as fake, serialized_http():
        held = threading.Thread(
            target=ConnectorSession("demo", fake.base_url).get, args=[f"{fake.base_url}/hold"]
        )
        held.start()
        assert fake.held.wait(10)
        # a session outside the catalog's is not serialized: it is answered meanwhile
        assert requests.Session().get(f"{fake.base_url}/quick", timeout=10).ok
        # another of the catalog's waits for the exchange in flight
        waiting = threading.Thread(
            target=ConnectorSession("demo", fake.base_url).get, args=[f"{fake.base_url}/quick"]
        )
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()
        assert len(fake.requests_to("/quick")) == 1
        fake.release.set()
        held.join(10)
        waiting.join(10)
    assert len(fake.requests_to("/quick")) == 2
    # after the block, the catalog's sessions are not serialized either
    with HoldingFake() as fake:
        held = threading.Thread(
            target=ConnectorSession("demo", fake.base_url).get, args=[f"{fake.base_url}/hold"]
        )
        held.start()
        assert fake.held.wait(10)
        assert ConnectorSession("demo", fake.base_url).get(f"{fake.base_url}/quick").ok
        fake.release.set()
        held.join(10)
