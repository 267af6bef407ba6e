"""Constants of the Opsgenie REST API."""

#: Opsgenie's API origin (an account in its EU region uses https://api.eu.opsgenie.com)
DEFAULT_BASE_URL = "https://api.opsgenie.com"
#: the word before the key in `Authorization: <scheme> <api_token>`
AUTH_SCHEME = "GenieKey"
#: the API takes 1-100 per page (default 20); the connector asks for the most
PAGE_SIZE = 100
#: a request with `offset + limit` above this is refused with 422 (keyset paging only
#: uses offsets among records sharing one sort value)
OFFSET_CAP = 20_000
#: the cursor of `incidents` and `alerts`, filtered on through the `query` parameter
CURSOR = "updatedAt"
#: incidents cannot be sorted by `updatedAt` (the API documents `createdAt`, `tinyId`,
#: `message`, `status`, `isSeen`, `owner`); they are paged by `createdAt` instead
INCIDENT_SORT = "createdAt"
#: the first sync asks for `updatedAt>=0`, i.e. everything
INITIAL_UPDATED_AT = "1970-01-01T00:00:00Z"
#: no response reports a request budget (a 429 names only its period, 1 or 60 s, which
#: the retries wait out): nothing to read or check against; 600 a minute (9 a second
#: with the pacer's headroom) keeps a sync well clear of 429s
REQUESTS_PER_MINUTE = 600
#: 429s name a wait of 1 or 60 seconds; never wait longer than this for one retry
MAX_RETRY_WAIT_SECONDS = 60.0
