"""The ``context`` source."""
