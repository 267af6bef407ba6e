"""shared.timestamps: parsing ISO 8601 and formatting for query parameters."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from dlt.common.time import ensure_pendulum_datetime

from shared.timestamps import (
    EPOCH_MILLIS_FROM,
    epoch_micros,
    epoch_millis,
    format_like,
    iso_utc_seconds,
    to_datetime,
)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "microsecond"),
    [
        ("2024-09-19T12:30:45Z", 0),
        ("2024-09-19T12:30:45.12Z", 120_000),
        ("2024-09-19T12:30:45.123Z", 123_000),
        ("2024-09-19T12:30:45.123456Z", 123_456),
        ("2024-09-19T12:30:45.123456+00:00", 123_456),
    ],
)
def test_iso_strings_with_0_2_3_or_6_fractional_digits_parse(text: str, microsecond: int) -> None:
    assert to_datetime(text) == datetime(2024, 9, 19, 12, 30, 45, microsecond, tzinfo=timezone.utc)


def test_offsets_and_epoch_seconds_become_aware_utc() -> None:
    parsed = to_datetime("2024-09-19T14:30:45.5+02:00")

    assert parsed.utcoffset() == timedelta(0)
    assert parsed == datetime(2024, 9, 19, 12, 30, 45, 500_000, tzinfo=timezone.utc)
    assert to_datetime(1_726_749_045) == datetime(2024, 9, 19, 12, 30, 45, tzinfo=timezone.utc)


def test_epoch_milliseconds_are_told_from_seconds_by_size() -> None:
    moment = datetime(2026, 12, 5, 19, 46, 40, tzinfo=timezone.utc)

    assert to_datetime(1_796_500_000_000) == moment  # milliseconds
    assert to_datetime(1_796_500_000) == moment  # seconds
    assert to_datetime(1_796_500_000_123) == moment + timedelta(milliseconds=123)  # exact
    assert to_datetime(1_796_500_000.5) == moment + timedelta(milliseconds=500)
    assert epoch_millis(1_796_500_000_123) == 1_796_500_000_123
    # just below the boundary: seconds, in the year 5138
    assert to_datetime(EPOCH_MILLIS_FROM - 1).year == 5138
    assert to_datetime(EPOCH_MILLIS_FROM).year == 1973


def test_a_bool_is_no_instant() -> None:
    with pytest.raises(TypeError):
        to_datetime(True)


@pytest.mark.parametrize(
    "value",
    ["2026-12-05T05:30:00+05:00", "2026-12-05T00:30:00Z", 1_796_430_600, 1_796_430_600_000],
)
def test_epoch_micros_is_one_key_for_one_instant_in_any_form(value: object) -> None:
    assert epoch_micros(value) == 1_796_430_600_000_000


def test_iso_utc_seconds_truncates_fractions_and_converts_to_utc() -> None:
    assert iso_utc_seconds("2024-09-19T12:30:45.999999Z") == "2024-09-19T12:30:45Z"
    assert iso_utc_seconds("2024-09-19T14:30:45.5+02:00") == "2024-09-19T12:30:45Z"
    assert iso_utc_seconds(None) is None


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("2024-09-19T12:30:45Z", 1_726_749_045_000),
        ("2024-09-19T12:30:45.12Z", 1_726_749_045_120),
        ("2024-09-19T12:30:45.123Z", 1_726_749_045_123),
        ("2024-09-19T12:30:45.123999Z", 1_726_749_045_123),
        ("2024-09-19T12:30:45.999999Z", 1_726_749_045_999),
    ],
)
def test_epoch_millis_truncates_and_never_rounds_up(text: str, millis: int) -> None:
    assert epoch_millis(text) == millis


def test_epoch_millis_is_exact_for_every_whole_millisecond() -> None:
    # `timestamp() * 1000` in floats lands one millisecond low on instants like these
    assert epoch_millis("1972-02-18T07:02:04.233Z") == 67_244_524_233
    assert epoch_millis("1978-08-28T18:17:13.835Z") == 273_176_233_835
    start = datetime(2038, 8, 22, 5, 27, 5, tzinfo=timezone.utc)
    for millisecond in range(1000):
        moment = start + timedelta(milliseconds=millisecond)
        assert epoch_millis(moment) == (moment - EPOCH) // timedelta(milliseconds=1)


def test_epoch_millis_keeps_none() -> None:
    assert epoch_millis(None) is None


@pytest.mark.parametrize(
    ("example", "formatted"),
    [
        ("2024-03-19T18:25:25Z", "2026-11-30T14:00:05Z"),
        ("2024-08-28T14:58:17.467Z", "2026-11-30T14:00:05.123Z"),
        ("2023-09-26T17:48:54.48Z", "2026-11-30T14:00:05.12Z"),
        ("2024-01-01T10:00:00.123456789+00:00", "2026-11-30T14:00:05.123456000+00:00"),
        ("2024-01-01 10:00:00+0200", "2026-11-30 14:00:05+0000"),
        ("2024-01-01T10:00:00", "2026-11-30T14:00:05"),
        ("2024-01-01", "2026-11-30"),
        # fewer time fields truncate: never later than the instant
        ("2024-01-01T10:00Z", "2026-11-30T14:00Z"),
        ("2024-01-01 10+02", "2026-11-30 14+00"),
    ],
)
def test_format_like_writes_an_instant_in_the_shape_of_a_cursor_value(
    example: str, formatted: str
) -> None:
    moment = datetime(2026, 11, 30, 14, 0, 5, 123456, tzinfo=timezone.utc)

    assert format_like(moment, example) == formatted
    assert len(format_like(moment, example)) == len(formatted)
    assert to_datetime(formatted) <= moment


def test_format_like_keeps_datetime_and_date_cursors_as_objects() -> None:
    moment = datetime(2026, 11, 30, 14, 0, 5, tzinfo=timezone.utc)

    assert format_like(moment, datetime(2024, 1, 1, tzinfo=timezone.utc)) == moment
    assert format_like(moment, datetime(2024, 1, 1)) == datetime(2026, 11, 30, 14, 0, 5)
    assert format_like(moment, date(2024, 1, 1)) == date(2026, 11, 30)
    with pytest.raises(ValueError, match="'yesterday' is not a date-time"):
        format_like(moment, "yesterday")


@pytest.mark.parametrize(
    "text",
    [
        "2024-09-19T12:30:45Z",
        "2024-09-19T12:30:45.4Z",
        "2024-09-19T12:30:45.48Z",
        "2024-09-19T12:30:45.000001Z",
        "2024-09-19 12:30:45",  # no zone: UTC, as dlt reads it
        "2024-09-19T12:30:45.5",
        "2024-09-19T23:30:45+02:00",
        "2024-09-19T00:30:45-05:30",
        "2024-12-31T23:59:59.9-01:00",  # crosses into the next year in UTC
        "2024-02-29T00:00:00+14:00",  # crosses back into the previous day
        "1970-01-01T00:00:00Z",
        # forms the direct parser leaves to dlt's (pendulum), with the same result
        "2024-09-19T12:30:45.123456789Z",
        "2024-09-19T12:30:45+0200",
        "2024-09-19",
        "20240919T123045Z",
    ],
)
def test_the_direct_parse_of_common_forms_equals_dlts_parser(text: str) -> None:
    expected = ensure_pendulum_datetime(text).in_timezone("UTC")

    parsed = to_datetime(text)

    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.microsecond == expected.microsecond


@pytest.mark.parametrize(
    "text", ["2024-02-30T00:00:00Z", "2024-09-19T24:00:01Z", "2024-09-19T12:30:45+25:00"]
)
def test_an_impossible_date_time_fails_as_dlts_parser_fails(text: str) -> None:
    with pytest.raises(Exception) as expected:
        ensure_pendulum_datetime(text)

    with pytest.raises(type(expected.value)):
        to_datetime(text)
