"""Moved to `shared.http.rate_limit`; kept for connectors written before the move."""

from shared.http.rate_limit import *  # noqa: F403
