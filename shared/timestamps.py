"""Timestamps as APIs want them in query parameters."""

from __future__ import annotations

import calendar
from datetime import datetime, timezone
from typing import Any

from dlt.common.time import ensure_pendulum_datetime


def to_datetime(value: Any) -> datetime:
    """Parse an ISO 8601 string (any number of fractional digits, `Z` or offset), a
    datetime, or epoch seconds into an aware UTC datetime."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return ensure_pendulum_datetime(value).in_timezone("UTC")


def iso_utc_seconds(value: Any) -> str | None:
    """`2024-09-19T12:30:45Z`: ISO 8601 UTC to the second, fractions truncated. None stays None."""
    if value is None:
        return None
    return to_datetime(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_millis(value: Any) -> int | None:
    """Epoch milliseconds, truncated (never rounded up). None stays None."""
    if value is None:
        return None
    moment = to_datetime(value)
    # whole seconds plus milliseconds in integers: `timestamp() * 1000` is a float and
    # truncates some exact instants one millisecond low (1972-02-18T07:02:04.233Z)
    return calendar.timegm(moment.utctimetuple()) * 1000 + moment.microsecond // 1000
