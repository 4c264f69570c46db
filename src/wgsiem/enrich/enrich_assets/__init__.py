"""The ``enrich_assets`` transform."""
