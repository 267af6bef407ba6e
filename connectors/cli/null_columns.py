"""Columns a sync saw only nulls in, said in one line instead of dlt's warning per table.

dlt adds a column to a table with its first value: a field null in every row of a sync
(a documented field nobody filled in yet) has no type, so dlt leaves it out and logs a
ten-line WARNING per table saying so. Faithful APIs are full of such fields, so a `run`
would print a wall of them. While the block runs, those warnings are held back and
collected; `summary()` is one line naming them, table by table.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

#: dlt's warning (`dlt.normalize.validate.verify_normalized_table`, dlt 1.28 to 1.x)
WARNING = re.compile(
    r"In schema `(?P<schema>[^`]+)`: .* table '(?P<table>[^']+)' did not receive any data "
    r"during this load",
    re.IGNORECASE,
)
COLUMN = re.compile(r"^\s+- (\S+)\s*$", re.MULTILINE)


class NullColumns(logging.Filter):
    """Holds back dlt's null-only column warnings, keeping table -> columns."""

    def __init__(self) -> None:
        super().__init__()
        #: (dlt schema, table) -> its columns held back
        self.tables: dict[tuple[str, str], list[str]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        found = WARNING.search(message)
        if found is None:
            return True
        columns = self.tables.setdefault((found["schema"], found["table"]), [])
        columns.extend(c for c in COLUMN.findall(message) if c not in columns)
        return False

    def summary(self, name: str, where: str = "in this sync") -> str | None:
        """One line naming the columns held back, or None when there were none."""
        if not self.tables:
            return None
        count = sum(len(columns) for columns in self.tables.values())
        schemas = {schema for schema, _ in self.tables}
        listed = "; ".join(
            f"{table if schemas == {name} else f'{schema}.{table}'}: {', '.join(columns)}"
            for (schema, table), columns in sorted(self.tables.items())
        )
        return (
            f"{name}: {count} column{'s' if count != 1 else ''} held only nulls {where} "
            f"and are not in the tables yet (each appears with its first value): {listed}"
        )


@contextmanager
def null_columns_held_back() -> Iterator[NullColumns]:
    """Hold back dlt's null-only column warnings inside the block (see the module)."""
    held = NullColumns()
    dlt_logger = logging.getLogger("dlt")
    dlt_logger.addFilter(held)
    try:
        yield held
    finally:
        dlt_logger.removeFilter(held)
