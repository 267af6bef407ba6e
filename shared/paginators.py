"""Moved to `shared.rest.paginators`; kept for connectors written before the move."""

from shared.rest.paginators import *  # noqa: F403
