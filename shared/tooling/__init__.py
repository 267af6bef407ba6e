"""The catalog's own tooling, which no connector imports: the tools around the
connectors (the `connectors` command, the orchestrator helpers, the tests) build on it.

- `catalog`: `catalog.yml` loaded, validated against `catalog.schema.json`, and typed.
- `cassettes`: recording HTTP to vcrpy cassettes, scrubbed of credentials, and replaying
  them offline (`connectors run --replay`, `connectors demo`, the replay tests).
- `recordings`: what recording one connector's cassettes takes (its source, sandbox
  server, credentials and steps), declared by each `connectors/sandbox/<name>.py`.
- `package_data`: `catalog.yml`, `cassettes/` and `templates/`, found in a checkout or
  in an installed wheel.

It sits apart from the HTTP helpers in `shared/` so that `shared/`'s top level is what a
connector is built on, and a connector folder copied elsewhere needs nothing from here.
"""
