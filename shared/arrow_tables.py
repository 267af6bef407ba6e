"""Moved to `shared.arrow.tables`; kept for connectors written before the move."""

from shared.arrow.tables import *  # noqa: F403
