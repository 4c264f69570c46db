"""``wgsiem record`` and ``wgsiem replay``: capture a gateway's telemetry, run the pipeline over captures."""
