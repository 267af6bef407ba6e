"""shared.incremental.deletions.ListedKeys: a listing's keys, exact and compact."""

from __future__ import annotations

import pyarrow as pa

from shared.incremental.deletions import ListedKeys, ListingKeys


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
