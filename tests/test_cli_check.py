"""`python -m connectors check`: one request through the connector against its loopback
fake, exit 0 with the request's line, or exit 1 with one line naming the cause."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from connectors.cli import main
from connectors.sandbox.analytics import CLIENT_ID, CLIENT_SECRET, TOKEN_PATH, AnalyticsFake
from connectors.sandbox.base import Fault
from connectors.sandbox.crm import TOKEN, CrmFake
from connectors.sandbox.project_tracker import API_KEY as PROJECT_TRACKER_KEY
from connectors.sandbox.project_tracker import ProjectTrackerFake
from shared.tooling.catalog import load_catalog

pytestmark = [pytest.mark.loopback, pytest.mark.usefixtures("empty_folder")]

#: `in 0.01 s`: how long the request took
SECONDS = r"in \d+\.\d\d s"


@pytest.fixture(scope="module")
def crm() -> Iterator[CrmFake]:
    with CrmFake() as fake:
        yield fake


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    code = main(["check", *argv])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def test_accepted_credentials_exit_0_with_one_line_naming_the_one_request(
    crm: CrmFake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
    sent = len(crm.requests)

    code, out, err = check(capsys, "crm", "--base-url", crm.base_url)

    assert (code, err) == (0, [])
    (line,) = out
    site = re.escape(f"{crm.base_url}/api/v2/site?perPage=100")
    assert re.fullmatch(rf"crm: ok — GET {site} 200 {SECONDS}", line), line
    assert [request.path for request in crm.requests[sent:]] == ["/api/v2/site"]


def test_a_rejected_credential_exits_1_naming_the_setting_to_fix_never_the_value(
    crm: CrmFake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", "wrong-token-4711")

    code, out, err = check(capsys, "crm", "--base-url", crm.base_url)

    assert (code, out) == (1, [])
    (line,) = err
    site = re.escape(f"{crm.base_url}/api/v2/site?perPage=100")
    assert re.fullmatch(
        rf"crm: failed — GET {site} 401 {SECONDS}: the credentials were rejected; check "
        r"`sources\.crm\.bearer_token` \(env SOURCES__CRM__BEARER_TOKEN\)",
        line,
    ), line
    assert "wrong-token-4711" not in line


def test_a_server_error_exits_1_with_its_status_after_one_attempt(
    crm: CrmFake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
    crm.inject(Fault(status=503, body={"message": "maintenance"}, path="/site"))
    sent = len(crm.requests)

    code, out, err = check(capsys, "crm", "--base-url", crm.base_url)

    assert (code, out) == (1, [])
    (line,) = err
    assert line.startswith(f"crm: failed — GET {crm.base_url}/api/v2/site?perPage=100 503 in ")
    assert line.endswith(": the API failed with 503 (a server error); try again later")
    assert len(crm.requests) - sent == 1  # no retries: a check answers at once


def test_a_server_that_is_down_exits_1_naming_its_host(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with CrmFake() as fake:
        base_url = fake.base_url
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)

    code, out, err = check(capsys, "crm", "--base-url", base_url)

    host = base_url.removeprefix("http://")
    assert (code, out) == (1, [])
    assert err == [
        f"crm: failed — GET {base_url}/api/v2/site?perPage=100: no answer from {host} "
        "(ConnectionError); check that the API is up and base_url is right "
        "(`sources.crm.base_url` or --base-url)"
    ]


def test_missing_credentials_exit_1_naming_the_setting_before_any_request(
    crm: CrmFake, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = len(crm.requests)

    code, out, err = check(capsys, "crm", "--base-url", crm.base_url)

    assert (code, out) == (1, [])
    assert err == [
        "crm: failed — missing bearer_token; set `sources.crm.bearer_token` in "
        ".dlt/secrets.toml (or env SOURCES__CRM__BEARER_TOKEN)"
    ]
    assert len(crm.requests) == sent


def test_the_catalogs_check_resource_is_the_one_requested(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__PROJECT_TRACKER__API_KEY", PROJECT_TRACKER_KEY)
    with ProjectTrackerFake() as fake:
        base_url = fake.base_url
        code, out, _ = check(capsys, "project_tracker", "--base-url", base_url)
        paths = [request.path for request in fake.requests]

    assert code == 0
    assert out[0].startswith(f"project_tracker: ok — GET {base_url}/v1/member 200 in ")
    assert paths == ["/v1/member"]


def test_oauth_checks_the_token_request_then_one_page_and_names_the_client_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__ANALYTICS__CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SOURCES__ANALYTICS__CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SOURCES__ANALYTICS__TOKEN_URL", TOKEN_PATH)
    monkeypatch.setenv("SOURCES__ANALYTICS__RESOURCES", '["events", "users"]')
    with AnalyticsFake() as fake:
        base_url = fake.base_url
        ok = check(capsys, "analytics", "--base-url", base_url)
        paths = [request.path for request in fake.requests]
        monkeypatch.setenv("SOURCES__ANALYTICS__CLIENT_SECRET", "not-the-secret")
        refused = check(capsys, "analytics", "--base-url", base_url)

    token = re.escape(f"{base_url}{TOKEN_PATH}")
    events = re.escape(f"{base_url}/v1/events?offset=0&limit=100")
    assert ok[0] == 0
    assert re.fullmatch(
        rf"analytics: ok — POST {token} 200 {SECONDS}, then GET {events} 200 {SECONDS}", ok[1][0]
    ), ok[1]
    assert paths == [TOKEN_PATH, "/v1/events"]
    assert refused[0] == 1
    assert re.fullmatch(
        rf"analytics: failed — POST {token} 401 {SECONDS}: the credentials were rejected; "
        r"check `sources\.analytics\.client_id` \(env SOURCES__ANALYTICS__CLIENT_ID\) or "
        r"`sources\.analytics\.client_secret` \(env SOURCES__ANALYTICS__CLIENT_SECRET\)",
        refused[2][0],
    ), refused[2]
    assert "not-the-secret" not in refused[2][0]


def test_replay_checks_offline_against_the_cassette(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = check(capsys, "crm", "--replay")

    site = re.escape(f"{load_catalog().get('crm').replay.base_url}/api/v2/site?perPage=100")
    assert (code, err) == (0, [])
    assert re.fullmatch(
        rf"crm: ok — GET {site} 200 {SECONDS} \(replayed from cassettes/crm/full_sync\.yaml\)",
        out[0],
    ), out


def test_a_relative_base_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", "crm", "--base-url", "api.example.com"])

    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "connectors check: error: argument --base-url: `api.example.com` is not an absolute "
        "http(s) URL; give scheme and host, e.g. --base-url https://api.example.com"
    )
