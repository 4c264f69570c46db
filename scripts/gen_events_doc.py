"""Regenerate the real examples in docs/events.md from a real WireGuard lab.

Runs a scenario that makes the ``wg_state`` source emit every action once against wireguard-go in
network namespaces, and writes one real document per action into docs/events.md between the
``<!-- examples:begin -->`` and ``<!-- examples:end -->`` markers. Run as root:

    sudo .venv/bin/python scripts/gen_events_doc.py
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from wgsiem.lab.netns import find_wireguard_go
from wgsiem.lab.runtime import Lab
from wgsiem.lab.topology import LabSpec
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.normalize import ACTIONS
from wgsiem.sources.wg_state.source import WgStateSource

DOC = Path(__file__).resolve().parents[1] / "docs" / "events.md"


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("error: needs root (the lab uses network namespaces)")
    state = Path(tempfile.mkdtemp(prefix="wgsiem-doc-"))
    lab = Lab(LabSpec(name="doc", clients=2), state / "lab")
    lab.up()
    docs: list[dict[str, Any]] = []
    try:
        gw2 = lab.add_gateway_interface()
        cfg = WgStateSourceConfig(
            interfaces=[lab.gateway_interface, gw2],
            session_timeout_secs=4,
            session_grace_secs=1,
            transfer_interval_secs=0.5,
        )
        src = WgStateSource(
            "wg",
            cfg,
            hostname="vpn-gw-1",
            state_dir=state,
            telemetry=TelemetryRegistry().register("wg", "source", "wg_state"),
        )

        def poll() -> None:
            docs.extend(e.data for e in asyncio.run(src.poll_once()))

        def until(action: str, timeout: float = 40, reason: str | None = None) -> None:
            def found() -> bool:
                return any(
                    d["event"]["action"] == action
                    and (reason is None or d["wireguard"]["session"]["end_reason"] == reason)
                    for d in docs
                )

            deadline = time.monotonic() + timeout
            while not found():
                if time.monotonic() > deadline:
                    raise SystemExit(f"error: no {action} within {timeout}s")
                poll()
                time.sleep(0.3)

        poll()
        lab.connect(1)
        lab.send(1, 100_000)
        until("session-started")
        until("transfer")
        lab.roam(1)
        until("endpoint-changed")
        gw_ns = lab.gateway_namespace
        k2 = lab.client_public_key(2)
        lab.wg(
            gw_ns, "set", lab.gateway_interface, "peer", k2, "allowed-ips", "10.222.0.12/32,10.222.50.0/24"
        )
        until("allowed-ips-changed")
        psk = state / "psk"
        psk.write_text(subprocess.run(["wg", "genpsk"], capture_output=True, text=True, check=True).stdout)
        psk.chmod(0o600)
        lab.wg(gw_ns, "set", lab.gateway_interface, "peer", k2, "preshared-key", str(psk))
        until("preshared-key-changed")
        lab.wg(gw_ns, "set", gw2, "listen-port", "51999")
        until("interface-changed")
        key = state / "newkey"
        key.write_text(subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout)
        key.chmod(0o600)
        lab.wg(gw_ns, "set", gw2, "private-key", str(key))
        until("interface-key-changed")
        lab.restart_gateway()
        until("counter-reset")
        lab.connect(1)
        lab.idle(1)
        until("session-ended", reason="expired")
        lab.remove_peer(2)
        until("peer-removed")
        for pid in find_wireguard_go(lambda interface: interface == gw2).values():
            os.kill(pid, signal.SIGTERM)  # the interface disappears as when wg-quick down runs
        until("interface-removed")
    finally:
        lab.down()
    by_action: dict[str, dict[str, Any]] = {}
    for d in docs:
        a = d["event"]["action"]
        if a not in by_action or (
            a == "session-ended" and d["wireguard"]["session"]["end_reason"] == "expired"
        ):
            by_action[a] = d
    missing = set(ACTIONS) - set(by_action)
    if missing:
        raise SystemExit(f"error: the scenario did not produce {sorted(missing)}")
    parts = []
    for action in ACTIONS:
        body = orjson.dumps(by_action[action], option=orjson.OPT_INDENT_2).decode()
        parts.append(f"### `{action}`\n\n```json\n{body}\n```\n")
    text = DOC.read_text()
    begin, end = "<!-- examples:begin -->", "<!-- examples:end -->"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    DOC.write_text(f"{head}{begin}\n\n" + "\n".join(parts) + f"\n{end}{tail}")
    print(f"wrote {len(parts)} real examples into {DOC}")


if __name__ == "__main__":
    main()
