"""The ``score_risk`` transform."""
