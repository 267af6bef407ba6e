"""Moved to `shared.incremental.cursors`; kept for connectors written before the move."""

from shared.incremental.cursors import *  # noqa: F403
