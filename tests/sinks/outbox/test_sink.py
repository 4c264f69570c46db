"""OutboxSink with scripted deliverers: order, at-least-once, restart, damage, overflow, telemetry."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wgsiem.event import Envelope
from wgsiem.pipeline.runtime import Emit, Pipeline
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.outbox.contract import DeliveryReport, Pending, RetryableDeliveryError
from wgsiem.sinks.outbox.sink import OutboxSink

from .support import ScriptedDeliverer, aio, envs, invariant, make_sink, wait_for


class ListSource:
    component_id = "src"

    def __init__(self, batches: list[list[Envelope]]) -> None:
        self.batches = batches

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        for b in self.batches:
            await emit(b)


def segment_files(d: Path) -> list[Path]:
    return sorted(d.glob("*.seg"))


@aio
async def test_delivers_in_order_and_counts_sent_as_delivered(tmp_path: Path) -> None:
    reg = TelemetryRegistry()
    dl = ScriptedDeliverer()
    sink = make_sink(tmp_path, dl, registry=reg, batch_max_events=70)
    batches = [envs(100, i * 100) for i in range(10)]
    await Pipeline([ListSource(batches)], [], [sink], reg, batch_max_wait_secs=0.01).run(asyncio.Event())
    ids = [e.data["event"]["id"] for b in batches for e in b]
    assert [p.event_id for p in dl.delivered] == ids
    assert [p.seq for p in dl.delivered] == list(range(1, 1001))
    assert dl.delivered[5].doc == batches[0][5].data
    snap = reg.get("out").snapshot()
    assert (snap["received"], snap["sent"], snap["dropped"]) == (1000, 1000, {})
    assert snap["gauges"]["outbox_queued_events"] == 0
    assert dl.closed and invariant(sink)
    d = tmp_path / "outbox" / "out"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for f in d.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


@aio
async def test_undelivered_records_survive_a_restart_and_acked_ones_are_not_resent(tmp_path: Path) -> None:
    calls = 0

    def first_50_only(batch: list[Pending]) -> DeliveryReport | Exception:
        nonlocal calls
        calls += 1
        return DeliveryReport() if calls == 1 else RetryableDeliveryError("down")

    dl = ScriptedDeliverer(first_50_only)
    sink = make_sink(tmp_path, dl, batch_max_events=50)
    await sink.start()
    await sink.write(envs(200))
    await wait_for(lambda: sink.retries >= 2, what="retries")
    st = sink.status()["outbox"]
    assert st["state"] == "retrying" and st["queued_events"] == 150 and st["last_error"] == "down"
    await sink.close()

    dl2 = ScriptedDeliverer()
    again = make_sink(tmp_path, dl2, batch_max_events=50)
    assert again.status()["outbox"]["carried_over"] == 150
    await again.start()
    await wait_for(lambda: len(dl2.delivered) == 150, what="carried-over delivery")
    assert [p.seq for p in dl2.delivered] == list(range(51, 201))
    assert [p.event_id for p in dl2.delivered] == [e.data["event"]["id"] for e in envs(200)][50:]
    assert dl2.delivered[0].doc == envs(200)[50].data
    await again.close()
    assert invariant(again)


@aio
async def test_rejected_records_are_parked_with_the_reason_and_retry_list_honoured(tmp_path: Path) -> None:
    seen: list[list[int]] = []

    def script(batch: list[Pending]) -> DeliveryReport:
        seen.append([p.seq for p in batch])
        if len(seen) == 1:
            return DeliveryReport(rejected={2: "mapper_parsing_exception: bad ip"}, retry=[3, 4])
        return DeliveryReport()

    dl = ScriptedDeliverer(script)
    reg = TelemetryRegistry()
    sink = make_sink(tmp_path, dl, registry=reg)
    await Pipeline([ListSource([envs(5)])], [], [sink], reg).run(asyncio.Event())
    assert seen == [[1, 2, 3, 4, 5], [3, 4]]
    assert sorted(p.seq for p in dl.delivered) == [1, 3, 4, 5]
    parked = [orjson.loads(x) for x in (tmp_path / "outbox/out/parked.ndjson").read_bytes().splitlines()]
    assert [(p["seq"], p["reason"]) for p in parked] == [(2, "mapper_parsing_exception: bad ip")]
    assert parked[0]["doc"] == envs(5)[1].data
    snap = reg.get("out").snapshot()
    assert (snap["sent"], snap["dropped"]) == (4, {"rejected": 1})
    assert sink.status()["outbox"]["parked"] == 1 and sink.status()["outbox"]["retries"] == 1
    assert invariant(sink)


@aio
async def test_retry_after_is_honoured(tmp_path: Path) -> None:
    calls: list[float] = []

    def script(batch: list[Pending]) -> DeliveryReport | Exception:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) == 1:
            return RetryableDeliveryError("HTTP 429", retry_after_secs=0.3)
        return DeliveryReport()

    dl = ScriptedDeliverer(script)
    sink = make_sink(tmp_path, dl)
    await sink.start()
    await sink.write(envs(3))
    await wait_for(lambda: len(dl.delivered) == 3, what="delivery after Retry-After")
    assert calls[1] - calls[0] >= 0.29  # the server's delay, not the 10 ms backoff
    await sink.close()


def _damage(d: Path) -> tuple[Path, int]:
    """Flip a byte inside the 3rd record of the first segment and tear the last one; returns (file, off)."""
    seg = segment_files(d)[0]
    data = bytearray(seg.read_bytes())
    # frames are equal-sized here: find the 3rd frame's start by scanning magic markers
    starts = [i for i in range(len(data)) if data[i : i + 4] == b"WGO1"]
    data[starts[2] + 40] ^= 0x55
    seg.write_bytes(bytes(data[: len(data) - 7]))  # torn tail: the last record loses its end
    return seg, starts[2]


@aio
async def test_torn_tail_and_corrupt_record_detected_reported_and_good_records_delivered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dl = ScriptedDeliverer(lambda b: RetryableDeliveryError("down"))
    sink = make_sink(tmp_path, dl)
    await sink.start()
    await sink.write(envs(10))
    await sink.close()
    seg, bad_at = _damage(tmp_path / "outbox" / "out")

    caplog.set_level(logging.WARNING)
    dl2 = ScriptedDeliverer()
    again = make_sink(tmp_path, dl2)
    st = again.status()["outbox"]
    assert st["carried_over"] == 8
    dmg = {(d["file"], d["offset"], d["torn"], d["reason"], d["lost_records"]) for d in st["damage"]}
    assert (str(seg), bad_at, False, "crc mismatch", 1) in dmg
    assert any(d["torn"] and d["file"] == str(seg) for d in st["damage"])
    assert again.telemetry.errors["CorruptSegment@recover"] == 2
    assert f"{seg}@{bad_at}" in caplog.text
    await again.start()
    await wait_for(lambda: len(dl2.delivered) == 8, what="good records")
    assert [p.seq for p in dl2.delivered] == [1, 2, 4, 5, 6, 7, 8, 9]
    await again.close()


@aio
async def test_unreadable_ack_file_means_resend_not_loss(tmp_path: Path) -> None:
    dl = ScriptedDeliverer()
    sink = make_sink(tmp_path, dl)
    await sink.start()
    await sink.write(envs(4))
    await wait_for(lambda: len(dl.delivered) == 4)
    await sink.close()
    # records are still in the (active, not yet released) segment; a garbled ack re-sends them
    (tmp_path / "outbox/out/acked.json").write_bytes(b"{garbage")
    dl2 = ScriptedDeliverer()
    again = make_sink(tmp_path, dl2)
    await again.start()
    await wait_for(lambda: len(dl2.delivered) == 4)
    assert [p.event_id for p in dl2.delivered] == [p.event_id for p in dl.delivered]
    await again.close()


# ---- overflow ---------------------------------------------------------------------------------------

MiB = 1024 * 1024


async def _fill(sink: OutboxSink, n_batches: int, pad: int = 2000) -> None:
    for i in range(n_batches):
        await sink.write(envs(100, i * 100, pad=pad))


@aio
async def test_overflow_drop_newest(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    dl = ScriptedDeliverer(lambda b: RetryableDeliveryError("down"))
    sink = make_sink(tmp_path, dl, max_bytes=MiB, overflow="drop_newest")
    await sink.start()
    await _fill(sink, 8)  # ~1.7 MB offered to a 1 MiB outbox
    st = sink.status()["outbox"]
    assert st["overflow_dropped"] > 0 and st["disk_bytes"] <= MiB
    assert sink.telemetry.dropped["outbox_overflow"] == st["overflow_dropped"]
    assert st["accepted"] + st["overflow_dropped"] == 800
    assert caplog.text.count("outbox full") == 1  # once per episode
    assert sink.telemetry.errors["OutboxFull@write"] == 1
    await sink.close()
    dl2 = ScriptedDeliverer()
    again = make_sink(tmp_path, dl2, max_bytes=MiB)
    await again.start()
    await wait_for(lambda: len(dl2.delivered) == st["accepted"])
    # the oldest were kept, the newest refused
    assert [p.doc["wireguard"]["n"] for p in dl2.delivered] == list(range(st["accepted"]))
    await again.close()


@aio
async def test_overflow_drop_oldest(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    dl = ScriptedDeliverer(lambda b: RetryableDeliveryError("down"))
    sink = make_sink(tmp_path, dl, max_bytes=MiB, overflow="drop_oldest", batch_max_events=10)
    await sink.start()
    await _fill(sink, 8)
    st = sink.status()["outbox"]
    assert st["overflow_dropped"] > 0 and st["disk_bytes"] <= MiB
    assert sink.telemetry.dropped["outbox_overflow"] == st["overflow_dropped"]
    assert caplog.text.count("dropped the oldest") == 1
    await sink.close()
    dl2 = ScriptedDeliverer()
    again = make_sink(tmp_path, dl2, max_bytes=MiB)
    carried = again.status()["outbox"]["carried_over"]
    await again.start()
    await wait_for(lambda: len(dl2.delivered) == carried)
    ns = [p.doc["wireguard"]["n"] for p in dl2.delivered]
    assert ns[-1] == 799 and ns == sorted(ns)  # the newest kept, in order
    # what is gone is exactly what was counted (the abandoned in-flight batch included)
    assert 800 - carried == st["overflow_dropped"]
    await again.close()


@aio
async def test_overflow_block_paces_the_writer_and_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    dl = ScriptedDeliverer()
    dl.gate = asyncio.Event()  # the destination hangs until the gate opens
    reg = TelemetryRegistry()
    sink = make_sink(tmp_path, dl, registry=reg, max_bytes=MiB, overflow="block", batch_max_events=50)
    batches = [envs(100, i * 100, pad=2000) for i in range(8)]
    run = asyncio.create_task(
        Pipeline([ListSource(batches)], [], [sink], reg, queue_max_events=100, batch_max_events=100).run(
            asyncio.Event()
        )
    )
    await wait_for(lambda: sink.status()["outbox"]["state"] == "full", what="the outbox to fill")
    st = sink.status()["outbox"]
    assert st["disk_bytes"] <= MiB and st["accepted"] < 800 and not run.done()
    assert "blocking the pipeline" in caplog.text
    dl.gate.set()
    await asyncio.wait_for(run, 30)
    assert [p.doc["wireguard"]["n"] for p in dl.delivered] == list(range(800))
    snap = reg.get("out").snapshot()
    assert (snap["received"], snap["sent"], snap["dropped"]) == (800, 800, {})
    assert "room again" in caplog.text


@aio
async def test_flush_returns_at_once_while_the_destination_fails(tmp_path: Path) -> None:
    dl = ScriptedDeliverer(lambda b: RetryableDeliveryError("down"))
    sink = make_sink(tmp_path, dl, flush_timeout_secs=30)
    await sink.start()
    await sink.write(envs(3))
    await wait_for(lambda: sink.retries >= 1)
    await asyncio.wait_for(sink.flush(), 5)  # not 30 s
    await sink.close()
    assert os.listdir(tmp_path / "outbox" / "out")


@aio
async def test_drain_on_close_delivers_everything_past_the_flush_timeout_and_through_failures(
    tmp_path: Path,
) -> None:
    calls = {"n": 0}

    def fail_first_five(batch: list[Pending]) -> DeliveryReport | Exception:
        calls["n"] += 1
        return RetryableDeliveryError("down") if calls["n"] <= 5 else DeliveryReport()

    dl = ScriptedDeliverer(fail_first_five)
    sink = make_sink(tmp_path, dl, flush_timeout_secs=0.01, batch_max_events=10)
    sink.drain_on_close = True
    await sink.start()
    await sink.write(envs(200))
    await asyncio.wait_for(sink.close(), 30)
    assert [p.event_id for p in dl.delivered] == [e.data["event"]["id"] for e in envs(200)]
    assert sink.telemetry.sent == 200


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=2048), cut=st.integers(0, 4000), keep_valid=st.booleans())
def test_arbitrary_segment_bytes_never_crash_recovery_or_reading(
    tmp_path_factory: pytest.TempPathFactory, junk: bytes, cut: int, keep_valid: bool
) -> None:
    from wgsiem.sinks.outbox.segment import encode_frame, encode_payload

    d = tmp_path_factory.mktemp("seg")
    box = d / "outbox" / "out"
    box.mkdir(parents=True)
    valid = b"".join(encode_frame(i, 0, encode_payload(f"id{i}", b'{"n":%d}' % i)) for i in range(1, 6))
    data = (valid[:cut] + junk + valid[cut:]) if keep_valid else junk
    (box / "00000000000000000001.seg").write_bytes(data)

    async def go() -> None:
        dl = ScriptedDeliverer()
        sink = make_sink(d, dl)
        carried = sink.status()["outbox"]["carried_over"]
        await sink.start()
        await wait_for(lambda: len(dl.delivered) >= carried, what="carried-over records")
        await sink.close()
        assert len(dl.delivered) == carried
        assert all(isinstance(p.doc, dict) for p in dl.delivered)

    asyncio.run(go())
