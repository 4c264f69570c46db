"""The lab's status as plain data (pure): what ``wgsiem lab status`` prints and tests assert on.

Kept apart from the runtime so the report's shape is decided in one place, from facts the runtime
gathers (state, which processes run, what the gateway reports), and can be tested without root.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wgsiem.lab.keys import b64_to_hex
from wgsiem.lab.state import LabState
from wgsiem.lab.uapi import UapiPeer

__all__ = ["down_report", "lab_report"]


def down_report(name: str, state_dir: Path, namespaces: list[str]) -> dict[str, Any]:
    """A lab that is not up; ``namespaces`` lists any of its namespaces still present."""
    return {"name": name, "state_dir": str(state_dir), "namespaces": namespaces, "up": False}


def lab_report(
    state: LabState,
    state_dir: Path,
    namespaces: list[str],
    running: Mapping[str, bool],
    seen: Mapping[str, UapiPeer] | None,
) -> dict[str, Any]:
    """``running``: interface → its wireguard-go answers; ``seen``: the gateway's peers by hex key
    (None when the gateway could not be asked)."""
    spec = state.spec
    gateways = [
        {
            "interface": g.interface,
            "namespace": g.namespace,
            "pid": g.pid,
            "running": running.get(g.interface, False),
            "public_key": g.public_key,
            "listen_port": g.listen_port,
            "log": str(state_dir / f"{g.interface}.log"),
        }
        for g in state.gateways.values()
    ]
    clients = []
    for i in sorted(state.clients):
        cst, ciface, plan = state.clients[i], state.client_interfaces.get(i), spec.client(i)
        peer = (seen or {}).get(b64_to_hex(ciface.public_key)) if ciface else None
        clients.append(
            {
                "index": i,
                "namespace": plan.namespace,
                "interface": plan.interface,
                "pid": ciface.pid if ciface else None,
                "running": running.get(plan.interface, False),
                "public_key": ciface.public_key if ciface else None,
                "outer": [a for a in (cst.outer_v4, cst.outer_v6) if a],
                "tunnel_address": str(plan.tunnel_address),
                "dials": plan.endpoint,
                "preshared_key": cst.psk_file is not None,
                "removed": cst.removed,
                "idle": cst.idle,
                "gateway_view": None
                if peer is None
                else {
                    "endpoint": peer.endpoint,
                    "latest_handshake": peer.last_handshake_sec,
                    "rx_bytes": peer.rx_bytes,
                    "tx_bytes": peer.tx_bytes,
                    "allowed_ips": peer.allowed_ips,
                },
            }
        )
    return {
        "name": spec.name,
        "state_dir": str(state_dir),
        "namespaces": namespaces,
        "up": seen is not None,
        "gateways": gateways,
        "gateway_peers": len(seen or {}),
        "bulk_peers": state.bulk_peers,
        "clients": clients,
    }
