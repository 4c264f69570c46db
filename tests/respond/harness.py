"""Shared set-up for the respond tests: test playbooks, an engine over fake actions, its state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wgsiem.respond.config import RespondSinkConfig
from wgsiem.respond.engine import Engine

PLAYBOOKS = {
    "contain.yaml": """
id: contain
name: Contain an endpoint
tier: 1
steps:
  - action: block_endpoint
    params: {ttl_secs: 60}
""",
    "revoke.yaml": """
id: revoke
name: Revoke a peer
tier: 2
trigger:
  rules: [wireguard_unallowed_source_ip]
  entity: [wireguard.peer.public_key]
steps:
  - action: revoke_peer
""",
    "rotate.yaml": """
id: rotate
name: Rotate keys
tier: 2
steps:
  - action: rotate_peer_keys
""",
    "chain.yaml": """
id: chain
name: Block then throttle, roll back on failure
tier: 1
steps:
  - action: block_endpoint
  - action: throttle_peer
    retries: 0
    on_failure: rollback
""",
    "chain-retry.yaml": """
id: chain-retry
name: Block then throttle with two retries, roll back on failure
tier: 1
steps:
  - action: block_endpoint
  - action: throttle_peer
    retries: 2
    on_failure: rollback
""",
    "gated-resume.yaml": """
id: gated-resume
name: Block, wait at a gate, revoke (resumed after a crash)
tier: 1
approval: never
on_crash: resume
steps:
  - action: block_endpoint
  - action: notify
  - action: revoke_peer
""",
    "gated-rollback.yaml": """
id: gated-rollback
name: Block, wait at a gate (rolled back after a crash)
tier: 1
on_crash: rollback
steps:
  - action: block_endpoint
  - action: notify
""",
}


def write_playbooks(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in PLAYBOOKS.items():
        (directory / name).write_text(text)
    return directory


def sink_config(tmp: Path, **over: Any) -> RespondSinkConfig:
    data: dict[str, Any] = {
        "type": "respond",
        "builtin_playbooks": False,
        "playbook_dirs": [str(write_playbooks(tmp / "playbooks"))],
        "settings": {"fake_state": str(tmp / "fake_state.json"), "gate": str(tmp / "gate")},
        "poll_interval_secs": 0.05,
    }
    data.update(over)
    return RespondSinkConfig.model_validate(data)


def make_engine(tmp: Path, **over: Any) -> Engine:
    return Engine(sink_config(tmp, **over), state_dir=tmp / "state", hostname="gw-test")


def fake_state(tmp: Path) -> dict[str, Any]:
    p = tmp / "fake_state.json"
    return json.loads(p.read_text()) if p.exists() else {"blocked": [], "revoked": [], "log": []}


def audit_records(engine_or_path: Any) -> list[dict[str, Any]]:
    path = engine_or_path.paths.audit if hasattr(engine_or_path, "paths") else Path(engine_or_path)
    return [json.loads(line) for line in path.read_text().splitlines()]
