"""Durability end to end: a long endpoint outage while events flow, and ``wgsiem run`` SIGKILL-ed.

Both are scenario runs with real processes (the receiver; ``wgsiem run``), marked ``behaviour``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from wgsiem.event import Envelope
from wgsiem.pipeline.runtime import Emit, Pipeline
from wgsiem.pipeline.telemetry import TelemetryRegistry

from ..outbox.support import aio, make_env, wait_for
from .support import Receiver
from .test_webhook import build

OUTAGE_SECS = 185.0  # "several minutes": just over three


class SteadySource:
    """Emits 10 events every 0.25 s until stopped (events keep flowing through the outage)."""

    component_id = "steady"

    def __init__(self) -> None:
        self.sent: list[Envelope] = []

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set():
            batch = [make_env(n) for n in range(i, i + 10)]
            i += 10
            self.sent.extend(batch)
            await emit(batch)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)


@pytest.mark.behaviour
@aio
async def test_endpoint_down_for_three_minutes_then_back_loses_nothing(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sink = build(
        tmp_path,
        receiver.url,
        outbox={"batch_max_events": 200, "retry_initial_backoff_secs": 0.2, "retry_max_backoff_secs": 2.0},
    )
    src = SteadySource()
    stop = asyncio.Event()
    await sink.health_check()
    run = asyncio.create_task(
        Pipeline([src], [], [sink], TelemetryRegistry(), batch_max_wait_secs=0.1).run(stop)
    )
    try:
        await wait_for(lambda: len(receiver.events()) >= 50, 20, "first deliveries")
        receiver.stop()
        down_at = time.monotonic()
        await wait_for(lambda: sink.status()["outbox"]["state"] == "retrying", 20, "retrying state")
        # the scenario's length is the outage itself (not a pass/fail timing)
        while time.monotonic() - down_at < OUTAGE_SECS:
            await asyncio.sleep(1)
        during = sink.status()["outbox"]
        assert during["state"] == "retrying" and during["retries"] >= 10
        assert during["queued_events"] > 3000 and during["oldest_undelivered_age_secs"] > 100
        assert during["failing_for_secs"] > 100 and "ClientConnectorError" in (during["last_error"] or "")
        receiver.start()
        await wait_for(lambda: sink.status()["outbox"]["state"] != "retrying", 30, "recovery")
        await asyncio.sleep(0.5)  # a few more events after the recovery
    finally:
        stop.set()
        await asyncio.wait_for(run, 60)
    expected = {e.data["event"]["id"]: e.data for e in src.sent}
    await wait_for(lambda: len({d["event"]["id"] for d in receiver.events()}) == len(expected), 10, "all")
    got = receiver.events()
    assert {d["event"]["id"] for d in got} == set(expected)
    for d in got:
        assert d == expected[d["event"]["id"]]  # exactly as sent (a re-sent one is identical)
    st = sink.status()["outbox"]
    assert st["queued_events"] == 0 and st["retries"] >= 10
    assert st["recovery"] is not None and st["recovery"]["outage_secs"] >= OUTAGE_SECS
    assert st["recovery"]["backlog_events"] > 3000 and st["recovery"]["events_per_sec"] > 0
    tel = sink.telemetry
    assert tel.received == len(expected) and tel.sent == len(expected) and not tel.dropped
    assert caplog.text.count("logged once per outage") == 1 and "destination back after" in caplog.text


# ---- wgsiem run, SIGKILL-ed mid-delivery ---------------------------------------------------------------

WGSIEM = [sys.executable, "-m", "wgsiem"]


def identity(i: int) -> str:
    return json.dumps(
        {
            "time": f"2026-11-25T09:{(i // 60) % 60:02d}:{i % 60:02d}Z",
            "provider": "okta",
            "user": f"user{i:05d}",
            "action": "mfa",
            "result": "success",
            "factor": "push",
            "source_ip": f"198.51.100.{i % 250 + 1}",
            "id": f"okta-evt-{i:05d}",
        }
    )


class Run:
    def __init__(self, tmp: Path, url: str) -> None:
        self.input = tmp / "identity.ndjson"
        self.input.touch()
        self.log = tmp / "run.log"
        self.cfg = tmp / "wgsiem.yaml"
        self.cfg.write_text(
            f"""
state_dir: {tmp / "state"}
hostname: gw-kill
sources:
  ctx:
    type: context
    files:
      - path: {self.input}
        kind: identity
        follow: true
        poll_interval_secs: 0.1
sinks:
  hook:
    type: webhook
    url: {url}
    outbox:
      batch_max_events: 25
      retry_initial_backoff_secs: 0.1
      retry_max_backoff_secs: 0.5
pipeline:
  batch_max_wait_secs: 0.05
"""
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([*WGSIEM, "run", "--config", str(self.cfg)], stdout=log, stderr=log)

    def append(self, start: int, n: int) -> None:
        with self.input.open("a") as f:
            f.write("".join(identity(i) + "\n" for i in range(start, start + n)))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def cli(self, *args: str) -> str:
        r = subprocess.run(
            [*WGSIEM, *args, "--config", str(self.cfg)], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, r.stderr
        return r.stdout

    def alive(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, self.log.read_text()
        return True


def poll(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.mark.behaviour
def test_wgsiem_run_sigkilled_mid_delivery_delivers_everything_at_least_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.control(delay=0.03)  # ~800 events/s: the kill lands mid-delivery
    run = Run(tmp_path, receiver.url)
    try:
        run.append(0, 2000)
        run.start()
        poll(lambda: run.alive() and len(receiver.events()) >= 300, 60, "deliveries before the kill")
        run.kill()
        before = len(receiver.events())
        assert before < 2000, "the kill did not land mid-delivery"
        outbox = tmp_path / "state" / "outbox" / "hook"
        assert any(outbox.glob("*.seg"))
        for f in outbox.iterdir():
            assert oct(os.stat(f).st_mode & 0o777) == "0o600", f
        run.append(2000, 500)
        run.start()
        poll(
            lambda: run.alive() and len({d["user"]["name"] for d in receiver.events()}) >= 2500,
            90,
            "every event after the restart",
        )
        st = json.loads(run.cli("status", "--json"))["sinks"]["hook"]
        assert st["type"] == "webhook" and st["outbox"]["carried_over"] > 0
        assert st["destination"]["url"] == receiver.url
        table = run.cli("status")
        assert "delivery" in table and "hook" in table and "webhook" in table
    finally:
        run.kill()
    got = receiver.events()
    by_user: dict[str, set[str]] = {}
    for d in got:
        by_user.setdefault(d["user"]["name"], set()).add(d["event"]["id"])
    assert set(by_user) == {f"user{i:05d}" for i in range(2500)}
    assert all(len(ids) == 1 for ids in by_user.values()), "a duplicate with another event.id"
    assert len({d["event"]["id"] for d in got}) == 2500


@pytest.mark.behaviour
def test_wgsiem_run_started_while_the_endpoint_is_down_buffers_then_delivers(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A gateway that boots during a SIEM outage must not lose what happens meanwhile: the health check
    fails, is logged and shown, and the outbox buffers until the endpoint answers."""
    receiver.stop()
    run = Run(tmp_path, receiver.url)

    def status() -> dict[str, Any] | None:
        r = subprocess.run(
            [*WGSIEM, "status", "--json", "--config", str(run.cfg)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return json.loads(r.stdout) if r.returncode == 0 else None  # None until its API listens

    try:
        run.append(0, 300)
        run.start()
        poll(
            lambda: (
                run.alive()
                and (st := status()) is not None
                and st["sinks"]["hook"]["outbox"]["queued_events"] == 300
            ),
            60,
            "300 events buffered while the endpoint is down",
        )
        st = status()
        assert st is not None
        (hook,) = [c for c in st["components"] if c["id"] == "hook"]
        assert any(k.endswith("@health_check") for k in hook["errors"]), hook
        assert st["sinks"]["hook"]["outbox"]["state"] == "retrying"
        assert "not healthy at start, buffering" in run.log.read_text()
        receiver.start()
        poll(lambda: len({d["user"]["name"] for d in receiver.events()}) == 300, 60, "delivery once it is up")
    finally:
        run.kill()
