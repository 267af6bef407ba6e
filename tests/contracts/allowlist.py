"""Known defects of the vendors' published specs: what the real APIs document or return
that the spec's schema refuses. One entry per defect, each with its reason; a finding
no entry matches fails the contract test, and so does an entry that matches nothing.

An entry: (connector, operation glob, where glob, what, reason). `operation` is
`METHOD <spec path> <status>` (or `... request` for a request body); `where` is the
finding's place in the body, list indices as `*`; `what` is `null`, `type`,
`required <field>`, `no schema for the status`, ...
"""

from __future__ import annotations

ALLOWLIST: list[tuple[str, str, str, str, str]] = [
    # -- crm: the community Capsule CRM v2 spec -------------------------------------
    (
        "crm",
        "GET /api/v2/* 200",
        "*",
        "null",
        "the spec marks no field nullable, while Capsule's documented examples show null "
        "for every unset field (title, jobTitle, organisation, lastContactedAt, detail, ...)",
    ),
    (
        "crm",
        "GET /api/v2/* [45]??",
        "",
        "no schema for the status",
        "the spec documents only the 200 of each list; Capsule's error bodies "
        '({"message": ...}, a 429\'s {"error": ...}) are in its documentation, not the spec',
    ),
    # -- incident_analytics: opsgenie/opsgenie-oas ----------------------------------
    (
        "incident_analytics",
        "GET /v2/teams 200",
        "",
        "required expandable",
        "BaseResponseWithExpandable requires `expandable`; Opsgenie's documented list-teams "
        "response has none",
    ),
    # -- hubspot_contacts: HubSpot-public-api-spec-collection, CRM contacts v3 ------
    (
        "hubspot_contacts",
        "* 200",
        "results/*/properties/*",
        "null",
        "property values are typed string, but HubSpot returns null for every asked-for "
        "property a contact has no value for (its own examples show `company: null`)",
    ),
    (
        "hubspot_contacts",
        "POST /crm/v3/objects/contacts/search request",
        "sorts/*",
        "type",
        "PublicObjectSearchRequest types `sorts` as strings; the documented search takes "
        '{"propertyName": ..., "direction": ...} objects',
    ),
    (
        "hubspot_contacts",
        "* 429",
        "",
        "required category",
        "Error requires `category`; HubSpot's documented 429 bodies carry `errorType` "
        "RATE_LIMIT and `policyName` instead",
    ),
    (
        "hubspot_contacts",
        "POST /crm/v3/objects/contacts/search request",
        "",
        "required after",
        "PublicObjectSearchRequest requires `after`; the first page of a search has none",
    ),
]
