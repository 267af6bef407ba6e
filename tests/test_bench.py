"""The benchmark harness (`make bench`): its variants at a few hundred rows against the
bench servers, its process plumbing, and how the report judges the targets."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
import requests

import bench
from bench import __main__ as bench_main
from bench import figures, variants
from bench.cases import CASES, UNPACED
from bench.measure import Measurement, VariantFailed, serving
from bench.report import ConnectorResult, Peer, Settings, SmallSync, median_run, render
from bench.servers import SERVERS, tracker_story
from connectors.sandbox import crm, hubspot_contacts, incident_analytics

ROWS = 500

#: the child tables each default path makes from ROWS records, counted from the records
CHILD_TABLES: dict[str, dict[str, int]] = {
    "crm": {
        "parties__email_addresses": sum(
            len(crm.make_party(i)["emailAddresses"]) for i in range(ROWS)
        ),
        "parties__phone_numbers": sum(len(crm.make_party(i)["phoneNumbers"]) for i in range(ROWS)),
        "parties__fields": sum(len(crm.make_party(i)["fields"]) for i in range(ROWS)),
        "parties__addresses": sum(len(crm.make_party(i)["addresses"]) for i in range(ROWS)),
    },
    "analytics": {},
    "incident_analytics": {
        "alerts__tags": sum(len(incident_analytics.make_alert(i, 1)["tags"]) for i in range(ROWS)),
        "alerts__responders": sum(
            len(incident_analytics.make_alert(i, 1)["responders"]) for i in range(ROWS)
        ),
    },
    "project_tracker": {
        f"groups_stories__{key}": sum(len(tracker_story(i)[key]) for i in range(ROWS))
        for key in ("labels", "owner_ids", "follower_ids")
    },
    "hubspot_contacts": {},
}


#: the path of each benchmarked resource's list
def listing_requests(server: Any, connector: str) -> list[Any]:
    """The requests for the connector's benchmarked list (not for its deletions: crm's
    `/deleted` feeds, HubSpot's archived list)."""
    return [
        request
        for request in server.requests_to(PATHS[connector])
        if "/deleted" not in request.path and request.args.get("archived") != "true"
    ]


PATHS = {
    "crm": "/api/v2/parties",
    "analytics": "/v1/events",
    "incident_analytics": "/v2/alerts",
    "project_tracker": "/stories",
    "hubspot_contacts": "/crm/v3/objects/contacts",
}


#: the connectors `make test` runs both ways (the bench itself runs them all)
FAST_BENCH = {"crm", "incident_analytics"}


@pytest.mark.parametrize(
    "connector",
    [c if c in FAST_BENCH else pytest.param(c, marks=pytest.mark.slow) for c in sorted(CASES)],
)
def test_raw_loop_and_default_path_load_every_record_paging_alike(
    connector: str, tmp_path: Path
) -> None:
    case = CASES[connector]
    for workdir in ("raw", "default"):
        (tmp_path / workdir).mkdir()
    with SERVERS[connector](ROWS) as server:
        raw = variants.raw(connector, server.base_url, tmp_path / "raw")
        raw_requests = len(listing_requests(server, connector))
        default = variants.default(connector, server.base_url, tmp_path / "default")
        default_requests = len(listing_requests(server, connector)) - raw_requests

    assert raw["rows"] == ROWS
    assert raw["tables"] == {case.resource: ROWS}
    assert default["rows"] == ROWS
    assert default["tables"] == {case.resource: ROWS, **CHILD_TABLES[connector]}
    assert raw["seconds"] > 0 and default["seconds"] > 0
    # the raw loop pages as the connector does: the same requests for the same records
    assert raw_requests == default_requests
    assert raw_requests >= 2  # more than one page


def test_the_hubspot_bench_server_archived_no_contact_and_lists_every_one() -> None:
    # an archived list that served every contact made each sync read the list twice and
    # hold every key as a deletion "while the sync paged": the figures measured that
    url = "/crm/v3/objects/contacts"
    headers = {"Authorization": f"Bearer {hubspot_contacts.TOKEN}"}
    with SERVERS["hubspot_contacts"](ROWS) as server:
        listed = requests.get(server.base_url + url, params={"limit": 100}, headers=headers)
        archived = requests.get(
            server.base_url + url, params={"limit": 100, "archived": "true"}, headers=headers
        )

    assert [c["id"] for c in listed.json()["results"]] == [str(i) for i in range(1, 101)]
    assert archived.status_code == 200
    assert archived.json() == {"results": []}


def test_keyset_paging_reads_each_boundary_alert_twice_and_loads_it_once(tmp_path: Path) -> None:
    with SERVERS["incident_analytics"](ROWS) as server:
        raw = variants.raw("incident_analytics", server.base_url, tmp_path)
        queries = [request.args["query"] for request in server.requests_to("/v2/alerts")]

    # 100 a page; every page restarts at the last alert's millisecond (one alert each)
    first = incident_analytics.millis(incident_analytics.EPOCH)
    assert queries == ["updatedAt>=0"] + [f"updatedAt>={first + 99 * k}" for k in range(1, 6)]
    assert raw["tables"] == {"alerts": ROWS}


def test_the_default_path_turns_every_pacing_argument_off() -> None:
    assert CASES["crm"].unpaced() == {"requests_per_minute": UNPACED}
    assert CASES["hubspot_contacts"].unpaced() == {
        "requests_per_ten_seconds": UNPACED,
        "search_requests_per_second": UNPACED,
    }


@pytest.mark.slow  # a served fake and a variant process (~10 s)
def test_a_variant_runs_in_its_own_process_against_a_served_fake() -> None:
    with serving("analytics", "--rows", "250", "--keep") as served:
        measured = bench_main.variant("analytics", "raw", served.base_url)

    assert measured.name == "analytics raw"
    assert measured.rows == 250
    assert measured.result["tables"] == {"events": 250}
    assert measured.peak_rss_mb > 10  # the child's own peak
    # offset paging, 100 a page until a short page
    assert served.stats == {"requests": 3, "rate_limited": 0}
    with pytest.raises(VariantFailed, match="analytics raw loaded 250 rows of 300"):
        bench_main.checked(measured, 300)


@pytest.mark.slow  # a forked process measured
def test_a_variants_peak_is_its_own_not_the_benchmarks_memory_at_the_fork() -> None:
    # Linux keeps ru_maxrss across fork and exec: a child of a 600 MB process "peaks"
    # at 600 MB by that measure, whatever it does
    ballast = b"x" * (600 * 1024 * 1024)
    with serving("analytics", "--rows", "250", "--keep") as served:
        measured = bench_main.variant("analytics", "raw", served.base_url)

    assert len(ballast) == 600 * 1024 * 1024
    assert measured.rows == 250
    assert 10 < measured.peak_rss_mb < 400
    assert measured.peak_rss_mb == measured.result["peak_rss_mb"]


def test_the_paced_sync_result_must_carry_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in = types.ModuleType("bench.paced_sync")
    stand_in.measure = lambda workdir: {"requests": 1000, "429s": 0}  # type: ignore[attr-defined]
    # both where `from bench import paced_sync` looks: the package, then sys.modules
    monkeypatch.setattr(bench, "paced_sync", stand_in, raising=False)
    monkeypatch.setitem(sys.modules, "bench.paced_sync", stand_in)

    outcome = bench_main.measure_paced()

    assert isinstance(outcome, str)
    assert outcome.startswith(
        "Failed: `bench.paced_sync.measure` returned no seconds, bound_seconds, ratio, "
        "budget, description"
    )


def run(name: str, rows: int, seconds: float, peak: float, **result: Any) -> Measurement:
    return Measurement(name, {"rows": rows, "seconds": seconds, "tables": {}, **result}, peak)


def test_the_median_run_takes_the_median_seconds_and_keeps_every_peak() -> None:
    median = median_run([run("d", 10, 3.0, 300), run("d", 10, 1.0, 250), run("d", 10, 2.0, 280)])

    assert median.seconds == 2.0
    assert median.peak_rss_mb == 300
    assert median.result["peaks"] == [300, 250, 280]
    assert median.result["runs"] == 3


def test_the_report_judges_every_target_of_every_connector() -> None:
    crm_result = ConnectorResult("crm", "parties", "pages", 100_000, 1_000_000)
    crm_result.default = median_run(
        [
            run("crm default", 100_000, s, p, extract_seconds=s - 4, load_seconds=4.0)
            for s, p in ((10.0, 300), (11.0, 320), (9.0, 310))
        ]
    )
    crm_result.raw = median_run([run("crm raw", 100_000, 5.0, 500)])
    crm_result.merged = median_run(
        [run("crm merged", 100_000, 12.0, 330, extract_seconds=6.0, load_seconds=6.0)]
    )
    crm_result.large = run("crm default", 1_000_000, 100.0, 350)
    events = ConnectorResult("analytics", "events", "pages", 100_000, 1_000_000)
    events.default = median_run([run("analytics default", 100_000, 6.0, 200)])
    events.raw = median_run([run("analytics raw", 100_000, 9.0, 180)])
    events.large = run("analytics default", 1_000_000, 60.0, 500)
    alerts = ConnectorResult("incident_analytics", "alerts", "pages", 100_000, 1_000_000)
    alerts.raw = median_run([run("incident_analytics raw", 100_000, 4.0, 190)])
    alerts.errors.append("incident_analytics default exited with 1: boom")
    paced = {
        "requests": 1200,
        "429s": 2,
        "seconds": 36.0,
        "bound_seconds": 30.0,
        "ratio": 1.2,
        "budget": "1,200 requests a minute",
        "description": "crm against a budget.",
    }

    text = render({"cores": "2"}, Settings(3, None), [crm_result, events, alerts], paced, "n/a")

    # crm: 10,000 rows/s (median 10 s) vs 20,000 raw; 310 MB median at 100k, 350 MB at 1M
    assert (
        "| `crm` `parties` | 10,000 | 20,000 | 0.50x, **not met** | 310 | 350 | 350, met "
        "| +13%, met |" in text
    )
    # analytics: 16,667 vs 11,111 rows/s; 200 MB, then 500 MB
    assert (
        "| `analytics` `events` | 16,667 | 11,111 | 1.50x, met | 200 | 500 "
        "| 500, **not met** | +150%, **not met** |" in text
    )
    assert "| `incident_analytics` `alerts` | — | 25,000 | — | — | — | — | — |" in text
    assert (
        "- default path at least 0.6x the raw loop: met by 1 of 3 (analytics); "
        "not met by crm; not measured for incident_analytics" in text
    )
    assert (
        "- peak RSS growing less than 25% from 100,000 to 1,000,000 rows: met by 1 of 3 "
        "(crm); not met by analytics; not measured for incident_analytics" in text
    )
    assert "- `incident_analytics`: incident_analytics default exited with 1: boom" in text
    assert "| 1,200 | 2 | 36.00 | 30.00 | 1.20 | 1,200 requests a minute |" in text
    assert "- within 1.15x of the bound: 1.20x, **not met**" in text
    assert "- zero 429s: 2, **not met**" in text
    assert "The default-path runs used the catalog's DuckDB settings" in text
    assert "`memory_limit` 128MB, `threads` 1" in text
    # the run's seconds split into extract and load, where the variant reported them
    assert "| `crm` | default, median of 3 | 100,000 | 10.00 | 6.00 | 4.00 | 10,000 |" in text
    assert "| `crm` | raw loop, median of 3 | 100,000 | 5.00 | — | — | 20,000 |" in text
    # crm may take 5 s / 0.6 = 8.33 s; its load step alone took 4 s of them
    assert (
        "| `crm` | merged (dlt's staging merge), median of 3 | 100,000 | 12.00 | 6.00 | 6.00 "
        "| 8,333 |" in text
    )
    assert (
        "`crm` 4.00 s of its 8.33 s budget (48%; 6.00 s through dlt's staging merge), "
        "leaving its extract 4.33 s against the raw loop's 5.00 s for everything" in text
    )


@pytest.mark.slow  # dlt's insert_values path: 5 s for 500 parties
def test_the_peer_and_the_source_as_shipped_load_the_same_tables(tmp_path: Path) -> None:
    for workdir in ("ours", "peer"):
        (tmp_path / workdir).mkdir()
    with SERVERS["crm"](ROWS) as server:
        server.enforce_budget(4000, 3600.0)  # the real API's budget: shipped pacing reads it
        ours = variants.as_shipped("crm", server.base_url, tmp_path / "ours")
        peer = variants.dlt_rest_api("crm", server.base_url, tmp_path / "peer")
        limited = server.limited_responses

    assert ours["pacing"] == {}  # every default, pacing included
    assert peer["tables"] == ours["tables"] == {"parties": ROWS, **CHILD_TABLES["crm"]}
    assert limited == 0


def test_the_report_judges_the_small_sync_and_shows_the_peer() -> None:
    small = SmallSync(
        paced=run("crm paced", 900, 3.3, 200, pacing_waits=2, pacing_wait_seconds=0.02),
        unpaced=run("crm unpaced", 900, 2.0, 200),
        requests=93,
        rate_limited=0,
        budget="4,000 requests per 3,600 s",
    )
    peer = Peer(
        ours=run("ours", 10_000, 2.0, 300),
        peer=run("peer", 10_000, 16.0, 1200),
        resource="parties",
        budget="4,000 requests per 3,600 s",
    )

    text = render({"cores": "2"}, Settings(3, None), [], "n/a", "n/a", small, peer)

    assert "| default pacing | 3.30 | 2 | 0.02 | 900 |" in text
    assert "- default pacing within 1.5x of pacing off: 1.65x, **not met**" in text
    assert "| the catalog's `crm_source`, as shipped | 2.00 | 5,000 | 300 |" in text
    assert "| dlt's `rest_api_source`, as a user configures it | 16.00 | 625 | 1,200 |" in text
    assert "- the catalog's default path against the peer: 8.0x its rows/s" in text


def test_the_figures_plot_the_reports_numbers_and_leave_out_what_failed() -> None:
    crm_result = ConnectorResult("crm", "parties", "pages", 100_000, 1_000_000)
    crm_result.default = median_run([run("d", 100_000, 8.0, 350), run("d", 100_000, 10.0, 340)])
    crm_result.raw = median_run([run("r", 100_000, 4.0, 430), run("r", 100_000, 5.0, 420)])
    crm_result.large = run("d", 1_000_000, 80.0, 390)
    failed = ConnectorResult("analytics", "events", "pages", 100_000, 1_000_000)
    failed.errors.append("analytics default: exit 1")
    peer = Peer(
        ours=run("ours", 10_000, 2.0, 300),
        peer=run("peer", 10_000, 16.0, 1200),
        resource="parties",
        budget="4,000 requests per 3,600 s",
    )

    data = figures.series([crm_result, failed], peer)

    # medians: 100,000 rows in 9.0 s and in 4.5 s
    assert data.throughput == {"crm": (100_000 / 9.0, 100_000 / 4.5)}
    assert data.memory == {"crm": [(100_000, 345.0), (1_000_000, 390)]}
    assert data.peer == [
        ("crm parties, as shipped", 5_000.0),
        ("crm parties, dlt rest_api_source", 625.0),
    ]
    assert figures.series([crm_result], "Not run (`--skip peer`).").peer == []


def test_the_report_shows_the_figures_beside_it_after_the_machine() -> None:
    report = Path("out/BENCHMARKS.md")
    shown = figures.markdown(report)

    text = render({"cores": "2"}, Settings(3, None), [], "n/a", "n/a", figures=shown)

    assert figures.figure_paths(report) == [
        Path("out/BENCHMARKS-rows-per-second.png"),
        Path("out/BENCHMARKS-peak-memory.png"),
    ]
    assert (
        "![rows per second: default path, raw loop and the peer](BENCHMARKS-rows-per-second.png)"
        in text
    )
    assert "![peak memory against rows loaded](BENCHMARKS-peak-memory.png)" in text
    assert text.index("## Machine") < text.index("## Figures") < text.index("## 2.")
