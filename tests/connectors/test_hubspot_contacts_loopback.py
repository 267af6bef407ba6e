"""hubspot_contacts against its fake server over real loopback HTTP: what a cassette
cannot replay (keyset searches past the 10,000-result cap and past contacts modified
mid-sync, the lagging search index and the lookback window, rate limits and their 429s,
bad credentials)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dlt
import pytest
import requests

import connectors.hubspot_contacts as hubspot_contacts
from connectors.hubspot_contacts import hubspot_contacts_source, policy_window
from connectors.sandbox.base import Fault
from connectors.sandbox.hubspot_contacts import (
    FAST,
    LIST_PATH,
    SEARCH_PATH,
    TOKEN,
    HubSpotContactsFake,
    parse_stamp,
    stamp_ms,
)
from shared.errors import AuthenticationError, ConfigurationError, ConnectorError
from shared.http.retries import RetryPolicy
from shared.loading import run_source
from tests.dataset import columns, count, query
from tests.failures import root_cause
from tests.pacing import recorded_pacing_waits

pytestmark = pytest.mark.loopback


@pytest.fixture
def fake() -> Iterator[HubSpotContactsFake]:
    with HubSpotContactsFake() as server:
        yield server


def sync(pipeline: dlt.Pipeline, fake: HubSpotContactsFake, **kwargs: Any) -> None:
    source = hubspot_contacts_source(api_key=TOKEN, base_url=fake.base_url, **{**FAST, **kwargs})
    run_source(pipeline, source)


def statuses(fake: HubSpotContactsFake, path: str) -> list[int]:
    """The statuses of the requests to `path` (the archived list apart)."""
    return [r.status for r in fake.requests if r.path == path and r.args.get("archived") != "true"]


def arrival_gaps(fake: HubSpotContactsFake, path: str) -> list[float]:
    """The gaps between arrivals at `path`. A pace is asserted on their sum, not gap by
    gap: on a loaded machine a request that reaches the server late shortens the next
    gap by as much, while the pace held."""
    times = [at for at, arrived in fake.arrivals if arrived == path]
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


def filter_value(body: dict[str, Any]) -> int:
    (group,) = body["filterGroups"]
    (condition,) = group["filters"]
    assert (condition["propertyName"], condition["operator"]) == ("lastmodifieddate", "GTE")
    return int(condition["value"])


def stored_cursor(pipeline: dlt.Pipeline) -> str:
    state = pipeline.state["sources"]["hubspot_contacts"]["resources"]["contacts"]
    return str(state["incremental"]["updated_at"]["last_value"])


def server_rows(fake: HubSpotContactsFake) -> dict[str, tuple[Any, ...]]:
    return {
        c["id"]: (c["properties"]["company"], parse_stamp(c["updatedAt"]))
        for c in fake.contacts
        if not c["archived"]
    }


def loaded_rows(pipeline: dlt.Pipeline) -> dict[str, tuple[Any, ...]]:
    rows = query(pipeline, "SELECT id, company, updated_at FROM contacts")
    return {row[0]: row[1:] for row in rows}


@pytest.mark.slow
def test_more_than_10000_changed_contacts_load_completely_by_keyset_searches_below_the_cap(
    pipeline: dlt.Pipeline,
) -> None:
    with HubSpotContactsFake(count=3) as fake:
        sync(pipeline, fake)
        cursor = stored_cursor(pipeline)
        added = fake.add_changed_contacts(10_450, per_stamp=3)
        started = time.monotonic()

        sync(pipeline, fake)

        elapsed = time.monotonic() - started
    expected = {c["id"] for c in fake.contacts if not c["archived"]}
    assert count(pipeline, "contacts") == len(expected) == 10_453
    assert {row[0] for row in query(pipeline, "SELECT id FROM contacts")} == expected
    assert set(added) <= expected
    assert query(pipeline, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM contacts") == [(0,)]

    # no `after` at all: every search starts `GTE` the largest lastmodifieddate the search
    # before returned (keyset), so the 10,000 cap is never near
    bodies = fake.search_bodies()
    assert set(statuses(fake, SEARCH_PATH)) == {200}
    assert all("after" not in body for body in bodies)
    assert filter_value(bodies[0]) == stamp_ms(cursor) - 60_000
    stamps = sorted(stamp_ms(c["updatedAt"]) for c in fake.contacts if not c["archived"])
    for before, body in zip(bodies, bodies[1:], strict=False):
        page = [s for s in stamps if s >= filter_value(before)][:200]
        assert filter_value(body) == page[-1]
    # 3 contacts a stamp: each search re-reads at most 2 of the one before
    assert len(bodies) <= 10_453 // 198 + 2
    assert elapsed < 15


@pytest.mark.slow
def test_one_stamp_shared_past_the_cap_fails_clearly_instead_of_looping(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a cap of 400 stands in for 10,000: more contacts than that share one lastmodifieddate
    monkeypatch.setattr(hubspot_contacts, "SEARCH_RESULT_CAP", 400)
    sync(pipeline, fake)
    fake.add_changed_contacts(450, per_stamp=450)
    shared_stamp = stamp_ms(fake.contacts[-1]["properties"]["lastmodifieddate"])

    with pytest.raises(Exception) as raised:
        sync(pipeline, fake)

    error = root_cause(raised.value, ConnectorError)
    assert str(error).startswith("hubspot_contacts: cannot page http://127.0.0.1:")
    assert str(error).endswith(
        f"more than 400 records share `properties.lastmodifieddate` {shared_stamp}, and the "
        "API's offset cap of 400 stops paging through them"
    )
    # the first search (from the stored cursor) moves on to the shared stamp; from there
    # the stamp is paged by offset until the next page would pass the cap
    bodies = fake.search_bodies()
    assert [(filter_value(b), b.get("after")) for b in bodies[1:]] == [
        (shared_stamp, None),
        (shared_stamp, "199"),
    ]
    assert set(statuses(fake, SEARCH_PATH)) == {200}


def test_contacts_modified_mid_sync_skip_no_contact_at_the_page_boundary(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake
) -> None:
    sync(pipeline, fake)
    changes = fake.change_for_second_run()
    newest = fake.newest_modified()
    # the fourth and fifth of the contacts changed since the first run: on the first page
    moved = [c for c in fake.contacts if c["id"] in changes["changed"][3:5]]
    # after the first search page, they change again: they move to the end of
    # lastmodifieddate order and the rest shift two places towards the start (an offset,
    # even one overlapping the page before by a contact, would skip one)
    fake.between_pages(
        SEARCH_PATH,
        after=1,
        action=lambda: [
            fake.modify(contact, newest + timedelta(minutes=5, seconds=k), company="Moved Co")
            for k, contact in enumerate(moved)
        ],
    )

    sync(pipeline, fake)

    # every contact loaded as the server holds it now (a skipped one would keep the
    # company of the first run), the moved ones once, in their newest copy; the contact
    # archived since keeps its row (the search never returns archived contacts)
    loaded = loaded_rows(pipeline)
    (archived,) = changes["archived"]
    assert set(loaded) - set(server_rows(fake)) == {archived}
    assert {i: row for i, row in loaded.items() if i != archived} == server_rows(fake)
    assert {loaded[contact["id"]][0] for contact in moved} == {"Moved Co"}
    assert len(fake.search_bodies()) == 2
    assert stored_cursor(pipeline) == moved[-1]["updatedAt"]


@pytest.mark.parametrize("lookback", [None, 30.0])
def test_later_searches_look_back_before_the_cursor_and_load_a_contact_the_index_hid(
    pipeline: dlt.Pipeline, lookback: float | None
) -> None:
    window = {} if lookback is None else {"search_lookback_seconds": lookback}
    with HubSpotContactsFake(count=20) as fake:
        sync(pipeline, fake, **window)
        newest = fake.newest_modified()
        # `late` is modified first but the index takes a second to show it; `prompt`,
        # modified a moment later, is searchable at once
        late = fake.create(newest + timedelta(seconds=1), index_lag=3600, company="Late Co")
        prompt = fake.create(newest + timedelta(seconds=2), company="Prompt Co")
        first_cursor = stored_cursor(pipeline)

        sync(pipeline, fake, **window)

        window_ms = int((lookback or 60.0) * 1000)
        assert filter_value(fake.search_bodies()[0]) == stamp_ms(first_cursor) - window_ms
        loaded = loaded_rows(pipeline)
        assert prompt["id"] in loaded and late["id"] not in loaded
        assert stored_cursor(pipeline) == prompt["updatedAt"]
        fake.index_catches_up()

        sync(pipeline, fake, **window)

    # the third run's search starts the lookback before `prompt`, so `late` is found
    assert filter_value(fake.search_bodies()[-1]) == stamp_ms(prompt["updatedAt"]) - window_ms
    assert loaded_rows(pipeline) == server_rows(fake)
    assert stored_cursor(pipeline) == prompt["updatedAt"]


def test_without_a_lookback_the_lagging_index_loses_a_contact_for_good(
    pipeline: dlt.Pipeline,
) -> None:
    # the fake's lag is real: a search from the stored cursor itself never finds `late`
    with HubSpotContactsFake(count=20) as fake:
        sync(pipeline, fake, search_lookback_seconds=0)
        newest = fake.newest_modified()
        late = fake.create(newest + timedelta(seconds=1), index_lag=3600)
        fake.create(newest + timedelta(seconds=2))
        sync(pipeline, fake, search_lookback_seconds=0)
        fake.index_catches_up()
        sync(pipeline, fake, search_lookback_seconds=0)

    assert late["id"] not in loaded_rows(pipeline)
    assert len(loaded_rows(pipeline)) == len(server_rows(fake)) - 1


def test_search_429_without_retry_after_waits_the_secondly_window_and_retries(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake
) -> None:
    sync(pipeline, fake)
    changes = fake.change_for_second_run()
    fake.inject(Fault(429, fake.rate_limit_body("SECONDLY"), path=SEARCH_PATH))

    sync(pipeline, fake)

    assert statuses(fake, SEARCH_PATH) == [429, 200, 200]
    retried, first = fake.search_bodies()[:2]
    assert retried == first
    # no Retry-After: the SECONDLY policy's 1 s window
    assert 0.95 <= arrival_gaps(fake, SEARCH_PATH)[0] < 3
    assert count(pipeline, "contacts") == 245 + len(changes["created"])


def test_ten_secondly_429_with_retry_after_waits_what_the_header_says(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake
) -> None:
    body = fake.rate_limit_body("TEN_SECONDLY_ROLLING")
    fake.inject(Fault(429, body, headers={"Retry-After": "1"}, path=LIST_PATH, after=1))

    sync(pipeline, fake)

    assert statuses(fake, LIST_PATH) == [200, 429, 200, 200]
    # Retry-After wins over the policy's 10 s window
    assert 0.95 <= arrival_gaps(fake, LIST_PATH)[1] < 5
    assert count(pipeline, "contacts") == 245


def test_ten_secondly_429_without_retry_after_waits_the_policy_window_bounded_by_max_retry_wait(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake
) -> None:
    fake.inject(Fault(429, fake.rate_limit_body("TEN_SECONDLY_ROLLING"), path=LIST_PATH))

    sync(pipeline, fake, max_retry_wait=2.0)

    assert statuses(fake, LIST_PATH) == [429, 200, 200, 200]
    # the policy's 10 s window capped at 2 s; the default first backoff (1 s) would come
    # back too early, and an uncapped wait far too late
    assert 1.9 <= arrival_gaps(fake, LIST_PATH)[0] < 4
    assert count(pipeline, "contacts") == 245


@pytest.mark.parametrize(
    ("policy", "seconds"), [("TEN_SECONDLY_ROLLING", 10.0), ("SECONDLY", 1.0), ("OTHER", None)]
)
def test_429_wait_is_the_window_of_the_policy_the_body_names(
    fake: HubSpotContactsFake, policy: str, seconds: float | None
) -> None:
    body = fake.rate_limit_body("SECONDLY") | {"policyName": policy}
    fake.inject(Fault(429, body, path=LIST_PATH))
    response = requests.get(
        f"{fake.base_url}{LIST_PATH}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )

    assert response.status_code == 429
    assert policy_window(response) == seconds
    default_wait = RetryPolicy(backoff_factor=1.0, max_wait=60.0, wait_hint=policy_window)
    assert default_wait.wait_seconds(response, 1) == (seconds if seconds is not None else 1.0)


def test_default_pacing_stays_under_both_rate_limits(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake
) -> None:
    fake.enforce_window(100, 10)
    fake.enforce_search_window(4, 1)
    run_source(pipeline, hubspot_contacts_source(api_key=TOKEN, base_url=fake.base_url))
    fake.add_changed_contacts(1_000)

    run_source(pipeline, hubspot_contacts_source(api_key=TOKEN, base_url=fake.base_url))

    assert fake.limited_responses == 0
    assert len(fake.search_bodies()) == 6
    # 4 per second with 10% headroom: sent 1 / 3.6 s apart (arrivals jitter a little)
    gaps = arrival_gaps(fake, SEARCH_PATH)
    assert sum(gaps) >= 0.2 * len(gaps)
    assert count(pipeline, "contacts") == 1_245


def test_401_names_the_api_key_config_key_and_not_the_key(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake
) -> None:
    wrong = "pat-na1-wrong-token-987654321"
    source = hubspot_contacts_source(api_key=wrong, base_url=fake.base_url, **FAST)

    with pytest.raises(Exception) as raised:
        run_source(pipeline, source)

    error = root_cause(raised.value, AuthenticationError)
    assert "`sources.hubspot_contacts.api_key`" in str(error)
    assert "401" in str(error)
    assert wrong not in str(error)
    assert statuses(fake, LIST_PATH) == [401]


def test_a_negative_lookback_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as raised:
        hubspot_contacts_source(
            api_key=TOKEN, base_url="https://api.hubapi.com", search_lookback_seconds=-5
        )
    assert str(raised.value) == (
        "hubspot_contacts: `search_lookback_seconds` must be 0 or more, got -5"
    )


def test_missing_api_key_is_a_configuration_error_naming_the_key() -> None:
    with pytest.raises(ConfigurationError, match=r"sources\.hubspot_contacts\.api_key"):
        hubspot_contacts_source(api_key="  ", base_url="https://api.hubapi.com")


def test_api_key_is_read_from_the_config_key_the_errors_name(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__HUBSPOT_CONTACTS__API_KEY", TOKEN)

    run_source(pipeline, hubspot_contacts_source(base_url=fake.base_url, **FAST))

    assert count(pipeline, "contacts") == 245
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in fake.requests)


def test_extra_properties_are_requested_and_land_as_columns(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake
) -> None:
    sync(pipeline, fake, extra_properties=["lifecyclestage", "hs_lead_status", "email"])

    (first, *_) = fake.requests_to(LIST_PATH)
    assert first.args["properties"].split(",")[-2:] == ["lifecyclestage", "hs_lead_status"]
    assert {"lifecyclestage", "hs_lead_status"} <= columns(pipeline, "contacts")
    expected = {c["id"]: c["properties"] for c in fake.contacts if not c["archived"]}
    loaded = query(pipeline, "SELECT id, lifecyclestage, hs_lead_status FROM contacts")
    assert {row[0]: row[1:] for row in loaded} == {
        i: (p["lifecyclestage"], p["hs_lead_status"]) for i, p in expected.items()
    }

    fake.change_for_second_run()
    sync(pipeline, fake, extra_properties=["lifecyclestage", "hs_lead_status"])

    assert fake.search_bodies()[0]["properties"][-2:] == ["lifecyclestage", "hs_lead_status"]


# -- pacing by the rolling budget the API reports (contract, "Rate limits") ----------------


def paced_sync(pipeline: dlt.Pipeline, fake: HubSpotContactsFake, **kwargs: Any) -> None:
    """A first sync (list pages only) at the source's own pace unless `kwargs` set one."""
    source = hubspot_contacts_source(api_key=TOKEN, base_url=fake.base_url, **kwargs)
    run_source(pipeline, source)


def list_times(fake: HubSpotContactsFake) -> list[float]:
    return [at for at, path in fake.arrivals if path == LIST_PATH]


def test_a_full_speed_burst_stops_at_a_lower_reported_windows_allowance(
    pipeline: dlt.Pipeline,
) -> None:
    with HubSpotContactsFake(count=2_000) as fake:
        fake.enforce_window(10, 1)  # and reported: 10 per 1 s, not the default 100 per 10 s

        paced_sync(pipeline, fake)

    # 20 list requests, twice what one window allows (at full speed they would all go
    # within a few tenths of a second): at full speed until the reserve (2 of 10), at most
    # 9 (the allowance with headroom) in any 1 s, never a 429
    assert len(list_times(fake)) == 20
    assert fake.limited_responses == 0
    assert count(pipeline, "contacts") == 1_960


def test_a_reported_budget_well_above_the_reserve_is_spent_without_pacing_waits(
    pipeline: dlt.Pipeline,
) -> None:
    # the fake reports 100 per 10 s, the contract's default
    with HubSpotContactsFake(count=1_000) as fake, recorded_pacing_waits() as pacing:
        paced_sync(pipeline, fake)

    # 10 requests, far fewer than the 80 above the reserve: spacing them at the window's
    # 90 per 10 s would have put 0.11 s between them
    assert len(list_times(fake)) == 10
    assert pacing.longer_than() == []
    assert count(pipeline, "contacts") == 980


def test_an_explicit_requests_per_ten_seconds_wins_over_the_reported_budget(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake
) -> None:
    fake.reported_budget = (1_000, 10.0)

    paced_sync(pipeline, fake, requests_per_ten_seconds=20)

    gaps = arrival_gaps(fake, LIST_PATH)
    assert len(gaps) == 2 and sum(gaps) >= 0.45 * len(gaps)  # 20 per 10 s with headroom: 0.56 s


def test_hostile_rolling_budget_headers_fall_back_to_the_default_once(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake, caplog: pytest.LogCaptureFixture
) -> None:
    fake.budget_headers = {
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "99",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "-10000",
    }

    with caplog.at_level(logging.INFO, logger="shared.http.session"):
        paced_sync(pipeline, fake)

    gaps = arrival_gaps(fake, LIST_PATH)
    assert len(gaps) == 2 and sum(gaps) >= 0.08 * len(gaps)  # the default 100 per 10 s: 0.111 s
    lines = [r.getMessage() for r in caplog.records if "rate-limit headers" in r.getMessage()]
    assert lines == [
        "hubspot_contacts: ignoring the rate-limit headers of the API "
        "(X-HubSpot-RateLimit-Interval-Milliseconds '-10000' is not a number of 0 or more); "
        "pacing at the default 100 requests per 10 s instead"
    ]
