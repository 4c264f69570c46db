"""Both sources wired by the real Service (config loader → registry → pipeline → ndjson sink)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import uuid
from pathlib import Path

import aiohttp
import pytest

from wgsiem.config.loader import load_config_text
from wgsiem.service import Service

pytestmark = pytest.mark.component
TOKEN = "abcdefghijklmnopqrstuvwxyz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_context_and_host_through_the_service(tmp_path: Path) -> None:
    ns = f"wgsiem-svc-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "tuntap", "add", "dev", "wg0", "mode", "tun"], check=True)
        port = free_port()
        cfg = load_config_text(
            f"""
state_dir: {tmp_path}/state
sources:
  ctx:
    type: context
    http: {{token: {TOKEN}, listen_port: {port}}}
  hostnet:
    type: host
    namespace: {ns}
sinks:
  out:
    type: ndjson
    path: {tmp_path}/out.ndjson
api:
  socket_path: {tmp_path}/api.sock
""",
            "service.yaml",
        )
        svc = Service(cfg)
        svc.build()
        out = tmp_path / "out.ndjson"

        def actions() -> list[str]:
            if not out.exists():
                return []
            return [json.loads(line)["event"]["action"] for line in out.read_text().splitlines()]

        async def main() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(svc.run(stop))
            try:
                async with asyncio.timeout(20):
                    while not (svc.sources["ctx"].ready.is_set() and svc.sources["hostnet"].ready.is_set()):
                        await asyncio.sleep(0.02)
                    body = (
                        b'{"time":"2026-11-25T09:14:03Z","provider":"okta","user":"alice","result":"success"}'
                    )
                    async with (
                        aiohttp.ClientSession() as c,
                        c.post(
                            f"http://127.0.0.1:{port}/v1/ingest/identity",
                            data=body,
                            headers={"Authorization": f"Bearer {TOKEN}"},
                        ) as r,
                    ):
                        assert r.status == 200
                    await asyncio.to_thread(
                        subprocess.run, ["ip", "-n", ns, "link", "set", "wg0", "mtu", "1300"], check=True
                    )
                    while svc.registry.get("hostnet").sent < 1:
                        await asyncio.sleep(0.02)
            finally:
                stop.set()
                await asyncio.wait_for(task, 20)

        asyncio.run(main())
        assert sorted(actions()) == ["identity-mfa", "mtu-changed"]
        assert TOKEN not in out.read_text()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
