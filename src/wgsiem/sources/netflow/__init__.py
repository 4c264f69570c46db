"""The ``netflow`` source."""
