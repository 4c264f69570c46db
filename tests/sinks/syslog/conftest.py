"""Fixtures of the syslog sink tests: the captured documents and a private rsyslogd."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .rsyslog import GTLS_DRIVER, RSYSLOGD, Rsyslog

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "syslog"


def load_events() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / "events.ndjson").read_text().splitlines()]


@pytest.fixture
def events() -> list[dict[str, Any]]:
    return load_events()


def _need_rsyslog() -> None:
    if not shutil.which("rsyslogd") and not os.path.exists(RSYSLOGD):
        pytest.skip("rsyslogd not installed (apt-get install rsyslog)")
    if not GTLS_DRIVER.exists():
        pytest.skip("rsyslog's GnuTLS driver missing (apt-get install rsyslog-gnutls)")


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    """One private rsyslogd for a test module (started, always stopped)."""
    _need_rsyslog()
    daemon = Rsyslog(tmp_path_factory.mktemp("rsyslog"))
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def own_rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    """A private rsyslogd for one test that stops and restarts it."""
    _need_rsyslog()
    daemon = Rsyslog(tmp_path / "rsyslog")
    daemon.workdir.mkdir(exist_ok=True)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
