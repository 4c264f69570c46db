"""The ``prometheus_exporter`` sink: ``/metrics`` for Prometheus."""
