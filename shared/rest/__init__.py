"""The REST layer: a connector's declarative resource table turned into dlt `rest_api`
resources, with the catalog's paginators and the stages that finish resources (fan-in of
parents' children, client-side cursors).

Owns: `paginators`, `keyset`, `stop_paging`, `builder`, `fan_in`, `client_incremental`.
May import: every layer below it (`shared.http`, `shared.incremental`, `shared.arrow`)
and the base modules. Nothing from `loading` or `tooling`.
"""
