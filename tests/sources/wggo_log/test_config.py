"""The config model: every example in docs/sources/wggo_log.md loads through the real config loader,
bad combinations are refused with every problem at once, and the docs list every action."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pydantic
import pytest

from wgsiem.config.loader import load_config_text
from wgsiem.errors import ConfigError
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.base import SourceContext
from wgsiem.sources.peer_directory import PeerDirectory
from wgsiem.sources.wggo_log.catalog import ACTIONS
from wgsiem.sources.wggo_log.config import WggoLogSourceConfig
from wgsiem.sources.wggo_log.source import WggoLogSource

DOC = Path(__file__).resolve().parents[3] / "docs" / "sources" / "wggo_log.md"


def test_doc_examples_load() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert len(blocks) == 3
    modes = []
    for text in blocks:
        cfg = load_config_text(text, str(DOC))
        src = cfg.sources["wggo"]
        assert isinstance(src, WggoLogSourceConfig)
        modes.append(src.mode)
    assert modes == ["file", "journald", "command"]


def test_doc_lists_every_action() -> None:
    text = DOC.read_text()
    assert [a for a in ACTIONS if f"| `{a}` |" not in text] == []


def test_bare_type_is_valid_for_replay_but_not_for_a_live_run(tmp_path: Path) -> None:
    bare = WggoLogSourceConfig()  # what `wgsiem replay` builds when the config has no wggo_log source
    assert bare.path is None
    ctx = SourceContext(
        "h", tmp_path, TelemetryRegistry().register("w", "source", "wggo_log"), PeerDirectory()
    )
    src = WggoLogSource("w", bare, ctx)
    with pytest.raises(ConfigError, match="has no `path`"):
        asyncio.run(src.run(lambda batch: asyncio.sleep(0), asyncio.Event()))


def test_defaults() -> None:
    c = WggoLogSourceConfig(path="/var/log/wg0.log")
    assert (c.mode, c.from_start, c.env, c.journal_matches) == (
        "file",
        False,
        {"LOG_LEVEL": "debug"},
        ["_COMM=wireguard-go"],
    )


@pytest.mark.parametrize(
    ("kwargs", "problems"),
    [
        ({"mode": "file"}, ["needs `path`"]),
        ({"mode": "command"}, ["needs `command`"]),
        ({"mode": "command", "command": ["wireguard-go", "wg0"]}, ["foreground"]),
        ({"mode": "file", "timezone": "Mars/Olympus"}, ["needs `path`", "unknown time zone"]),
        ({"mode": "journald", "interface": "much-too-long-name"}, ["interface"]),
        ({"mode": "journald", "unknown": 1}, ["unknown"]),
    ],
)
def test_refused(kwargs: dict[str, object], problems: list[str]) -> None:
    with pytest.raises(pydantic.ValidationError) as err:
        WggoLogSourceConfig(**kwargs)
    for p in problems:
        assert p in str(err.value)
