"""The incremental layer: cursors a sync may trust, and deletions that reach the
destination. A cursor's values are checked and compared as instants, capped at the
server's clock at the sync's start, and never move past what was loaded. A record deleted
at the source gets `_deleted_at` (or its row is deleted), learned from a feed or a full
listing.

Owns: `cursors`, `deletions`, and `keys` (the keys a sync saw, for both).
May import: the base modules and `shared.http` (the server's clock). Nothing from
`rest`, `arrow`, `loading` or `tooling`.
"""
