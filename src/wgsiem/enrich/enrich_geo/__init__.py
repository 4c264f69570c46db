"""The ``enrich_geo`` transform."""
