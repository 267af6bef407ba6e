"""HTTP helpers every connector in the catalog is built on.

One idea per module:

- `origins`: which origin a URL belongs to; credentials stay on the origin of `base_url`.
- `auth`: origin-scoped authenticators (bearer, API key, basic, OAuth2 client credentials).
- `retries`: a per-source retry policy (statuses, count, backoff, wait headers).
- `rate_limit`: proactive, thread-safe pacing of requests.
- `session`: the `requests.Session` that applies all of the above to every request.
- `errors`: the exceptions a connector raises, with messages that name what to fix.
- `paginators`: dlt's paginators by name, plus the few dlt lacks.
- `builder`: turns a declarative resource table into dlt `rest_api` resources.
- `loading`: pipeline defaults (parquet into DuckDB).

Not for connectors: `tooling/` (the catalog file and the cassettes) is what the
`connectors` command, the orchestrator helpers and the tests build on.
"""
