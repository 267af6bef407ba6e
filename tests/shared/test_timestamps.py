"""shared.timestamps: parsing ISO 8601 and formatting for query parameters."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.timestamps import epoch_millis, iso_utc_seconds, to_datetime

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
