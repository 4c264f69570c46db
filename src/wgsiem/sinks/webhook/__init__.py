"""The `webhook` sink."""
