"""Moved to `shared.rest.fan_in`; kept for connectors written before the move."""

from shared.rest.fan_in import *  # noqa: F403
