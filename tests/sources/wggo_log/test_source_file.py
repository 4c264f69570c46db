"""The live file mode (run/emit/stop/save_state) on real files, and bad input kept apart from good."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sources.wggo_log.harness import FIX, make_source
from wgsiem.errors import ParseError
from wgsiem.event import Envelope
from wgsiem.sources.wggo_log.source import WggoLogSource, interface_from_path

GOOD = "DEBUG: (wg0) 2026/11/25 17:52:48 peer(UV0Z…rMGw) - Received handshake initiation"


class Run:
    """One source running in the background of an event loop, collecting what it emits."""

    def __init__(self, source: WggoLogSource) -> None:
        self.source = source
        self.docs: list[dict[str, Any]] = []
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def emit(self, batch: list[Envelope]) -> None:
        self.docs += [e.data for e in batch]

    async def __aenter__(self) -> Run:
        self.task = asyncio.create_task(self.source.run(self.emit, self.stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 30)
        self.source.save_state()

    async def until(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred(self.docs):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out; saw {[d['event']['action'] for d in self.docs]}")
            await asyncio.sleep(0.02)


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


def test_follow_restart_no_loss_no_duplicates(tmp_path: Path) -> None:
    log = tmp_path / "wg0.log"
    gateway = (FIX / "gateway.log").read_text()
    first, second = gateway[: len(gateway) // 2], gateway[len(gateway) // 2 :]
    log.write_text(first)

    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]], WggoLogSource]:
        src = make_source(tmp_path, from_start=True, poll_interval_secs=0.02)
        async with Run(src) as r:
            await r.until(lambda d: len(d) >= 40)
            n = len(r.docs)
            await asyncio.sleep(0.1)
            assert len(r.docs) == n  # nothing more until the file grows
        src2 = make_source(tmp_path, from_start=True, poll_interval_secs=0.02)
        append(log, second)
        async with Run(src2) as r2:
            await r2.until(lambda d: bool(d) and d[-1]["event"]["sequence"] == 139)
        return r.docs, r2.docs, src2

    a, b, src2 = asyncio.run(go())
    replayed = [
        d
        for d in _replay(make_source(tmp_path / "r", replay=True), log)
        if d  # the same file, replayed
    ]
    live = a + b
    assert [d["event"]["id"] for d in live] == [d["event"]["id"] for d in replayed]
    assert [d["event"]["sequence"] for d in live] == [d["event"]["sequence"] for d in replayed]
    assert src2.telemetry.dropped["banner"] > 0
    assert src2.telemetry.sent == len(b)
    state = tmp_path / "wggo_log" / "wggo.json"
    assert oct(state.stat().st_mode & 0o777) == "0o600"


def _replay(source: WggoLogSource, path: Path) -> list[dict[str, Any]]:
    out = []
    for item in WggoLogSource.replay_read(path):
        assert not isinstance(item.payload, ParseError)
        out += [e.data for e in source.process(item.payload, item.time)]
    return out


def test_rotation_and_truncation_live(tmp_path: Path) -> None:
    log = tmp_path / "wg0.log"
    log.write_text(GOOD + "\n")

    async def go() -> list[dict[str, Any]]:
        src = make_source(tmp_path, from_start=True, poll_interval_secs=0.02)
        async with Run(src) as r:
            await r.until(lambda d: len(d) == 1)
            append(log, GOOD.replace("48", "49") + "\n")
            os.rename(log, tmp_path / "wg0.log.1")
            log.write_text(GOOD.replace("48", "50") + "\n")
            await r.until(lambda d: len(d) == 3)
            with log.open("r+b") as f:
                f.truncate(0)
            await asyncio.sleep(0.1)
            append(log, GOOD.replace("48", "51") + "\n")
            await r.until(lambda d: len(d) == 4)
            status = src.status()
            assert status["file"]["rotations"] == 1 and status["file"]["truncations"] == 1
        return r.docs

    docs = asyncio.run(go())
    assert [d["wireguard"]["log"]["local_time"][-2:] for d in docs] == ["48", "49", "50", "51"]
    assert [d["event"]["sequence"] for d in docs] == [1, 2, 1, 1]


def test_bad_lines_are_counted_with_location_and_skipped(tmp_path: Path) -> None:
    log = tmp_path / "wg0.log"
    log.write_text(f"{GOOD}\ngarbage here\n\nDEBUG: (wg0) 2026/13/45 17:52:48 Device started\n{GOOD}\n")

    async def go() -> tuple[list[dict[str, Any]], WggoLogSource]:
        src = make_source(tmp_path, from_start=True, poll_interval_secs=0.02)
        async with Run(src) as r:
            await r.until(lambda d: len(d) == 2)
        return r.docs, src

    docs, src = asyncio.run(go())
    assert [d["event"]["sequence"] for d in docs] == [1, 5]
    assert src.telemetry.errors["parse@parse"] == 2
    assert src.telemetry.dropped["blank_line"] == 1
    assert src.telemetry.received == 5 and src.telemetry.sent == 2
    assert src.telemetry.last_error is not None and f"{log}:4" in src.telemetry.last_error
    items = list(WggoLogSource.replay_read(log))
    errors = [i for i in items if isinstance(i.payload, ParseError)]
    assert [i.location for i in errors] == [f"{log}:2", f"{log}:4"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.just(GOOD), st.binary(max_size=120)), max_size=12))
def test_arbitrary_bytes_keep_good_lines(tmp_path: Path, chunks: list[str | bytes]) -> None:
    data = b"\n".join(c.encode() if isinstance(c, str) else c.replace(b"\n", b"") for c in chunks) + b"\n"
    path = tmp_path / "wg0.log"
    path.write_bytes(data)
    items = list(WggoLogSource.replay_read(path))  # never raises
    good = [i for i in items if not isinstance(i.payload, ParseError)]
    assert len(good) >= sum(1 for c in chunks if c == GOOD)
    src = make_source(tmp_path, replay=True)
    for i in good:
        src.process(i.payload, i.time)


@pytest.mark.parametrize(
    ("path", "iface"),
    [
        ("/var/log/wg0.log", "wg0"),
        ("/var/log/wg0.log.1", "wg0"),
        ("/var/log/wg0.log.2.gz", "wg0"),
        ("/var/log/wireguard-go-wg1.log", "wg1"),
        ("/var/log/wireguard-go.wg1.log", "wg1"),
        ("/var/log/wireguard-go.log", None),
        ("/var/log/this-name-is-far-too-long.log", None),
        (None, None),
    ],
)
def test_interface_from_path(path: str | None, iface: str | None) -> None:
    assert interface_from_path(path) == iface
