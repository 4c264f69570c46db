"""The ``apply_privacy`` transform."""
