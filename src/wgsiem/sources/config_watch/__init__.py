"""The ``config_watch`` source."""
