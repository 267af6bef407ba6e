"""shared.http.origins: the unit credentials are scoped to."""

from __future__ import annotations

import pytest

from shared.http.origins import origin_of


def test_origin_is_lowercased_scheme_host_and_explicit_default_port() -> None:
    assert origin_of("https://API.Example.com/v2/items?page=2") == "https://api.example.com:443"
    assert origin_of("http://api.example.com/") == "http://api.example.com:80"
    assert origin_of("http://127.0.0.1:54321/x") == "http://127.0.0.1:54321"


def test_explicit_default_port_is_the_same_origin() -> None:
    assert origin_of("https://api.example.com/a") == origin_of("https://api.example.com:443/b?c=d")


@pytest.mark.parametrize(
    "other",
    [
        "http://api.example.com/a",  # scheme
        "https://api.example.com:8443/a",  # port
        "https://eu.api.example.com/a",  # subdomain
        "https://api.example.com.evil.example/a",  # suffix
        "https://api.example.com@evil.example/a",  # userinfo trick: the host is evil.example
    ],
)
def test_a_different_scheme_port_or_host_is_another_origin(other: str) -> None:
    assert origin_of("https://api.example.com/") != origin_of(other)
