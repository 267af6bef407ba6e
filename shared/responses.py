"""Moved to `shared.http.responses`; kept for connectors written before the move."""

from shared.http.responses import *  # noqa: F403
