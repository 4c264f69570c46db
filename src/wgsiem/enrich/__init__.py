"""Transforms that add context to every event: geography, identity, assets, risk, privacy."""
