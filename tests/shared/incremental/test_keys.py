"""shared.incremental.keys.ListedKeys: a listing's keys, exact and compact."""

from __future__ import annotations

import pyarrow as pa

from shared.incremental.deletions import ListingKeys
from shared.incremental.keys import ListedKeys, key_values


def test_listed_keys_answer_exactly_which_keys_a_listing_held() -> None:
    keys = ListedKeys()
    for key in [("1",), ("2",), ("10",)]:
        keys.add(key)

    assert keys.among([("10",), ("3",), ("1",), ("",)]) == [True, False, True, False]
    assert keys.among([]) == []
    assert not keys.repeated()


def test_keys_of_several_columns_do_not_run_into_each_other() -> None:
    keys = ListedKeys()
    keys.add(("ab", "c"))

    assert keys.among([("ab", "c"), ("a", "bc"), ("abc", "")]) == [True, False, False]


def test_a_key_that_came_twice_is_seen_across_chunks() -> None:
    listing = ListingKeys(["id"])
    listing.note([{"id": n} for n in range(ListedKeys.CHUNK + 5)])
    assert not listing.keys.repeated()

    listing.note([{"id": 3}])  # in the first chunk already

    assert listing.keys.repeated()
    assert listing.keys.among([("3",), (str(ListedKeys.CHUNK + 4),), ("-1",)]) == [
        True,
        True,
        False,
    ]


def test_a_listing_keeps_its_keys_in_about_a_dozen_bytes_each() -> None:
    # a set of tuples of strings took about 140 bytes a key (140 MB at a million rows,
    # held for the whole sync: most of hubspot_contacts' growth from 100k to 1M rows)
    rows = 200_000
    before = pa.total_allocated_bytes()
    listing = ListingKeys(["id"])
    for start in range(0, rows, 100):
        listing.note([{"id": 10_000_000 + n} for n in range(start, start + 100)])

    held = pa.total_allocated_bytes() - before
    assert rows * 8 < held < rows * 16  # 8 characters and a 4-byte offset a key
    assert listing.keys.among([("10000000",), ("10199999",), ("10200000",)]) == [
        True,
        True,
        False,
    ]


def test_a_page_of_dicts_or_an_arrow_table_adds_its_keys_and_skips_null_ones() -> None:
    keys = ListedKeys()
    keys.add_rows([{"id": 1}, {"id": None}, {"other": 2}, {"id": "a"}], ["id"])
    keys.add_rows({"id": 7}, ["id"])
    keys.add_rows(pa.table({"id": pa.array([3, None, 4], pa.int64())}), ["id"])
    keys.add_rows(pa.table({"other": [1]}), ["id"])  # no key column: nothing to note

    assert keys.texts() == ["1", "a", "7", "3", "4"]
    assert keys.one_repeated() is None


def test_a_key_of_two_columns_is_noted_from_dicts_and_tables_alike() -> None:
    keys = ListedKeys()
    keys.add_rows([{"a": 1, "b": "x"}, {"a": 1, "b": None}], ["a", "b"])
    keys.add_rows(pa.table({"a": [1], "b": ["x"]}), ["a", "b"])

    (text,) = set(keys.texts())
    assert len(keys) == 2 and key_values(text, 2) == ("1", "x")
    assert keys.one_repeated() == text


def test_a_repeat_is_found_across_pending_keys_chunks_and_joined_tables() -> None:
    keys = ListedKeys()
    for start in range(0, ListedKeys.JOINED * 50, 50):  # more tables than are kept apart
        keys.add_rows(pa.table({"id": list(range(start, start + 50))}), ["id"])
    keys.add_rows([{"id": n} for n in range(10**6, 10**6 + ListedKeys.CHUNK + 1)], ["id"])
    assert len(keys) == ListedKeys.JOINED * 50 + ListedKeys.CHUNK + 1
    assert keys.one_repeated() is None

    keys.add_rows([{"id": 123}], ["id"])  # first came in an Arrow table

    assert keys.one_repeated() == "123"


def test_numbers_and_their_text_are_one_key() -> None:
    keys = ListedKeys()
    keys.add_rows([{"id": 5}], ["id"])
    keys.add_rows([{"id": "5"}, {"id": 2**70}], ["id"])  # mixed, and beyond 64 bits

    assert keys.one_repeated() == "5"
    assert str(2**70) in keys.texts()


def test_two_hundred_thousand_keys_take_about_twelve_bytes_each_in_arrow() -> None:
    before = pa.total_allocated_bytes()
    keys = ListedKeys()
    for start in range(0, 200_000, 100):  # pages of 100 dicts, as a sync notes them
        keys.add_rows([{"id": 10**9 + n} for n in range(start, start + 100)], ["id"])
    keys.one_repeated()

    held = pa.total_allocated_bytes() - before
    # 10 bytes of text and a 4-byte offset a key, in chunks padded to 64 bytes
    assert 200_000 * 14 <= held < 200_000 * 16
