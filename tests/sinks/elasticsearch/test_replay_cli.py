"""``wgsiem replay`` (the real CLI, service wiring, transforms, outbox) into the contract server."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .contract_server import ContractServer, Running, start

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture
def server_in_thread() -> Iterator[tuple[ContractServer, Running]]:
    server = ContractServer()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Running] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        box["running"] = loop.run_until_complete(start(server))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield server, box["running"]
    finally:
        asyncio.run_coroutine_threadsafe(box["running"].stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def test_replay_delivers_every_event_to_its_data_stream(
    server_in_thread: tuple[ContractServer, Running], tmp_path: Path
) -> None:
    server, running = server_in_thread
    cfg = {
        "sinks": {
            "siem": {
                "type": "elasticsearch",
                "hosts": [running.url],
                "install": {"template": True, "ilm": True, "retention_days": 90},
                "outbox": {"flush_timeout_secs": 120},
            }
        }
    }
    (tmp_path / "wgsiem.yaml").write_text(yaml.safe_dump(cfg))
    wgsiem = Path(sys.executable).parent / "wgsiem"
    result = subprocess.run(
        [
            str(wgsiem),
            "replay",
            "-c",
            str(tmp_path / "wgsiem.yaml"),
            "--state-dir",
            str(tmp_path / "state"),
            str(FIXTURES / "kernel_log" / "dmesg_pivpn_1077.txt"),
            str(FIXTURES / "wggo_log" / "client1.log"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = re.search(r"^replayed \d+ records .*: (\d+) events, 0 bad", result.stderr, re.M)
    assert found, result.stderr
    events = int(found.group(1))
    assert events > 0
    assert server.count() == events
    assert server.ecs_problems == []
    assert set(server.streams) == {"logs-wireguard.kernel_log-default", "logs-wireguard.wggo_log-default"}
    assert "wgsiem-logs" in server.ilm_policies
