"""A spec is validated before anything runs, and its `${NAME}` values are filled in from
keyword arguments, dlt config and secrets, or defaults (connectors/declarative/spec.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.declarative import SpecError, declarative_source, load_spec
from connectors.declarative.source import lookup
from connectors.declarative.spec import fill

MINIMAL = """\
name: shop
client:
  base_url: https://shop.example.com
  auth:
    type: api_key
    api_key: ${api_key}
    name: X-Key
resources:
  - name: orders
    endpoint:
      path: /v1/orders
      params:
        status: ${status:-paid}
        limit: ${limit:-50}
        since: {type: incremental, cursor_path: updated, initial_value: "${since:-}"}
"""


def spec_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shop.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # a misspelt key: its own line, the place and the keys allowed there
        (
            "      path: /v1/orders",
            "      pathh: /v1/orders",
            "shop.yml:11: resources[0].endpoint: unknown key `pathh`; allowed: data_selector, "
            "incremental, json, method, paginator, params, path",
        ),
        # a wrong type: the line of the value
        (
            "  - name: orders\n",
            "  - name: orders\n    primary_key: 5\n",
            "shop.yml:10: resources[0].primary_key: 5 is not of type string or array",
        ),
        (
            "    type: api_key",
            "    type: api_token",
            "shop.yml:5: client.auth.type: 'api_token' is not one of ['bearer', 'api_key', "
            "'http_basic', 'oauth2_client_credentials']",
        ),
        ("name: shop", "name: Shop Inc", "shop.yml:1: name: 'Shop Inc' does not match"),
        ("  - name: orders", "  - nom: orders", "shop.yml:9: resources[0]: unknown key `nom`"),
    ],
)
def test_a_wrong_key_or_type_is_one_line_naming_the_file_line_and_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in MINIMAL
    path = spec_file(tmp_path, MINIMAL.replace(old, new))

    with pytest.raises(SpecError) as raised:
        declarative_source(path, api_key="k")

    message = str(raised.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_yaml_that_does_not_parse_names_its_line(tmp_path: Path) -> None:
    path = spec_file(tmp_path, MINIMAL.replace("      path: /v1/orders", "      path: [/v1"))

    with pytest.raises(SpecError) as raised:
        load_spec(path)

    assert str(raised.value).startswith("shop.yml:12: ")
    assert "\n" not in str(raised.value)


def test_a_resource_listed_twice_is_refused_at_its_line(tmp_path: Path) -> None:
    twice = MINIMAL + "  - name: orders\n    endpoint: /v1/orders/archived\n"
    with pytest.raises(SpecError) as raised:
        load_spec(spec_file(tmp_path, twice))
    assert str(raised.value) == "shop.yml:16: resources[1]: resource `orders` is listed twice"


def values_of(data: dict[str, Any]) -> tuple[Any, Any, Any]:
    params = data["resources"][0]["endpoint"]["params"]
    return params["status"], params["limit"], params["since"]["initial_value"]


def test_values_come_from_keywords_then_config_then_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec(spec_file(tmp_path, MINIMAL))
    monkeypatch.setenv("SOURCES__SHOP__API_KEY", "key-from-the-environment-0123")
    monkeypatch.setenv("SOURCES__SHOP__LIMIT", "200")

    headed = load_spec(
        spec_file(
            tmp_path, MINIMAL.replace("  auth:", '  headers: {X-Token: "t ${token}"}\n  auth:')
        )
    )
    monkeypatch.setenv("SOURCES__SHOP__TOKEN", "header-token-from-the-environment")

    defaults = fill(spec, {}, lookup)
    in_a_header = fill(headed, {}, lookup)
    given = fill(spec, {"status": "refunded", "limit": 7, "api_key": "key-given-4567"}, lookup)

    # a whole-string placeholder keeps its value's type (the environment's are strings);
    # an empty default is no value
    assert values_of(defaults.data) == ("paid", "200", None)
    assert values_of(given.data) == ("refunded", 7, None)
    # a value used in auth is a secret; the others are not
    assert defaults.data["client"]["auth"]["api_key"] == "key-from-the-environment-0123"
    assert defaults.secrets == ["key-from-the-environment-0123"]
    assert given.secrets == ["key-given-4567"]
    assert defaults.secret_keys == ["api_key"]
    # so is one in the headers every request sends
    assert in_a_header.data["client"]["headers"] == {
        "X-Token": "t header-token-from-the-environment"
    }
    assert "header-token-from-the-environment" in in_a_header.secrets


def test_an_unset_value_is_one_line_naming_where_to_set_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCES__SHOP__API_KEY", raising=False)
    source_spec = spec_file(tmp_path, MINIMAL)

    with pytest.raises(SpecError) as raised:
        declarative_source(source_spec)

    assert str(raised.value) == (
        "shop.yml:6: `${api_key}` is not set; pass api_key=... to declarative_source, or "
        "set `sources.shop.api_key` in .dlt/secrets.toml (env SOURCES__SHOP__API_KEY)"
    )


def test_a_value_the_spec_does_not_use_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        declarative_source(spec_file(tmp_path, MINIMAL), api_key="k", page_size=10)

    assert str(raised.value).startswith(
        "shop.yml: `page_size` is neither a `${page_size}` of the spec nor a setting"
    )


def test_a_paginator_missing_its_arguments_is_one_line_naming_it(tmp_path: Path) -> None:
    paged = MINIMAL.replace(
        "      path: /v1/orders\n", "      path: /v1/orders\n      paginator: offset\n"
    )

    with pytest.raises(SpecError) as raised:
        declarative_source(spec_file(tmp_path, paged), api_key="k")

    assert str(raised.value).startswith("shop: paginator `offset` cannot be made from 'offset': ")
    assert "\n" not in str(raised.value)
