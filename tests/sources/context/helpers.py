"""Builds a ContextSource with a peer directory, for the tests of this folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import SourceContext
from wgsiem.sources.context.config import ContextSourceConfig
from wgsiem.sources.context.source import ContextSource
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

FIXTURES = Path(__file__).parents[2] / "fixtures" / "context"
ALICE_KEY = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="


def lab_like_directory() -> PeerDirectory:
    """One gateway peer shaped like the lab's client 1 (tunnel 10.222.0.11, endpoint 203.0.113.12)."""
    pd = PeerDirectory()
    pd.publish("wg0", [PeerInfo("wg0", ALICE_KEY, "203.0.113.12:51820", ("10.222.0.11/32",), None, 0.0)], 0.0)
    return pd


def make_source(tmp: Path, peers: PeerDirectory | None = None, **cfg: Any) -> ContextSource:
    tel = TelemetryRegistry().register("ctx", "source", "context")
    ctx = SourceContext("gw-1", tmp, tel, peers if peers is not None else PeerDirectory())
    return ContextSource("ctx", ContextSourceConfig(**cfg), ctx)
