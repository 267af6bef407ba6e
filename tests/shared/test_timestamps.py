"""shared.timestamps: parsing ISO 8601 and formatting for query parameters."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from shared.timestamps import epoch_millis, format_like, iso_utc_seconds, to_datetime

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
    ],
)
def test_format_like_writes_an_instant_in_the_shape_of_a_cursor_value(
    example: str, formatted: str
) -> None:
    moment = datetime(2026, 11, 30, 14, 0, 5, 123456, tzinfo=timezone.utc)

    assert format_like(moment, example) == formatted
    assert len(format_like(moment, example)) == len(formatted)


def test_format_like_keeps_datetime_and_date_cursors_as_objects() -> None:
    moment = datetime(2026, 11, 30, 14, 0, 5, tzinfo=timezone.utc)

    assert format_like(moment, datetime(2024, 1, 1, tzinfo=timezone.utc)) == moment
    assert format_like(moment, datetime(2024, 1, 1)) == datetime(2026, 11, 30, 14, 0, 5)
    assert format_like(moment, date(2024, 1, 1)) == date(2026, 11, 30)
    with pytest.raises(ValueError, match="'yesterday' is not a date-time"):
        format_like(moment, "yesterday")
