"""The helpers every connector in the catalog is built on, in layers; a module imports
only from its own layer and the ones below it (`tests/test_layout.py` checks).

- Base, imported by every layer: `errors` (the exceptions a connector raises, with
  messages that name what to fix), `redaction` (secrets masked by value),
  `timestamps` (one ISO 8601 and epoch parser), `_dlt_compat` (every access to dlt's
  private API, in one place), `collector` (the garbage collector while pages are read).
- `http/`: the session that scopes credentials, retries, paces, bounds and checks every
  request.
- `incremental/`: cursors compared as instants and capped at the server's clock.
- `arrow/`: pages to Arrow tables, for the fast default path.
- `rest/`: the declarative resource table to dlt `rest_api` resources.
- `loading`: pipeline defaults (parquet into DuckDB) and running a source.
- `tooling/`: the catalog file and the cassettes, for the `connectors` command, the
  orchestrator helpers and the tests; never imported by a connector.

The modules at the top level named after a moved one (`shared.auth`, `shared.builder`,
`shared.paginators`, ...) re-export it, so connectors written before the move import
unchanged.
"""
