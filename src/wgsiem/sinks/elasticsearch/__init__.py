"""The `elasticsearch` sink."""
