"""One ISO 8601 grammar (`shared.timestamps`): a cursor and the Arrow paths read the same
string as the same kind and, where it is an instant, as the same instant as dlt's own
parser does."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from dlt.common.data_types.type_helpers import coerce_value

from shared.arrow.pages import parse_iso_datetimes
from shared.arrow.tables import DoesNotFit, Splitter
from shared.incremental.cursors import instant_key, kind_of
from shared.timestamps import ARROW_ISO_8601, IsoKind, iso_kind, iso_kind_of_column

FRACTIONS = "123456789"

#: each string and the kind the grammar's description gives it
STRINGS: dict[str, IsoKind | None] = {
    "2024-03-19T18:25:25Z": "instant",
    "2024-03-19T18:25:25+02:00": "instant",
    "2024-03-19T18:25:25-05:30": "instant",
    "2024-03-19T18:25:25+0200": "instant",
    "2024-03-19T18:25:25-00:00": "instant",
    "2024-03-19 18:25:25+02": "instant",
    "2024-03-19T18:25Z": "instant",
    "2024-03-19 18Z": "instant",
    **{f"2024-03-19T18:25:25.{FRACTIONS[:n]}Z": "instant" for n in range(1, 10)},
    "1969-12-31T23:59:59.9999999+01:00": "instant",
    "2024-03-19T18:25:25": "naive",
    "2024-03-19 18:25:25.5": "naive",
    "2024-03-19T18:25:25.12345678": "naive",
    "2024-03-19T18:25": "naive",
    "2024-03-19T18": "naive",
    "2024-03-19": "date",
    "junk": None,
    "": None,
    "20240319T182525Z": None,  # the basic format: dlt's parser's, no kind here
    "2024-03-19T1825Z": None,
    "2024-03-19T18:25:25,5Z": None,  # a decimal comma: dlt's parser's
    "2024-03-19T18:25:25.Z": None,
    "2024-03-19t18:25:25z": None,
    "2024-3-19": None,
    "2024-03-19T18:25:25Z ": None,
    "2024-03-19\n": None,
    "2024-03-19T18:25:25ZZ": None,
}


def utc_micros(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime counts as UTC (as dlt stores it)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def tables_column(text: str) -> pa.ChunkedArray | None:
    """The `at` column the Arrow tables path builds from one row, None when the row goes
    to dlt's normalizer instead."""
    try:
        (piece,) = Splitter("events").split([{"at": text}], "1")
    except DoesNotFit:
        return None
    return piece.data.column("at")


@pytest.mark.parametrize(("text", "kind"), STRINGS.items(), ids=repr)
def test_cursor_and_arrow_paths_read_a_string_alike(text: str, kind: IsoKind | None) -> None:
    assert iso_kind(text) == kind
    # the cursor path: rows (Python) and Arrow batches (the guard's column check)
    assert kind_of(text) == ("text" if kind is None else "datetime")
    assert pc.match_substring_regex(pa.array([text]), ARROW_ISO_8601)[0].as_py() == (
        kind is not None
    )
    assert iso_kind_of_column(pa.array([text, None])) == kind
    # the Arrow paths: `yield_arrow_pages` types instants only, the tables path instants
    # and naive date-times (as dlt's normalizer does; dlt keeps dates and junk text)
    page = parse_iso_datetimes(pa.table({"at": [text]})).column("at")
    assert pa.types.is_timestamp(page.type) == (kind == "instant")
    column = tables_column(text)
    if kind is None:
        # text, or (a spelling only dlt's parser reads, `20240319T182525Z`) dlt's rows
        assert column is None or pa.types.is_string(column.type)
        with pytest.raises(ValueError):
            instant_key(text)
        return
    assert column is not None
    assert pa.types.is_timestamp(column.type) == (kind in ("instant", "naive"))
    # one instant: the cursor's, each Arrow column's, and dlt's own parser's
    expected = utc_micros(coerce_value("timestamp", "text", text))
    assert instant_key(text) == expected
    if kind != "date":
        assert utc_micros(column[0].as_py()) == expected
    if kind == "instant":
        assert utc_micros(page[0].as_py()) == expected


def test_a_shape_with_no_such_day_is_no_instant_on_any_path() -> None:
    text = "2024-02-30T10:00:00Z"

    assert kind_of(text) == "datetime"  # the shape of one: a cursor of date-times...
    with pytest.raises(ValueError):
        instant_key(text)  # ...that fails loudly on this value
    assert pa.types.is_string(parse_iso_datetimes(pa.table({"at": [text]})).column("at").type)
    with pytest.raises(DoesNotFit):
        Splitter("events").split([{"at": "2024-02-28T10:00:00Z"}, {"at": text}], "1")


@pytest.mark.parametrize(
    "other", ["2024-03-19T18:25:25", "2024-03-19", "2024-03-19T1825Z", "junk"], ids=repr
)
def test_a_column_of_an_instant_and_another_kind_stays_text_or_goes_to_dlt(other: str) -> None:
    rows = [{"at": "2024-03-19T18:25:25Z"}, {"at": other}]

    assert iso_kind_of_column(pa.array([row["at"] for row in rows])) is None
    assert pa.types.is_string(parse_iso_datetimes(pa.Table.from_pylist(rows)).column("at").type)
    with pytest.raises(DoesNotFit):
        Splitter("events").split(rows, "1")


def test_nanosecond_fractions_in_a_column_are_truncated_as_dlt_truncates_them() -> None:
    texts = ["2024-03-19T18:25:25.123456789Z", "2024-03-19T18:25:25.5Z", None]

    page = parse_iso_datetimes(pa.table({"at": texts})).column("at").to_pylist()

    expected = [utc_micros(coerce_value("timestamp", "text", t)) for t in texts if t]
    assert [utc_micros(v) for v in page if v is not None] == expected
    assert page[2] is None
