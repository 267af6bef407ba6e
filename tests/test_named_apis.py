"""Each connector names the real API it speaks: `base_url` defaults to the vendor's URL
where the connector speaks that API as published (crm: Capsule, incident_analytics:
Opsgenie, hubspot_contacts: HubSpot), and is required, its absence one line naming the
setting, where it does not (project_tracker: shaped like Shortcut's; analytics: a
generic API). Replays keep playing the origin the cassettes were recorded under."""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import dlt
import pytest
import responses
import yaml

from connectors.analytics import analytics_source
from connectors.cli import main
from connectors.crm import crm_source
from connectors.incident_analytics import incident_analytics_source
from connectors.project_tracker import project_tracker_source
from shared.errors import ConfigurationError
from shared.tooling.catalog import ConnectorEntry, load_catalog
from tests.recording import load_recording

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog()

#: what a connector without a default says when no base_url is configured
MISSING_BASE_URL = (
    "{name}: no `base_url` configured (this API has no default); set "
    "`sources.{name}.base_url` in .dlt/config.toml or the env var "
    "SOURCES__{upper}__BASE_URL, or pass it: base_url=... in Python, --base-url with "
    "`connectors run`"
)


def missing_base_url(name: str) -> str:
    return MISSING_BASE_URL.format(name=name, upper=name.upper())


#: the API each connector this repository ships speaks, and whether as published; a
#: connector added with `connectors new` is checked by the tests below, not named here
SHIPPED_APIS = {
    "crm": ("Capsule CRM API v2", True, "https://developer.capsulecrm.com/v2"),
    "analytics": ("generic analytics API (api key or OAuth2)", False, None),
    "hubspot_contacts": (
        "HubSpot CRM API v3 (contacts)",
        True,
        "https://developers.hubspot.com/docs/api/crm/contacts",
    ),
    "incident_analytics": (
        "Opsgenie REST API",
        True,
        "https://docs.opsgenie.com/docs/api-overview",
    ),
    "project_tracker": (
        "Shortcut REST API v3",
        False,
        "https://developer.shortcut.com/api/rest/v3",
    ),
}


def test_each_connector_names_the_real_api_it_speaks_and_whether_as_published() -> None:
    apis = {e.name: (e.api.name, e.api.as_published, e.api.reference) for e in CATALOG}

    assert {name: apis.get(name) for name in SHIPPED_APIS} == SHIPPED_APIS


def test_the_defaults_are_the_vendors_urls_and_none_is_an_example_host() -> None:
    base_urls = {entry.name: entry.base_url for entry in CATALOG}

    assert {name: base_urls.get(name, "missing") for name in SHIPPED_APIS} == {
        "crm": "https://api.capsulecrm.com",
        "analytics": None,
        "hubspot_contacts": "https://api.hubapi.com",
        "incident_analytics": "https://api.opsgenie.com",
        "project_tracker": None,
    }
    # a default names a real vendor host, never an example one
    assert not [url for url in base_urls.values() if url and "example" in url]


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_a_source_defaults_base_url_to_its_vendors_url_only_where_it_speaks_the_api_as_published(
    entry: ConnectorEntry,
) -> None:
    parameter = inspect.signature(entry.source_factory()).parameters["base_url"]

    if entry.api.as_published:
        assert parameter.default == entry.base_url
    else:  # required: dlt looks it up in config, and there is no default
        assert parameter.default is dlt.config.value
        assert entry.base_url is None


def test_crm_and_incident_analytics_reach_capsule_and_opsgenie_by_default() -> None:
    with responses.RequestsMock() as mocked:
        mocked.get(
            "https://api.capsulecrm.com/api/v2/site",
            json={"site": {"subdomain": "acme", "name": "Acme"}},
        )
        mocked.get(
            "https://api.opsgenie.com/v2/teams", json={"data": [{"id": "t1", "name": "Ops"}]}
        )
        site = list(crm_source(bearer_token="capsule-token").with_resources("site"))
        teams = list(incident_analytics_source(api_token="genie-key").with_resources("teams"))

        capsule, opsgenie = (call.request for call in mocked.calls)
    assert [(row["subdomain"], row["name"]) for row in site] == [("acme", "Acme")]
    assert [(row["id"], row["name"]) for row in teams] == [("t1", "Ops")]
    assert capsule.headers["Authorization"] == "Bearer capsule-token"
    assert opsgenie.headers["Authorization"] == "GenieKey genie-key"


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("project_tracker", lambda: project_tracker_source(api_key="a-key")),
        ("analytics", lambda: analytics_source(api_key="a-key", resources=["events"])),
    ],
)
def test_from_python_a_source_without_a_default_and_without_base_url_says_so_in_one_line(
    name: str, build: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(f"SOURCES__{name.upper()}__BASE_URL", raising=False)

    with pytest.raises(ConfigurationError) as raised:
        build()  # type: ignore[operator]

    assert str(raised.value) == missing_base_url(name)


def test_from_python_a_given_base_url_builds_the_source() -> None:
    source = project_tracker_source(api_key="a-key", base_url="https://tracker.internal")

    assert "epics" in source.resources


@pytest.mark.parametrize(
    ("name", "env"),
    [
        ("project_tracker", {"SOURCES__PROJECT_TRACKER__API_KEY": "a-key"}),
        (
            "analytics",
            {"SOURCES__ANALYTICS__API_KEY": "a-key", "SOURCES__ANALYTICS__RESOURCES": '["events"]'},
        ),
    ],
)
def test_connectors_run_without_base_url_of_a_source_without_a_default_is_one_line(
    name: str,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for variable in [v for v in os.environ if v.startswith("SOURCES__")]:
        monkeypatch.delenv(variable)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)

    code = main(["run", name])

    captured = capsys.readouterr()
    assert (code, captured.out) == (1, "")
    assert captured.err.splitlines() == [f"error: {missing_base_url(name)}"]


def show(capsys: pytest.CaptureFixture[str], name: str) -> list[str]:
    assert main(["show", name]) == 0
    return capsys.readouterr().out.splitlines()


def test_show_says_crm_speaks_capsule_as_published_and_defaults_to_its_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = show(capsys, "crm")

    assert (
        "API:         Capsule CRM API v2, as published (https://developer.capsulecrm.com/v2)"
    ) in out
    assert (
        "base URL:    https://api.capsulecrm.com (the default; sources.crm.base_url overrides it)"
    ) in out
    api = next(n for n, line in enumerate(out) if line.startswith("API:"))
    base_url = next(n for n, line in enumerate(out) if line.startswith("base URL:"))
    differences = " ".join(line.strip() for line in out[api + 1 : base_url])
    assert "`Link` header" in differences and "4,000 requests an hour" in differences


def test_show_says_project_tracker_is_shaped_like_shortcut_and_needs_a_base_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = show(capsys, "project_tracker")
    text = " ".join(" ".join(out).split())

    assert (
        "API:         shaped like Shortcut REST API v3, not as published "
        "(https://developer.shortcut.com/api/rest/v3)"
    ) in out
    assert (
        "base URL:    none by default, required: set sources.project_tracker.base_url in "
        ".dlt/config.toml (env SOURCES__PROJECT_TRACKER__BASE_URL), or run with --base-url"
    ) in out
    assert "`/v1` where Shortcut's start with `/api/v3`" in text
    assert "`Shortcut-Token`" in text and '`{"data": ...}`' in text


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_a_replay_plays_the_origin_its_cassettes_were_recorded_under(
    entry: ConnectorEntry,
) -> None:
    """The catalog's `replay.base_url` (else `base_url`) is the origin `make
    record-connector` rewrites recordings to, and every recorded request is under it."""
    recording = load_recording(entry.name)
    uris = [
        interaction["request"]["uri"]
        for path in sorted((ROOT / "cassettes" / entry.name).glob("*.yaml"))
        for interaction in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
    ]
    origins = {f"{urlsplit(uri).scheme}://{urlsplit(uri).netloc}" for uri in uris}

    assert recording.canonical_base_url == entry.replay.base_url
    assert origins == {entry.replay.base_url}


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_every_tables_api_path_in_the_catalog_is_requested_by_the_recorded_sync(
    entry: ConnectorEntry,
) -> None:
    paths = {
        urlsplit(interaction["request"]["uri"]).path
        for path in sorted((ROOT / "cassettes" / entry.name).glob("*.yaml"))
        for interaction in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
    }

    for resource in entry.resources:
        assert resource.path, f"{entry.name}.{resource.name} has no path in catalog.yml"
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(resource.path))
        assert any(re.fullmatch(pattern, path) for path in paths), (resource.name, pattern)
