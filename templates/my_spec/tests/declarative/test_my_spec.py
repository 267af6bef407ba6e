"""connectors/my_spec/my_spec.yml against its fake over loopback HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import dlt
import pytest

from connectors.declarative import declarative_source
from connectors.my_spec.fake import TOKEN, MySpecFake, stamp
from shared.errors import AuthenticationError
from shared.loading import run_source
from tests.dataset import query
from tests.failures import root_cause

pytestmark = pytest.mark.loopback

SPEC = Path(__file__).parents[2] / "connectors" / "my_spec" / "my_spec.yml"
FAST = {"requests_per_minute": 60_000}


def sync(pipeline: dlt.Pipeline, fake: MySpecFake, token: str = TOKEN) -> None:
    run_source(pipeline, declarative_source(SPEC, token=token, base_url=fake.base_url, **FAST))


def test_a_first_sync_loads_every_record_of_the_fake(pipeline: dlt.Pipeline) -> None:
    with MySpecFake() as fake:
        sync(pipeline, fake)

    assert query(pipeline, "SELECT id, name FROM users ORDER BY id") == [
        (user["id"], user["name"]) for user in fake.users
    ]
    assert query(pipeline, "SELECT id, title FROM items ORDER BY id") == [
        (item["id"], item["title"]) for item in fake.items
    ]
    assert query(pipeline, "SELECT item_id, id FROM item_notes ORDER BY ALL") == sorted(
        (item["id"], note["id"]) for item in fake.items for note in fake.notes(item["id"])
    )


def test_the_next_sync_asks_from_the_cursor_and_merges_what_changed(
    pipeline: dlt.Pipeline,
) -> None:
    with MySpecFake() as fake:
        sync(pipeline, fake)
        newest = max(item["updated_at"] for item in fake.items)
        changed = fake.change_items(2)
        before = len(fake.requests_to("/v1/items"))
        sync(pipeline, fake)
        asked = [r for r in fake.requests_to("/v1/items")[before:] if r.path == "/v1/items"]

    # a second before the stored cursor (`lag: 1`), in whole seconds (`convert`)
    second_before = datetime.fromisoformat(newest.replace("Z", "+00:00")) - timedelta(seconds=1)
    assert [r.args.get("updated_since") for r in asked] == [stamp(second_before)]
    assert query(pipeline, "SELECT COUNT(*) FROM items") == [(len(fake.items),)]
    rows = query(pipeline, f"SELECT title FROM items WHERE id IN {tuple(changed)} ORDER BY id")
    assert rows == [(f"Item {i} (changed)",) for i in (0, 1)]


def test_a_rejected_token_fails_in_one_line_naming_the_setting_not_the_token(
    pipeline: dlt.Pipeline,
) -> None:
    wrong = "wrong-token-abcdef0123456789"
    with MySpecFake() as fake, pytest.raises(Exception) as raised:
        sync(pipeline, fake, token=wrong)

    error = root_cause(raised.value, AuthenticationError)
    assert error is not None and "401" in str(error)
    assert "sources.my_spec.token" in str(error) and wrong not in str(raised.value)
