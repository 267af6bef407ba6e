"""Moved to `shared.http.session`; kept for connectors written before the move."""

from shared.http.session import *  # noqa: F403
