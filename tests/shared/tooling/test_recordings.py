"""shared.tooling.recordings: which credentials each recorded step runs with. Under LIVE=1 a step
gets exactly the credentials named by its environment variables (its own mapping, else
the Recording's), never the fake's; missing variables stop the run before any request."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

import shared.tooling.recordings as recordings
from connectors.sandbox import load_recording
from connectors.sandbox.analytics import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    OAUTH_RESOURCES,
    RESOURCES,
    TOKEN_PATH,
    AnalyticsFake,
)
from shared.tooling.recordings import Recording, Step, record

LIVE_URL = "https://live.analytics.invalid"
LIVE_ENV = {
    "ANALYTICS_API_KEY": "live-api-key-0001",
    "ANALYTICS_CLIENT_ID": "live-client-id-0002",
    "ANALYTICS_CLIENT_SECRET": "live-client-secret-0003",
    "ANALYTICS_TOKEN_URL": "https://live-auth.analytics.invalid/oauth/token",
}
CONNECTORS = sorted(
    path.stem
    for path in (Path(__file__).parents[3] / "connectors" / "sandbox").glob("*.py")
    if hasattr(importlib.import_module(f"connectors.sandbox.{path.stem}"), "RECORDING")
)


class SourceBuilt(Exception):
    """Raised by the stub source so nothing past building the source runs."""


def stubbed(rec: Recording, calls: list[dict[str, Any]]) -> Recording:
    """`rec` whose source only records its arguments, and whose fake must not start."""

    def source(**kwargs: Any) -> object:
        calls.append(kwargs)
        return object()

    def no_fake() -> None:
        raise AssertionError("LIVE=1 started the fake server")

    return dataclasses.replace(rec, source=source, fake=no_fake)


@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Replace running a source (and so any HTTP) with noting which source would run."""
    ran: list[object] = []
    monkeypatch.setattr(recordings, "run_source", lambda pipeline, source: ran.append(source))
    return ran


def fake_values(rec: Recording) -> set[str]:
    values = set(rec.credentials.values())
    for step in rec.steps:
        values |= set((step.credentials or {}).values())
    return {value for value in values if value}


def test_live_analytics_steps_are_built_with_exactly_the_live_credentials_of_their_auth_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_runs: list[object]
) -> None:
    monkeypatch.setenv("ANALYTICS_BASE_URL", LIVE_URL)
    for env, value in LIVE_ENV.items():
        monkeypatch.setenv(env, value)
    calls: list[dict[str, Any]] = []

    written = record(stubbed(load_recording("analytics"), calls), live=True, root=tmp_path)

    api_key = {"base_url": LIVE_URL, "resources": RESOURCES, "api_key": "live-api-key-0001"}
    assert calls == [
        api_key,
        api_key,
        {
            "base_url": LIVE_URL,
            "resources": OAUTH_RESOURCES,
            "client_id": "live-client-id-0002",
            "client_secret": "live-client-secret-0003",
            "token_url": "https://live-auth.analytics.invalid/oauth/token",
        },
    ]
    assert len(no_runs) == 3
    assert [path.name for path in written] == [
        "full_sync.yaml",
        "incremental.yaml",
        "oauth_sync.yaml",
    ]


def test_offline_analytics_steps_are_built_with_each_steps_fake_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_runs: list[object]
) -> None:
    calls: list[dict[str, Any]] = []
    rec = dataclasses.replace(stubbed(load_recording("analytics"), calls), fake=AnalyticsFake)

    record(rec, live=False, root=tmp_path)

    assert [{k: v for k, v in call.items() if k != "base_url"} for call in calls] == [
        {"resources": RESOURCES, "api_key": API_KEY},
        {"resources": RESOURCES, "api_key": API_KEY},
        {
            "resources": OAUTH_RESOURCES,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token_url": TOKEN_PATH,
        },
    ]
    assert all(call["base_url"].startswith("http://127.0.0.1:") for call in calls)


@pytest.mark.parametrize("connector", CONNECTORS)
def test_live_recording_never_passes_a_fake_credential(
    connector: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_runs: list[object]
) -> None:
    rec = load_recording(connector)
    envs = {env for step in rec.steps for env in rec.step_live_credentials(step).values()}
    assert envs, f"{connector}: no environment variables for LIVE=1"
    for env in envs:
        monkeypatch.setenv(env, f"live-{env.lower()}")
    calls: list[dict[str, Any]] = []

    record(stubbed(rec, calls), live=True, root=tmp_path)

    assert len(calls) == len(rec.steps)
    leaked = fake_values(rec)
    for step, call in zip(rec.steps, calls, strict=True):
        assert not leaked & {str(v) for v in call.values()}, (connector, step.cassette)
        expected = {
            arg: f"live-{env.lower()}" for arg, env in rec.step_live_credentials(step).items()
        }
        assert expected.items() <= call.items(), (connector, step.cassette)
        assert not set(rec.offline_kwargs) & set(call), "offline-only arguments went live"


def test_live_recording_without_the_environment_variables_exits_naming_every_missing_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_runs: list[object]
) -> None:
    monkeypatch.setenv("ANALYTICS_API_KEY", "live-api-key-0001")
    monkeypatch.setenv("ANALYTICS_CLIENT_ID", "")  # empty counts as missing
    monkeypatch.delenv("ANALYTICS_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("ANALYTICS_TOKEN_URL", raising=False)
    calls: list[dict[str, Any]] = []

    with pytest.raises(SystemExit) as exited:
        record(stubbed(load_recording("analytics"), calls), live=True, root=tmp_path)

    message = str(exited.value)
    assert message == (
        "LIVE=1 needs these environment variables: "
        "ANALYTICS_CLIENT_ID, ANALYTICS_CLIENT_SECRET, ANALYTICS_TOKEN_URL"
    )
    assert calls == [] and no_runs == []  # nothing ran, not even the api-key steps
    assert not list(tmp_path.rglob("*.yaml"))


def record_live(api: AnalyticsFake, monkeypatch: pytest.MonkeyPatch, root: Path) -> list[Path]:
    """Record analytics under LIVE=1 from `api` (the "real API", on loopback), which
    accepts only the live credentials; the cassettes go under `root`."""
    api.api_key = LIVE_ENV["ANALYTICS_API_KEY"]
    api.client_id = LIVE_ENV["ANALYTICS_CLIENT_ID"]
    api.client_secret = LIVE_ENV["ANALYTICS_CLIENT_SECRET"]
    monkeypatch.setenv("ANALYTICS_BASE_URL", api.base_url)
    for env, value in LIVE_ENV.items():
        monkeypatch.setenv(env, value)
    monkeypatch.setenv("ANALYTICS_TOKEN_URL", f"{api.base_url}{TOKEN_PATH}")
    return record(load_recording("analytics"), live=True, root=root)


def test_live_recording_against_a_loopback_api_sends_only_the_live_credentials_and_scrubs_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the "real API" is a fake on loopback that accepts only the live credentials
    with AnalyticsFake(events=120, users=30, page_views=5) as api:
        written = record_live(api, monkeypatch, tmp_path)

    # the api accepts only the live credentials: every answer 200 means none else was sent
    assert api.requests and all(request.status == 200 for request in api.requests)
    (token_request,) = api.token_requests()
    form = parse_qs(token_request.body.decode())
    assert form["client_id"] == [LIVE_ENV["ANALYTICS_CLIENT_ID"]]
    assert form["client_secret"] == [LIVE_ENV["ANALYTICS_CLIENT_SECRET"]]
    keyed = [r for r in api.data_requests() if "api_key" in r.args]
    assert {r.args["api_key"] for r in keyed} == {LIVE_ENV["ANALYTICS_API_KEY"]}
    assert {r.path for r in keyed} == {"/v1/events", "/v1/users", "/v1/pageviews"}
    assert {r.path for r in api.data_requests() if r not in keyed} == {
        "/v1/events",
        "/v1/pageviews",
    }
    for path in written:
        text = path.read_text()
        for secret in (*LIVE_ENV.values(), API_KEY, CLIENT_ID, CLIENT_SECRET, "127.0.0.1"):
            assert secret not in text, (path.name, secret)
        assert "https://api.example.com/v1/" in text


def test_a_live_api_echoing_credentials_and_tokens_leaves_none_in_the_cassettes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the "real API" repeats every credential it receives (and the OAuth2 tokens it
    # issued) in bodies, an X-Echo header, redirects and next links: only scrubbing by
    # value, with the tokens the source obtained mid-recording, keeps them out
    from connectors.sandbox.analytics import TOKEN_PREFIX
    from shared.redaction import Redactor

    with AnalyticsFake(events=60, users=20, page_views=5) as api:
        api.echo_secrets = True
        written = record_live(api, monkeypatch, tmp_path)

    assert api.tokens_issued >= 1 and any("echo" in r.args for r in api.requests)
    tokens = [f"{TOKEN_PREFIX}{n:04d}" for n in range(1, api.tokens_issued + 1)]
    credentials = [
        LIVE_ENV[f"ANALYTICS_{key}"] for key in ("API_KEY", "CLIENT_ID", "CLIENT_SECRET")
    ]
    secrets = Redactor([*credentials, *tokens])  # raw, URL-encoded and base64 forms
    for path in written:
        text = path.read_text()
        assert "X-Echo" in text  # the echo was recorded, masked
        assert not secrets.contains_secret(text), path.name


def test_a_step_that_fails_with_must_fail_so_against_the_fake(
    monkeypatch: pytest.MonkeyPatch, no_runs: list[object]
) -> None:
    step = Step("validation_error", fails_with="422")

    with pytest.raises(RuntimeError, match="was to fail with '422'; it passed"):
        recordings._run_step(step, object(), "passes", live=False)
    recordings._run_step(step, object(), "passes live", live=True)  # no fault on cue live
    assert no_runs == ["passes", "passes live"]

    def failing(pipeline: object, source: str) -> None:
        raise ValueError(f"GET /x failed with {source}")

    monkeypatch.setattr(recordings, "run_source", failing)
    recordings._run_step(step, object(), "422 UNPROCESSABLE ENTITY", live=False)  # kept
    with pytest.raises(ValueError, match="failed with 500"):
        recordings._run_step(step, object(), "500", live=False)
