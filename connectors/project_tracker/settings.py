"""Constants of the project-tracking API (shaped like Shortcut's REST API v3).

No default base URL: no vendor serves this shape of the API, so `base_url` is required.
"""

#: the request header carrying the key (Shortcut's own API names it `Shortcut-Token`)
API_KEY_HEADER = "api_key"
#: the documented limit per key (200 a minute, as Shortcut's, perhaps enforced as 20 per
#: 6 s), paced evenly across all threads with 10% headroom (180 a minute, 18 per 6 s);
#: its 429s carry no rate-limit headers, so nothing to read
REQUESTS_PER_MINUTE = 200
#: retry a 429 (or 5xx) at most 3 times, exponential backoff factor 2 (2, 4, 8 s)
MAX_RETRIES = 3
BACKOFF_FACTOR = 2.0
#: the list timestamp every incremental table follows (client-side: no server filter)
CURSOR = "updated_at"
#: the search endpoint's page size is ours to choose, 1..250; the largest means fewest requests
SEARCH_PAGE_SIZE = 250
#: `query` is required by the search endpoint; this one matches every epic
SEARCH_QUERY = "*"
#: past the first 1,000 results, the search answers 400 with this error code
SEARCH_CAP_ERROR = "maximum-results-exceeded"
#: `groups/{group_id}/stories` returns at most this many stories a request (its default
#: and maximum `limit`); a group with more is paged by `offset` until a short page
GROUP_STORIES_LIMIT = 1000
