"""Durable delivery shared by every network sink: a disk-backed outbox in front of a deliverer."""
