"""Moved to `shared.http.auth`; kept for connectors written before the move."""

from shared.http.auth import *  # noqa: F403
