"""Every recorded cassette is free of anything that looks like a credential."""

from __future__ import annotations

import importlib
import json
import os
import re
from pathlib import Path

import pytest
import yaml

from shared.redaction import Redactor

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
FILES = sorted(CASSETTES.glob("*/*.yaml"))

#: shapes of live-looking credentials, whatever connector recorded them
CREDENTIAL_SHAPES = [
    re.compile(r"(?i)\b(bearer|geniekey|basic|token)[ \t]+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)[?&](api_?key|access_token|token|key|client_secret|hapikey)=(?!REDACTED)[^&\s'\"]+"
    ),
    re.compile(r"(?i)\"(access_token|refresh_token|id_token|client_secret)\"\s*:\s*\"(?!REDACTED)"),
    re.compile(r"(?i)(client_secret|client_id|password)=(?!REDACTED)[^&\s'\"]+"),
    re.compile(r"\bpat-[a-z0-9]{2,}-[0-9a-f-]{8,}"),  # HubSpot private-app tokens
]
CREDENTIAL_HEADERS = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api_key",
    "api-key",
}


def fake_credentials(connector: str) -> list[str]:
    """The credentials the connector's fake accepts (they must never be written)."""
    try:
        module = importlib.import_module(f"connectors.sandbox.{connector}")
    except ModuleNotFoundError:
        return []
    recording = getattr(module, "RECORDING", None)
    if recording is None:
        return []
    credentials = dict(recording.credentials)
    for step in recording.steps:
        credentials.update(getattr(step, "credentials", None) or {})
    # a token URL or similar config is not a secret; every other value is
    return [
        value
        for name, value in credentials.items()
        if value and isinstance(value, str) and not name.endswith("_url")
    ]


def live_credentials(connector: str) -> list[str]:
    """The live credentials a LIVE=1 recording of the connector read from the environment,
    where this environment has them (a developer who recorded live runs the scan too)."""
    try:
        recording = importlib.import_module(f"connectors.sandbox.{connector}").RECORDING
    except (ModuleNotFoundError, AttributeError):
        return []
    mappings = [recording.live_credentials, *(s.live_credentials or {} for s in recording.steps)]
    return [
        os.environ[env]
        for mapping in mappings
        for name, env in mapping.items()
        if os.environ.get(env) and not name.endswith("_url")
    ]


def test_there_are_cassettes_to_scan() -> None:
    assert FILES, "no cassettes found"
    assert {path.parent.name for path in FILES} >= {"crm"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_cassette_holds_no_credential(path: Path) -> None:
    text = path.read_text()
    for shape in CREDENTIAL_SHAPES:
        match = shape.search(text)
        assert match is None, f"{path}: credential-like text {match.group(0)[:40]!r}"
    # by value, also URL-encoded and base64 (the forms a redactor knows)
    known = Redactor([*fake_credentials(path.parent.name), *live_credentials(path.parent.name)])
    assert not known.contains_secret(text), f"{path}: holds a credential the recording used"
    parsed = yaml.safe_load(text)
    # YAML's own quoting escapes `"` and `\\`: the values as read back must hold none either
    for interaction in parsed["interactions"]:
        for value in (interaction["request"], interaction["response"]):
            assert not known.contains_secret(json.dumps(value, ensure_ascii=False, default=str))
    for interaction in parsed["interactions"]:
        sent = {name.lower() for name in interaction["request"]["headers"]}
        assert not sent & CREDENTIAL_HEADERS, f"{path}: request header {sent & CREDENTIAL_HEADERS}"
        assert "127.0.0.1" not in interaction["request"]["uri"]


def test_the_scan_catches_a_planted_credential(tmp_path: Path) -> None:
    planted = "uri: https://api.example.com/v1/x?api_key=live-looking-0123456789\n"
    assert any(shape.search(planted) for shape in CREDENTIAL_SHAPES)
    assert any(
        shape.search("Authorization: Bearer abcdef0123456789xyz") for shape in CREDENTIAL_SHAPES
    )


def test_the_scan_catches_a_planted_credential_by_value_in_any_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import base64
    from urllib.parse import quote

    monkeypatch.setenv("CRM_BEARER_TOKEN", "live crm/token+0123456789")
    (fake,) = fake_credentials("crm")
    (live,) = live_credentials("crm")
    known = Redactor([fake, live])
    for planted in (
        f"X-Echo: {fake}",
        f"uri: https://api.example.com/x?t={quote(live, safe='')}",
        f"body: {base64.b64encode(live.encode()).decode()}",
    ):
        assert known.contains_secret(planted), planted
    assert not known.contains_secret("uri: https://api.example.com/x?t=REDACTED")
