"""Crash mid-playbook: an engine subprocess is killed with SIGKILL between steps; the restarted
engine resumes the run (idempotent actions) or rolls it back, as the playbook says, and audits it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wgsiem.respond.audit import verify

from . import fakes
from .harness import audit_records, fake_state, make_engine

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import asyncio, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from tests.respond import fakes
from tests.respond.harness import make_engine
fakes.install()
eng = make_engine(Path(sys.argv[1]))
asyncio.run(eng.handle_alert(fakes.alert(playbook=sys.argv[2])))
"""


@pytest.fixture(autouse=True)
def _fakes() -> Iterator[None]:
    fakes.install()
    yield
    fakes.uninstall()


def _kill_between_steps(tmp: Path, playbook: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT)), str(tmp), playbook],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while "gate-entered" not in fake_state(tmp)["log"]:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the engine never reached step 2"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_crash_then_resume(tmp_path: Path) -> None:
    _kill_between_steps(tmp_path, "gated-resume")
    eng = make_engine(tmp_path)
    (row,) = eng.store.proposals(status="running")
    assert [a["status"] for a in eng.store.actions_of(row["id"])] == ["ok", "started"]
    (tmp_path / "gate").touch()
    asyncio.run(eng.recover())
    assert eng.store.proposal(row["id"])["status"] == "done"
    assert fake_state(tmp_path)["log"] == [
        "block 203.0.113.7",
        "gate-entered",
        "gate-entered",
        "gate-passed",
        "revoke",
    ]
    assert [a["status"] for a in eng.store.actions_of(row["id"])] == ["ok", "ok", "ok"]
    crash = [r for r in audit_records(eng) if r.get("event") == "crash-resume"]
    assert crash[0]["inflight"] == [f"{row['id']}.2"]
    eng.close()
    assert verify(eng.paths.audit).ok


def test_crash_then_rollback(tmp_path: Path) -> None:
    _kill_between_steps(tmp_path, "gated-rollback")
    eng = make_engine(tmp_path)
    (row,) = eng.store.proposals(status="running")
    asyncio.run(eng.recover())
    assert eng.store.proposal(row["id"])["status"] == "rolled_back"
    assert fake_state(tmp_path)["blocked"] == []
    assert [a["status"] for a in eng.store.actions_of(row["id"])] == ["undone", "abandoned"]
    ev = [r.get("event") for r in audit_records(eng)]
    assert ev[-4:] == ["crash-rollback", "undo-started", "undo-succeeded", "run-rolled-back"]
    eng.close()
    assert verify(eng.paths.audit).ok
