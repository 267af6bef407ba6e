"""Moved to `shared.rest.stop_paging`; kept for connectors written before the move."""

from shared.rest.stop_paging import *  # noqa: F403
