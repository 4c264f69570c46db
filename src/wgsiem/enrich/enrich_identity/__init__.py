"""The ``enrich_identity`` transform."""
