"""Constants of HubSpot's CRM API v3 contacts endpoints."""

CONNECTOR = "hubspot_contacts"
DEFAULT_BASE_URL = "https://api.hubapi.com"

#: the full sync (first run) lists every contact, `limit` at most 100 per page
LIST_PATH = "/crm/v3/objects/contacts"
LIST_PAGE_SIZE = 100

#: later runs search for contacts changed since the stored cursor, up to 200 per page
SEARCH_PATH = "/crm/v3/objects/contacts/search"
SEARCH_PAGE_SIZE = 200
#: the search refuses any page with `after + limit` beyond this many results
SEARCH_RESULT_CAP = 10_000
#: the search index lags writes: later searches start this long before the stored cursor
SEARCH_LOOKBACK_SECONDS = 60.0
#: contacts' modification stamp (other objects use `hs_lastmodifieddate`)
LAST_MODIFIED = "lastmodifieddate"

#: column -> HubSpot property, for the properties every sync requests
PROPERTY_COLUMNS = {
    "email": "email",
    "first_name": "firstname",
    "last_name": "lastname",
    "company": "company",
    "phone": "phone",
}
DEFAULT_PROPERTIES = (*PROPERTY_COLUMNS.values(), "createdate", LAST_MODIFIED)

#: HubSpot allows 100 requests per rolling 10 s per token, and the search endpoint 4 per
#: second. The default pace, for when the budget headers are absent
REQUESTS_PER_TEN_SECONDS = 100
#: non-search responses report the rolling window's budget: the pacer goes at full speed
#: above the reserve (at most 90% of the reported maximum inside one window: a Pro
#: account's 190 per 10 s as much as a lower one), then spaces requests evenly at it, and
#: waits a window when another client spent it all
MAX_HEADER = "X-HubSpot-RateLimit-Max"
REMAINING_HEADER = "X-HubSpot-RateLimit-Remaining"
INTERVAL_HEADER = "X-HubSpot-RateLimit-Interval-Milliseconds"
#: a rolling window longer than a minute is not believed (the real one is 10 s)
MAX_WINDOW_SECONDS = 60.0
SEARCH_REQUESTS_PER_SECOND = 4
#: a 429 names the policy it broke (`policyName`); wait that policy's window
POLICY_WINDOW_SECONDS = {"TEN_SECONDLY_ROLLING": 10.0, "SECONDLY": 1.0}
