"""Polls as far apart as the session timeout: a warning when the source is built."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.source import WgStateSource


def test_a_poll_interval_at_the_session_timeout_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    from wgsiem.sources.wg_state.config import poll_interval_warning

    assert poll_interval_warning(WgStateSourceConfig()) is None
    assert poll_interval_warning(WgStateSourceConfig(poll_interval_secs=194.9)) is None
    msg = poll_interval_warning(WgStateSourceConfig(poll_interval_secs=195))
    assert msg is not None and "195" in msg and "session" in msg
    with tempfile.TemporaryDirectory() as tmp, caplog.at_level("WARNING", logger="wgsiem.sources.wg_state"):
        tel = TelemetryRegistry().register("w", "source", "wg_state")
        WgStateSource(
            "w", WgStateSourceConfig(poll_interval_secs=300), hostname="h", state_dir=Path(tmp), telemetry=tel
        )
    assert "poll_interval_secs (300) is not below the session timeout plus grace (195 s)" in caplog.text
