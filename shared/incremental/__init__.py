"""The incremental layer: cursors a sync may trust. A cursor's values are checked and
compared as instants, capped at the server's clock at the sync's start, and never move
past what was loaded.

Owns: `cursors`.
May import: the base modules and `shared.http` (the server's clock). Nothing from
`rest`, `arrow`, `loading` or `tooling`.
"""
