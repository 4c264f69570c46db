"""The ``splunk_hec`` sink: events to a Splunk HTTP Event Collector, and the Splunk app (``content``)."""
