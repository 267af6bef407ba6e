"""Every cassette body and every fake response of crm, incident_analytics and
hubspot_contacts holds to the vendor's published spec (`specs/`, sources in
`specs/SOURCES.md`), but for the spec defects `allowlist.py` names with their reasons.

The fake is asked in-process (werkzeug's test client on its WSGI app, no socket) for what
no cassette holds: the deleted feeds and the archived list, and the error answers."""

from __future__ import annotations

import copy
import fnmatch
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from werkzeug.test import Client

from connectors.sandbox import crm as crm_fake
from connectors.sandbox import hubspot_contacts as hubspot_fake
from connectors.sandbox import incident_analytics as incident_fake
from shared.tooling.cassettes import CASSETTES_DIR
from tests.contracts.allowlist import ALLOWLIST
from tests.contracts.vendor_specs import SPEC_FILES, Finding, check

CONNECTORS = tuple(SPEC_FILES)

#: (method, url, status, response body, request body)
Exchange = tuple[str, str, int, Any, Any]


def cassette_exchanges(connector: str) -> Iterator[Exchange]:
    """Every interaction of every cassette of the connector."""
    for path in sorted((CASSETTES_DIR / connector).glob("*.yaml")):
        # libyaml's loader: the cassettes are large
        for interaction in yaml.load(path.read_text(), Loader=yaml.CSafeLoader)["interactions"]:
            request, response = interaction["request"], interaction["response"]
            sent = json.loads(request["body"]) if request.get("body") else None
            body = json.loads(response["body"]["string"])
            yield request["method"], request["uri"], response["status"]["code"], body, sent


def _ask(client: Client, method: str, url: str, headers: dict[str, str], **kw: Any) -> Exchange:
    response = client.open(url, method=method, headers=headers, **kw)
    return method, url, response.status_code, response.get_json(), kw.get("json")


def crm_exchanges() -> Iterator[Exchange]:
    fake = crm_fake.CrmFake()
    fake.delete("parties", fake.data["parties"][210]["id"])  # cascades to its projects
    client, auth = Client(fake.wsgi), {"Authorization": f"Bearer {crm_fake.TOKEN}"}
    for path in ("parties", "kases", "opportunities"):
        yield _ask(client, "GET", f"/api/v2/{path}/deleted?since=2024-01-01T00:00:00Z", auth)
        yield _ask(client, "GET", f"/api/v2/{path}/deleted", auth)  # 422, since required
    yield _ask(client, "GET", "/api/v2/tasks?status=open,completed,pending&perPage=100", auth)
    yield _ask(client, "GET", "/api/v2/parties?perPage=100", {})  # 401
    yield _ask(client, "GET", "/api/v2/parties/1/people", auth)  # 404


def incident_exchanges() -> Iterator[Exchange]:
    fake = incident_fake.IncidentAnalyticsFake()
    client = Client(fake.wsgi)
    auth = {"Authorization": f"{incident_fake.SCHEME} {incident_fake.TOKEN}"}
    yield _ask(client, "GET", "/v1/incidents?limit=100", auth)  # 422, query required
    yield _ask(client, "GET", "/v2/alerts?offset=19950&limit=100&query=updatedAt>=0", auth)
    yield _ask(client, "GET", "/v2/users?limit=100", {})  # 401
    fake.enforce_window(1, 60.0)
    yield _ask(client, "GET", "/v2/users?limit=100", auth)
    yield _ask(client, "GET", "/v2/users?limit=100", auth)  # 429


def hubspot_exchanges() -> Iterator[Exchange]:
    fake = hubspot_fake.HubSpotContactsFake()
    client, auth = Client(fake.wsgi), {"Authorization": f"Bearer {hubspot_fake.TOKEN}"}
    path = hubspot_fake.LIST_PATH
    yield _ask(client, "GET", f"{path}?archived=true&limit=100", auth)
    yield _ask(client, "GET", f"{path}?limit=500", auth)  # 400
    yield _ask(client, "GET", f"{path}?limit=100", {})  # 401
    search = {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email", "company"],
        "limit": 200,
        "after": "9900",
    }
    yield _ask(client, "POST", hubspot_fake.SEARCH_PATH, auth, json=search)  # 400, the cap
    fake.enforce_search_window(0, 1.0)
    yield _ask(client, "POST", hubspot_fake.SEARCH_PATH, auth, json={**search, "after": "0"})


FAKE_EXCHANGES: dict[str, Callable[[], Iterator[Exchange]]] = {
    "crm": crm_exchanges,
    "incident_analytics": incident_exchanges,
    "hubspot_contacts": hubspot_exchanges,
}


def allowed_by(finding: Finding) -> int | None:
    """The index of the allowlist entry that names the finding, or None."""
    for index, (connector, operation, where, what, _reason) in enumerate(ALLOWLIST):
        if (
            connector == finding.connector
            and fnmatch.fnmatchcase(finding.operation, operation)
            and fnmatch.fnmatchcase(finding.where, where)
            and what == finding.what
        ):
            return index
    return None


def findings_of(connector: str, exchanges: list[Exchange]) -> list[Finding]:
    return [
        finding
        for method, url, status, body, sent in exchanges
        for finding in check(connector, method, url, status, body, sent)
    ]


@pytest.mark.parametrize("connector", CONNECTORS)
def test_every_cassette_body_and_fake_response_holds_to_the_vendors_spec(connector: str) -> None:
    exchanges = [*cassette_exchanges(connector), *FAKE_EXCHANGES[connector]()]
    statuses = {status for _, _, status, _, _ in exchanges}
    findings = findings_of(connector, exchanges)

    unexplained = sorted({str(f) for f in findings if allowed_by(f) is None})
    assert unexplained == [], "\n".join(unexplained)
    # every entry of the allowlist for this connector still names a finding
    used = {allowed_by(f) for f in findings}
    stale = [
        entry
        for index, entry in enumerate(ALLOWLIST)
        if entry[0] == connector and index not in used
    ]
    assert stale == []
    # the check saw successes and errors alike
    assert 200 in statuses and statuses & {400, 401, 404, 422, 429}


def test_a_planted_violation_fails_the_check() -> None:
    method, url, status, body, sent = next(
        e for e in cassette_exchanges("crm") if "/api/v2/tasks" in e[1]
    )
    planted = copy.deepcopy(body)
    planted["tasks"][0]["id"] = str(planted["tasks"][0]["id"])
    del planted["tasks"][1]["dueOn"]

    assert [f for f in check("crm", method, url, status, body, sent) if allowed_by(f) is None] == []
    unexplained = {
        (f.where, f.what)
        for f in check("crm", method, url, status, planted, sent)
        if allowed_by(f) is None
    }
    assert unexplained == {("tasks/*/id", "type"), ("tasks/*", "required dueOn")}


def test_a_planted_null_outside_the_allowlisted_place_fails_the_check() -> None:
    method, url, status, body, sent = next(
        e for e in cassette_exchanges("hubspot_contacts") if e[0] == "GET"
    )
    planted = copy.deepcopy(body)
    planted["results"][0]["archived"] = None

    findings = check("hubspot_contacts", method, url, status, planted, sent)
    archived = [(f.what, allowed_by(f)) for f in findings if f.where == "results/*/archived"]
    assert archived == [("null", None)]


def test_a_path_the_spec_does_not_describe_and_no_one_named_fails_the_check() -> None:
    (finding,) = check("incident_analytics", "GET", "https://api.example.com/v2/schedules", 200, {})
    assert (finding.what, allowed_by(finding)) == ("unknown operation", None)


def test_every_allowlist_entry_gives_a_reason() -> None:
    assert all(len(entry[4]) > 30 for entry in ALLOWLIST)
    assert {entry[0] for entry in ALLOWLIST} <= set(CONNECTORS)


def test_the_kept_specs_note_their_source_repository_path_and_commit() -> None:
    sources = (CASSETTES_DIR.parent / "tests/contracts/specs/SOURCES.md").read_text()
    for name in SPEC_FILES.values():
        assert name in sources
    assert sources.count("commit ") >= len(SPEC_FILES)
