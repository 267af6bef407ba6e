"""hubspot_contacts against its fake server over real loopback HTTP: what a cassette
cannot replay (the 10,000-result search cap, rate limits and their 429s, bad credentials)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import dlt
import pytest
import requests

import connectors.hubspot_contacts as hubspot_contacts
from connectors.hubspot_contacts import hubspot_contacts_source, policy_window
from shared.errors import AuthenticationError, ConfigurationError, ConnectorError
from shared.loading import run_source
from shared.retries import RetryPolicy
from tests.dataset import columns, count, query
from tests.failures import root_cause
from tests.fakes.base import Fault
from tests.fakes.hubspot_contacts import (
    FAST,
    LIST_PATH,
    SEARCH_CAP,
    SEARCH_PATH,
    TOKEN,
    HubSpotContactsFake,
    epoch_ms,
    parse_stamp,
    stamp_ms,
)

pytestmark = pytest.mark.loopback


@pytest.fixture
def fake() -> Iterator[HubSpotContactsFake]:
    with HubSpotContactsFake() as server:
        yield server


def sync(pipeline: dlt.Pipeline, fake: HubSpotContactsFake, **kwargs: Any) -> None:
    source = hubspot_contacts_source(api_key=TOKEN, base_url=fake.base_url, **{**FAST, **kwargs})
    run_source(pipeline, source)


def statuses(fake: HubSpotContactsFake, path: str) -> list[int]:
    return [r.status for r in fake.requests if r.path == path]


def arrival_gaps(fake: HubSpotContactsFake, path: str) -> list[float]:
    times = [at for at, arrived in fake.arrivals if arrived == path]
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


def test_more_than_10000_changed_contacts_load_completely_by_restarting_the_search_window(
    pipeline: dlt.Pipeline,
) -> None:
    with HubSpotContactsFake(count=3) as fake:
        sync(pipeline, fake)
        added = fake.add_changed_contacts(10_450, per_stamp=3)
        started = time.monotonic()

        sync(pipeline, fake)

        elapsed = time.monotonic() - started
    expected = {c["id"] for c in fake.contacts if not c["archived"]}
    assert count(pipeline, "contacts") == len(expected) == 10_453
    assert {row[0] for row in query(pipeline, "SELECT id FROM contacts")} == expected
    assert set(added) <= expected
    assert query(pipeline, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM contacts") == [(0,)]

    bodies = fake.search_bodies()
    assert all(int(b.get("after", 0)) + b["limit"] <= SEARCH_CAP for b in bodies)
    assert set(statuses(fake, SEARCH_PATH)) == {200}
    starts = [b["filterGroups"][0]["filters"][0]["value"] for b in bodies if "after" not in b]
    assert len(starts) == 2  # one restart
    # the second window starts at the largest lastmodifieddate of the first 10,000 results
    first_window = sorted(
        (c for c in fake.contacts if epoch_ms(parse_stamp(c["updatedAt"])) >= int(starts[0])),
        key=lambda c: (epoch_ms(parse_stamp(c["updatedAt"])), int(c["id"])),
    )[:SEARCH_CAP]
    assert starts[1] == str(epoch_ms(parse_stamp(first_window[-1]["updatedAt"])))
    assert [int(b.get("after", 0)) for b in bodies[:50]] == list(range(0, SEARCH_CAP, 200))
    assert elapsed < 15


def test_a_window_that_cannot_advance_fails_clearly_instead_of_looping(
    pipeline: dlt.Pipeline, fake: HubSpotContactsFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a cap of 400 stands in for 10,000: more contacts than that share one lastmodifieddate
    monkeypatch.setattr(hubspot_contacts, "SEARCH_RESULT_CAP", 400)
    sync(pipeline, fake)
    fake.add_changed_contacts(450, per_stamp=450)

    with pytest.raises(Exception) as raised:
        sync(pipeline, fake)

    error = root_cause(raised.value, ConnectorError)
    assert "more than 400 contacts share lastmodifieddate" in str(error)
    # the first window (from the stored cursor) advances to the shared stamp; the second,
    # starting there, reaches the cap without getting past it
    bodies = fake.search_bodies()
    assert [int(b.get("after", 0)) for b in bodies] == [0, 200, 0, 200]
    shared_stamp = fake.contacts[-1]["properties"]["lastmodifieddate"]
    assert bodies[2]["filterGroups"][0]["filters"][0]["value"] == str(stamp_ms(shared_stamp))


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
    assert min(arrival_gaps(fake, SEARCH_PATH)) >= 0.2
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
