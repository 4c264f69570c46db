"""What a running lab is, on disk (``<state_dir>/lab.json``), so any process can drive or tear it down.

Why a file: ``wgsiem lab up`` returns while wireguard-go keeps running; ``lab down``/``status``/``roam``
run later from other processes and need the pids, the key files and what changed since ``up`` (roamed
addresses, removed peers, live-added clients). Secrets are never in this file, only the paths of the
0600 files that hold them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wgsiem.lab.topology import LabError, LabSpec

__all__ = ["STATE_FILE", "ClientState", "InterfaceState", "LabState", "load_state", "save_state"]

STATE_FILE = "lab.json"
_VERSION = 1


@dataclass(slots=True)
class InterfaceState:
    """One running WireGuard interface: where, which process, which key."""

    interface: str
    namespace: str
    private_key_file: str
    public_key: str
    pid: int | None = None
    listen_port: int | None = None


@dataclass(slots=True)
class ClientState:
    """A client as it is now (its outer addresses move when it roams)."""

    index: int
    outer_v4: str
    outer_v4_via: str
    outer_v6: str | None
    outer_v6_via: str | None
    psk_file: str | None = None
    removed: bool = False
    """Its peer entry was removed from the gateway (``remove_peer``)."""
    idle: bool = False
    """Its own peer entry for the gateway is withdrawn so it sends nothing (``idle``)."""


@dataclass(slots=True)
class LabState:
    name: str
    ipv6: bool
    clients_at_up: int
    gateways: dict[str, InterfaceState] = field(default_factory=dict)
    """Gateway interfaces by name; ``wg<name>g0`` first."""
    client_interfaces: dict[int, InterfaceState] = field(default_factory=dict)
    clients: dict[int, ClientState] = field(default_factory=dict)
    bulk_peers: int = 0
    """Synthetic peers added so far: the next ones continue the allowed-IP/endpoint sequence."""

    @property
    def spec(self) -> LabSpec:
        return LabSpec(name=self.name, clients=self.clients_at_up, ipv6=self.ipv6)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = _VERSION
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabState:
        if data.get("version") != _VERSION:
            raise LabError(
                f"lab state version {data.get('version')!r} is not {_VERSION}",
                fix="tear the old lab down by hand (`ip netns list`) and run `wgsiem lab up`",
            )
        return cls(
            name=data["name"],
            ipv6=data["ipv6"],
            clients_at_up=data["clients_at_up"],
            gateways={k: InterfaceState(**v) for k, v in data["gateways"].items()},
            client_interfaces={int(k): InterfaceState(**v) for k, v in data["client_interfaces"].items()},
            clients={int(k): ClientState(**v) for k, v in data["clients"].items()},
            bulk_peers=data["bulk_peers"],
        )


def load_state(state_dir: Path) -> LabState | None:
    path = state_dir / STATE_FILE
    try:
        return LabState.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(f"lab state {path} is unreadable: {exc}", fix=f"remove {path} and rebuild") from exc


def save_state(state_dir: Path, state: LabState) -> None:
    """Write atomically (temp file + rename) so a reader never sees half a file."""
    path = state_dir / STATE_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
