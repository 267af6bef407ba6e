"""Moved to `shared.rest.keyset`; kept for connectors written before the move."""

from shared.rest.keyset import *  # noqa: F403
