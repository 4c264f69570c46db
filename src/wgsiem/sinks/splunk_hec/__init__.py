"""The `splunk_hec` sink."""
