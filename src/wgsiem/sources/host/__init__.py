"""The ``host`` source."""
