"""Constants of the generic analytics API.

No default base URL: no vendor serves this API, so `base_url` is required.
"""

#: a resource named only by a string lives at `/v1/<name>`
DEFAULT_PATH_TEMPLATE = "/v1/{name}"
DEFAULT_PRIMARY_KEY = "id"
#: every list answers `{"data": [...]}`
DATA_SELECTOR = "data"
#: offset paging with `limit=100` and no total: a shorter page is the last one
PAGE_LIMIT = 100

#: the api key's query parameter, or its header with `api_key_location="header"`
API_KEY_PARAM = "api_key"
#: renew an OAuth2 token this many seconds before it expires, so none expires in flight
TOKEN_EXPIRY_MARGIN_SECONDS = 30.0

#: the API documents no rate limit and sends no budget headers: no pacing, and a 429 is
#: retried (`Retry-After` first) like the 5xx below: these statuses, at most 3 retries,
#: backoff factor 2 (2, 4, 8 s)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRIES = 3
BACKOFF_FACTOR = 2.0
