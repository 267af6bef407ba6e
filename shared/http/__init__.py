"""The HTTP layer: one `requests.Session` per source that scopes credentials to their
origin, retries, paces against the server's budget, bounds each request in time, checks
every body, and redacts every secret from what it raises or logs.

Owns: `origins`, `credentials`, `auth`, `retries`, `rate_limit`, `server_clock`,
`watchdog`, `pages` (the page check), `responses` (status handling), `session`.
May import: the base modules (`shared.errors`, `shared.redaction`, `shared.timestamps`,
`shared._dlt_compat`) and dlt's REST client. Nothing above it (`rest`, `incremental`,
`arrow`, `loading`, `tooling`).
"""
