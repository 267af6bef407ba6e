"""The Arrow layer: pages parsed straight into Arrow tables, and rows turned into the
same root and child tables dlt's normalizer would write, for the fast default path.

Owns: `pages` (reading pages ahead into Arrow batches), `tables` (rows to tables),
`first_sync` (a new merge table's first sync appended, without dlt's staging merge).
May import: the base modules and `shared.http`. Nothing from `rest`, `loading` or
`tooling`.
"""
