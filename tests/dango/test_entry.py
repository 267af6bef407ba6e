"""The Dango entry `connectors show` prints (connectors/cli/dango.py), checked offline in
`make test`; `make test-dango` (test_dango_sync.py) pastes it into a real Dango project."""

from __future__ import annotations

import re

import dlt
import pytest
import yaml

from connectors.cli import dango, main, snippets
from connectors.sandbox import load_recording
from shared.loading import run_source
from shared.tooling.catalog import ROOT, ConnectorEntry, load_catalog
from tests.dataset import query

CATALOG = load_catalog()


def show(capsys: pytest.CaptureFixture[str], name: str) -> str:
    assert main(["show", name]) == 0
    return capsys.readouterr().out


def built_source(entry: ConnectorEntry) -> dlt.sources.DltSource:
    """The source as the replay builds it (its configuration, fake credentials)."""
    rec = load_recording(entry.name)
    step = rec.steps[0]
    return rec.source(
        base_url=rec.canonical_base_url,
        **rec.step_credentials(step),
        **rec.offline_kwargs,
        **step.source_kwargs,
    )


def replaces_a_table(source: dlt.sources.DltSource) -> bool:
    """Dango's test for a full-refresh source (getdango 1.0.13,
    `DltPipelineRunner._detect_write_disposition`): any resource with `replace`."""
    return any(r.write_disposition == "replace" for r in source.resources.values())


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_show_prints_the_install_line_and_an_entry_with_no_secret(
    capsys: pytest.CaptureFixture[str], entry: ConnectorEntry
) -> None:
    settings = snippets.source_settings(entry)
    out = show(capsys, entry.name)

    assert f"in Dango's environment:  pip install getdango==1.0.13 {ROOT}\n" in out
    assert dango.sources_yml(entry, settings) in out
    (source,) = yaml.safe_load(dango.sources_yml(entry, settings))["sources"]
    native = source["dlt_native"]
    assert (source["name"], source["type"], source["enabled"]) == (entry.name, "dlt_native", True)
    assert (native["source_module"], native["source_function"]) == (
        entry.module,
        entry.source_function,
    )
    assert not set(native["function_kwargs"]) & set(entry.auth.all_secrets)
    assert not set(native["function_kwargs"]) & set(settings.secrets)
    rec = load_recording(entry.name)
    assert not any(value in out for value in rec.step_credentials(rec.steps[0]).values())


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_base_url_is_marked_for_replacing_or_left_out_when_the_source_has_a_default(
    entry: ConnectorEntry,
) -> None:
    settings = snippets.source_settings(entry)
    text = dango.sources_yml(entry, settings)
    marked = re.findall(rf"^ +base_url: (\S+)  {re.escape(dango.BASE_URL_MARK)}$", text, re.M)

    if "base_url" in settings.required_config:  # no default: the placeholder to replace
        assert entry.base_url is None
        assert [yaml.safe_load(value) for value in marked] == [snippets.PLACEHOLDER]
    else:
        assert marked == [] and "base_url" not in text


@pytest.mark.parametrize("entry", CATALOG.connectors, ids=CATALOG.names)
def test_only_a_source_dango_runs_as_full_refresh_allows_empty_syncs_and_says_why(
    capsys: pytest.CaptureFixture[str], entry: ConnectorEntry
) -> None:
    settings = snippets.source_settings(entry)
    (source,) = yaml.safe_load(dango.sources_yml(entry, settings))["sources"]
    full_refresh = replaces_a_table(built_source(entry))
    out = " ".join(show(capsys, entry.name).split())

    assert full_refresh == bool(dango.full_refresh_resources(entry))
    assert source.get("empty_sync_policy") == ("allow" if full_refresh else None)
    assert ("Sync would truncate 1 table(s) with existing data" in out) == full_refresh


def test_only_analytics_plain_resources_are_full_refreshes() -> None:
    """Of the connectors this repository ships (one added with `connectors new` has
    whatever its resource table says)."""
    shipped = ("crm", "analytics", "hubspot_contacts", "incident_analytics", "project_tracker")

    assert {name: dango.full_refresh_resources(CATALOG.get(name)) for name in shipped} == {
        "crm": [],
        "analytics": ["events", "page_views"],
        "hubspot_contacts": [],
        "incident_analytics": [],
        "project_tracker": [],
    }


def test_crm_site_merges_on_its_subdomain_and_stays_one_row_across_runs(
    pipeline: dlt.Pipeline,
) -> None:
    rec = load_recording("crm")
    assert not replaces_a_table(built_source(CATALOG.get("crm")))

    with rec.fake() as fake:
        for _ in range(2):
            source = rec.source(base_url=fake.base_url, **rec.credentials, **rec.offline_kwargs)
            run_source(pipeline, source.with_resources("site"))

    assert len(fake.requests_to("/api/v2/site")) == 2
    assert query(pipeline, "SELECT subdomain, name FROM site") == [("example", "Example Ltd")]
    site = pipeline.default_schema.get_table_columns("site")
    assert [name for name, column in site.items() if column.get("primary_key")] == ["subdomain"]
    assert pipeline.default_schema.get_table("site")["write_disposition"] == "merge"
