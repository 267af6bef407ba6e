"""crm against its fake server over real loopback HTTP: the behaviour a cassette cannot
replay (rate limits, faults, timing, foreign origins)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from itertools import pairwise

import dlt
import pytest

from connectors.crm import crm_source
from connectors.sandbox.base import Fault
from connectors.sandbox.crm import TOKEN, CrmFake
from shared.errors import (
    AuthenticationError,
    ForeignOriginError,
    RequestFailedError,
    ResponseTooLargeError,
)
from shared.loading import run_source
from shared.rest.builder import MAX_TABLE_NESTING
from tests.dataset import count, query
from tests.failures import root_cause
from tests.pacing import recorded_pacing_waits

FAST = {"requests_per_minute": 60_000}


@pytest.fixture
def fake() -> Iterator[CrmFake]:
    with CrmFake() as server:
        yield server


def sync(pipeline: dlt.Pipeline, fake: CrmFake, *resources: str, **kwargs: object) -> None:
    source = crm_source(bearer_token=TOKEN, base_url=fake.base_url, **{**FAST, **kwargs})
    if resources:
        source = source.with_resources(*resources)
    run_source(pipeline, source)


PARTIES = "/api/v2/parties"  # the list, not its deleted feed


def test_429_without_retry_after_waits_for_the_rate_limit_reset(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    fault_headers = fake.rate_limit_fault_headers(reset_in=1.5)
    fake.inject(Fault(429, {"error": "rate limit reached"}, fault_headers, path="/api/v2/users"))

    # a 30 s backoff: only the X-RateLimit-Reset header can make the retry come sooner
    sync(pipeline, fake, "users", backoff_factor=30)

    users = fake.requests_to("/api/v2/users")
    assert [r.status for r in users] == [429, 200, 200]
    assert "Retry-After" not in fault_headers
    # the header names the reset second (1.5 s ahead, truncated to a whole second), and the
    # retry waits a second past it (a server may round its reset down)
    assert 0.45 <= users[1].at - users[0].at <= 3.5
    assert count(pipeline, "users") == 120


def test_503_burst_in_the_middle_of_paging_is_retried_without_losing_a_page(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    fake.inject(Fault(503, {"message": "busy"}, path="/api/v2/parties", after=1, times=3))

    sync(pipeline, fake, "parties", backoff_factor=0.05)

    parties = [r for r in fake.requests_to("/api/v2/parties") if r.path == "/api/v2/parties"]
    assert [r.status for r in parties] == [200, 503, 503, 503, 200, 200]
    assert [r.args.get("page") for r in parties[1:5]] == ["2"] * 4
    waits = [later.at - earlier.at for earlier, later in pairwise(parties[1:5])]
    assert waits[0] >= 0.04 and waits[1] >= 0.09 and waits[2] >= 0.19  # 0.05, 0.1, 0.2
    assert count(pipeline, "parties") == 260
    assert query(pipeline, "SELECT COUNT(DISTINCT id) FROM parties") == [(260,)]


def test_persistent_5xx_fails_with_a_clear_error_after_the_retries(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    fake.inject(Fault(502, {"message": "bad gateway"}, path="/api/v2/stages", times=10))

    with pytest.raises(Exception) as raised:
        sync(pipeline, fake, "stages", max_retries=2, backoff_factor=0.01)

    error = root_cause(raised.value, RequestFailedError)
    assert error is not None and error.status_code == 502
    assert "crm: resource `stages`" in str(error)
    assert "502" in str(error) and "after 3 attempt(s)" in str(error)
    assert len(fake.requests_to("/api/v2/stages")) == 3


def test_401_fails_at_once_naming_the_secret_key_without_the_token(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    wrong = "wrong-token-abcdef0123456789"
    source = crm_source(bearer_token=wrong, base_url=fake.base_url, **FAST)

    with pytest.raises(Exception) as raised:
        run_source(pipeline, source.with_resources("users"))

    error = root_cause(raised.value, AuthenticationError)
    assert error is not None
    message = str(error)
    assert "crm: resource `users`" in message and "401" in message
    assert "sources.crm.bearer_token" in message and "SOURCES__CRM__BEARER_TOKEN" in message
    assert wrong not in message and wrong not in str(raised.value)
    assert len(fake.requests_to("/api/v2/users")) == 1  # not retried


def test_vanished_organisation_is_skipped_with_a_warning_and_the_sync_goes_on(
    pipeline: dlt.Pipeline, fake: CrmFake, caplog: pytest.LogCaptureFixture
) -> None:
    fake.vanished = {1000, 1004}

    with caplog.at_level(logging.WARNING):
        sync(pipeline, fake, "parties", "employees")

    people_calls = fake.requests_to("/people")
    assert len(people_calls) == 65
    assert sorted(r.status for r in people_calls).count(404) == 2
    assert count(pipeline, "employees") == 130 - 4
    assert query(
        pipeline, "SELECT COUNT(*) FROM employees WHERE organisation_id IN (1000, 1004)"
    ) == [(0,)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("/api/v2/parties/1000/people" in w and "skipping" in w for w in warnings)


def test_next_link_to_a_foreign_origin_is_refused_and_never_sees_the_token(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    with CrmFake() as foreign:
        foreign_origin = fake.next_link_origin = foreign.origin

        with pytest.raises(Exception) as raised:
            sync(pipeline, fake, "users")

        assert foreign.requests == []
    error = root_cause(raised.value, ForeignOriginError)
    assert error is not None
    assert foreign_origin in str(error)
    assert TOKEN not in str(raised.value)
    # the first page did go to base_url, with the token
    (first,) = fake.requests_to("/api/v2/users")
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"


def test_missing_token_is_a_configuration_error_naming_the_key() -> None:
    from shared.errors import ConfigurationError

    with pytest.raises(Exception) as raised:
        crm_source(bearer_token="", base_url="https://api.example.com")
    error = root_cause(raised.value, ConfigurationError)
    assert error is not None and "sources.crm.bearer_token" in str(error)


def test_token_is_read_from_dlt_secrets_under_the_crm_section(
    pipeline: dlt.Pipeline, fake: CrmFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CRM__BEARER_TOKEN", TOKEN)
    monkeypatch.setenv("SOURCES__CRM__BASE_URL", fake.base_url)

    run_source(pipeline, crm_source(**FAST).with_resources("stages"))

    assert count(pipeline, "stages") == 5
    assert fake.requests_to("/api/v2/stages")[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_requests_are_paced_under_requests_per_minute(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    sync(pipeline, fake, "users", "tasks", "stages", requests_per_minute=300)

    times = sorted(r.at for r in fake.requests)
    gaps = [b - a for a, b in pairwise(times)]
    # 300/min with 10% headroom: one request every 0.222 s
    assert len(times) == 5
    assert sum(gaps) >= 0.2 * len(gaps)


# -- pacing by the budget the API reports (contract, "Rate limit") -------------------------


def budget_sync(pipeline: dlt.Pipeline, fake: CrmFake, *resources: str, **kwargs: object) -> None:
    """A sync at the source's own pace (no `requests_per_minute` unless given)."""
    source = crm_source(bearer_token=TOKEN, base_url=fake.base_url, **kwargs)  # type: ignore[arg-type]
    if resources:
        source = source.with_resources(*resources)
    run_source(pipeline, source)


def most_in_any(moments: list[float], seconds: float) -> int:
    """The most of `moments` inside any half-open window of `seconds`."""
    moments = sorted(moments)
    return max(
        sum(1 for later in moments[i:] if later - start < seconds)
        for i, start in enumerate(moments)
    )


@pytest.mark.slow  # a whole paced sync (~10 s)
def test_a_large_reported_budget_is_spent_at_full_speed_without_pacing_waits(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    # the real API's budget, nearly all of it left: 3,999 of 4,000 for the hour
    fake.enforce_budget(4000, 3600.0)

    with recorded_pacing_waits() as pacing:
        budget_sync(pipeline, fake)

    # a full sync (with employees requested concurrently) needs far less than the 3,199
    # above the reserve: spreading 3,999 over the hour would put 0.9 s between requests
    assert len(fake.requests) >= 90
    assert fake.limited_responses == 0
    assert pacing.longer_than() == []
    assert count(pipeline, "parties") == 260 and count(pipeline, "users") == 120


def test_a_budget_at_the_reserve_is_spread_to_the_reset_with_no_429(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    budget = fake.enforce_budget(100, 10.0)  # the window starts with the sync's first request

    def another_client_spends_the_budget() -> None:
        for _ in range(85):
            budget.take()

    fake.between_pages("/api/v2/users", 1, another_client_spends_the_budget)

    with recorded_pacing_waits() as pacing:
        budget_sync(pipeline, fake, "users", "stages", "pipelines", "milestones")

    # the second request left at full speed (99 left when it went); its answer reports 14,
    # under the reserve (20): the rest are spread over what is left of the 10 s window,
    # 0.6 s apart or more, where a budget above the reserve sends them at once. Measured
    # where the server saw them: a wait is scheduled shorter when its thread asks late (a
    # busy machine), the spacing of the requests is not
    assert fake.limited_responses == 0
    times = sorted(r.at for r in fake.requests)
    spread = [b - a for a, b in pairwise(times[1:])]
    assert len(spread) == 3 and sum(spread) >= 0.3 * len(spread)
    assert len(pacing.longer_than()) >= 3  # the pacing spread them, not a slow server
    assert count(pipeline, "users") == 120


def test_a_budget_dropping_mid_sync_switches_from_full_speed_to_pacing(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    budget = fake.enforce_budget(200, 10.0)
    dropped: list[float] = []

    def another_client_spends_the_budget() -> None:
        dropped.append(time.time())
        for _ in range(160):  # 39 of 200 left: under the reserve (40)
            budget.take()

    fake.between_pages("/api/v2/users", 1, another_client_spends_the_budget)

    with recorded_pacing_waits() as pacing:
        budget_sync(pipeline, fake, "users", "stages", "pipelines", "milestones", "categories")

    assert fake.limited_responses == 0
    (drop,) = dropped
    waits = pacing.longer_than()
    # at full speed until the drop; the request already let through before its answer
    # came goes too, and every later one waits its share of the 38 left over about 10 s
    assert all(at > drop for at, _ in waits)
    later = sorted(r.at for r in fake.requests if r.at > drop)
    assert len(later) == 5 and len(waits) >= len(later) - 2
    gaps = [b - a for a, b in pairwise(later[1:])]
    assert sum(gaps) >= 0.1 * len(gaps)
    assert count(pipeline, "users") == 120


@pytest.mark.slow  # windows of a real budget (~12 s)
def test_a_small_budget_is_spent_window_after_window_with_no_429(
    pipeline: dlt.Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    with CrmFake() as fake:
        # the server's clock an hour behind ours: its resets are read on its clock
        fake.clock_offset = -3600
        fake.enforce_budget(40, 2.0)

        with caplog.at_level(logging.INFO, logger="shared.http.session"):
            budget_sync(pipeline, fake)

    times = sorted(r.at for r in fake.requests)
    n = len(times)
    assert n >= 90
    assert fake.limited_responses == 0
    assert [r.status for r in fake.requests].count(429) == 0
    assert count(pipeline, "parties") == 260 and count(pipeline, "employees") == 130
    # spending the budget: near 20 a second, far from the default 66 a minute (85 s)
    bound = n * 2.0 / 40
    assert bound - 2.0 <= times[-1] - times[0] <= 4 * bound
    notices = [r.getMessage() for r in caplog.records if "X-RateLimit-Remaining" in r.getMessage()]
    assert notices and notices[0].startswith("crm: the API reports 39 of 40 requests left ")
    assert "full speed while more than 8 remain (20% in reserve)" in notices[0]
    assert any("the reserve (20% of the limit): spreading them" in line for line in notices)


def test_an_explicit_requests_per_minute_wins_over_the_reported_budget(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    budget_sync(pipeline, fake, "users", "stages", requests_per_minute=100)

    gaps = [b - a for a, b in pairwise(sorted(r.at for r in fake.requests))]
    # 100 a minute with headroom: 0.67 s apart, though the headers allow 16 a second
    # (arrivals jitter under load: a generous margin)
    assert len(gaps) == 2 and sum(gaps) >= 0.55 * len(gaps)


def test_without_budget_headers_the_default_pace_applies(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    fake.budget_headers = False

    budget_sync(pipeline, fake, "users", "stages")

    gaps = [b - a for a, b in pairwise(sorted(r.at for r in fake.requests))]
    assert len(gaps) == 2 and sum(gaps) >= 0.75 * len(gaps)  # 66 a minute with headroom: 0.91 s


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        (
            {"X-RateLimit-Limit": "4000", "X-RateLimit-Remaining": "-20", "X-RateLimit-Reset": "N"},
            "X-RateLimit-Remaining '-20' is not a count of requests",
        ),
        pytest.param(
            {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "9000", "X-RateLimit-Reset": "1"},
            "X-RateLimit-Remaining 9000 is more than X-RateLimit-Limit 10",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            {"X-RateLimit-Limit": "99", "X-RateLimit-Remaining": "98", "X-RateLimit-Reset": "12"},
            "X-RateLimit-Reset '12' is in the past",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_hostile_budget_headers_fall_back_to_the_default_pace_said_once(
    pipeline: dlt.Pipeline,
    fake: CrmFake,
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str],
    why: str,
) -> None:
    fake.budget_headers = headers

    with caplog.at_level(logging.INFO, logger="shared.http.session"):
        budget_sync(pipeline, fake, "users", "stages")

    gaps = [b - a for a, b in pairwise(sorted(r.at for r in fake.requests))]
    assert len(gaps) == 2 and sum(gaps) >= 0.75 * len(
        gaps
    )  # the default pace (0.91 s), never faster
    lines = [r.getMessage() for r in caplog.records if "rate-limit headers" in r.getMessage()]
    assert lines == [
        f"crm: ignoring the rate-limit headers of the API ({why}); pacing at the default "
        "66 requests per 60 s instead"
    ]
    assert count(pipeline, "users") == 120


def test_a_429_waits_for_the_reset_on_the_servers_clock(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    fake.clock_offset = 3600  # the server's clock an hour ahead of ours
    headers = {
        "X-RateLimit-Limit": "4000",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": lambda: str(int(fake.server_time() + 1.5)),
    }
    fake.inject(Fault(429, {"error": "rate limit reached"}, headers, path="/api/v2/stages"))

    # on our clock the reset would be an hour away (waits capped at 30 s here)
    sync(pipeline, fake, "stages", max_rate_limit_wait=30)

    stages = fake.requests_to("/api/v2/stages")
    assert [r.status for r in stages] == [429, 200]
    assert 0.45 <= stages[1].at - stages[0].at <= 5.0
    assert count(pipeline, "stages") == 5


def test_an_empty_page_that_still_links_on_is_followed_and_every_later_row_loads(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    def same_page_again() -> str:
        # the empty answer to page 2 links on to page 2 itself: the real page comes next
        asked = fake.requests_to("/api/v2/parties")[-1]
        return f'<{fake.base_url}/api/v2/parties?{asked.url_query}>; rel="next"'

    fake.inject(
        Fault(200, {"parties": []}, {"Link": same_page_again}, path="/api/v2/parties", after=1)
    )

    sync(pipeline, fake, "parties")

    pages = [r.args.get("page") for r in fake.requests_to("/api/v2/parties") if r.path == PARTIES]
    assert pages == [None, "2", "2", "3"]
    assert query(pipeline, "SELECT COUNT(DISTINCT id) FROM parties") == [(260,)]


def test_a_party_nested_two_hundred_levels_deep_loads_with_its_depth_bounded(
    pipeline: dlt.Pipeline, fake: CrmFake
) -> None:
    deep: dict[str, object] = {"note": "bottom"}
    for _ in range(100):  # 200 levels of JSON: lists in objects in lists ...
        deep = {"entries": [deep]}
    fake.record("parties", 1001)["history"] = deep

    sync(pipeline, fake, "parties")

    assert count(pipeline, "parties") == 260
    deepest = [t for t in pipeline.default_schema.data_table_names() if "history" in t]
    # one child table a level for MAX_TABLE_NESTING (8) levels, the `history` dict one of
    # them (`parties__history__entries`), then the rest as JSON in the deepest one
    assert sorted(deepest, key=len) == [
        "parties__history" + "__entries" * level for level in range(1, MAX_TABLE_NESTING + 1)
    ]
    assert all(len(name) < 200 for name in deepest)
    bottom = max(deepest, key=len)
    ((rest,),) = query(pipeline, f'SELECT "entries" FROM {bottom} WHERE "entries" IS NOT NULL')
    assert '"note":"bottom"' in str(rest).replace(" ", "")


def test_a_body_over_the_sources_cap_fails_in_one_line_naming_the_resource_and_size(
    pipeline: dlt.Pipeline, fake: CrmFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # configured as a user would: dlt config under the connector's section
    monkeypatch.setenv("SOURCES__CRM__MAX_BODY_BYTES", "2000")

    with pytest.raises(Exception) as raised:
        sync(pipeline, fake, "users")

    error = root_cause(raised.value, ResponseTooLargeError)
    (line,) = str(error).splitlines()
    assert line.startswith(f"crm: resource `users`: {fake.base_url}/api/v2/users")
    assert "over the cap of 2,000 bytes (max_body_bytes); nothing of this run was loaded" in line
    assert pipeline.first_run  # nothing was loaded, nor any schema or state stored
