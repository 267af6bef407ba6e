"""Finding the catalog's own exception inside the ones dlt wraps it in."""

from __future__ import annotations

from typing import TypeVar

E = TypeVar("E", bound=BaseException)


def root_cause(error: BaseException, kind: type[E]) -> E:
    """The first exception of `kind` in `error`'s cause/context chain (dlt wraps
    extraction errors in `ResourceExtractionError` and `PipelineStepFailed`); fails the
    test when there is none."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    raise AssertionError(f"no {kind.__name__} in the chain of {error!r}")
