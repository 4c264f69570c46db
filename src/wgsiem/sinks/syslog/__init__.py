"""The `syslog` sink."""
