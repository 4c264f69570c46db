"""The ``splunk_hec`` sink end to end: registry → OutboxSink → SplunkHecDeliverer → HEC contract server."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.outbox.sink import OutboxSink
from wgsiem.sinks.registry import SinkContext, build_sink
from wgsiem.sources.peer_directory import PeerDirectory

from .contract_server import HecServer, Token
from .support import TOKEN, aio, alert_document, config, envelopes, real_documents, wait_for

FAST = {"retry_initial_backoff_secs": 0.02, "retry_max_backoff_secs": 0.1, "fsync": "never"}


def build(state: Path, url: str, **cfg: Any) -> OutboxSink:
    cfg.setdefault("outbox", FAST)
    ctx = SinkContext(TelemetryRegistry(), "splunk", "gw-test", state, PeerDirectory())
    sink = build_sink(config(url, **cfg), ctx)
    assert isinstance(sink, OutboxSink) and sink.component_type == "splunk_hec"
    return sink


async def pipe_write(sink: OutboxSink, docs: list[dict[str, Any]]) -> None:
    """``sink.write`` with the telemetry bookkeeping the pipeline runtime does around it."""
    tel = sink.telemetry
    tel.received += len(docs)
    await sink.write(envelopes(docs))
    assert sink.counts_own_sent  # the pipeline leaves `sent` to the outbox (it counts deliveries)


def _docs() -> list[dict[str, Any]]:
    return [*real_documents(), alert_document()]


def _balanced(sink: OutboxSink) -> bool:
    tel, st = sink.telemetry, sink.status()["outbox"]
    return tel.received + st["carried_over"] == tel.sent + sum(tel.dropped.values()) + st["queued_events"]


@aio
async def test_every_event_delivered_through_the_outbox(tmp_path: Path) -> None:
    server = HecServer([Token(TOKEN)])
    url = await server.start()
    sink = build(tmp_path, url)
    try:
        await sink.health_check()
        await sink.start()
        docs = _docs()
        await pipe_write(sink, docs)
        await wait_for(lambda: len(server.events) == len(docs), what="every event indexed")
        assert server.ids() == [d["event"]["id"] for d in docs]
        await wait_for(lambda: sink.status()["outbox"]["queued_events"] == 0, what="outbox drained")
        assert sink.telemetry.sent == len(docs) and _balanced(sink)
        st = sink.status()
        assert st["destination"]["last_response"]["code"] == 0 and st["outbox"]["state"] == "idle"
    finally:
        await sink.close()
        await server.stop()


@aio
async def test_outage_then_back_loses_nothing(tmp_path: Path) -> None:
    server = HecServer([Token(TOKEN)])
    url = await server.start()
    await server.stop()
    sink = build(tmp_path, url, outbox={**FAST, "batch_max_events": 20})
    try:
        await sink.start()
        docs = _docs()
        await pipe_write(sink, docs)
        await wait_for(lambda: sink.status()["outbox"]["state"] == "retrying", what="retrying while down")
        assert "unreachable" in (sink.status()["outbox"]["last_error"] or "")
        await server.start()
        await wait_for(lambda: len(set(server.ids())) == len(docs), what="backlog delivered after the outage")
        assert set(server.ids()) == {d["event"]["id"] for d in docs}
        await wait_for(lambda: sink.status()["outbox"]["queued_events"] == 0)
        assert _balanced(sink) and sink.telemetry.sent == len(docs)
    finally:
        await sink.close()
        await server.stop()


@aio
async def test_bad_token_keeps_events_until_fixed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = HecServer([Token("another-token")])
    url = await server.start()
    sink = build(tmp_path, url)
    try:
        await sink.start()
        await pipe_write(sink, _docs()[:10])
        await wait_for(
            lambda: sink.status()["destination"]["auth_error"] is not None, what="auth error shown"
        )
        st = sink.status()
        assert st["outbox"]["state"] == "retrying" and st["outbox"]["queued_events"] == 10
        assert "403 code 4" in st["outbox"]["last_error"]
        server.tokens[TOKEN] = Token(TOKEN)  # the admin fixes the token on the Splunk side
        await wait_for(lambda: len(server.events) == 10, what="delivered once the token is valid")
        await wait_for(lambda: sink.status()["destination"]["auth_error"] is None)
        dump = orjson.dumps(sink.status()).decode()
        assert TOKEN not in dump
        assert not [r for r in caplog.records if TOKEN in r.getMessage()]
    finally:
        await sink.close()
        await server.stop()


@aio
async def test_rejected_events_are_parked_and_the_rest_delivered(tmp_path: Path) -> None:
    server = HecServer([Token(TOKEN)])
    url = await server.start()
    docs = _docs()
    bad = {docs[5]["event"]["id"], docs[77]["event"]["id"]}
    server.reject = lambda obj: obj["fields"]["event_id"] in bad
    server.index_before_invalid = False
    sink = build(tmp_path, url)
    try:
        await sink.start()
        await pipe_write(sink, docs)
        await wait_for(lambda: sink.status()["outbox"]["queued_events"] == 0, what="batch settled")
        assert sorted(server.ids()) == sorted(d["event"]["id"] for d in docs if d["event"]["id"] not in bad)
        parked = [orjson.loads(line) for line in (sink.directory / "parked.ndjson").read_bytes().splitlines()]
        assert {p["id"] for p in parked} == bad
        assert all("code 6" in p["reason"] for p in parked)
        assert sink.telemetry.dropped["rejected"] == 2 and _balanced(sink)
    finally:
        await sink.close()
        await server.stop()


@aio
async def test_ack_through_the_outbox_with_one_lost_ack(tmp_path: Path) -> None:
    server = HecServer([Token(TOKEN, ack=True)])
    url = await server.start()
    server.hold_acks = 1
    sink = build(
        tmp_path,
        url,
        ack=True,
        ack_poll_interval_secs=0.01,
        ack_timeout_secs=0.3,
        outbox={**FAST, "batch_max_events": 50},
    )
    try:
        await sink.start()
        docs = _docs()
        await pipe_write(sink, docs)
        await wait_for(lambda: sink.status()["outbox"]["queued_events"] == 0, what="all acknowledged")
        ids = server.ids()
        assert set(ids) == {d["event"]["id"] for d in docs}
        assert len(ids) > len(docs)  # the unacknowledged request was sent again …
        assert sink.telemetry.sent == len(docs)  # … but each event counts delivered once
        assert sink.status()["destination"]["ack_timeouts"] == 1
    finally:
        await sink.close()
        await server.stop()


_CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    sys.path[:0] = {paths!r}
    from tests.sinks.splunk_hec.test_sink import build, _docs
    from tests.sinks.splunk_hec.support import envelopes
    from pathlib import Path

    async def main():
        sink = build(Path({state!r}), {url!r}, outbox={{"batch_max_events": 10, "fsync": "batch",
                     "retry_initial_backoff_secs": 0.02, "retry_max_backoff_secs": 0.1}})
        await sink.start()
        docs = _docs()
        await sink.write(envelopes(docs))
        print("written", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


@aio
async def test_sigkill_mid_delivery_then_restart_delivers_everything_at_least_once(tmp_path: Path) -> None:
    server = HecServer([Token(TOKEN)])
    url = await server.start()
    delivered_before_kill = asyncio.Event()
    orig_event = server._event

    async def slow_event(request: Any) -> Any:  # slow Splunk, so the kill lands mid-delivery
        resp = await orig_event(request)
        if len(server.events) >= 30:
            delivered_before_kill.set()
        await asyncio.sleep(0.05)
        return resp

    server._event = slow_event  # type: ignore[method-assign]
    await server.stop()
    await server.start()
    root = str(Path(__file__).resolve().parents[3])
    code = _CHILD.format(paths=[root, str(Path(root) / "src")], state=str(tmp_path), url=url)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=root)
    try:
        await wait_for(
            lambda: delivered_before_kill.is_set() or child.poll() is not None,
            timeout=60,
            what="delivery under way",
        )
        assert child.poll() is None, "the child sink died on its own"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        await asyncio.to_thread(child.wait)
    docs = _docs()
    before = len(server.events)
    assert 0 < before < len(docs)
    sink = build(tmp_path, url)
    try:
        await sink.start()
        await wait_for(lambda: set(server.ids()) == {d["event"]["id"] for d in docs}, timeout=60)
        await wait_for(lambda: sink.status()["outbox"]["queued_events"] == 0)
        ids = server.ids()
        # at least once: duplicates are the same events (same event_id); `| dedup event_id` restores the set
        assert len(ids) >= len(docs) and sorted(set(ids)) == sorted(d["event"]["id"] for d in docs)
    finally:
        await sink.close()
        await server.stop()
