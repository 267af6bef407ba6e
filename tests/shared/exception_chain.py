"""Finding the catalog's own exception inside the ones dlt wraps it in."""

from __future__ import annotations

from typing import TypeVar

E = TypeVar("E", bound=BaseException)


def root_cause(error: BaseException, kind: type[E]) -> E:
    """The first exception of `kind` in `error`'s chain (dlt wraps extraction errors in
    `ResourceExtractionError` and `PipelineStepFailed`)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    raise AssertionError(f"no {kind.__name__} in the chain of {error!r}")
