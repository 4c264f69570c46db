"""The ``wggo_log`` source."""
