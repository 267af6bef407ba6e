"""Moved to `shared.rest.builder`; kept for connectors written before the move."""

from shared.rest.builder import *  # noqa: F403
