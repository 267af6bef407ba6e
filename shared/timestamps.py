"""Timestamps: parsed from what APIs send, formatted as they want them back."""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

from dlt.common.time import ensure_pendulum_datetime

# -- the grammar ----------------------------------------------------------------------
# ISO 8601 as this catalog reads it, everywhere: cursors (`shared.incremental.cursors`),
# the Arrow paths (`shared.arrow.pages`, `shared.arrow.tables`) and `to_datetime`. A value
# is an ISO 8601 string of one of three kinds, or none:
#
# - an instant: a date and time with a zone (`Z`, `+02:00`, `+0200`, `+02`);
# - a naive date-time: a date and time without one (read as UTC);
# - a date (`2024-09-19`, midnight UTC where an instant is needed).
#
# The time is `T` or a space, then the hour, optional minutes, seconds and fractional
# seconds (any number of digits; microseconds are kept, further digits truncated, as
# dlt's parser does). These are exactly the strings Arrow's cast reads (a date alone only
# as a naive timestamp), so an Arrow column that casts holds values of the kind its first
# value has. Other spellings ISO 8601 allows (`20240919T123045Z`, week dates, lowercase
# `t`/`z`, a decimal comma) are no kind here: `to_datetime` leaves them to dlt's parser,
# a cursor holding them is text, and the Arrow paths leave them to dlt.
_DATE = r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
_TIME = (
    r"(?P<sep>[T ])(?P<hour>\d{2})"
    r"(?::(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?)?"
)
_ZONE = r"(?P<zone>Z|(?P<sign>[+-])(?P<zone_hour>\d{2})(?::?(?P<zone_minute>\d{2}))?)"

#: any of the three kinds (`match.group("sep")` is None for a date, `"zone"` for a naive
#: date-time); `fullmatch` or `match`: it is anchored at both ends
ISO_8601 = re.compile(rf"{_DATE}(?:{_TIME}{_ZONE}?)?\Z")

IsoKind = Literal["instant", "naive", "date"]
_SEP, _ZONE_GROUP = ISO_8601.groupindex["sep"], ISO_8601.groupindex["zone"]


def _arrow(pattern: str) -> str:
    """The same grammar for Arrow's `match_substring_regex` (RE2: anchored with `^...$`,
    which in RE2 ends at the end of the text, never before a final newline)."""
    return "^" + re.sub(r"\(\?P<\w+>", "(?:", pattern) + "$"


#: Arrow patterns of each kind, for whole columns (`iso_kind_of_column`)
ARROW_PATTERNS: dict[IsoKind, str] = {
    "instant": _arrow(_DATE + _TIME + _ZONE),
    "naive": _arrow(_DATE + _TIME),
    "date": _arrow(_DATE),
}
#: any of the three kinds, for whole columns
ARROW_ISO_8601 = _arrow(rf"{_DATE}(?:{_TIME}{_ZONE}?)?")


def iso_kind(value: Any) -> IsoKind | None:
    """Which kind of ISO 8601 string `value` is (see the grammar above), None for any
    other value. The shape only: `2024-02-30` is a date here, and fails to parse."""
    match = ISO_8601.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    if match.group(_SEP) is None:
        return "date"
    return "naive" if match.group(_ZONE_GROUP) is None else "instant"


def iso_kind_of_column(strings: Any) -> IsoKind | None:
    """The kind every valid value of an Arrow string array has, or None when they are
    not all one kind (or there are none). One regular-expression pass over the column
    per kind tried, the first value's kind first."""
    import pyarrow.compute as pc

    valid = strings.drop_null()
    kind = iso_kind(valid[0].as_py()) if len(valid) else None
    if kind is None or not pc.all(pc.match_substring_regex(valid, ARROW_PATTERNS[kind])).as_py():
        return None
    return kind


def truncated_fractions(strings: Any) -> Any:
    """An Arrow string array with fractional seconds cut to microseconds, as dlt's parser
    reads them (Arrow refuses to cast `.1234567` to microseconds)."""
    import pyarrow.compute as pc

    return pc.replace_substring_regex(strings, r"(\.\d{6})\d+", r"\1")


#: the Unix epoch, aware
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)
#: epoch numbers this large or larger are milliseconds: as seconds they would be after the
#: year 5000, as milliseconds they are after 1973 (`1796500000000` is 2026-12-05T...)
EPOCH_MILLIS_FROM = 100_000_000_000


def to_datetime(value: Any) -> datetime:
    """Parse an ISO 8601 string (any number of fractional digits, `Z` or offset; none:
    UTC), a datetime, or epoch seconds or milliseconds (`from_epoch`) into an aware UTC
    datetime. A bool is no instant (TypeError), although Python counts it a number."""
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not an instant")
    if isinstance(value, (int, float, Decimal)):
        return from_epoch(value)
    if type(value) is str and (match := ISO_8601.match(value)):
        try:
            return _parse_iso(match)
        except ValueError:
            pass  # out of range (a 61st second, February 30th): dlt's parser decides
    return ensure_pendulum_datetime(value).in_timezone("UTC")


def from_epoch(value: int | float | Decimal) -> datetime:
    """Epoch seconds, or milliseconds from `EPOCH_MILLIS_FROM` on (APIs send both, and a
    cursor may mix them), as an aware UTC datetime; integers are exact."""
    if is_epoch_millis(value):
        if isinstance(value, int):
            return EPOCH + timedelta(milliseconds=value)
        value = value / 1000
    if isinstance(value, int):
        return EPOCH + timedelta(seconds=value)
    return EPOCH + timedelta(seconds=float(value))


def is_epoch_millis(value: int | float | Decimal) -> bool:
    """Whether the epoch number `value` counts milliseconds (else seconds)."""
    return abs(float(value)) >= EPOCH_MILLIS_FROM


def epoch_micros(value: Any) -> int:
    """The instant `value` (as `to_datetime` reads it) in whole microseconds since the
    epoch: a key that orders instants, whatever form each was written in."""
    return (to_datetime(value) - EPOCH) // MICROSECOND  # exact: integer arithmetic


def _parse_iso(match: re.Match[str]) -> datetime:
    """The aware UTC datetime of an `ISO_8601` match (ValueError when out of range)."""
    year, month, day, _, hour, minute, second, fraction, _, sign, zone_h, zone_m = match.groups()
    moment = datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        int(fraction[:6].ljust(6, "0")) if fraction else 0,
        tzinfo=timezone.utc,
    )
    if sign:
        if int(zone_h) > 23 or (zone_m and int(zone_m) > 59):
            raise ValueError("not a UTC offset")
        offset = timedelta(hours=int(zone_h), minutes=int(zone_m or 0))
        moment -= offset if sign == "+" else -offset
    return moment


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


def format_like(moment: datetime, example: Any) -> Any:
    """`moment` in the shape of `example`, a value of the same cursor: an ISO string with
    the same time fields, fractional digits and zone style, a date, or a datetime with the same
    awareness. Cursors compared as strings then still compare in time order."""
    moment = moment.astimezone(timezone.utc)
    if isinstance(example, datetime):
        return moment if example.tzinfo is not None else moment.replace(tzinfo=None)
    if isinstance(example, date):
        return moment.date()
    match = ISO_8601.match(example) if isinstance(example, str) else None
    if match is None:
        raise ValueError(f"{example!r} is not a date-time")
    if match.group("sep") is None:
        return moment.date().isoformat()
    digits = len(match.group("fraction") or "")
    # as many time fields as the example has (fewer truncate: never later than `moment`)
    fields = "%H:%M:%S" if match.group("second") else "%H:%M" if match.group("minute") else "%H"
    text = moment.strftime(f"%Y-%m-%d{match.group('sep')}{fields}")
    if digits:
        text += "." + f"{moment.microsecond:06d}{'0' * max(0, digits - 6)}"[:digits]
    zone = match.group("zone")
    if zone is None:
        return text
    if zone == "Z":
        return text + "Z"
    if match.group("zone_minute") is None:
        return text + "+00"
    return text + ("+00:00" if ":" in zone else "+0000")
