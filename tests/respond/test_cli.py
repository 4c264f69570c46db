"""``wgsiem approvals``, ``wgsiem audit`` and ``wgsiem respond`` against a real engine's state."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from wgsiem.cli.main import cli
from wgsiem.config.loader import load_config
from wgsiem.respond.engine import Engine

from . import fakes
from .harness import audit_records, fake_state, write_playbooks

KEY = "UV0ZLZMjrlNYkdmY/4KSw6terGfy0VACCBJ8fYPrMGw="


@pytest.fixture(autouse=True)
def _fakes() -> Iterator[None]:
    fakes.install()
    yield
    fakes.uninstall()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Engine]:
    cfg_path = tmp_path / "wgsiem.yaml"
    cfg_path.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "sinks": {
                    "respond": {
                        "type": "respond",
                        "builtin_playbooks": False,
                        "playbook_dirs": [str(write_playbooks(tmp_path / "playbooks"))],
                        "settings": {
                            "fake_state": str(tmp_path / "fake_state.json"),
                            "gate": str(tmp_path / "g"),
                        },
                    }
                },
            }
        )
    )
    cfg = load_config(cfg_path)
    eng = Engine(cfg.sinks["respond"], state_dir=Path(cfg.state_dir), hostname="gw-test")
    return cfg_path, eng


def wg(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return res.exit_code, res.output


def test_approve_and_deny_from_the_cli(setup: tuple[Path, Engine]) -> None:
    cfg, eng = setup
    a1 = fakes.alert(rule="wireguard_unallowed_source_ip", playbook="x", peer=KEY, alert_id="a1")
    a2 = fakes.alert(rule="wireguard_unallowed_source_ip", playbook="x", peer=KEY, alert_id="a2")
    (p1,) = asyncio.run(eng.handle_alert(a1))
    (p2,) = asyncio.run(eng.handle_alert(a2))
    code, out = wg("approvals", "list", "-c", str(cfg))
    assert code == 0 and p1 in out and p2 in out and "revoke 1 peer(s)" in out
    code, out = wg("approvals", "approve", p1, "--reason", "owner confirmed", "-c", str(cfg))
    assert code == 0 and "approved by os:" in out
    code, out = wg("approvals", "deny", p2, "--reason", "false positive: lab host", "-c", str(cfg))
    assert code == 0
    asyncio.run(eng.tick())  # the running engine's poll
    assert eng.store.proposal(p1)["status"] == "done" and eng.store.proposal(p2)["status"] == "denied"
    assert fake_state(cfg.parent)["revoked"] == [KEY]
    code, out = wg("approvals", "deny", p1, "--reason", "late", "-c", str(cfg))
    assert code == 1 and "not pending" in out
    dec = [r for r in audit_records(eng) if r["kind"] == "decision" and r["actor"].startswith("os:")]
    assert [(d["event"], d["reason"]) for d in dec] == [
        ("approved", "owner confirmed"),
        ("denied", "false positive: lab host"),
    ]
    code, out = wg("approvals", "show", p1, "-c", str(cfg))
    assert json.loads(out)["actions"][0]["status"] == "ok"
    eng.close()


def test_audit_verify_and_show(setup: tuple[Path, Engine]) -> None:
    cfg, eng = setup
    asyncio.run(eng.handle_alert(fakes.alert()))
    eng.close()
    code, out = wg("audit", "verify", "-c", str(cfg))
    assert code == 0 and "OK — 5 record(s)" in out
    code, out = wg("audit", "show", "--kind", "decision", "--json", "-c", str(cfg))
    assert [json.loads(x)["event"] for x in out.splitlines()] == ["auto-approved"]
    code, out = wg("audit", "show", "--since", "1h", "-c", str(cfg))
    assert code == 0 and len(out.splitlines()) == 5
    log = eng.paths.audit
    lines = log.read_text().splitlines()
    lines[2] = lines[2].replace("block 203.0.113.7", "block 203.0.113.8")
    log.write_text("\n".join(lines) + "\n")
    code, out = wg("audit", "verify", "-c", str(cfg))
    assert code == 1 and "line 3 (record seq 3)" in out and "edited" in out


def test_kill_switch_cli(setup: tuple[Path, Engine]) -> None:
    cfg, eng = setup
    code, out = wg("respond", "kill-switch", "on", "--reason", "drill", "-c", str(cfg))
    assert code == 0 and eng.kill_switch_on()
    (pid,) = asyncio.run(eng.handle_alert(fakes.alert()))
    assert eng.store.proposal(pid)["status"] == "killed"
    code, out = wg("respond", "kill-switch", "status", "-c", str(cfg))
    assert "ON" in out
    wg("respond", "kill-switch", "off", "-c", str(cfg))
    assert not eng.kill_switch_on()
    ev = [(r["event"], r["actor"].startswith("os:")) for r in audit_records(eng) if r["kind"] == "policy"]
    assert ev == [("kill-switch-on", True), ("kill-switch", False), ("kill-switch-off", True)]
    eng.close()


def test_undo_cli_in_process_and_queued(setup: tuple[Path, Engine]) -> None:
    cfg, eng = setup
    (p1,) = asyncio.run(eng.handle_alert(fakes.alert(alert_id="a1", ip="203.0.113.1")))
    (p2,) = asyncio.run(eng.handle_alert(fakes.alert(alert_id="a2", ip="203.0.113.2")))
    eng.store.clear_beat()
    code, out = wg("respond", "undo", f"{p1}.1", "--reason", "false positive", "-c", str(cfg))
    assert code == 0 and "undo done: unblocked 203.0.113.1" in out
    eng.store.beat()  # an engine is running: the CLI queues and waits
    code, out = wg("respond", "undo", f"{p2}.1", "--reason", "fp", "--wait", "0.2", "-c", str(cfg))
    assert code == 2 and "queued" in out
    asyncio.run(eng.tick())
    assert fake_state(cfg.parent)["blocked"] == []
    code, out = wg("respond", "undo", "p-none.1", "--reason", "x", "-c", str(cfg))
    assert code == 1
    code, out = wg("respond", "status", "--json", "-c", str(cfg))
    assert json.loads(out)["proposals"] == {"done": 2}
    eng.close()


def test_playbooks_cli_lists_builtins() -> None:
    code, out = wg("respond", "playbooks")
    assert code == 0 and "handshake-abuse" in out and "block_endpoint" in out
