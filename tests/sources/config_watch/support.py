"""Helpers shared by the config_watch tests: a source on a tmp state dir, fixture access, secret scans."""

from __future__ import annotations

import base64
import logging
import re
from pathlib import Path
from typing import Any

import orjson

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import SourceContext
from wgsiem.sources.config_watch.config import ConfigWatchSourceConfig
from wgsiem.sources.config_watch.source import ConfigWatchSource
from wgsiem.sources.peer_directory import PeerDirectory
from wgsiem.sources.wg_state.records import Fingerprinter

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "config_watch"
FP = Fingerprinter(b"f" * 32)
_SECRET_LINE = re.compile(r"^\s*(?:#\[disabled\]\s*)?(PrivateKey|PresharedKey)\s*=\s*(\S+)", re.I | re.M)
_WGP_PRIVATE = re.compile(r"-WGP- PrivateKey: (\S+)")


def fixture(name: str) -> str:
    return (FIX / name).read_text()


def secrets_in(text: str) -> set[str]:
    """Every private/preshared key written in a config text (including wg-portal's comment copy)."""
    return {m.group(2) for m in _SECRET_LINE.finditer(text)} | set(_WGP_PRIVATE.findall(text))


def all_fixture_secrets() -> set[str]:
    out: set[str] = set()
    for f in FIX.glob("*.conf"):
        out |= secrets_in(f.read_text())
    return out


def secret_forms(secret: str) -> list[str]:
    """The base64 key and its hex form (how UAPI writes it)."""
    return [secret, base64.b64decode(secret).hex()]


def assert_no_secrets(blob: str, secrets: set[str]) -> None:
    leaked = [s[:4] + "…" for s in secrets for form in secret_forms(s) if form in blob]
    assert leaked == [], f"secret key material leaked (first chars): {leaked}"


def make_source(
    state_dir: Path,
    *,
    peers: PeerDirectory | None = None,
    replay: bool = False,
    **cfg: Any,
) -> ConfigWatchSource:
    reg = TelemetryRegistry()
    ctx = SourceContext(
        hostname="gw-test",
        state_dir=state_dir,
        telemetry=reg.register("cw", "source", "config_watch"),
        peers=peers if peers is not None else PeerDirectory(),
        replay=replay,
    )
    return ConfigWatchSource("cw", ConfigWatchSourceConfig(**cfg), ctx)


def dump_logs(records: list[logging.LogRecord]) -> str:
    return "\n".join(r.getMessage() for r in records)


def docs_blob(docs: list[dict[str, Any]]) -> str:
    return orjson.dumps(docs).decode()
