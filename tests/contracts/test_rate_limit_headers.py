"""The recorded responses carry the rate-limit headers the contracts and the vendors'
documentation name, where they name them: every Opsgenie answer, error or not,
`X-RateLimit-State` (`THROTTLED` on a 429, with its period); HubSpot's non-search 200s
their rolling window (`X-HubSpot-RateLimit-*`), its search responses none. Capsule's
window, on every crm response, is tested with its values in tests/connectors/test_crm.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from shared.tooling.cassettes import CASSETTES_DIR

HUBSPOT_WINDOW = {
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
}


def recorded(connector: str) -> Iterator[tuple[str, str, int, dict[str, Any]]]:
    """(cassette, uri, status, headers) of every recorded response of `connector`."""
    for path in sorted((CASSETTES_DIR / connector).glob("*.yaml")):
        for interaction in yaml.load(path.read_text(), Loader=yaml.CSafeLoader)["interactions"]:
            response = interaction["response"]
            yield (
                path.stem,
                interaction["request"]["uri"],
                response["status"]["code"],
                {name: values[0] for name, values in response["headers"].items()},
            )


def test_every_opsgenie_answer_reports_its_rate_limit_state_errors_included() -> None:
    responses = list(recorded("incident_analytics"))
    assert {status for _, _, status, _ in responses} == {200, 422, 429, 503}
    for cassette, uri, status, headers in responses:
        state = "THROTTLED" if status == 429 else "OK"
        assert headers.get("X-RateLimit-State") == state, (cassette, uri, status)
        if status == 429:
            assert headers["X-RateLimit-Period-In-Sec"] in ("1", "60")


def test_hubspot_lists_report_their_rolling_window_and_searches_none() -> None:
    answered = [r for r in recorded("hubspot_contacts") if r[2] == 200]
    searches = [r for r in answered if r[1].endswith("/search")]
    assert searches and len(searches) < len(answered)
    for cassette, uri, _, headers in answered:
        reported = HUBSPOT_WINDOW & set(headers)
        assert reported == (set() if uri.endswith("/search") else HUBSPOT_WINDOW), (cassette, uri)
