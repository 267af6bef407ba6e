"""Moved to `shared.http.retries`; kept for connectors written before the move."""

from shared.http.retries import *  # noqa: F403
