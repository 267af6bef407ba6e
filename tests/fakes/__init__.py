"""Fake vendor servers: one per API contract, real HTTP on loopback, deterministic data."""
