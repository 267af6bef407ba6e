"""Origins (scheme, host, port) of URLs: the unit credentials are scoped to."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """Return the origin of `url` as `scheme://host:port`, with the default port made explicit.

    Args:
        url: an absolute http(s) URL.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port or DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{host}:{port}"
