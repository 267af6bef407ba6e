"""Finding the error a connector raised inside dlt's pipeline exceptions."""

from __future__ import annotations

from typing import TypeVar

E = TypeVar("E", bound=BaseException)


def find_cause(exc: BaseException, cls: type[E]) -> E | None:
    """The first exception of type `cls` in `exc`'s cause/context chain, or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, cls):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
